import { defineConfig } from 'vitest/config';

/**
 * The one vitest config every workspace package uses: sources of other @kvkit packages are
 * resolved through the `@kvkit/source` export condition (no build needed), and each run writes
 * a JSON report that `scripts/kvkit.mjs` sums into the closing `N passed, N failed` line.
 */
export function packageConfig(options: { include?: string[]; reportName?: string } = {}) {
  const conditions = ['@kvkit/source', 'module', 'node', 'import', 'default'];
  return defineConfig({
    resolve: { conditions },
    ssr: { resolve: { conditions, externalConditions: ['@kvkit/source'] } },
    test: {
      include: options.include ?? ['src/**/*.test.ts', 'test/**/*.test.ts'],
      testTimeout: 60_000,
      hookTimeout: 60_000,
      pool: 'forks',
      reporters: ['default', 'json'],
      outputFile: { json: `.vitest-reports/${options.reportName ?? 'test'}.json` },
    },
  });
}

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

/**
 * The browser smoke tests' config (apps/demo, docs): the e2e/ files against a built app in
 * headless Chromium, one file at a time, with a JSON report the test command counts.
 */
export function e2eConfig() {
  return defineConfig({
    test: {
      include: ['e2e/**/*.e2e.test.ts'],
      testTimeout: 120_000,
      hookTimeout: 120_000,
      pool: 'forks',
      fileParallelism: false,
      reporters: ['default', 'json'],
      outputFile: { json: '.vitest-reports/e2e.json' },
    },
  });
}

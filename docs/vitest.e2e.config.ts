import { defineConfig } from 'vitest/config';

// Browser smoke test of the built site (docs/.vitepress/dist): run `vitepress build` first.
export default defineConfig({
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

import { defineConfig } from 'vitest/config';

/** The browser smoke test: `vite build` output, served by `vite preview`, in headless Chromium. */
export default defineConfig({
  test: {
    include: ['e2e/**/*.e2e.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default', 'json'],
    outputFile: { json: '.vitest-reports/e2e.json' },
  },
});

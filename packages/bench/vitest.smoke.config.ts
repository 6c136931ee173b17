import { defineConfig } from 'vitest/config';

// The `kvbench --quick` smoke run, against the built CLI (turbo builds it first).
export default defineConfig({
  test: {
    include: ['test/**/*.smoke.test.ts'],
    testTimeout: 120_000,
    pool: 'forks',
    reporters: ['default', 'json'],
    outputFile: { json: '.vitest-reports/smoke.json' },
  },
});

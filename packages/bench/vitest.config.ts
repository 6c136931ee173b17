import { packageConfig } from '../../vitest.shared.ts';

// Unit tests only; the CLI smoke run (test/*.smoke.test.ts) needs a build: vitest.smoke.config.ts.
export default packageConfig({ include: ['src/**/*.test.ts'] });

import { e2eConfig } from '../vitest.shared.ts';

// Browser smoke test of the built site (docs/.vitepress/dist): run `vitepress build` first.
export default e2eConfig();

import { e2eConfig } from '../../vitest.shared.ts';

/** The browser smoke test: `vite build` output, served by `vite preview`, in headless Chromium. */
export default e2eConfig();

import { kvkitWasm } from '@kvkit/tensor-utils/vite';
import { defaultClientConditions, defineConfig } from 'vite';

/** Cross-origin isolation: lets the browser run tfjs' threaded wasm build. */
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig(({ command }) => ({
  // Relative URLs in the build, so the same dist/ works at any path (the docs site serves a
  // copy of it under demo/).
  base: command === 'build' ? './' : '/',
  plugins: [kvkitWasm()],
  // `vite dev` reads the @kvkit packages' TypeScript sources, so edits to them show up at once;
  // `vite build` uses their built dist/, as any other app would.
  resolve: command === 'serve' ? { conditions: ['@kvkit/source', ...defaultClientConditions] } : {},
  server: { headers: isolation },
  preview: { headers: isolation },
}));

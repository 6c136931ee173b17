import { kvkitWasm } from '@kvkit/tensor-utils/vite';
import { defaultClientConditions, defineConfig } from 'vite';

export default defineConfig(({ command }) => ({
  plugins: [kvkitWasm()],
  // `vite dev` reads the @kvkit packages' TypeScript sources, so edits to them show up at once;
  // `vite build` uses their built dist/, as any other app would.
  resolve: command === 'serve' ? { conditions: ['@kvkit/source', ...defaultClientConditions] } : {},
  build: { minify: false },
}));

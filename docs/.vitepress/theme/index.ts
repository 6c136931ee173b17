// The default VitePress theme plus kvkit's live, in-browser examples, the benchmark report, its
// in-browser run and the seed notebook.
import type { Theme } from 'vitepress';
import DefaultTheme from 'vitepress/theme';
import BenchmarkReport from './components/BenchmarkReport.vue';
import BrowserBench from './components/BrowserBench.vue';
import LiveAttention from './components/LiveAttention.vue';
import SeedNotebook from './components/SeedNotebook.vue';
import './custom.css';

export default {
  extends: DefaultTheme,
  enhanceApp({ app }) {
    app.component('BenchmarkReport', BenchmarkReport);
    app.component('BrowserBench', BrowserBench);
    app.component('LiveAttention', LiveAttention);
    app.component('SeedNotebook', SeedNotebook);
  },
} satisfies Theme;

// The default VitePress theme plus kvkit's live, in-browser examples.
import type { Theme } from 'vitepress';
import DefaultTheme from 'vitepress/theme';
import LiveAttention from './components/LiveAttention.vue';

export default {
  extends: DefaultTheme,
  enhanceApp({ app }) {
    app.component('LiveAttention', LiveAttention);
  },
} satisfies Theme;

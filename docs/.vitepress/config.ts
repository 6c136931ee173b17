import { cpSync, existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kvkitWasm } from '@kvkit/tensor-utils/vite';
import { type DefaultTheme, defineConfig } from 'vitepress';

const srcDir = dirname(dirname(fileURLToPath(import.meta.url)));

/**
 * The API reference TypeDoc writes from the packages' TSDoc comments before every build
 * (`typedoc` in the build script, docs/typedoc.json), with the sidebar it generates for it.
 */
const referenceSidebarFile = join(srcDir, 'api', 'reference', 'typedoc-sidebar.json');
const referenceSidebar: DefaultTheme.SidebarItem[] = existsSync(referenceSidebarFile)
  ? JSON.parse(readFileSync(referenceSidebarFile, 'utf8'))
  : [];

/** The sidebar the site grows into; pages not written yet are left out (no dead links). */
const plannedSidebar: DefaultTheme.SidebarItem[] = [
  {
    text: 'Guide',
    items: [
      { text: 'Getting started', link: '/guide/getting-started' },
      { text: 'Install from a clone', link: '/guide/install-from-a-clone' },
      { text: 'The seed notebook', link: '/guide/seed-notebook' },
      { text: 'Why a KV cache', link: '/guide/why-kv-cache' },
      { text: 'How it works', link: '/guide/how-it-works' },
      { text: 'Generating text', link: '/guide/generation' },
    ],
  },
  {
    text: 'Concepts',
    items: [
      { text: 'Static cache', link: '/concepts/static-cache' },
      { text: 'Dynamic cache', link: '/concepts/dynamic-cache' },
      { text: 'Sliding-window cache', link: '/concepts/sliding-window' },
      { text: 'Sink cache', link: '/concepts/sink-cache' },
      { text: 'Paged cache', link: '/concepts/paged-cache' },
      { text: 'Quantized cache', link: '/concepts/quantized-cache' },
    ],
  },
  {
    text: 'Operations',
    items: [
      { text: 'Ragged batches', link: '/operations/ragged-batches' },
      { text: 'Crop', link: '/operations/crop' },
      { text: 'Reorder (beam search)', link: '/operations/reorder' },
      { text: 'Fork and clone', link: '/operations/fork-and-clone' },
      { text: 'Save and load', link: '/operations/save-and-load' },
      { text: 'The cache file format', link: '/operations/save-format' },
      { text: 'Memory and budgets', link: '/operations/memory-budget' },
    ],
  },
  {
    text: 'API',
    items: [
      { text: '@kvkit/tensor-utils', link: '/api/tensor-utils' },
      { text: '@kvkit/kv-cache', link: '/api/kv-cache' },
      { text: '@kvkit/attention', link: '/api/attention' },
      { text: '@kvkit/bench', link: '/api/bench' },
    ],
  },
  {
    text: 'API reference',
    collapsed: true,
    items: [{ text: 'All packages', link: '/api/reference/' }, ...referenceSidebar],
  },
  {
    text: 'Benchmarks',
    items: [{ text: 'Cached vs uncached decoding', link: '/benchmarks/' }],
  },
  {
    text: 'Decisions',
    items: [
      { text: 'The toolchain', link: '/decisions/toolchain' },
      { text: 'Where the static cache keeps its rows', link: '/decisions/kv-cache-storage' },
      { text: 'A WebAssembly kernel for attention', link: '/decisions/attention-kernel' },
      { text: 'One cache contract for every strategy', link: '/decisions/kv-cache-contract' },
      { text: 'The cache operations', link: '/decisions/cache-operations' },
    ],
  },
];

function pageExists(link: string): boolean {
  const path = link.endsWith('/') ? `${link}index.md` : `${link}.md`;
  return existsSync(join(srcDir, path));
}

function existingPages(items: DefaultTheme.SidebarItem[]): DefaultTheme.SidebarItem[] {
  return items.flatMap((item) => {
    if (item.items) {
      const children = existingPages(item.items);
      return children.length > 0 ? [{ ...item, items: children }] : [];
    }
    return item.link === undefined || pageExists(item.link.replace(/\.md$/, '')) ? [item] : [];
  });
}

const sidebar = existingPages(plannedSidebar);

/** The demo app's build (apps/demo/dist, relative URLs), copied into the site at demo/. */
const demoDist = join(srcDir, '..', 'apps', 'demo', 'dist');

export default defineConfig({
  title: 'kvkit',
  description:
    "KV caching for transformer attention on TensorFlow.js: minGPT's CausalSelfAttention with a static key-value cache, on the WebAssembly backend.",
  lang: 'en-US',
  cleanUrls: false,
  lastUpdated: false,
  head: [
    [
      'link',
      {
        rel: 'icon',
        type: 'image/svg+xml',
        href: "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Crect width='16' height='16' rx='3' fill='%233451b2'/%3E%3Ctext x='8' y='12' font-size='10' text-anchor='middle' fill='white' font-family='monospace'%3EKV%3C/text%3E%3C/svg%3E",
      },
    ],
  ],
  // The demo is not a VitePress page: links to it are checked by the docs' browser test.
  ignoreDeadLinks: [/^(\.\.\/)+demo\/$|^\/demo\/$/],
  buildEnd(site) {
    if (!existsSync(join(demoDist, 'index.html'))) {
      throw new Error(
        `${demoDist} is missing: build the demo first (turbo builds it before the docs)`,
      );
    }
    cpSync(demoDist, join(site.outDir, 'demo'), { recursive: true });
  },
  themeConfig: {
    nav: [
      { text: 'Guide', link: '/guide/getting-started' },
      { text: 'Demo', link: '/demo/', target: '_self' },
      ...(pageExists('/benchmarks/') ? [{ text: 'Benchmarks', link: '/benchmarks/' }] : []),
    ],
    sidebar,
    outline: [2, 3],
    search: { provider: 'local' },
    socialLinks: [{ icon: 'github', link: 'https://github.com/kvkit/kvkit' }],
    footer: { message: 'Released under the MIT License.' },
  },
  vite: {
    // Serves (dev) and emits (build) the tfjs .wasm binaries under <base>tfjs-wasm/.
    // VitePress renders its own HTML, so the plugin's transformIndexHtml hook never runs here:
    // the LiveAttention component passes that folder to initBackend itself.
    plugins: [kvkitWasm()],
    // VitePress 1.6 runs Vite 5, whose default target predates top-level await; every browser
    // that runs the wasm backend is newer than es2022.
    build: { target: 'es2022' },
  },
});

// The demo page: starts the tfjs wasm backend, then builds one tab and one section per panel
// of the registry (panels.ts). Everything runs in this page, offline: the .wasm binaries are
// served by the kvkitWasm() Vite plugin next to the page.
import { type BackendInfo, initBackend } from '@kvkit/tensor-utils';
import { type Panel, panels } from './panels.ts';
import { h } from './ui/dom.ts';
import './style.css';

const source = 'https://github.com/kvkit/kvkit';

function fail(error: unknown): void {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  const box = document.getElementById('error')!;
  box.textContent = message;
  box.hidden = false;
  document.body.dataset.status = 'error';
  console.error(error);
}

/** Inside the docs site (its copy at …/demo/) links stay in the site; elsewhere they go to GitHub. */
const inDocs = /\/demo\/(index\.html)?$/.test(location.pathname);
const links: Record<string, string> = {
  docs: inDocs ? '../' : `${source}/tree/main/docs`,
  notebook: inDocs
    ? '../guide/seed-notebook.html'
    : `${source}/blob/main/packages/tensor-utils/test/fixtures/seed-notebook.txt`,
};

function showTab(id: string): void {
  for (const tab of document.querySelectorAll<HTMLButtonElement>('[role="tab"]')) {
    const selected = tab.dataset.panel === id;
    tab.setAttribute('aria-selected', String(selected));
    tab.tabIndex = selected ? 0 : -1;
  }
  for (const section of document.querySelectorAll<HTMLElement>('[role="tabpanel"]')) {
    section.hidden = section.id !== `panel-${id}`;
  }
}

function mountPanels(backend: BackendInfo): void {
  const tabs = document.getElementById('tabs')!;
  const main = document.getElementById('panels')!;
  for (const panel of panels as Panel[]) {
    tabs.append(
      h(
        'button',
        {
          role: 'tab',
          id: `tab-${panel.id}`,
          'data-panel': panel.id,
          'aria-controls': `panel-${panel.id}`,
          onclick: () => showTab(panel.id),
        },
        panel.title,
      ),
    );
    const body = h('div', { class: 'panel-body' });
    main.append(
      h(
        'section',
        { role: 'tabpanel', id: `panel-${panel.id}`, 'aria-labelledby': `tab-${panel.id}` },
        h('p', { class: 'summary' }, panel.summary),
        body,
      ),
    );
    panel.mount(body, { backend, fail });
  }
  showTab(panels[0]!.id);
}

async function start(): Promise<void> {
  for (const a of document.querySelectorAll<HTMLAnchorElement>('a[data-link]')) {
    a.href = links[a.dataset.link!] ?? a.href;
  }
  const backend = await initBackend('wasm');
  const badge = document.getElementById('backend')!;
  badge.textContent = `tfjs ${backend.backend} · ${backend.wasmBinary} build`;
  badge.title = backend.fallbackReason ?? 'the fastest build this page allows';
  badge.dataset.binary = backend.wasmBinary ?? '';
  mountPanels(backend);
  document.body.dataset.status = 'ready';
}

start().catch(fail);

// What the demo's browser tests share: `vite preview` serving dist/ (the minified production
// build, with the COOP/COEP headers of vite.config.ts) on 127.0.0.1 and a free port, Debian's
// headless Chromium (nothing is downloaded), and a page that records every console error and
// uncaught exception.
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { type PreviewServer, preview } from 'vite';
import { expect } from 'vitest';

const appDir = fileURLToPath(new URL('..', import.meta.url));

// scripts/browser.mjs is plain JavaScript without types: load it by URL and state what is used.
const browserHelpersUrl = new URL('../../../scripts/browser.mjs', import.meta.url).href;
const { findChromium, chromiumArgs } = (await import(browserHelpersUrl)) as {
  findChromium(): string | null;
  chromiumArgs: string[];
};

/** The served demo and the browser; `close()` stops both. */
export interface Demo {
  origin: string;
  browser: Browser;
  close(): Promise<void>;
}

/** Serves the built demo and launches Chromium (errors say what is missing). */
export async function startDemo(): Promise<Demo> {
  const executablePath = findChromium();
  if (!executablePath) {
    throw new Error(
      'The demo e2e test needs Chromium, which was not found. On Debian/Ubuntu: ' +
        'apt-get install chromium; elsewhere set KVKIT_CHROMIUM=/path/to/chromium.',
    );
  }
  if (!existsSync(new URL('../dist/index.html', import.meta.url))) {
    throw new Error(
      'apps/demo/dist is missing: build it first (pnpm exec turbo run build --filter=@kvkit/demo...)',
    );
  }
  const server: PreviewServer = await preview({
    root: appDir,
    logLevel: 'warn',
    preview: { host: '127.0.0.1', port: 0, strictPort: true, open: false },
  });
  const origin = `http://127.0.0.1:${(server.httpServer.address() as AddressInfo).port}`;
  const browser = await chromium.launch({ executablePath, args: chromiumArgs });
  return {
    origin,
    browser,
    async close() {
      await browser.close();
      await server.close();
    },
  };
}

/** Opens the demo at `width` px and waits for it to start; collects every error. */
export async function open(
  demo: Demo | undefined,
  width: number,
): Promise<{ page: Page; errors: string[]; wasm: string[] }> {
  if (!demo) throw new Error('the demo did not start');
  const page = await demo.browser.newPage({ viewport: { width, height: 900 } });
  const errors: string[] = [];
  const wasm: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console.error: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  page.on('response', (r) => {
    if (r.url().endsWith('.wasm')) wasm.push(`${r.status()} ${new URL(r.url()).pathname}`);
  });
  await page.goto(`${demo.origin}/`);
  await page.waitForSelector('body[data-status="ready"], body[data-status="error"]', {
    state: 'attached',
    timeout: 60_000,
  });
  expect(await page.getAttribute('body', 'data-status'), errors.join('\n')).toBe('ready');
  return { page, errors, wasm };
}

/** The text of the element with this test id. */
export const text = async (page: Page, testid: string) =>
  (await page.getByTestId(testid).textContent()) ?? '';

/** Clicks Generate and waits for the run to end; fails on a refusal or an error. */
export async function generate(page: Page): Promise<void> {
  const output = page.getByTestId('gen-output');
  await page.getByTestId('gen-run').click();
  await expect
    .poll(() => output.getAttribute('data-state'), { timeout: 60_000 })
    .not.toBe('running');
  expect(await output.getAttribute('data-state'), await text(page, 'gen-error')).toBe('done');
}

/** Fails if the page is wider than the window. */
export async function noSidewaysScroll(page: Page): Promise<void> {
  const [scroll, inner] = await page.evaluate(() => [
    document.documentElement.scrollWidth,
    window.innerWidth,
  ]);
  expect(scroll, 'the page scrolls sideways').toBeLessThanOrEqual(inner);
}

// Browser smoke test: serves the built demo with `vite preview`, opens it in Debian's headless
// Chromium and checks it reproduces the seed notebook on the tfjs wasm backend.
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { type PreviewServer, preview } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** The first line of `print(y)` in the seed notebook. */
const notebookFirstLine = 'tensor([[[-0.2179,  0.4357,  0.3333,  0.0294, -0.0310, -0.0278],';

const appDir = fileURLToPath(new URL('..', import.meta.url));

// scripts/browser.mjs is plain JavaScript without types: load it by URL and state what is used.
const browserHelpersUrl = new URL('../../../scripts/browser.mjs', import.meta.url).href;
const { findChromium, chromiumArgs } = (await import(browserHelpersUrl)) as {
  findChromium(): string | null;
  chromiumArgs: string[];
};

let server: PreviewServer | undefined;
let browser: Browser | undefined;
let page: Page | undefined;
const consoleErrors: string[] = [];
const wasmResponses: { url: string; status: number; contentType: string | undefined }[] = [];

beforeAll(async () => {
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

  server = await preview({
    root: appDir,
    logLevel: 'warn',
    preview: { host: '127.0.0.1', port: 0, strictPort: true, open: false },
  });
  const { port } = server.httpServer.address() as AddressInfo;

  browser = await chromium.launch({ executablePath, args: chromiumArgs });
  page = await browser.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(`console.error: ${message.text()}`);
  });
  page.on('pageerror', (error) => consoleErrors.push(`uncaught: ${error.message}`));
  page.on('response', (response) => {
    if (new URL(response.url()).pathname.endsWith('.wasm')) {
      wasmResponses.push({
        url: response.url(),
        status: response.status(),
        contentType: response.headers()['content-type'],
      });
    }
  });

  await page.goto(`http://127.0.0.1:${port}/`);
  await page.waitForSelector('body[data-status="done"], body[data-status="error"]', {
    state: 'attached',
    timeout: 60_000,
  });
});

afterAll(async () => {
  await page?.close();
  await browser?.close();
  await server?.close();
});

async function text(id: string): Promise<string> {
  return (await page!.textContent(`#${id}`)) ?? '';
}

describe('demo page (vite build + preview, headless Chromium)', () => {
  it('finishes without error', async () => {
    const status = await page!.getAttribute('body', 'data-status');
    expect(status, `page status: ${await text('status')}`).toBe('done');
  });

  it("prints the seed notebook's output", async () => {
    const [firstLine] = (await text('output')).split('\n');
    expect(firstLine).toBe(notebookFirstLine);
  });

  it('runs on the wasm backend, with the binary the plugin served', async () => {
    // Without COOP/COEP headers there are no threads, so tfjs picks the SIMD binary.
    expect(await text('backend')).toBe('wasm (simd binary)');
    expect(wasmResponses).toEqual([
      {
        url: expect.stringMatching(/\/tfjs-wasm\/tfjs-backend-wasm-simd\.wasm$/),
        status: 200,
        contentType: 'application/wasm',
      },
    ]);
  });

  it('gives the same output with and without the KV cache', async () => {
    expect(await text('cache')).toMatch(/^yes /);
  });

  it('logs no errors to the console', () => {
    expect(consoleErrors).toEqual([]);
  });
});

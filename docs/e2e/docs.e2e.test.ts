// Smoke test of the BUILT docs site in Debian's Chromium: the home page renders, the
// getting-started page runs the seed notebook's first forward pass on the tfjs wasm backend, and
// the Benchmarks page shows its report as latest.md does.
// Serves docs/.vitepress/dist with a tiny static server on 127.0.0.1 (a free port).
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readReport, renderMarkdown } from '@kvkit/bench';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chromiumArgs, findChromium } from '../../scripts/browser.mjs';

const docsDir = dirname(dirname(fileURLToPath(import.meta.url)));
const distDir = join(docsDir, '.vitepress', 'dist');

/** The first row the seed notebook prints for `mha.forward(input)` (cell 5). */
const expectedFirstRow = 'tensor([[[-0.2179,  0.4357,  0.3333,  0.0294, -0.0310, -0.0278],';

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
};

/** Maps a URL path to a file in dist, as a static host serves a VitePress build. */
function fileFor(urlPath: string): string | null {
  let path: string;
  try {
    path = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  const base = resolve(distDir, `.${path}`);
  if (base !== distDir && !base.startsWith(distDir + sep)) return null;
  const candidates = path.endsWith('/')
    ? [join(base, 'index.html')]
    : [base, `${base}.html`, join(base, 'index.html')];
  return candidates.find((f) => existsSync(f) && statSync(f).isFile()) ?? null;
}

function startServer(): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    const urlPath = new URL(req.url ?? '/', 'http://localhost').pathname;
    const file = fileFor(urlPath);
    const notFound = join(distDir, '404.html');
    const served = file ?? (existsSync(notFound) ? notFound : null);
    if (!served || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(served ? 405 : 404).end();
      return;
    }
    res.writeHead(file ? 200 : 404, {
      'Content-Type': contentTypes[extname(served)] ?? 'application/octet-stream',
      'Content-Length': statSync(served).size,
      'Cache-Control': 'no-cache',
    });
    if (req.method === 'HEAD') res.end();
    else createReadStream(served).pipe(res);
  });
  return new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      done({ server, origin: `http://127.0.0.1:${port}` });
    });
  });
}

let server: Server | undefined;
let origin = '';
let browser: Browser | undefined;

beforeAll(async () => {
  if (!existsSync(join(distDir, 'index.html'))) {
    throw new Error(
      `${distDir}/index.html not found: build the site first (pnpm --dir docs build)`,
    );
  }
  const executablePath = findChromium();
  if (!executablePath) {
    throw new Error(
      'Chromium not found (looked for KVKIT_CHROMIUM, /usr/bin/chromium, /usr/bin/chromium-browser, ' +
        '/usr/bin/google-chrome). On Debian/Ubuntu: sudo apt-get install -y chromium',
    );
  }
  ({ server, origin } = await startServer());
  browser = await chromium.launch({ executablePath, args: chromiumArgs, headless: true });
});

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((done) => (server ? server.close(() => done()) : done()));
});

/** A new page that records console errors, uncaught exceptions and failed requests. */
async function openPage(): Promise<{ page: Page; problems: string[]; urls: string[] }> {
  if (!browser) throw new Error('the browser did not start');
  const page = await browser.newPage();
  const problems: string[] = [];
  const urls: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console.error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.stack ?? e.message}`));
  page.on('requestfailed', (r) =>
    problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`),
  );
  page.on('response', (r) => {
    urls.push(r.url());
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  return { page, problems, urls };
}

/** Waits until the live example finishes (or fails) and returns its root's status. */
async function liveStatus(page: Page): Promise<string | null> {
  const root = page.getByTestId('live-attention');
  await page.waitForFunction(
    () =>
      ['done', 'error'].includes(
        document.querySelector('[data-testid="live-attention"]')?.getAttribute('data-status') ?? '',
      ),
    undefined,
    { timeout: 90_000 },
  );
  return root.getAttribute('data-status');
}

async function expectLiveOutput(page: Page, problems: string[], urls: string[]): Promise<void> {
  const status = await liveStatus(page);
  const error = status === 'error' ? await page.getByTestId('live-error').textContent() : '';
  expect(status, `LiveAttention failed: ${error}\n${problems.join('\n')}`).toBe('done');
  const output = (await page.getByTestId('live-output').textContent()) ?? '';
  expect(output.startsWith(expectedFirstRow), `live output:\n${output}`).toBe(true);
  expect(output.split('\n')).toHaveLength(17); // 2 batches of 8 rows, and the blank line between
  expect(await page.getByTestId('live-cached').textContent()).toContain(
    'allclose to the full pass: true',
  );
  expect(await page.getByTestId('live-attention').textContent()).toContain('wasm');
  expect(
    urls.some((u) => /\/tfjs-wasm\/tfjs-backend-wasm[-a-z]*\.wasm$/.test(u)),
    urls.join('\n'),
  ).toBe(true);
}

describe('the built docs site', () => {
  test('home page: title and hero', async () => {
    const { page, problems } = await openPage();
    await page.goto(`${origin}/`, { waitUntil: 'load' });
    expect(await page.title()).toContain('kvkit');
    await expect.poll(() => page.locator('.VPHero .name').textContent()).toContain('kvkit');
    expect(await page.locator('.VPHero .text').textContent()).toContain(
      'KV caching for transformer attention on TensorFlow.js',
    );
    expect(await page.locator('.VPFeature').count()).toBeGreaterThanOrEqual(3);
    expect(await page.locator('a.VPButton[href$="/guide/getting-started.html"]').count()).toBe(1);
    await page.waitForLoadState('networkidle');
    expect(problems).toEqual([]);
    await page.close();
  });

  test('getting started: the live example reproduces the notebook on the wasm backend', async () => {
    const { page, problems, urls } = await openPage();
    await page.goto(`${origin}/guide/getting-started.html`, { waitUntil: 'load' });
    expect(await page.title()).toContain('Getting started');
    await expectLiveOutput(page, problems, urls);
    expect(problems).toEqual([]);
    await page.close();
  });

  test('client-side navigation from the hero button runs the live example too', async () => {
    const { page, problems, urls } = await openPage();
    await page.goto(`${origin}/`, { waitUntil: 'load' });
    await page.locator('a.VPButton', { hasText: 'Get started' }).click();
    await page.waitForURL('**/guide/getting-started.html');
    await expectLiveOutput(page, problems, urls);
    expect(problems).toEqual([]);
    await page.close();
  });
});

describe('the Benchmarks page', () => {
  test('shows its report as latest.md does: noise verdict, machine, peers with floors, history', async () => {
    const { page, problems } = await openPage();
    await page.goto(`${origin}/benchmarks/`, { waitUntil: 'load' });
    const source = page.getByTestId('benchmark-source');
    const file = (await source.locator('code').last().textContent())!.trim();
    const report = readReport(resolve(docsDir, '..', file));
    const md = renderMarkdown(report);

    const noise = page.getByTestId('benchmark-noise');
    expect(await noise.getAttribute('data-noisy')).toBe(String(report.noise!.noisy));
    expect(await noise.textContent()).toContain(report.noise!.noisy ? 'Noisy run' : 'Quiet run');
    expect(await page.getByTestId('benchmark-machine').textContent()).toMatch(/read bandwidth \d/);

    const rows = async (testId: string) =>
      page
        .getByTestId(testId)
        .locator('tbody tr')
        .evaluateAll((trs) =>
          trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent!.trim())),
        );
    const peers = await rows('benchmark-peers');
    expect(peers.length).toBeGreaterThanOrEqual(2);
    expect(peers[0]![0]).toBe('seed cached loop');
    const seed = await rows('benchmark-table-seed');
    for (const row of [...peers, ...seed]) expect(md).toContain(`| ${row.join(' | ')} |`);
    expect(seed.some((r) => r.some((c) => /\((bandwidth|flops)\)$/.test(c)))).toBe(true); // floors shown

    const history = page.getByTestId('benchmark-history');
    expect(await history.locator('svg').count()).toBe(1);
    expect(await page.locator('figure[data-chart="peers.svg"] svg').count()).toBe(1);
    expect(problems).toEqual([]);
    await page.close();
  });
});

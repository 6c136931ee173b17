// Browser test of the built demo: `vite preview` serves dist/ (a minified production build)
// with the COOP/COEP headers of vite.config.ts, Debian's headless Chromium opens it at 1280 and
// at 390 px and clicks through every panel, checking the numbers against the seed notebook's
// saved outputs (read from its text here, independently of the page), the cached decode
// against the uncached one, every cache strategy's rows against its definition, and the
// generated text against the same generation run here in Node (generation-reference.ts).
// Any console error or uncaught exception fails it.
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { type PreviewServer, preview } from 'vite';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { comparedCells, linesMatchingNotebook } from '../test/notebook-text.ts';
import {
  defaults,
  type Expected,
  expectedGenerations,
  greedyTokens,
  pickerSpecs,
} from './generation-reference.ts';

const appDir = fileURLToPath(new URL('..', import.meta.url));

// scripts/browser.mjs is plain JavaScript without types: load it by URL and state what is used.
const browserHelpersUrl = new URL('../../../scripts/browser.mjs', import.meta.url).href;
const { findChromium, chromiumArgs } = (await import(browserHelpersUrl)) as {
  findChromium(): string | null;
  chromiumArgs: string[];
};

let server: PreviewServer | undefined;
let browser: Browser | undefined;
let origin = '';
let expected: Expected;

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
  origin = `http://127.0.0.1:${(server.httpServer.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath, args: chromiumArgs });
  expected = await expectedGenerations();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

/** Opens the demo at `width` px and waits for it to start; collects every error. */
async function open(width: number): Promise<{ page: Page; errors: string[]; wasm: string[] }> {
  const page = await browser!.newPage({ viewport: { width, height: 900 } });
  const errors: string[] = [];
  const wasm: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console.error: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  page.on('response', (r) => {
    if (r.url().endsWith('.wasm')) wasm.push(`${r.status()} ${new URL(r.url()).pathname}`);
  });
  await page.goto(`${origin}/`);
  await page.waitForSelector('body[data-status="ready"], body[data-status="error"]', {
    state: 'attached',
    timeout: 60_000,
  });
  expect(await page.getAttribute('body', 'data-status'), errors.join('\n')).toBe('ready');
  return { page, errors, wasm };
}

const text = async (page: Page, testid: string) =>
  (await page.getByTestId(testid).textContent()) ?? '';

/** Clicks Generate and waits for the run to end; fails on a refusal or an error. */
async function generate(page: Page): Promise<void> {
  const output = page.getByTestId('gen-output');
  await page.getByTestId('gen-run').click();
  await expect
    .poll(() => output.getAttribute('data-state'), { timeout: 60_000 })
    .not.toBe('running');
  expect(await output.getAttribute('data-state'), await text(page, 'gen-error')).toBe('done');
}

async function noSidewaysScroll(page: Page): Promise<void> {
  const [scroll, inner] = await page.evaluate(() => [
    document.documentElement.scrollWidth,
    window.innerWidth,
  ]);
  expect(scroll, 'the page scrolls sideways').toBeLessThanOrEqual(inner);
}

describe.each([1280, 390])('the demo at %i px', (width) => {
  let page: Page;
  let errors: string[];
  let wasm: string[];

  beforeAll(async () => {
    ({ page, errors, wasm } = await open(width));
  });

  afterAll(async () => {
    await page?.close();
  });

  test('starts the threaded wasm build of the minified bundle (COOP/COEP headers)', async () => {
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    expect(await page.getByTestId('backend').getAttribute('data-binary')).toBe('threaded-simd');
    expect(wasm).toEqual(['200 /tfjs-wasm/tfjs-backend-wasm-threaded-simd.wasm']);
    expect(await page.locator('[role="tab"]').allTextContents()).toEqual([
      'The cache',
      'Generate text',
      'Cached vs uncached',
      'Notebook',
    ]);
    for (const [name, href] of [
      ['Docs', /github\.com\/kvkit\/kvkit\/tree\/main\/docs$/],
      ['Source', /github\.com\/kvkit\/kvkit\/tree\/main\/apps\/demo$/],
      ['Seed notebook', /seed-notebook\.txt$/],
    ] as const) {
      expect(await page.getByRole('link', { name }).getAttribute('href')).toMatch(href);
    }
    await noSidewaysScroll(page);
  });

  test('the cache fills row by row: prefill 3, then one position per step', async () => {
    await page.getByRole('tab', { name: 'The cache' }).click();
    const lengths = async () =>
      Promise.all(
        [0, 1].map(async (b) => page.getByTestId(`cache-length-${b}`).getAttribute('data-length')),
      );
    expect(await lengths()).toEqual(['0', '0']);
    await page.getByTestId('cache-step').click();
    expect(await lengths()).toEqual(['3', '3']);
    // After the prefill, mha.cacheK[:2] is the notebook's "current key-cache" (cell 11).
    await page.locator('details.printed summary').click();
    const printed = await text(page, 'cache-printed');
    expect(linesMatchingNotebook(11, printed)).toBeGreaterThanOrEqual(9);
    for (let t = 4; t <= 8; t++) {
      await page.getByTestId('cache-step').click();
      expect(await lengths()).toEqual([String(t), String(t)]);
      for (const b of [0, 1]) {
        const w = (await page.getByTestId(`cache-weights-${b}`).getAttribute('data-weights'))!
          .split(' ')
          .map(Number);
        expect(w).toHaveLength(t); // the newest query attends over every cached position
        expect(w.reduce((a, x) => a + x, 0)).toBeCloseTo(1, 5);
      }
    }
    expect(await page.getByTestId('cache-step').isDisabled()).toBe(true);
    expect(await text(page, 'cache-status')).toContain('The sequence is complete.');
    await page.getByTestId('cache-reset').click();
    expect(await lengths()).toEqual(['0', '0']);
    await page.getByTestId('cache-play').click();
    await expect.poll(lengths, { timeout: 20_000 }).toEqual(['8', '8']);
    await noSidewaysScroll(page);
  });

  test("every strategy keeps its own rows: the contract's read, per-row lengths, bytes", async () => {
    await page.getByRole('tab', { name: 'The cache' }).click();
    const strategy = page.getByTestId('cache-strategy');
    expect(await strategy.locator('option').allTextContents()).toEqual([
      "static (the notebook's)",
      'dynamic (grows ×2 from 1)',
      'sliding window (4)',
      'sink (1 + 3)',
      'paged (blocks of 2)',
    ]);
    // What each keeps of 8 positions, by its definition (window 4; 1 sink + 3).
    const held: Record<string, number[]> = {
      static: [0, 1, 2, 3, 4, 5, 6, 7],
      dynamic: [0, 1, 2, 3, 4, 5, 6, 7],
      'sliding-window': [4, 5, 6, 7],
      sink: [0, 5, 6, 7],
      paged: [0, 1, 2, 3, 4, 5, 6, 7],
    };
    for (const [id, positions] of Object.entries(held)) {
      await strategy.selectOption(id);
      await page.getByTestId('cache-reset').click(); // a fresh module of that strategy
      for (let i = 0; i < 6; i++) await page.getByTestId('cache-step').click(); // prefill + 5
      for (const b of [0, 1]) {
        const row = page.getByTestId(`cache-length-${b}`);
        expect([
          await row.getAttribute('data-length'),
          await row.getAttribute('data-held'),
        ]).toEqual(['8', String(positions.length)]);
        const weights = page.getByTestId(`cache-weights-${b}`);
        expect(await weights.getAttribute('data-positions'), id).toBe(positions.join(' '));
        const w = (await weights.getAttribute('data-weights'))!.split(' ').map(Number);
        expect(w.reduce((a, x) => a + x, 0)).toBeCloseTo(1, 5);
      }
      // K and V of the held slots: 2 rows x slots x (K, V) x 6 floats x 4 bytes.
      const bytes = page.getByTestId('cache-bytes');
      expect(Number(await bytes.getAttribute('data-used')), id).toBe(
        2 * positions.length * 2 * 6 * 4,
      );
      expect(Number(await bytes.getAttribute('data-reserved'))).toBeGreaterThanOrEqual(
        2 * positions.length * 2 * 6 * 4,
      );
      expect(await text(page, 'cache-printed')).toMatch(/^tensor\(/);
    }
    await strategy.selectOption('static');
    await noSidewaysScroll(page);
  });

  test('a ragged batch: prompts of 3 and 1 tokens, each row at its own length', async () => {
    await page.getByTestId('cache-batch').selectOption('ragged');
    const status = page.getByTestId('cache-status');
    await page.getByTestId('cache-step').click();
    expect(await status.getAttribute('data-lengths')).toBe('3 1');
    expect(await page.getByTestId('cache-weights-1').getAttribute('data-positions')).toBe('0');
    for (let i = 0; i < 5; i++) await page.getByTestId('cache-step').click();
    expect(await status.getAttribute('data-lengths')).toBe('8 6');
    expect(await page.getByTestId('cache-weights-1').getAttribute('data-positions')).toBe(
      '0 1 2 3 4 5',
    );
    expect(await page.getByTestId('cache-step').isDisabled()).toBe(true);
    await page.getByTestId('cache-batch').selectOption('uniform');
    await noSidewaysScroll(page);
  });

  test("generated text, streamed: each strategy's seeded run equals the Node run", async () => {
    await page.getByRole('tab', { name: 'Generate text' }).click();
    const output = page.getByTestId('gen-output');
    await expect.poll(() => output.getAttribute('data-state'), { timeout: 30_000 }).toBe('idle');
    expect(await page.getByTestId('gen-strategy').locator('option').allTextContents()).toEqual(
      Object.values(pickerSpecs).map((p) => p.label),
    );
    // Record every token count the page shows while it runs: the text must stream in.
    await output.evaluate((el) => {
      const seen: string[] = [];
      (window as unknown as { seenSteps: string[] }).seenSteps = seen;
      new MutationObserver(() => seen.push(el.getAttribute('data-steps') ?? '')).observe(el, {
        attributes: true,
        attributeFilter: ['data-steps'],
      });
    });
    for (const run of expected.sampled) {
      await page.getByTestId('gen-strategy').selectOption(run.strategy);
      await generate(page);
      expect(await text(page, 'gen-text'), run.strategy).toBe(run.text);
      expect(await output.getAttribute('data-steps')).toBe(String(defaults.maxNewTokens));
      const bytes = page.getByTestId('gen-bytes');
      const held = ['sliding-window', 'sink'].includes(run.strategy) ? 32 : 63;
      expect(await bytes.getAttribute('data-held'), run.strategy).toBe(String(held));
      // K and V of the held positions, 3 layers, width 48, float32.
      expect(Number(await bytes.getAttribute('data-used'))).toBe(held * 2 * 3 * 48 * 4);
      expect(Number(await bytes.getAttribute('data-reserved'))).toBeGreaterThanOrEqual(
        held * 2 * 3 * 48 * 4,
      );
      expect(Number(await page.getByTestId('gen-rate').getAttribute('data-rate'))).toBeGreaterThan(
        0,
      );
    }
    const seen = await page.evaluate(
      () => (window as unknown as { seenSteps: string[] }).seenSteps,
    );
    // Each run starts at 0, then one update per token, in order.
    const perRun = Array.from({ length: defaults.maxNewTokens + 1 }, (_, i) => String(i));
    expect(seen).toEqual(expected.sampled.flatMap(() => perRun));
    await page.getByTestId('gen-strategy').selectOption('static');
    await noSidewaysScroll(page);
  });

  test('greedy decoding: with the cache = without it = the Node run', async () => {
    await page.getByTestId('gen-sampling').selectOption('greedy');
    await page.getByTestId('gen-max').fill(String(greedyTokens));
    await generate(page);
    const cached = await text(page, 'gen-text');
    await page.getByTestId('gen-cache').uncheck();
    await generate(page);
    expect(await text(page, 'gen-bytes')).toContain('no cache');
    const uncached = await text(page, 'gen-text');
    expect(cached).toHaveLength(greedyTokens);
    expect(uncached).toBe(cached);
    expect(cached).toBe(expected.greedy);
  });

  test('the stop button stops a long run; refused settings are said, not thrown', async () => {
    // Without the cache there is no length limit (minGPT crops to the last 64 characters).
    await page.getByTestId('gen-max').fill('5000');
    const output = page.getByTestId('gen-output');
    await page.getByTestId('gen-run').click();
    await expect
      .poll(async () => Number(await output.getAttribute('data-steps')), { timeout: 30_000 })
      .toBeGreaterThanOrEqual(5);
    await page.getByTestId('gen-stop').click();
    await expect.poll(() => output.getAttribute('data-state'), { timeout: 10_000 }).toBe('stopped');
    const steps = Number(await output.getAttribute('data-steps'));
    expect(steps).toBeLessThan(5000);
    expect(await text(page, 'gen-status')).toBe(`Stopped after ${steps} tokens.`);
    await page.waitForTimeout(300);
    expect(Number(await output.getAttribute('data-steps'))).toBe(steps); // nothing after the stop
    expect(await page.getByTestId('gen-run').isEnabled()).toBe(true);
    // A character the model does not know: the library's ValueError, shown by the controls.
    await page.getByTestId('gen-prompt').fill('Quixotic 7');
    await page.getByTestId('gen-run').click();
    await expect.poll(() => output.getAttribute('data-state')).toBe('refused');
    expect(await text(page, 'gen-error')).toMatch(/^ValueError: .*"Q" at index 0/);
    // With the cache, the prompt and the new tokens must fit 64 positions.
    await page.getByTestId('gen-prompt').fill(defaults.prompt);
    await page.getByTestId('gen-cache').check();
    await page.getByTestId('gen-run').click();
    await expect.poll(() => output.getAttribute('data-state')).toBe('refused');
    expect(await text(page, 'gen-error')).toMatch(/^CacheCapacityError: .*exceeds blockSize 64/);
    await noSidewaysScroll(page);
  });

  test('the race: both loops run, and the cached decode equals the uncached one', async () => {
    await page.getByRole('tab', { name: 'Cached vs uncached' }).click();
    await page.getByTestId('race-start').click();
    const verdict = page.getByTestId('race-verdict');
    await expect.poll(() => verdict.getAttribute('data-agree'), { timeout: 90_000 }).not.toBeNull();
    expect(await verdict.getAttribute('data-agree'), (await verdict.textContent()) ?? '').toBe(
      'true',
    );
    expect(Number(await verdict.getAttribute('data-max-diff'))).toBeLessThan(1e-5);
    expect(await verdict.getAttribute('data-steps')).toBe('62'); // the prefill, then t = 3..63
    const paths = page.getByTestId('race-chart').locator('path');
    expect(await paths.evaluateAll((ps) => ps.map((p) => p.getAttribute('data-points')))).toEqual([
      '62',
      '62',
    ]);
    await noSidewaysScroll(page);
  });

  test("the notebook's cells print the notebook's numbers", async () => {
    await page.getByRole('tab', { name: 'Notebook' }).click();
    await page.getByTestId('notebook-run-all').click();
    const out = (n: number) => page.getByTestId(`cell-output-${n}`);
    await expect.poll(() => out(18).getAttribute('data-state'), { timeout: 60_000 }).toBe('done');
    for (const { n, lines } of comparedCells) {
      expect(linesMatchingNotebook(n, (await out(n).textContent()) ?? '')).toBeGreaterThanOrEqual(
        lines,
      );
    }
    expect(await out(1).textContent()).toBe('(tfjs backend: wasm, threaded-simd binary)');
    if (width === 1280) {
      // The timing cells take seconds each: run once, at one width.
      for (const [n, label] of [
        [19, 'cached:   '],
        [20, 'uncached: '],
      ] as const) {
        await page.getByTestId(`cell-run-${n}`).click();
        await expect
          .poll(() => out(n).getAttribute('data-state'), { timeout: 60_000 })
          .toBe('done');
        expect(await out(n).textContent()).toMatch(
          new RegExp(
            `^${label}[\\d.]+ (ms|µs) ± [\\d.]+ (ms|µs|ns) per loop \\(mean ± std\\. dev\\. of \\d+ runs?, \\d+ loops? each\\)$`,
          ),
        );
      }
    }
    await noSidewaysScroll(page);
  });

  test('logs no errors', () => {
    expect(errors).toEqual([]);
  });
});

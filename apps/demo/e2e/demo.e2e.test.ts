// Browser test of the built demo: `vite preview` serves dist/ (a minified production build)
// with the COOP/COEP headers of vite.config.ts, Debian's headless Chromium opens it at 1280 and
// at 390 px and clicks through the cache view, the race and the notebook, checking the numbers
// against the seed notebook's saved outputs (read from its text here, independently of the
// page), the cached decode against the uncached one, every cache strategy's rows and bytes
// against its definition, and a ragged batch's row lengths. generate.e2e.test.ts clicks through
// the text generation. Any console error or uncaught exception fails it.
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { comparedCells, linesMatchingNotebook } from '../test/notebook-text.ts';
import { quantizedBytes } from '../test/quantized-bytes.ts';
import { type Demo, noSidewaysScroll, open, startDemo, text } from './demo-page.ts';

let demo: Demo | undefined;

beforeAll(async () => {
  demo = await startDemo();
});

afterAll(async () => {
  await demo?.close();
});

describe.each([1280, 390])('the demo at %i px', (width) => {
  let page: Page;
  let errors: string[];
  let wasm: string[];

  beforeAll(async () => {
    ({ page, errors, wasm } = await open(demo, width));
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
    // Reset stops a Play loop: nothing more is decoded into the fresh cache.
    await page.getByTestId('cache-reset').click();
    await page.getByTestId('cache-play').click();
    await page.getByTestId('cache-reset').click();
    await page.waitForTimeout(700);
    expect(await lengths()).toEqual(['0', '0']);
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
      'quantized int8 (groups of 4, last 4 in float32)',
      'quantized int4 (groups of 4, last 4 in float32)',
    ]);
    // What each keeps of 8 positions, by its definition (window 4; 1 sink + 3).
    const held: Record<string, number[]> = {
      static: [0, 1, 2, 3, 4, 5, 6, 7],
      dynamic: [0, 1, 2, 3, 4, 5, 6, 7],
      'sliding-window': [4, 5, 6, 7],
      sink: [0, 5, 6, 7],
      paged: [0, 1, 2, 3, 4, 5, 6, 7],
      'quantized-int8': [0, 1, 2, 3, 4, 5, 6, 7],
      'quantized-int4': [0, 1, 2, 3, 4, 5, 6, 7],
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
      // K and V of the held slots: 2 rows x slots x (K, V) x 6 floats x 4 bytes; a quantized
      // cache (groups of 4, the last 4 in float32) holds positions 0-3 in int8 / int4.
      const bits = id === 'quantized-int8' ? 8 : id === 'quantized-int4' ? 4 : null;
      const q = bits ? quantizedBytes(8, 4, 4, 6, bits) : null;
      for (const b of [0, 1]) {
        expect(await page.getByTestId(`cache-length-${b}`).getAttribute('data-quantized')).toBe(
          String(q?.Q ?? 0),
        );
      }
      const bytes = page.getByTestId('cache-bytes');
      expect(Number(await bytes.getAttribute('data-used')), id).toBe(
        q ? 2 * q.bytes : 2 * positions.length * 2 * 6 * 4,
      );
      expect(Number(await bytes.getAttribute('data-reserved'))).toBeGreaterThanOrEqual(
        Number(await bytes.getAttribute('data-used')),
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

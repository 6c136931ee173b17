// Browser test of the demo's "Generate text" panel (the built dist/, served as demo-page.ts
// says) at 1280 and 390 px: the text each strategy writes, streamed token by token, its cache
// bytes, greedy decoding with and without the cache, a run past the model's 64 positions, Stop
// and refused settings. Every expected text comes from the same generation run here in Node
// through the packages' built dist/ (generation-reference.ts), not from the page. Any console
// error or uncaught exception fails it.
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { quantizedBytes } from '../test/quantized-bytes.ts';
import { type Demo, generate, noSidewaysScroll, open, startDemo, text } from './demo-page.ts';
import {
  defaults,
  type Expected,
  expectedGenerations,
  greedyTokens,
  pastBlockSize,
  pickerSpecs,
} from './generation-reference.ts';

let demo: Demo | undefined;
let expected: Expected;

beforeAll(async () => {
  demo = await startDemo();
  expected = await expectedGenerations();
});

afterAll(async () => {
  await demo?.close();
});

describe.each([1280, 390])('text generation at %i px', (width) => {
  let page: Page;
  let errors: string[];

  beforeAll(async () => {
    ({ page, errors } = await open(demo, width));
  });

  afterAll(async () => {
    await page?.close();
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
      // K and V of the held positions, 3 layers, width 48, float32; a quantized cache (groups
      // of 16, the last 16 in float32) holds 32 of its 63 positions quantized, per layer and
      // for each of the 3 heads of 16.
      const bits = { 'quantized-int8': 8, 'quantized-int4': 4 }[run.strategy] as 8 | 4 | undefined;
      const q = bits ? quantizedBytes(63, 16, 16, 16, bits) : null;
      expect(await bytes.getAttribute('data-quantized')).toBe(String(q?.Q ?? 0));
      const used = q ? 3 * 3 * q.bytes : held * 2 * 3 * 48 * 4;
      expect(Number(await bytes.getAttribute('data-used')), run.strategy).toBe(used);
      expect(Number(await bytes.getAttribute('data-reserved'))).toBeGreaterThanOrEqual(used);
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

  test('the sliding window goes past the 64 positions; the Node run with it gives the same text', async () => {
    const limit = page.getByTestId('gen-limit');
    expect(await limit.getAttribute('data-past-block-size')).toBe('false'); // static
    await page.getByTestId('gen-strategy').selectOption(pastBlockSize.strategy);
    expect(await limit.getAttribute('data-past-block-size')).toBe('true');
    await page.getByTestId('gen-max').fill(String(pastBlockSize.maxNewTokens));
    await generate(page);
    expect(await text(page, 'gen-text')).toBe(expected.long);
    expect(expected.long).toHaveLength(pastBlockSize.maxNewTokens);
    expect(await page.getByTestId('gen-bytes').getAttribute('data-held')).toBe('32');
    await page.getByTestId('gen-strategy').selectOption('static');
    await page.getByTestId('gen-max').fill(String(defaults.maxNewTokens));
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

  test('logs no errors', () => {
    expect(errors).toEqual([]);
  });
});

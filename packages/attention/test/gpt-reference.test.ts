import { CacheCapacityError } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type GPT, nextTokenProbabilities } from '../src/index.ts';
import { ids, maxDiff, rows, tiny, tinyModel } from './gpt-support.ts';
import { setupBackend } from './support.ts';

// gpt_tiny.json (see fixtures/README.md): PyTorch's minGPT with its weights, logits without the
// cache and for every cached step, greedy and seeded sampled generations. Logits within 1e-5;
// tokens exactly.
const TOL = 1e-5;
const impls = ['kernel', 'reference'] as const;
const measured: Record<string, number> = {};

beforeAll(setupBackend);
afterAll(() => {
  console.log('gpt_tiny max |logits - PyTorch|:', JSON.stringify(measured));
});

describe.each(impls)('gpt_tiny, %s attention', (implementation) => {
  let gpt: GPT;
  beforeAll(() => {
    gpt = tinyModel(implementation);
  });
  afterAll(() => gpt.dispose());

  test('the full forward without the cache: logits within 1e-5', () => {
    const idx = ids(tiny.full_forward.idx);
    const logits = gpt.forward(idx);
    expect(logits.shape).toEqual(tiny.full_forward.logits.shape);
    const d = maxDiff(logits, tiny.full_forward.logits);
    measured[`${implementation} full`] = d;
    expect(d).toBeLessThan(TOL);
    tf.dispose([idx, logits]);
  });

  test('every cached step (prefill 4, then one token at a time): logits within 1e-5', () => {
    gpt.resetCache();
    let worst = 0;
    for (const step of tiny.cached_decode.steps) {
      const idx = ids(step.idx);
      const logits = gpt.forward(idx, { useKvCache: true, startPos: step.start_pos });
      expect(logits.shape).toEqual(step.logits.shape);
      const d = maxDiff(logits, step.logits);
      worst = Math.max(worst, d);
      expect(d, `step at startPos ${step.start_pos}`).toBeLessThan(TOL);
      tf.dispose([idx, logits]);
    }
    measured[`${implementation} cached steps`] = worst;
    expect(gpt.kvCache?.seqLength()).toBe(10);
  });

  test('lastPositionOnly gives the last row of the full logits', () => {
    const idx = ids(tiny.full_forward.idx);
    const last = gpt.forward(idx, { lastPositionOnly: true });
    const full = gpt.forward(idx);
    const [B, T, V] = full.shape;
    const tail = tf.slice(full, [0, T - 1, 0], [B, 1, V]);
    expect(last.shape).toEqual([B, 1, V]);
    expect(tf.max(tf.abs(tf.sub(last, tail))).dataSync()[0]).toBeLessThan(1e-6);
    tf.dispose([idx, last, full, tail]);
  });

  test.each([true, false])('greedy generate, useKvCache %s: PyTorch tokens', async (useKvCache) => {
    const result = await gpt.generate(rows(tiny.prompt), {
      maxNewTokens: tiny.greedy.max_new_tokens,
      useKvCache,
    });
    expect(result.tokens).toEqual(rows(tiny.greedy.tokens));
    expect(result.newTokens).toEqual(rows(tiny.greedy.new_tokens));
    expect(result.steps).toBe(12);
    expect(result.finishReasons).toEqual(['length', 'length']);
  });

  describe.each(tiny.sampling.map((s) => [s.name, s] as const))('sampling %s', (_, s) => {
    test.each([true, false])(
      'seeded generate, useKvCache %s: PyTorch tokens',
      async (useKvCache) => {
        const result = await gpt.generate(rows(tiny.prompt), {
          maxNewTokens: s.max_new_tokens,
          useKvCache,
          temperature: s.temperature,
          topK: s.top_k,
          doSample: true,
          seed: s.seed,
        });
        expect(result.tokens).toEqual(rows(s.tokens));
      },
    );

    test('each step: probabilities within 1e-6 of torch (temperature, top-k, softmax)', () => {
      const tokens = rows(s.tokens);
      const T = tiny.prompt.shape[1]!;
      let worst = 0;
      s.steps.forEach((step, i) => {
        const idx = tf.tensor2d(
          Int32Array.from(tokens.flatMap((r) => r.slice(0, T + i))),
          [2, T + i],
          'int32',
        );
        const logits = gpt.forward(idx, { lastPositionOnly: true });
        const probs = nextTokenProbabilities(
          logits.dataSync() as Float32Array,
          2,
          tiny.config.vocab_size,
          s.temperature,
          s.top_k,
        );
        probs.forEach((p, j) => {
          worst = Math.max(worst, Math.abs(p - Math.fround(step.probs.data[j]!)));
          // top-k zeros are exact zeros in both
          if (step.probs.data[j] === 0) expect(p).toBe(0);
        });
        tf.dispose([idx, logits]);
      });
      expect(worst).toBeLessThan(1e-6);
    });
  });

  test('without the cache past blockSize: minGPT crops to the last blockSize tokens', async () => {
    const w = tiny.uncached_sliding_window;
    const result = await gpt.generate(rows(tiny.prompt), {
      maxNewTokens: w.max_new_tokens,
      useKvCache: false,
    });
    expect(result.tokens).toEqual(rows(w.tokens));
  });

  test('with the cache past blockSize: a CacheCapacityError before anything runs', async () => {
    const before = gpt.kvCache?.seqLength() ?? 0;
    await expect(
      gpt.generate(rows(tiny.prompt), {
        maxNewTokens: tiny.uncached_sliding_window.max_new_tokens,
      }),
    ).rejects.toThrow(CacheCapacityError);
    expect(gpt.kvCache?.seqLength() ?? 0).toBe(before);
  });
});

import type { CacheSpec } from '@kvkit/kv-cache';
import { setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { GPT, type GPTConfig } from '../src/index.ts';
import { kernelHeapBytes } from './gpt-support.ts';
import { setupBackend } from './support.ts';

// Long generations on random-weight models. The no-cache path is the reference: the cached
// generation must give exactly its token ids over 256 steps, greedy and seeded sampling. And
// 1,000 generated tokens leave tf.memory().numTensors and the kvkit kernel heap flat.
//
// Strategies: the static and dynamic caches keep every position, so they must equal the no-cache
// path exactly. Sliding-window and sink caches see only part of the context; their generation
// past blockSize is compared with minGPT's crop-and-recompute in gpt-window.test.ts.

beforeAll(setupBackend);

/**
 * These tests run hundreds of forwards (the uncached ones over up to 260 tokens): a few seconds
 * each on an idle 2-core machine, much longer on a busy one, so they get more than the default
 * 60 s. They measure no time.
 */
const LONG = 300_000;

/** A random GPT whose logits are spread enough that float noise cannot flip a greedy choice. */
function randomModel(
  config: Partial<GPTConfig>,
  seed: number,
  scale: number,
  cache: CacheSpec = 'static',
): GPT {
  setSeed(seed);
  const gpt = new GPT({ ...GPT.getDefaultConfig(), ...config }, { cache }).eval();
  const sd = gpt.stateDict();
  const scaled = Object.fromEntries(
    Object.entries(sd).map(([n, t]) => [n, /ln_|bias/.test(n) ? t : tf.mul(t, scale)]),
  );
  gpt.loadStateDict(scaled);
  tf.dispose([...Object.values(sd), ...Object.values(scaled)]);
  return gpt;
}

describe.each(['static', 'dynamic'] as const)(
  'cached (%s cache) and uncached generation agree over 256 steps',
  (cache) => {
    const steps = 256;
    const prompt = [
      [3, 14, 15, 9],
      [26, 5, 35, 8],
    ];
    let gpt: GPT;
    beforeAll(() => {
      // GQA (4 query heads, 2 key/value heads), blockSize 260 = prompt + 256.
      gpt = randomModel(
        {
          nLayer: 2,
          nHead: 4,
          nKvHeads: 2,
          nEmbd: 32,
          vocabSize: 50,
          blockSize: 260,
          maxBatchSize: 2,
        },
        2024,
        12,
        cache,
      );
    });
    afterAll(() => gpt.dispose());

    test(
      'greedy: identical token ids, and the choices are not near ties',
      async () => {
        const cached = await gpt.generate(prompt, { maxNewTokens: steps, useKvCache: true });
        expect(gpt.kvCache?.strategy).toBe(cache);
        const uncached = await gpt.generate(prompt, { maxNewTokens: steps, useKvCache: false });
        expect(cached.tokens).toEqual(uncached.tokens);
        expect(cached.tokens[0]).toHaveLength(4 + steps);
        // Not a degenerate sequence: many different tokens.
        for (const row of cached.newTokens) expect(new Set(row).size).toBeGreaterThan(10);
        // The full no-cache forward of the final sequence gives every step's logits: the top-1 vs
        // top-2 margins show that the equality above is not luck.
        const idx = tf.tensor2d(Int32Array.from(cached.tokens.flat()), [2, 260], 'int32');
        const logits = gpt.forward(idx).arraySync() as number[][][];
        let margin = Number.POSITIVE_INFINITY;
        for (let b = 0; b < 2; b++) {
          for (let p = 3; p < 259; p++) {
            const sorted = [...logits[b]![p]!].sort((x, y) => y - x);
            margin = Math.min(margin, sorted[0]! - sorted[1]!);
            expect(logits[b]![p]!.indexOf(sorted[0]!)).toBe(cached.tokens[b]![p + 1]);
          }
        }
        console.log(`256-step greedy: smallest top-1 vs top-2 logit margin ${margin}`);
        expect(margin).toBeGreaterThan(1e-4);
        idx.dispose();
      },
      LONG,
    );

    test.each([
      [0.8, 10],
      [1.0, null],
    ])(
      'seeded sampling, temperature %s, topK %s: identical token ids',
      async (temperature, topK) => {
        const options = { maxNewTokens: steps, doSample: true, temperature, topK, seed: 99 };
        const cached = await gpt.generate(prompt, { ...options, useKvCache: true });
        const uncached = await gpt.generate(prompt, { ...options, useKvCache: false });
        expect(cached.tokens).toEqual(uncached.tokens);
        for (const row of cached.newTokens) expect(new Set(row).size).toBeGreaterThan(10);
      },
      LONG,
    );
  },
);

describe('1,000 generated tokens: tensors and the kernel heap stay flat', () => {
  test.each([false, true])(
    'doSample %s',
    async (doSample) => {
      const gpt = randomModel(
        { nLayer: 2, nHead: 2, nEmbd: 16, vocabSize: 11, blockSize: 1024, maxBatchSize: 2 },
        7,
        4,
      );
      const before = tf.memory().numTensors;
      const perStep: { tensors: number; heap: number }[] = [];
      const onToken = () =>
        perStep.push({ tensors: tf.memory().numTensors, heap: kernelHeapBytes() });
      const options = { maxNewTokens: 1000, doSample, seed: 5, onToken };
      const first = await gpt.generate(
        [
          [1, 2, 3, 4],
          [5, 6, 7, 8],
        ],
        options,
      );
      expect(first.steps).toBe(1000);
      // From the first step on (the cache is allocated at the prefill), nothing grows.
      expect(new Set(perStep.map((s) => s.tensors))).toEqual(new Set([before]));
      expect(new Set(perStep.map((s) => s.heap)).size).toBe(1);
      expect(tf.memory().numTensors).toBe(before);
      const heap = perStep[0]!.heap;
      expect(kernelHeapBytes()).toBe(heap);
      // A second generation reuses the same cache: the same heap, the same tokens.
      perStep.length = 0;
      const second = await gpt.generate(
        [
          [1, 2, 3, 4],
          [5, 6, 7, 8],
        ],
        options,
      );
      expect(second.tokens).toEqual(first.tokens);
      expect(new Set(perStep.map((s) => s.heap))).toEqual(new Set([heap]));
      expect(tf.memory().numTensors).toBe(before);
      gpt.dispose();
    },
    LONG,
  );
});

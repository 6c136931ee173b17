import type { CacheSpec } from '@kvkit/kv-cache';
import { DisposedError, maxAbsDiff, rand, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { CausalSelfAttention, GPT } from '../src/index.ts';
import { setupBackend } from './support.ts';

// Ragged batches: 8 prompts of lengths 1..64 in one batch, left-padded or right-padded to 64,
// then 32 decode steps, each row at its own position. Every row must compute what it computes
// alone (within 1e-5), and the padding columns' outputs must be 0, on every cache strategy and
// both implementations. The padding holds large garbage (and NaN), so attending it would show.

beforeAll(setupBackend);

const LENGTHS = [1, 9, 18, 27, 36, 45, 57, 64];
const T = 64;
const STEPS = 32;
const C = 32;
const specs: [string, CacheSpec][] = [
  ['static', 'static'],
  ['dynamic', 'dynamic'],
  ['sliding-window', { strategy: 'sliding-window', window: 16 }],
  ['sink', { strategy: 'sink', window: 12, sinkTokens: 4 }],
];

function build(B: number, cache: CacheSpec, implementation: 'kernel' | 'reference') {
  setSeed(7);
  return new CausalSelfAttention(
    {
      ...GPT.getDefaultConfig(),
      nEmbd: C,
      nHead: 4,
      nKvHeads: 2,
      blockSize: T + STEPS,
      maxBatchSize: B,
    },
    { cache, implementation },
  ).eval();
}

/** Rows of x (B, n, C) as arrays, one per batch row. */
const rows = (x: tf.Tensor) => (x.arraySync() as number[][][]).map((r) => r);

describe.each(specs)('%s cache', (_, spec) => {
  test.each([
    ['left', 'kernel'],
    ['right', 'kernel'],
    ['left', 'reference'],
    ['right', 'reference'],
  ] as const)(
    '%s padding, %s path: every row equals its prompt run alone (1e-5), prefill and 32 decode steps',
    (padding, impl) => {
      const B = LENGTHS.length;
      setSeed(11);
      const prompts = LENGTHS.map((n) => rand([1, n, C]));
      const steps = rand([B, STEPS, C]);
      // The padded batch: garbage where there is no token (x100, and one NaN per padded row).
      const garbage = (n: number) =>
        Array.from({ length: n }, (_, i) =>
          new Array(C)
            .fill(0)
            .map((__, j) => (i === 0 && j === 0 ? Number.NaN : 100 * Math.sin(i * C + j))),
        );
      const batch = tf.tensor3d(
        prompts.map((p, b) => {
          const real = rows(p)[0]!;
          const pad = garbage(T - LENGTHS[b]!);
          return padding === 'left' ? [...pad, ...real] : [...real, ...pad];
        }),
      );
      const mask = LENGTHS.map((n) => {
        const ones = new Array(n).fill(1);
        const zeros = new Array(T - n).fill(0);
        return padding === 'left' ? [...zeros, ...ones] : [...ones, ...zeros];
      });
      const first = LENGTHS.map((n) => (padding === 'left' ? T - n : 0));

      const together = build(B, spec, impl);
      const prefill = together.forward(batch, {
        useKvCache: true,
        startPos: 0,
        attentionMask: mask,
      });
      // Padding is never stored: each row holds exactly its prompt.
      expect(LENGTHS.map((_, b) => together.kvCache!.seqLength(0, b))).toEqual(LENGTHS);
      const decoded: tf.Tensor[] = [];
      for (let k = 0; k < STEPS; k++) {
        const x = tf.slice(steps, [0, k, 0], [B, 1, C]);
        decoded.push(
          together.forward(x, { useKvCache: true, startPos: LENGTHS.map((n) => n + k) }),
        );
        x.dispose();
      }
      expect(LENGTHS.map((_n, b) => together.kvCache!.seqLength(0, b))).toEqual(
        LENGTHS.map((n) => n + STEPS),
      );

      let worst = 0;
      const padded = prefill.arraySync() as number[][][];
      LENGTHS.forEach((n, b) => {
        const alone = build(1, spec, impl);
        const y = alone.forward(prompts[b]!, { useKvCache: true, startPos: 0 });
        const got = tf.slice(prefill, [b, first[b]!, 0], [1, n, C]);
        worst = Math.max(worst, maxAbsDiff(got, y));
        for (let i = 0; i < T; i++) {
          if (i < first[b]! || i >= first[b]! + n)
            expect(padded[b]![i]).toEqual(new Array(C).fill(0));
        }
        tf.dispose([y, got]);
        for (let k = 0; k < STEPS; k++) {
          const x = tf.slice(steps, [b, k, 0], [1, 1, C]);
          const step = alone.forward(x, { useKvCache: true, startPos: n + k });
          const mine = tf.slice(decoded[k]!, [b, 0, 0], [1, 1, C]);
          worst = Math.max(worst, maxAbsDiff(mine, step));
          tf.dispose([x, step, mine]);
        }
        alone.dispose();
      });
      console.log(
        `ragged ${padding} ${impl} ${String(_)}: max |batch - alone| = ${worst.toExponential(2)}`,
      );
      expect(worst).toBeLessThanOrEqual(1e-5);
      expect(Number.isFinite(worst)).toBe(true);
      tf.dispose([...prompts, steps, batch, prefill, ...decoded]);
      together.dispose();
    },
  );
});

describe('ragged batches, more', () => {
  test('without the cache: each padded row equals its prompt alone; padding outputs are 0', () => {
    for (const impl of ['kernel', 'reference'] as const) {
      const mha = build(3, 'static', impl);
      setSeed(3);
      const x = rand([3, 5, C]);
      const mask = [
        [0, 0, 1, 1, 1],
        [1, 1, 1, 1, 1],
        [1, 1, 0, 0, 0],
      ];
      const y = mha.forward(x, { attentionMask: tf.tensor2d(mask, [3, 5], 'int32') });
      for (const [b, from, n] of [
        [0, 2, 3],
        [1, 0, 5],
        [2, 0, 2],
      ] as const) {
        const alone = tf.slice(x, [b, from, 0], [1, n, C]);
        const want = mha.forward(alone);
        const got = tf.slice(y, [b, from, 0], [1, n, C]);
        expect(maxAbsDiff(got, want)).toBeLessThanOrEqual(1e-6);
        tf.dispose([alone, want, got]);
      }
      expect(maxAbsDiff(tf.slice(y, [2, 2, 0], [1, 3, C]), tf.zeros([1, 3, C]))).toBe(0);
      tf.dispose([x, y]);
      mha.dispose();
    }
  });

  test('a decode step where finished rows are padding: they do not advance; the others do', () => {
    const mha = build(2, 'dynamic', 'kernel');
    setSeed(4);
    const prompt = rand([2, 3, C]);
    mha.forward(prompt, { useKvCache: true }).dispose();
    const step = rand([2, 1, C]);
    const y = mha.forward(step, { useKvCache: true, startPos: [3, 3], attentionMask: [[1], [0]] });
    expect([mha.kvCache!.seqLength(0, 0), mha.kvCache!.seqLength(0, 1)]).toEqual([4, 3]);
    expect(Array.from(tf.slice(y, [1, 0, 0], [1, 1, C]).dataSync())).toEqual(new Array(C).fill(0));
    tf.dispose([prompt, step, y]);
    mha.dispose();
  });

  test('a disposed mask tensor is a DisposedError and changes nothing', () => {
    const mha = build(1, 'static', 'kernel');
    const x = rand([1, 2, C]);
    const mask = tf.ones([1, 2]);
    mask.dispose();
    const before = tf.memory().numTensors;
    expect(() => mha.forward(x, { useKvCache: true, attentionMask: mask })).toThrow(DisposedError);
    expect(tf.memory().numTensors).toBe(before);
    expect(mha.kvCache).toBeNull();
    x.dispose();
    mha.dispose();
  });
});

import type { CacheSpec } from '@kvkit/kv-cache';
import { maxAbsDiff, rand, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { CausalSelfAttention, GPT } from '../src/index.ts';
import { setupBackend } from './support.ts';

// NaN and +-Infinity in the input spread as they do in PyTorch's module (masked scores are
// replaced by -inf, but a hidden key's non-finite value still poisons att @ v), identically on
// the kernel and reference paths, and never trap. The pattern a PyTorch reading predicts: a bad
// token poisons every output row of its batch row in its own chunk (through 0 * NaN) and every
// later row (through the key it leaves in the cache), and nothing in other batch rows.

beforeAll(setupBackend);

const C = 8;
const config = {
  ...GPT.getDefaultConfig(),
  nHead: 2,
  nKvHeads: 1,
  nEmbd: C,
  blockSize: 12,
  maxBatchSize: 2,
};

/** Which (b, t) output rows are non-finite. */
function badRows(y: tf.Tensor): boolean[][] {
  const [B, T] = y.shape as [number, number, number];
  const v = y.dataSync();
  return Array.from({ length: B }, (_, b) =>
    Array.from({ length: T }, (_, t) =>
      Array.from(v.subarray((b * T + t) * C, (b * T + t + 1) * C)).some((e) => !Number.isFinite(e)),
    ),
  );
}

function run(
  impl: 'kernel' | 'reference',
  cache: CacheSpec,
  x: tf.Tensor,
  sizes: number[],
): tf.Tensor {
  setSeed(7);
  const mha = new CausalSelfAttention(config, { implementation: impl, cache }).eval();
  const outs: tf.Tensor[] = [];
  let s = 0;
  for (const n of sizes) {
    const chunk = tf.slice(x, [0, s, 0], [2, n, C]);
    outs.push(mha.forward(chunk, { useKvCache: true, startPos: s }));
    chunk.dispose();
    s += n;
  }
  const y = tf.concat(outs, 1);
  tf.dispose(outs);
  mha.dispose();
  return y;
}

/** x (2, 10, C) with `value` at token `t` of batch row 0. */
function poisoned(value: number, t: number): tf.Tensor {
  setSeed(8);
  const x = rand([2, 10, C]);
  const data = x.dataSync().slice();
  data[t * C + 3] = value;
  x.dispose();
  return tf.tensor3d(data, [2, 10, C]);
}

describe.each([
  ['NaN', Number.NaN],
  ['+Infinity', Number.POSITIVE_INFINITY],
  ['-Infinity', Number.NEGATIVE_INFINITY],
])('%s in the input', (_, value) => {
  test.each([
    ['static', 'static' as CacheSpec],
    ['sliding-window', { strategy: 'sliding-window', window: 3 } as CacheSpec],
  ])(
    '%s cache: the same rows go bad on both paths, as PyTorch predicts; the rest agree',
    (_, cache) => {
      const x = poisoned(value, 4); // token 4 sits in the second chunk [3, 6)
      const sizes = [3, 3, 1, 1, 1, 1];
      const yk = run('kernel', cache, x, sizes);
      const yr = run('reference', cache, x, sizes);
      const bad = badRows(yk);
      expect(bad).toEqual(badRows(yr));
      // Row 0, static cache: the chunk [3, 6) holding token 4 goes bad whole, and every later row.
      // A full ring takes that chunk a position at a time, so only the rows that see token 4 do.
      const window = typeof cache === 'object' && 'window' in cache ? cache.window : null;
      const expected0 = Array.from({ length: 10 }, (_, t) =>
        window === null ? t >= 3 : t >= 4 && t - 4 < window,
      );
      expect(bad[0]).toEqual(expected0);
      expect(bad[1]).toEqual(new Array(10).fill(false));
      // Everything finite agrees between the paths.
      const finite = (y: tf.Tensor) => tf.tidy(() => tf.where(tf.isFinite(y), y, tf.zerosLike(y)));
      const [a, b] = [finite(yk), finite(yr)];
      expect(maxAbsDiff(a, b)).toBeLessThanOrEqual(1e-6);
      tf.dispose([x, yk, yr, a, b]);
    },
  );

  test('a single-token step with a bad token: no trap, the cache advances, later steps see it', () => {
    const x = poisoned(value, 5);
    const yk = run('kernel', 'static', x, [5, 1, 1, 1, 1, 1]);
    const yr = run('reference', 'static', x, [5, 1, 1, 1, 1, 1]);
    expect(badRows(yk)).toEqual(badRows(yr));
    expect(badRows(yk)[0]).toEqual([
      false,
      false,
      false,
      false,
      false,
      true,
      true,
      true,
      true,
      true,
    ]);
    tf.dispose([x, yk, yr]);
  });
});

test('the no-cache forward follows the same rule', () => {
  const x = poisoned(Number.NaN, 6);
  setSeed(7);
  const k = new CausalSelfAttention(config).eval();
  setSeed(7);
  const r = new CausalSelfAttention(config, { implementation: 'reference' }).eval();
  const yk = k.forward(x);
  const yr = r.forward(x);
  expect(badRows(yk)).toEqual(badRows(yr));
  expect(badRows(yk)[0]!.every((b) => b)).toBe(true); // one chunk: every row of batch row 0
  expect(badRows(yk)[1]!.some((b) => b)).toBe(false);
  tf.dispose([x, yk, yr]);
  k.dispose();
  r.dispose();
});

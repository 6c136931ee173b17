import { GPT } from '@kvkit/attention';
import { allclose, initBackend, rand, setSeed } from '@kvkit/tensor-utils';
import { expectNoLeak } from '@kvkit/tensor-utils/testing';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { newestQueryWeights, readCache, strategies } from '../src/cache-reader.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('cache-reader', () => {
  const config = { ...GPT.getDefaultConfig(), nHead: 2, nEmbd: 8, blockSize: 6 };

  test('reads nothing before the first cached forward, then the rows and lengths', async () => {
    await expectNoLeak(() => {
      const mha = strategies[0]!.build(config);
      expect(readCache(mha, 2)).toBeNull();
      setSeed(1);
      const x = rand([2, 4, 8]);
      const prefill = tf.slice(x, [0, 0, 0], [2, 3, 8]); // (B, 3, C)
      mha.forward(prefill, { useKvCache: true, startPos: 0 }).dispose();
      const s = readCache(mha, 2)!;
      expect(s.lengths).toEqual([3, 3]);
      expect([s.capacity, s.nKvHeads, s.headSize]).toEqual([6, 2, 4]);
      expect(s.keys[1]!.length).toBe(2 * 6 * 4);
      expect(s.keysTensor.shape).toEqual([2, 2, 6, 4]);
      // Rows past the cached length are still zero (positions 3..5 of every head).
      expect([...s.keys[0]!.slice(3 * 4, 6 * 4)].every((v) => v === 0)).toBe(true);
      tf.dispose([x, prefill, s.keysTensor]);
      mha.dispose();
    });
  });

  test("the newest query's weights are the ones attention used: weights @ V, projected, is its output", async () => {
    const mha = strategies[0]!.build(config);
    setSeed(2);
    const x = rand([2, 5, 8]); // (B, T, C)
    const y = mha.forward(x, { useKvCache: true, startPos: 0 }); // (B, T, C)
    const s = readCache(mha, 2)!;
    const weights = newestQueryWeights(mha, x, s); // [B][nh][t]
    const hs = s.headSize;
    const rows = weights.map((perHead, b) =>
      perHead.flatMap((w, h) =>
        Array.from({ length: hs }, (_, d) =>
          w.reduce((acc, wt, t) => acc + wt * s.values[b]![(h * s.capacity + t) * hs + d]!, 0),
        ),
      ),
    );
    for (const perHead of weights) {
      for (const w of perHead) {
        expect(w).toHaveLength(5);
        expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      }
    }
    const attended = tf.tensor2d(rows); // (B, C): the newest token's attention output
    const projected = mha.cProj.apply(attended); // (B, C)
    const last = tf.reshape(tf.slice(y, [0, 4, 0], [2, 1, 8]), [2, 8]);
    expect(allclose(projected, last, { atol: 1e-5 })).toBe(true);
    tf.dispose([x, y, s.keysTensor, attended, projected, last]);
    mha.dispose();
  });
});

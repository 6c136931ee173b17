import { CausalSelfAttention, GPT } from '@kvkit/attention';
import { allclose, initBackend, rand, setSeed } from '@kvkit/tensor-utils';
import { expectNoLeak } from '@kvkit/tensor-utils/testing';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { newestQueryWeights, readCache } from '../src/cache-reader.ts';
import { strategies, strategyById } from '../src/strategies.ts';
import { quantizedBytes } from './quantized-bytes.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

// blockSize 8: the sliding window holds 4 positions, the sink cache 1 + 3 (strategies.ts).
const config = { ...GPT.getDefaultConfig(), nHead: 2, nEmbd: 8, blockSize: 8 };
const build = (id: string) => {
  setSeed(42);
  return new CausalSelfAttention(config, { cache: strategyById(id).create }).eval();
};

/** The positions a row of T seen positions holds, by each strategy's definition. */
const expectedHeld: Record<string, (T: number) => number[]> = {
  static: (T) => [...Array(T).keys()],
  dynamic: (T) => [...Array(T).keys()],
  'sliding-window': (T) => [...Array(T).keys()].filter((p) => p >= T - 4),
  sink: (T) => [...Array(T).keys()].filter((p) => p < 1 || p >= T - 3),
  paged: (T) => [...Array(T).keys()],
  'quantized-int8': (T) => [...Array(T).keys()],
  'quantized-int4': (T) => [...Array(T).keys()],
};

/**
 * The newest query's attention output recomputed from the demo's weights and the read values,
 * projected by c_proj: it must be the module's own output for that token, `(B, C)`.
 */
function recomputedOutput(
  mha: CausalSelfAttention,
  weights: (number | null)[][][],
  s: NonNullable<ReturnType<typeof readCache>>,
): tf.Tensor {
  const hs = s.headSize;
  const group = mha.dims.nHead / s.nKvHeads;
  const rows = weights.map((perHead, b) => {
    const row = s.rows[b]!;
    const n = row.positions.length;
    return perHead.flatMap((w, h) =>
      Array.from({ length: hs }, (_, d) =>
        row.positions.reduce((acc, p, i) => {
          const kvh = Math.floor(h / group);
          return acc + (w[p] ?? 0) * row.values[(kvh * n + i) * hs + d]!;
        }, 0),
      ),
    );
  });
  return tf.tidy(() => mha.cProj.apply(tf.tensor2d(rows)));
}

describe('cache-reader', () => {
  test('every strategy of the pickers is read through the contract', () => {
    expect(strategies.map((s) => s.id)).toEqual(Object.keys(expectedHeld));
  });

  test('reads nothing before the first cached forward, then the rows, lengths and bytes', async () => {
    await expectNoLeak(() => {
      const mha = build('static');
      expect(readCache(mha, 2)).toBeNull();
      setSeed(1);
      const x = rand([2, 3, 8]);
      mha.forward(x, { useKvCache: true, startPos: 0 }).dispose();
      const s = readCache(mha, 2)!;
      expect(s.rows.map((r) => [r.seqLength, r.slotsHeld])).toEqual([
        [3, 3],
        [3, 3],
      ]);
      expect(s.rows[1]!.positions).toEqual([0, 1, 2]);
      expect([s.nKvHeads, s.headSize]).toEqual([2, 4]);
      expect(s.rows[1]!.keys.length).toBe(2 * 3 * 4); // (nkv, held, hs)
      expect(s.bytesUsed).toBe(2 * 2 * 3 * 2 * 4 * 4); // K and V, 2 rows, 3 slots, nkv 2, hs 4, float32
      expect(s.bytesReserved).toBeGreaterThanOrEqual(s.bytesUsed);
      // The static cache prints as the notebook's mha.cache_k[:2]: every slot of the capacity.
      expect(s.printed.label).toContain('mha.cacheK[:2]');
      expect(s.printed.text).toMatch(/^tensor\(\[\[\[\[/);
      tf.dispose(x);
      mha.dispose();
    });
  });

  test.each(strategies.map((s) => s.id))(
    "%s: after 8 positions the rows held are the strategy's, and the newest query's weights give the module's output",
    async (id) => {
      await expectNoLeak(() => {
        const mha = build(id);
        setSeed(2);
        const x = rand([2, 8, 8]); // (B, T, C)
        const prompt = tf.slice(x, [0, 0, 0], [2, 3, 8]);
        mha.forward(prompt, { useKvCache: true, startPos: 0 }).dispose();
        prompt.dispose();
        let y: tf.Tensor | null = null;
        let chunk: tf.Tensor | null = null;
        for (let t = 3; t < 8; t++) {
          tf.dispose([y, chunk].filter((v): v is tf.Tensor => v !== null));
          chunk = tf.slice(x, [0, t, 0], [2, 1, 8]);
          y = mha.forward(chunk, { useKvCache: true, startPos: t }); // (B, 1, C)
        }
        const s = readCache(mha, 2)!;
        expect(s.strategy).toBe(id.replace(/-int[48]$/, '')); // the cache's own name
        for (const row of s.rows) {
          expect(row.seqLength).toBe(8);
          expect(row.positions).toEqual(expectedHeld[id]!(8));
          expect(row.slotsHeld).toBe(row.positions.length);
        }
        if (id.startsWith('quantized')) {
          // Groups of 4, the last 4 in float32 (strategies.ts for blockSize 8): 4 of 8 quantized.
          const want = quantizedBytes(8, 4, 4, 4, id.endsWith('8') ? 8 : 4);
          expect(s.rows.map((r) => r.quantized)).toEqual([want.Q, want.Q]);
          expect(want.Q).toBe(4);
          expect(s.bytesUsed).toBe(2 * 2 * want.bytes); // 2 rows, nkv 2
        } else {
          expect(s.rows.map((r) => r.quantized)).toEqual([0, 0]);
        }
        const weights = newestQueryWeights(mha, chunk!, s); // [B][nh][position]
        for (const perHead of weights) {
          for (const w of perHead) {
            const seen = w.filter((v) => v !== null) as number[];
            expect(seen).toHaveLength(expectedHeld[id]!(8).length);
            expect(seen.reduce((a, v) => a + v, 0)).toBeCloseTo(1, 12);
          }
        }
        const out = recomputedOutput(mha, weights, s);
        const mine = tf.reshape(y!, [2, 8]);
        // The kernel scores quantized keys against an int16-rounded query (quantized-cache.md:
        // within 1e-4 of the dequantized rows); every other strategy is float32 throughout.
        const atol = id.startsWith('quantized') ? 1e-4 : 1e-5;
        expect(allclose(out, mine, { atol })).toBe(true);
        tf.dispose([x, y!, chunk!, out, mine]);
        mha.dispose();
      });
    },
  );

  test('a ragged batch: each row at its own length, padding neither held nor attended', async () => {
    await expectNoLeak(() => {
      const mha = build('static');
      setSeed(3);
      const x = rand([2, 3, 8]); // row 1's first two columns are padding
      const mask = [
        [1, 1, 1],
        [0, 0, 1],
      ];
      const y = mha.forward(x, { useKvCache: true, startPos: 0, attentionMask: mask });
      const s = readCache(mha, 2)!;
      expect(s.rows.map((r) => r.seqLength)).toEqual([3, 1]);
      expect(s.rows.map((r) => r.positions)).toEqual([[0, 1, 2], [0]]);
      const weights = newestQueryWeights(mha, x, s);
      expect(weights[1]![0]).toEqual([1]); // row 1's only token sees only itself
      const out = recomputedOutput(mha, weights, s);
      const last = tf.tidy(() => tf.reshape(tf.slice(y, [0, 2, 0], [2, 1, 8]), [2, 8]));
      expect(allclose(out, last, { atol: 1e-5 })).toBe(true);
      tf.dispose([x, y, out, last]);
      mha.dispose();
    });
  });
});

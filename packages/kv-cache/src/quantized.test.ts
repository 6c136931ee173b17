import { CacheCapacityError, CacheOperationError, initBackend } from '@kvkit/tensor-utils';
import { expectNoLeak } from '@kvkit/tensor-utils/testing';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { randomFloats } from '../test/reference.ts';
import { append, held, state } from '../test/support.ts';
import { checkCacheSpec, createCache } from './create-cache.ts';
import { DynamicKVCache } from './dynamic.ts';
import { attend } from './kernel/attend.ts';
import { KernelHeap } from './kernel/kernel-heap.ts';
import type { KVCache } from './kv-cache.ts';
import { quantizationError } from './quantization-error.ts';
import { QuantizedKVCache } from './quantized.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

const one = { nKvHeads: 1, headSize: 1 };

/** Writes (B, nkv, T, hs) keys and values (from flat arrays) at each row's length. */
function write(
  cache: KVCache,
  k: Float32Array,
  v: Float32Array,
  shape: [number, number, number, number],
): void {
  const keys = tf.tensor4d(k, shape);
  const values = tf.tensor4d(v, shape);
  try {
    const starts = Array.from({ length: shape[0] }, (_, b) => cache.seqLength(0, b));
    cache.update(0, { keys, values }, starts);
  } finally {
    tf.dispose([keys, values]);
  }
}

describe('QuantizedKVCache: hand-computed tiny sequences', () => {
  // Keys [0.5, -1, 0.25, 1] (values 10x) of one channel, groups of 4, no float32 window. Key
  // scale: the smallest bfloat16 >= 1/127 is 2^-7 x (1 + 2/128) = 0.0079345703125, so the keys
  // store round(x / s) = [63, -126, 32, 126] and read back as those times s. int4: s = the
  // smallest bfloat16 >= 2/15, 2^-3 x 137/128 = 0.1337890625, zero point round(1 / s) = 7,
  // u = [11, 0, 9, 14], read back as s (u - 7).
  test.each([
    [8, 0.0079345703125, [63, -126, 32, 126]],
    [4, 0.1337890625, [4, -7, 2, 7]],
  ] as const)('int%i keys of a group read back as round(x / s) x s', (bits, s, q) => {
    const cache = new QuantizedKVCache({ ...one, bits, groupSize: 4, residual: 0 });
    append(cache, [[0.5, -1, 0.25]]);
    expect(cache.quantizedLength()).toBe(0); // three positions: no whole group yet
    expect(held(cache, 1).ids).toEqual([[0.5, -1, 0.25]]); // float32, exactly
    append(cache, [[1]]);
    expect(cache.quantizedLength()).toBe(4);
    expect(held(cache, 1)).toEqual({ ids: [q.map((x) => x * s)], positions: [[0, 1, 2, 3]] });
    cache.dispose();
  });

  test('groups leave the float32 window once their newest position is `residual` behind', () => {
    // groupSize 4, residual 2: positions [0, 4) are quantized when the length reaches 6.
    const cache = new QuantizedKVCache({ ...one, bits: 8, groupSize: 4, residual: 2 });
    const seen: number[] = [];
    for (let x = 1; x <= 14; x++) {
      append(cache, [[x]]);
      seen.push(cache.quantizedLength());
    }
    expect(seen).toEqual([0, 0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12]);
    expect([cache.seqLength(), cache.slotsHeld()]).toEqual([14, 14]);
    // The window: 12, 13 (positions 12 and 13 hold ids 13 and 14), exactly.
    expect(held(cache, 1).ids[0]!.slice(12)).toEqual([13, 14]);
    cache.dispose();
  });

  test('bytes: int8, hs 1, groups of 4 (rows padded to 16 channels)', () => {
    // A row is 16 bytes. A key group: 4 rows + 16 bf16 scales = 96 bytes. A value group:
    // 4 rows + 4 rows x 4 channel groups x 2 bytes = 96 bytes. A float32 position: 2 x 4 bytes.
    const cache = new QuantizedKVCache({ ...one, bits: 8, groupSize: 4, residual: 2 });
    append(cache, [[1, 2, 3, 4, 5]]);
    expect(cache.bytesUsed()).toBe(5 * 8);
    append(cache, [[6]]);
    expect(cache.bytesUsed()).toBe(192 + 2 * 8);
    expect(cache.bytesPerToken()).toBe(192 / 4);
    cache.dispose();
    expect([cache.bytesUsed(), cache.bytesReserved()]).toEqual([0, 0]);
  });

  test('bytes per token at GPT-2 shape: 26.6% (int8) and 14.8% (int4) of float32', () => {
    // hs 64, groups of 32: int8 64 + 64 x 2 / 32 bytes per key row, 64 + 2 x 2 per value row;
    // int4 32 + 64 x 3 / 32 and 32 + 2 x 3.
    const float32 = 12 * 12 * 2 * 64 * 4;
    const int8 = new QuantizedKVCache({ bits: 8, nLayers: 12, nKvHeads: 12, headSize: 64 });
    const int4 = new QuantizedKVCache({ bits: 4, nLayers: 12, nKvHeads: 12, headSize: 64 });
    expect(int8.bytesPerToken()).toBe(12 * 12 * (68 + 68));
    expect(int4.bytesPerToken()).toBe(12 * 12 * (38 + 38));
    expect(int8.bytesPerToken() / float32).toBeCloseTo(0.265625, 6);
    expect(int4.bytesPerToken() / float32).toBeCloseTo(0.1484375, 6);
    int8.dispose();
    int4.dispose();
  });
});

describe.each([8, 4] as const)('QuantizedKVCache int%i', (bits) => {
  test('the float32 window is bit-exact: every position not yet quantized reads back as written', () => {
    const nkv = 2;
    const hs = 24;
    const cache = new QuantizedKVCache({
      nKvHeads: nkv,
      headSize: hs,
      bits,
      groupSize: 8,
      residual: 5,
      maxBatchSize: 2,
    });
    const written: Float32Array[][] = [[], []];
    let salt = 3;
    for (const T of [7, 1, 1, 9, 1, 2, 1, 1, 13, 1]) {
      const k = randomFloats(2 * nkv * T * hs, ++salt);
      const v = randomFloats(2 * nkv * T * hs, ++salt);
      write(cache, k, v, [2, nkv, T, hs]);
      for (let b = 0; b < 2; b++)
        for (let i = 0; i < T; i++)
          for (let j = 0; j < nkv; j++) {
            const at = ((b * nkv + j) * T + i) * hs;
            const row = Float32Array.from([...k.subarray(at, at + hs), ...v.subarray(at, at + hs)]);
            written[b]![(cache.seqLength(0, b) - T + i) * nkv + j] = row;
          }
      const r = cache.read(0, 2);
      const t = r.keys.shape[2]!;
      const rk = r.keys.dataSync();
      const rv = r.values.dataSync();
      tf.dispose([r.keys, r.values]);
      for (let b = 0; b < 2; b++) {
        const L = cache.seqLength(0, b);
        const Q = cache.quantizedLength(0, b);
        expect(L - Q).toBeGreaterThanOrEqual(Math.min(L, 5)); // at least `residual` in float32
        expect(L - Q).toBeLessThan(5 + 8);
        for (let p = Q; p < L; p++)
          for (let j = 0; j < nkv; j++) {
            const at = ((b * nkv + j) * t + p) * hs;
            const want = written[b]![p * nkv + j]!;
            expect(Array.from(rk.subarray(at, at + hs))).toEqual(Array.from(want.subarray(0, hs)));
            expect(Array.from(rv.subarray(at, at + hs))).toEqual(Array.from(want.subarray(hs)));
          }
      }
    }
    expect(cache.quantizedLength(0, 0)).toBeGreaterThan(16); // the test really quantized
    cache.dispose();
  });

  test('crops: within the window, or to a multiple of groupSize; others refused, changing nothing', () => {
    const cache = new QuantizedKVCache({ ...one, bits, groupSize: 4, residual: 2 });
    append(cache, [Array.from({ length: 15 }, (_, i) => i / 16)]); // quantized [0, 12), window 12..14
    expect(cache.quantizedLength()).toBe(12);
    cache.crop(13); // inside the window
    expect([cache.seqLength(), cache.quantizedLength()]).toEqual([13, 12]);
    const before = state(cache, 1);
    expect(() => cache.checkCrop(10)).toThrow(CacheOperationError);
    expect(() => cache.crop(10)).toThrow(/the float32 rows of \[8, 10\) are gone/);
    expect(state(cache, 1)).toEqual(before);
    cache.crop(8); // a group boundary: group [8, 12) is dropped
    expect([cache.seqLength(), cache.quantizedLength()]).toEqual([8, 8]);
    // Decoding goes on: group [8, 12) is quantized again once position 13 is written.
    for (let x = 0; x < 6; x++) append(cache, [[x / 8]]);
    expect([cache.seqLength(), cache.quantizedLength()]).toEqual([14, 12]);
    cache.crop(0);
    expect([cache.seqLength(), cache.quantizedLength()]).toEqual([0, 0]);
    cache.dispose();
  });

  test('the quantized history grows geometrically; bytesReserved is what the heap handed out', () => {
    const heap = new KernelHeap();
    const cache = new QuantizedKVCache({
      nKvHeads: 2,
      headSize: 8,
      bits,
      groupSize: 4,
      residual: 4,
      heap,
    });
    const k = tf.randomUniform([1, 2, 1, 8], -1, 1, 'float32', 1);
    let grows = 0;
    let last = 0;
    expectNoLeak(() => {
      for (let t = 0; t < 3000; t++) {
        cache.update(0, { keys: k, values: k }, t);
        if (cache.bytesReserved() !== last) grows++;
        last = cache.bytesReserved();
        expect(last).toBe(heap.bytesAllocated());
      }
    });
    expect(grows).toBeLessThanOrEqual(Math.ceil(Math.log2(3000 / 4)) + 2);
    expect(cache.bytesReserved()).toBeLessThanOrEqual(2 * cache.bytesUsed() + 4096);
    k.dispose();
    cache.dispose();
    expect(heap.bytesAllocated()).toBe(0);
  });

  test('a heap that cannot grow: the update throws CacheCapacityError and changes nothing', () => {
    const heap = new KernelHeap({ initialBytes: 65536, maximumBytes: 65536 });
    const cache = new QuantizedKVCache({
      nKvHeads: 1,
      headSize: 16,
      bits,
      groupSize: 4,
      residual: 2,
      heap,
    });
    const small = randomFloats(16 * 40, 5);
    write(cache, small, small, [1, 1, 40, 16]);
    const before = state(cache, 1);
    const big = randomFloats(16 * 4000, 6);
    expect(() => write(cache, big, big, [1, 1, 4000, 16])).toThrow(CacheCapacityError);
    expect(state(cache, 1)).toEqual(before);
    cache.dispose();
  });
});

describe('quantizationError', () => {
  test('reports K, V and attention errors against a float cache fed the same tokens', () => {
    const heap = new KernelHeap();
    const q = new QuantizedKVCache({ nKvHeads: 4, headSize: 64, bits: 8, heap });
    const f = new DynamicKVCache({ nKvHeads: 4, headSize: 64, heap });
    const rows = randomFloats(4 * 300 * 64, 9).map((x) => x / 2); // uniform in [-1, 1)
    for (const c of [q, f])
      write(
        c,
        rows,
        rows.map((x) => -x),
        [1, 4, 300, 64],
      );
    const r = quantizationError(q, f, { nHead: 8 });
    expect(r.positions).toBe(300);
    // int8 of |x| < 1: at most half a step, 1/254 (bf16 rounding up: 1 + 2^-7)
    expect(r.keys.max).toBeLessThanOrEqual((1 / 254) * (1 + 2 ** -7));
    expect(r.values.max).toBeLessThanOrEqual((1 / 254) * (1 + 2 ** -7));
    expect(r.keys.mean).toBeGreaterThan(0);
    expect(r.attention.max).toBeGreaterThan(0);
    expect(r.attention.max).toBeLessThanOrEqual(1e-2);
    expect(r.attention.mean).toBeLessThanOrEqual(1e-3);
    // A float cache against itself: nothing.
    const same = quantizationError(f, f, { nHead: 8 });
    expect([same.keys.max, same.values.max, same.attention.max]).toEqual([0, 0, 0]);
    expect(() =>
      quantizationError(q, new DynamicKVCache({ nKvHeads: 4, headSize: 64, heap })),
    ).toThrow(/batch row 0 holds 300 positions here and 0 in the reference/);
    q.dispose();
    f.dispose();
  });
});

describe('random data at GPT-2 shape (12 heads of 64), default groups of 32 and window 64', () => {
  // Rows uniform in [-1, 1) (the reference cases' magnitude), queries uniform in [-1, 1), one
  // query per head at the last position. The bounds: the for int8, the documented ones
  // for int4. The table in docs/concepts/quantized-cache.md quotes these lines.
  test.each([
    [8, 1e-2, 1e-3],
    [4, 0.1, 1e-2],
  ] as const)('int%i: attention within the bounds at t = 512 and 2048', (bits, max, mean) => {
    const heap = new KernelHeap();
    for (const t of [512, 2048]) {
      const q = new QuantizedKVCache({ nKvHeads: 12, headSize: 64, bits, heap });
      const f = new DynamicKVCache({ nKvHeads: 12, headSize: 64, heap });
      for (let s = 0; s < t; s += 256) {
        const k = randomFloats(12 * 256 * 64, 2 * s + 1).map((x) => x / 2);
        const v = randomFloats(12 * 256 * 64, 2 * s + 2).map((x) => x / 2);
        for (const c of [q, f]) write(c, k, v, [1, 12, 256, 64]);
      }
      const r = quantizationError(q, f, { nHead: 12, seed: t });
      console.info(
        `int${bits} t=${t}: K max ${r.keys.max.toExponential(2)}, V max ${r.values.max.toExponential(2)}, attention max ${r.attention.max.toExponential(2)} mean ${r.attention.mean.toExponential(2)}; bytes ${q.bytesUsed()} / ${f.bytesUsed()} = ${(q.bytesUsed() / f.bytesUsed()).toFixed(4)}`,
      );
      expect(r.attention.max).toBeLessThanOrEqual(max);
      expect(r.attention.mean).toBeLessThanOrEqual(mean);
      expect(r.attention.max).toBeGreaterThan(0);
      q.dispose();
      f.dispose();
    }
    expect(heap.bytesAllocated()).toBe(0);
  });
});

describe('non-finite input', () => {
  test('a NaN key makes every query that sees its group NaN; the others stay finite', () => {
    const cache = new QuantizedKVCache({
      nKvHeads: 1,
      headSize: 4,
      bits: 8,
      groupSize: 4,
      residual: 0,
    });
    const k = randomFloats(12 * 4, 1);
    k[5 * 4 + 2] = Number.NaN; // position 5, in group [4, 8)
    write(cache, k, randomFloats(12 * 4, 2), [1, 1, 12, 4]);
    const read = cache.read(0, 1);
    const keys = read.keys.dataSync();
    tf.dispose([read.keys, read.values]);
    // Channel 2 of the whole group [4, 8) reads NaN (its scale is NaN); nothing else does.
    const nan = Array.from({ length: 12 * 4 }, (_, i) => Number.isNaN(keys[i]!));
    expect(nan).toEqual(Array.from({ length: 12 * 4 }, (_, i) => i % 4 === 2 && i >= 16 && i < 32));
    const heap = cache.heap;
    const qp = heap.alloc(16 * 12);
    const op = heap.alloc(16 * 12);
    heap.f32().fill(0.5, qp / 4, qp / 4 + 48);
    attend(
      cache.view(0, 1),
      { ptr: qp, batchStride: 16 * 12, rowStride: 16, T: 12, nHead: 1, startPos: [0] },
      { ptr: op, batchStride: 16 * 12, rowStride: 16 },
    );
    const out = Array.from(heap.f32().subarray(op / 4, op / 4 + 48));
    heap.free(qp);
    heap.free(op);
    const rowNaN = Array.from({ length: 12 }, (_, i) =>
      out.slice(4 * i, 4 * i + 4).some(Number.isNaN),
    );
    // Queries 0-3 see group [0, 4) only; from position 4 on, every query sees the NaN group.
    expect(rowNaN).toEqual([false, false, false, false, ...new Array(8).fill(true)]);
    cache.dispose();
  });
});

describe('createCache', () => {
  test("{ strategy: 'quantized', bits } builds a QuantizedKVCache; a bad spec fails up front", () => {
    const c = createCache(
      { strategy: 'quantized', bits: 4, groupSize: 16, residual: 8 },
      { nLayers: 2, nKvHeads: 2, headSize: 8, maxBatchSize: 3, blockSize: 64 },
    );
    expect(c).toBeInstanceOf(QuantizedKVCache);
    expect([c.dtype, (c as QuantizedKVCache).groupSize, (c as QuantizedKVCache).residual]).toEqual([
      'int4',
      16,
      8,
    ]);
    expect([c.maxBatchSize, c.maxPosition, c.nLayers]).toEqual([3, null, 2]);
    c.dispose();
    expect(() => checkCacheSpec({ strategy: 'quantized', bits: 2 as never })).toThrow(
      /bits must be 8 or 4, got 2/,
    );
  });
});

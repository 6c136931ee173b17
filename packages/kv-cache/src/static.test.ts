import { CacheCapacityError, DisposedError, initBackend, ValueError } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { append, held, ids } from '../test/support.ts';
import { KernelHeap } from './kernel/kernel-heap.ts';
import { StaticKVCache } from './static.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

const shape = { maxBatchSize: 3, nKvHeads: 1, headSize: 1, capacity: 4 };

function keysSnapshot(cache: StaticKVCache, layer = 0): number[] | null {
  const k = cache.snapshot(layer, 'keys');
  if (!k) return null;
  const out = Array.from(k.dataSync());
  k.dispose();
  return out;
}

describe('StaticKVCache', () => {
  test('[1, 2, 0, 0] + 3 -> [1, 2, 3, 0]: slot p holds position p, the rest stays zero', () => {
    const cache = new StaticKVCache({ ...shape, maxBatchSize: 1 });
    expect(cache.isAllocated()).toBe(false);
    expect(keysSnapshot(cache)).toBeNull();
    append(cache, [[1, 2]]);
    expect(keysSnapshot(cache)).toEqual([1, 2, 0, 0]);
    append(cache, [[3]]);
    expect(keysSnapshot(cache)).toEqual([1, 2, 3, 0]);
    expect(held(cache, 1)).toEqual({ ids: [[1, 2, 3]], positions: [[0, 1, 2]] });
    expect([cache.seqLength(), cache.slotsHeld()]).toEqual([3, 3]);
    cache.dispose();
  });

  test('memory another cache used reads as zeros where nothing was written (no O(capacity) fill)', () => {
    const heap = new KernelHeap();
    const old = heap.alloc(3 * 4 * 4 * 2 + 64);
    heap.f32().fill(7, old / 4, old / 4 + 16 * 3 * 2);
    heap.free(old); // the next blocks reuse these dirty bytes
    const cache = new StaticKVCache({ ...shape, heap });
    append(cache, [
      [1, 2],
      [5, 0],
    ]);
    expect(keysSnapshot(cache)).toEqual([1, 2, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]);
    cache.crop(1);
    expect(keysSnapshot(cache)).toEqual([1, 2, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]); // as torch: a crop zeroes nothing
    cache.reset();
    expect(keysSnapshot(cache)).toEqual(new Array(12).fill(0));
    cache.dispose();
  });

  test('the seed layout (maxB, nkv, Tmax, hs), allocated once, zero-filled', () => {
    const cache = new StaticKVCache({ maxBatchSize: 3, nKvHeads: 2, headSize: 4, capacity: 6 });
    const n = 2 * 2 * 3 * 4;
    const k = tf.tensor4d(
      Float32Array.from({ length: n }, (_, i) => 1 + i),
      [2, 2, 3, 4],
    );
    cache.update(0, { keys: k, values: k }, 0);
    const snap = cache.snapshot(0, 'keys')!;
    expect(snap.shape).toEqual([3, 2, 6, 4]);
    const f = snap.arraySync();
    expect(f[1]![1]![2]).toEqual([1 + 44, 1 + 45, 1 + 46, 1 + 47]); // b=1, h=1, t=2
    expect(f[1]![1]![3]).toEqual([0, 0, 0, 0]);
    expect(f[2]!.flat(2).every((x) => x === 0)).toBe(true);
    tf.dispose([k, snap]);
    cache.dispose();
  });

  test('batch rows keep their own lengths; a row never written cannot join mid-sequence', () => {
    // The defect this replaces: prefill with B=1, then decode with B=2, and row 1 silently
    // attended to never-written zero rows.
    const cache = new StaticKVCache(shape);
    append(cache, [[1, 2, 3]]);
    expect([cache.seqLength(0, 0), cache.seqLength(0, 1)]).toEqual([3, 0]);
    const t = ids([[4], [40]]);
    expect(() => cache.update(0, t, 3)).toThrow(ValueError);
    expect(() => cache.update(0, t, 3)).toThrow(/startPos 3 of batch row 1 would leave a gap/);
    cache.update(0, t, [3, 0]); // each row at its own position
    expect(held(cache, 2)).toEqual({ ids: [[1, 2, 3, 4], [40]], positions: [[0, 1, 2, 3], [0]] });
    tf.dispose([t.keys, t.values]);
    cache.dispose();
  });

  test('crop(n) forgets positions >= n; decoding goes on from there', () => {
    const cache = new StaticKVCache(shape);
    append(cache, [
      [1, 2, 3],
      [5, 6, 7],
    ]);
    cache.crop(1, { rows: [1] });
    expect(held(cache, 2).ids).toEqual([[1, 2, 3], [5]]);
    append(cache, [[4], [9]]);
    expect(held(cache, 2).ids).toEqual([
      [1, 2, 3, 4],
      [5, 9],
    ]);
    cache.crop(2);
    expect(held(cache, 2).ids).toEqual([
      [1, 2],
      [5, 9],
    ]);
    expect(() => cache.update(0, ids([[1], [1]]), 1)).toThrow(
      /would overwrite \[1, 2\): crop\(1\) first/,
    );
    cache.dispose();
  });

  test('layers are independent; reset(layer) clears one, reset() all', () => {
    const cache = new StaticKVCache({ ...shape, nLayers: 2 });
    append(cache, [[1, 2]], 0);
    append(cache, [[3, 4, 5]], 1);
    expect([cache.seqLength(0), cache.seqLength(1)]).toEqual([2, 3]);
    cache.reset(1);
    expect([cache.seqLength(0), cache.seqLength(1)]).toEqual([2, 0]);
    expect(keysSnapshot(cache, 1)!.every((x) => x === 0)).toBe(true);
    cache.reset();
    expect(cache.seqLength(0)).toBe(0);
    cache.dispose();
  });

  test('bytes: used follows held slots, reserved is exactly what the heap gave, per token is 2 x L x nkv x hs x 4', () => {
    const heap = new KernelHeap();
    const cache = new StaticKVCache({
      maxBatchSize: 3,
      nKvHeads: 2,
      headSize: 4,
      capacity: 6,
      nLayers: 2,
      heap,
    });
    expect([cache.bytesUsed(), cache.bytesReserved()]).toEqual([0, 0]);
    const k = tf.zeros([2, 2, 3, 4]);
    cache.update(1, { keys: k, values: k }, 0);
    expect(cache.bytesUsed()).toBe(2 * (2 * 3) * 2 * 4 * 4); // K and V, 2 rows x 3 slots, 2 heads x 4
    expect(cache.bytesReserved()).toBe(heap.bytesAllocated());
    expect(cache.bytesReserved()).toBeGreaterThanOrEqual(2 * 3 * 2 * 6 * 4 * 4);
    expect(cache.bytesPerToken()).toBe(2 * 2 * 2 * 4 * 4);
    k.dispose();
    cache.dispose();
    expect(heap.bytesAllocated()).toBe(0);
    expect([cache.bytesUsed(), cache.bytesReserved()]).toEqual([0, 0]);
  });

  test('a layer whose V block cannot be allocated keeps no K block either', () => {
    const heap = new KernelHeap();
    const cache = new StaticKVCache({ ...shape, heap });
    const alloc = heap.alloc.bind(heap);
    let calls = 0;
    heap.alloc = (bytes: number) => {
      if (++calls === 2) throw new Error('out of memory');
      return alloc(bytes);
    };
    const t = ids([[1]]);
    try {
      expect(() => cache.update(0, t, 0)).toThrow(/out of memory/);
    } finally {
      heap.alloc = alloc;
    }
    expect(heap.bytesAllocated()).toBe(0);
    expect(cache.isAllocated()).toBe(false);
    expect(cache.seqLength()).toBe(0);
    tf.dispose([t.keys, t.values]);
  });

  test('construction: every size is required and checked; impossible sizes fail at once', () => {
    // The defect this replaces: a missing capacity passed validation and the first write failed
    // with "alloc: bytes must be a non-negative integer, got NaN".
    const { capacity: _, ...noCapacity } = shape;
    expect(() => new StaticKVCache(noCapacity as typeof shape)).toThrow(
      /KV cache capacity must be a positive integer, got undefined/,
    );
    expect(() => new StaticKVCache({ ...shape, capacity: 0 })).toThrow(
      /capacity must be a positive integer, got 0/,
    );
    expect(() => new StaticKVCache({ ...shape, nKvHeads: 1.5 })).toThrow(
      /nKvHeads must be a positive integer/,
    );
    expect(() => new StaticKVCache({ ...shape, maxBatchSize: Number.NaN })).toThrow(
      /maxBatchSize must be a positive integer/,
    );
    expect(() => new StaticKVCache({ ...shape, headSize: 64, capacity: 1e9 })).toThrow(
      CacheCapacityError,
    );
    expect(() => new StaticKVCache({ ...shape, headSize: 64, capacity: 1e9 })).toThrow(
      /GiB per layer; the kernel heap holds at most 4 GiB/,
    );
  });

  test('after dispose every method throws DisposedError, except the byte counts and dispose', () => {
    const cache = new StaticKVCache(shape);
    append(cache, [[1]]);
    cache.dispose();
    cache.dispose();
    expect(cache.isDisposed).toBe(true);
    for (const call of [
      () => cache.seqLength(),
      () => cache.read(0, 1),
      () => cache.view(0, 1),
      () => cache.crop(0),
      () => cache.reset(),
      () => cache.snapshot(0, 'keys'),
      () => append(cache, [[2]]),
    ]) {
      expect(call).toThrow(DisposedError);
    }
    expect([cache.bytesUsed(), cache.bytesReserved()]).toEqual([0, 0]);
  });
});

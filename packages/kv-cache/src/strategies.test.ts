import { CacheCapacityError, CacheOperationError, initBackend } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { append, held, ids } from '../test/support.ts';
import { DynamicKVCache } from './dynamic.ts';
import { KernelHeap } from './kernel/kernel-heap.ts';
import { SinkKVCache } from './sink.ts';
import { SlidingWindowKVCache } from './sliding-window.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

const one = { nKvHeads: 1, headSize: 1 };

/** The raw ring storage of row 0 (slot order), to see where positions went. */
function slots(cache: SlidingWindowKVCache | SinkKVCache): number[] {
  const { layout } = cache.view(0, 1);
  const f32 = cache.heap.f32();
  return Array.from(f32.subarray(layout.keys / 4, layout.keys / 4 + cache.maxSlots));
}

describe('DynamicKVCache', () => {
  test('[1, 2] + 3 -> [1, 2, 3], growing as needed', () => {
    const cache = new DynamicKVCache({ ...one, initialSlots: 2 });
    append(cache, [[1, 2]]);
    append(cache, [[3]]);
    expect(held(cache, 1)).toEqual({ ids: [[1, 2, 3]], positions: [[0, 1, 2]] });
    expect([cache.maxPosition, cache.maxSlots, cache.maxBatchSize]).toEqual([null, null, null]);
    cache.dispose();
  });

  test('grows geometrically: reserved <= 2 x used + the first block, and few copies', () => {
    const heap = new KernelHeap();
    const cache = new DynamicKVCache({ nKvHeads: 2, headSize: 8, initialSlots: 16, heap });
    const k = tf.zeros([1, 2, 1, 8]);
    cache.update(0, { keys: k, values: k }, 0); // allocates the first block
    const first = cache.bytesReserved();
    cache.reset();
    let grows = 0;
    let last = first;
    for (let t = 0; t < 3000; t++) {
      cache.update(0, { keys: k, values: k }, t);
      expect(cache.bytesReserved()).toBeLessThanOrEqual(2 * cache.bytesUsed() + first);
      if (cache.bytesReserved() !== last) grows++;
      last = cache.bytesReserved();
      expect(last).toBe(heap.bytesAllocated());
    }
    expect(grows).toBeLessThanOrEqual(Math.ceil(Math.log2(3000 / 16)) + 1); // 16 -> 32 -> ... -> 4096
    k.dispose();
    cache.dispose();
    expect(heap.bytesAllocated()).toBe(0);
  });

  test('grows its batch too; rows written earlier keep their contents', () => {
    const cache = new DynamicKVCache({ ...one, initialSlots: 1 });
    append(cache, [[1, 2]]);
    const t = ids([[3], [30]]);
    cache.update(0, t, [2, 0]);
    expect(held(cache, 2).ids).toEqual([[1, 2, 3], [30]]);
    tf.dispose([t.keys, t.values]);
    cache.dispose();
  });
});

describe('SlidingWindowKVCache', () => {
  test('window 4: [1, 2, 3, 4] + 5 -> [2, 3, 4, 5], 5 in the slot 1 had', () => {
    const cache = new SlidingWindowKVCache({ ...one, window: 4 });
    append(cache, [[1, 2, 3, 4]]);
    expect(slots(cache)).toEqual([1, 2, 3, 4]);
    append(cache, [[5]]);
    expect(slots(cache)).toEqual([5, 2, 3, 4]);
    expect(held(cache, 1)).toEqual({ ids: [[2, 3, 4, 5]], positions: [[1, 2, 3, 4]] });
    expect([cache.seqLength(), cache.slotsHeld()]).toEqual([5, 4]);
    for (let x = 6; x <= 13; x++) append(cache, [[x]]);
    expect(held(cache, 1)).toEqual({ ids: [[10, 11, 12, 13]], positions: [[9, 10, 11, 12]] });
    expect(cache.visibility).toEqual({ window: 4, sinks: 0 });
    cache.dispose();
  });

  test('takes a chunk at once until the ring is full, then one position at a time', () => {
    const cache = new SlidingWindowKVCache({ ...one, window: 4 });
    expect(cache.maxUpdateLength(0, 0)).toBe(4);
    expect(cache.maxUpdateLength(0, 3)).toBe(1);
    expect(cache.maxUpdateLength(0, 10)).toBe(1);
    expect(cache.maxUpdateLength(0, [0, 2], 2)).toBe(2);
    expect(() => append(cache, [[1, 2, 3, 4, 5]])).toThrow(CacheCapacityError);
    expect(() => append(cache, [[1, 2, 3, 4, 5]])).toThrow(
      /takes at most 4 new position\(s\) per update/,
    );
    expect(cache.seqLength()).toBe(0);
    cache.dispose();
  });

  test('crops until the ring wraps; after that only to 0 or not at all', () => {
    const cache = new SlidingWindowKVCache({ ...one, window: 4 });
    append(cache, [[1, 2, 3]]);
    cache.crop(1);
    append(cache, [[7, 8, 9]]);
    expect(held(cache, 1).ids).toEqual([[1, 7, 8, 9]]);
    append(cache, [[10]]); // wraps: position 0 is gone
    expect(() => cache.crop(3)).toThrow(CacheOperationError);
    expect(() => cache.crop(3)).toThrow(
      /cannot crop batch row 0 from 5 to 3 positions: it has evicted positions \[0, 1\)/,
    );
    expect(held(cache, 1).ids).toEqual([[7, 8, 9, 10]]);
    cache.crop(5); // a no-op is fine
    cache.crop(0);
    expect(cache.seqLength()).toBe(0);
    cache.dispose();
  });
});

describe('SinkKVCache', () => {
  test('sink 1 + window 2: the first position stays, the last two roll', () => {
    const cache = new SinkKVCache({ ...one, sinkTokens: 1, window: 2 });
    append(cache, [[1, 2, 3]]);
    expect(held(cache, 1)).toEqual({ ids: [[1, 2, 3]], positions: [[0, 1, 2]] });
    append(cache, [[4]]);
    expect(slots(cache)).toEqual([1, 4, 3]);
    expect(held(cache, 1)).toEqual({ ids: [[1, 3, 4]], positions: [[0, 2, 3]] });
    append(cache, [[5]]);
    expect(held(cache, 1)).toEqual({ ids: [[1, 4, 5]], positions: [[0, 3, 4]] });
    expect(cache.visibility).toEqual({ window: 2, sinks: 1 });
    expect(cache.maxSlots).toBe(3);
    cache.dispose();
  });

  test('defaults to 4 sinks; crops into the sinks only once the ring has wrapped', () => {
    const cache = new SinkKVCache({ ...one, window: 2 });
    expect(cache.sinkTokens).toBe(4);
    append(cache, [[1, 2, 3, 4, 5, 6]]);
    append(cache, [[7]]);
    expect(held(cache, 1).ids).toEqual([[1, 2, 3, 4, 6, 7]]);
    expect(() => cache.crop(5)).toThrow(CacheOperationError);
    cache.crop(3);
    expect(held(cache, 1).ids).toEqual([[1, 2, 3]]);
    cache.dispose();
  });
});

import { CacheCapacityError, initBackend, ValueError } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import {
  DynamicKVCache,
  KernelHeap,
  type KVCache,
  SinkKVCache,
  SlidingWindowKVCache,
  StaticKVCache,
} from '../src/index.ts';
import { state } from './support.ts';

// The memory guard: bytesPerToken / bytesUsed / bytesReserved by their formulas, and maxBytes,
// a budget that makes a write past it a typed error before anything changes.

beforeAll(async () => {
  await initBackend('wasm');
});

/** The allocator's block size: requests round up to 16 bytes, at least 16. */
const block = (bytes: number) => Math.max(16, Math.ceil(bytes / 16) * 16);

function write(cache: KVCache, B: number, T: number, startPos: number | number[], layer = 0) {
  const k = tf.fill([B, cache.nKvHeads, T, cache.headSize], 0.25);
  try {
    cache.update(layer, { keys: k, values: k }, startPos);
  } finally {
    k.dispose();
  }
}

describe('bytes', () => {
  test.each([
    [1, 1, 1],
    [2, 4, 8],
    [12, 12, 64],
    [3, 1, 5],
  ])(
    'bytesPerToken = 2 x %i layers x %i kv heads x %i head size x 4 bytes, on every strategy',
    (nLayers, nKvHeads, headSize) => {
      const dims = { nLayers, nKvHeads, headSize };
      const caches = [
        new StaticKVCache({ ...dims, maxBatchSize: 1, capacity: 4 }),
        new DynamicKVCache(dims),
        new SlidingWindowKVCache({ ...dims, window: 4 }),
        new SinkKVCache({ ...dims, window: 4 }),
      ];
      for (const c of caches) expect(c.bytesPerToken()).toBe(2 * nLayers * nKvHeads * headSize * 4);
    },
  );

  test('bytesUsed counts held slots; bytesReserved is what the heap handed out', () => {
    const heap = new KernelHeap();
    const cache = new SinkKVCache({
      nLayers: 2,
      nKvHeads: 2,
      headSize: 4,
      sinkTokens: 1,
      window: 3,
      heap,
    });
    write(cache, 2, 2, 0);
    write(cache, 1, 1, 2);
    write(cache, 1, 1, 3); // row 0 has seen 4 positions: 1 sink + 3 in the window
    expect(cache.bytesUsed()).toBe((4 + 2) * 2 * 2 * 4 * 4); // layer 0 only: 6 slots
    expect(cache.bytesUsed()).toBe(((4 + 2) * cache.bytesPerToken()) / 2);
    const perLayer = 2 * block(2 * 2 * 4 * 4 * 4) + block(2 * (3 * 16 + 4)); // 2 rows x 4 slots
    expect(cache.bytesReserved()).toBe(perLayer);
    expect(heap.bytesAllocated()).toBe(perLayer);
    cache.dispose();
  });
});

describe('maxBytes', () => {
  test('a static cache over budget: its first write is refused and allocates nothing', () => {
    const heap = new KernelHeap();
    const dims = { nKvHeads: 2, headSize: 4, maxBatchSize: 2, capacity: 8, heap };
    const need = 2 * block(2 * 2 * 8 * 4 * 4) + block(2 * (16 + 4));
    const tight = new StaticKVCache({ ...dims, maxBytes: need - 1 });
    expect(() => write(tight, 1, 1, 0)).toThrow(CacheCapacityError);
    expect(() => write(tight, 1, 1, 0)).toThrow(
      `the static cache would reserve ${need} bytes, over its budget maxBytes = ${need - 1}`,
    );
    expect([tight.seqLength(), tight.bytesReserved(), heap.bytesAllocated()]).toEqual([0, 0, 0]);
    const exact = new StaticKVCache({ ...dims, maxBytes: need });
    write(exact, 2, 8, 0);
    expect(exact.bytesReserved()).toBe(need);
    exact.dispose();
  });

  test('a dynamic cache grows to what the budget allows, then refuses, changing nothing', () => {
    const heap = new KernelHeap();
    const rowBytes = 1 * 2 * 4 * 4; // B=1, nkv=2, hs=4: bytes of one slot of keys
    const reservedFor = (slots: number) => 2 * block(slots * rowBytes) + block(16 + 4);
    const budget = reservedFor(41) - 1; // room for 40 slots, between 32 and 64
    const cache = new DynamicKVCache({
      nKvHeads: 2,
      headSize: 4,
      initialSlots: 16,
      heap,
      maxBytes: budget,
    });
    const sizes: number[] = [];
    for (let p = 0; p < 40; p++) {
      write(cache, 1, 1, p);
      expect(cache.bytesReserved()).toBeLessThanOrEqual(budget);
      if (sizes.at(-1) !== cache.bytesReserved()) sizes.push(cache.bytesReserved());
    }
    // 16 -> 32 slots geometrically; at 33 the doubling to 64 would pass the budget, so it grows
    // once, to the 40 slots the budget has room for (not one slot per write, copying each time).
    expect(sizes).toEqual([reservedFor(16), reservedFor(32), reservedFor(40)]);
    const before = state(cache, 1);
    expect(() => write(cache, 1, 1, 40)).toThrow(CacheCapacityError);
    expect(() => cache.reserve(0, 1, 41)).toThrow(/over its budget/);
    expect(state(cache, 1)).toEqual(before);
    cache.dispose();
    expect(heap.bytesAllocated()).toBe(0);
  });

  test('a ring cache: a second batch row over budget is refused; decoding the first goes on for ever', () => {
    const heap = new KernelHeap();
    const oneRow = 2 * block(4 * 4) + block(3 * 16 + 4); // window 4, nkv 1, hs 1
    const cache = new SlidingWindowKVCache({
      nKvHeads: 1,
      headSize: 1,
      window: 4,
      heap,
      maxBytes: oneRow,
    });
    for (let p = 0; p < 50; p++) write(cache, 1, 1, p);
    const before = state(cache, 1);
    expect(() => write(cache, 2, 1, [50, 0])).toThrow(CacheCapacityError);
    expect(state(cache, 1)).toEqual(before);
    cache.dispose();
  });

  test.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '4096', 2 ** 60])(
    'maxBytes %s is a ValueError',
    (bad) => {
      expect(
        () => new DynamicKVCache({ nKvHeads: 1, headSize: 1, maxBytes: bad as never }),
      ).toThrow(ValueError);
      expect(
        () => new DynamicKVCache({ nKvHeads: 1, headSize: 1, maxBytes: bad as never }),
      ).toThrow(/maxBytes must be a non-negative integer number of bytes or null/);
    },
  );
});

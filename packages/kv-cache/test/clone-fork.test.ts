import { CacheCapacityError, DisposedError, initBackend, ValueError } from '@kvkit/tensor-utils';
import { beforeAll, describe, expect, test } from 'vitest';
import {
  DynamicKVCache,
  KernelHeap,
  type KVCache,
  PagedKVCache,
  SinkKVCache,
  SlidingWindowKVCache,
  StaticKVCache,
} from '../src/index.ts';
import { append, held, state } from './support.ts';

// clone() and fork(rows): new caches holding copies, independent of their source.

beforeAll(async () => {
  await initBackend('wasm');
});

const one = { nKvHeads: 1, headSize: 1 };
const strategies: [string, (heap: KernelHeap) => KVCache][] = [
  [
    'static',
    (heap) => new StaticKVCache({ ...one, nLayers: 2, maxBatchSize: 3, capacity: 8, heap }),
  ],
  ['dynamic', (heap) => new DynamicKVCache({ ...one, nLayers: 2, initialSlots: 2, heap })],
  ['sliding-window', (heap) => new SlidingWindowKVCache({ ...one, nLayers: 2, window: 3, heap })],
  ['sink', (heap) => new SinkKVCache({ ...one, nLayers: 2, sinkTokens: 1, window: 2, heap })],
  ['paged', (heap) => new PagedKVCache({ ...one, nLayers: 2, blockSize: 2, numBlocks: 32, heap })],
];

function filled(make: (heap: KernelHeap) => KVCache, heap: KernelHeap): KVCache {
  const cache = make(heap);
  append(cache, [
    [1, 2],
    [3, 4],
    [5, 6],
  ]);
  append(cache, [[7], [8], [9]]);
  append(
    cache,
    [
      [10, 20],
      [30, 40],
      [50, 60],
    ],
    1,
  );
  cache.crop(1, { layer: 1, rows: [1] });
  return cache;
}

describe.each(strategies)('%s: clone and fork', (_, make) => {
  test('clone holds what its source holds, and the two go their own ways', () => {
    const heap = new KernelHeap();
    const cache = filled(make, heap);
    const copy = cache.clone();
    expect(copy.strategy).toBe(cache.strategy);
    expect(copy.config()).toEqual(cache.config());
    expect((state(copy, 3) as { layers: unknown }).layers).toEqual(
      (state(cache, 3) as { layers: unknown }).layers,
    );
    append(copy, [[100], [101], [102]]);
    cache.crop(1);
    expect(held(copy, 3).ids.map((r) => r.at(-1))).toEqual([100, 101, 102]);
    expect(held(cache, 3).ids).toEqual([[1], [3], [5]]);
    expect(held(copy, 3, 1).ids).toEqual(held(filled(make, new KernelHeap()), 3, 1).ids);
    copy.dispose();
    cache.dispose();
    expect(heap.bytesAllocated()).toBe(0);
  });

  test('fork(rows): row i of the new cache is row rows[i] of the source, in every layer', () => {
    const heap = new KernelHeap();
    const cache = filled(make, heap);
    const one = cache.fork(2);
    expect(held(one, 1).ids).toEqual(held(cache, 3).ids.slice(2));
    expect(one.seqLength(1, 0)).toBe(2);
    const some = cache.fork([1, 1, 0]);
    expect(held(some, 3).ids).toEqual([1, 1, 0].map((r) => held(cache, 3).ids[r]));
    expect(held(some, 3, 1).ids).toEqual([[30], [30], [10, 20]]);
    for (const c of [one, some, cache]) c.dispose();
    expect(heap.bytesAllocated()).toBe(0);
  });

  test('into another heap: the source heap is untouched', () => {
    const heap = new KernelHeap();
    const other = new KernelHeap();
    const cache = filled(make, heap);
    const live = heap.bytesAllocated();
    const copy = cache.clone({ heap: other });
    expect(copy.heap).toBe(other);
    expect(heap.bytesAllocated()).toBe(live);
    expect(other.bytesAllocated()).toBe(copy.bytesReserved());
    expect((state(copy, 3) as { layers: unknown }).layers).toEqual(
      (state(cache, 3) as { layers: unknown }).layers,
    );
    copy.dispose();
    cache.dispose();
  });

  test('refused copies allocate nothing that outlives the call', () => {
    const heap = new KernelHeap();
    const cache = filled(make, heap);
    const live = heap.bytesAllocated();
    expect(() => cache.clone({ maxBytes: 16 })).toThrow(CacheCapacityError);
    expect(() => cache.fork([0], { maxBytes: 16 })).toThrow(/over its budget maxBytes = 16/);
    const full = new KernelHeap({ initialBytes: 65536, maximumBytes: 65536 });
    full.alloc(65536 - 64 - 16); // everything but one small block
    expect(() => cache.clone({ heap: full })).toThrow(CacheCapacityError);
    expect(full.bytesAllocated()).toBe(65536 - 64 - 16);
    for (const bad of [[], [0.5], [-1], null]) {
      expect(() => cache.fork(bad as never)).toThrow(ValueError);
    }
    expect(() => cache.clone({ heap: {} as never })).toThrow(/clone: heap must be a KernelHeap/);
    expect(() => cache.clone({ maxBytes: -1 })).toThrow(/maxBytes must be a non-negative integer/);
    expect(heap.bytesAllocated()).toBe(live);
    cache.dispose();
    expect(() => cache.clone()).toThrow(DisposedError);
    expect(() => cache.fork(0)).toThrow(DisposedError);
  });

  test('a copy keeps the budget unless told otherwise', () => {
    const heap = new KernelHeap();
    const cache = make(heap);
    const budgeted = cache.clone({ maxBytes: 4096 });
    expect(budgeted.maxBytes).toBe(4096);
    expect(budgeted.clone().maxBytes).toBe(4096);
    expect(budgeted.clone({ maxBytes: null }).maxBytes).toBe(null);
    expect(cache.clone().bytesReserved()).toBe(0); // nothing held, nothing allocated
  });
});

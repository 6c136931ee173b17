import { CacheCapacityError, initBackend, ValueError } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import {
  DynamicKVCache,
  KernelHeap,
  type KVCache,
  SinkKVCache,
  SlidingWindowKVCache,
  StaticKVCache,
} from '../src/index.ts';
import { LayerStorage } from '../src/layer-storage.ts';
import { append, held, state } from './support.ts';

// reorder(indices): row b <- row indices[b] in every layer, in the style of Hugging Face's
// reorder_cache tests (token ids as keys, so the cache reads back as the ids it holds).

beforeAll(async () => {
  await initBackend('wasm');
});

afterEach(() => {
  vi.restoreAllMocks();
});

const one = { nKvHeads: 1, headSize: 1 };
const strategies: [string, (heap?: KernelHeap) => KVCache][] = [
  [
    'static',
    (heap) => new StaticKVCache({ ...one, nLayers: 2, maxBatchSize: 4, capacity: 8, heap }),
  ],
  ['dynamic', (heap) => new DynamicKVCache({ ...one, nLayers: 2, initialSlots: 2, heap })],
  ['sliding-window', (heap) => new SlidingWindowKVCache({ ...one, nLayers: 2, window: 3, heap })],
  ['sink', (heap) => new SinkKVCache({ ...one, nLayers: 2, sinkTokens: 1, window: 2, heap })],
];

/** Three rows of different lengths in both layers: [1, 2], [3], [4, 5] (layer 1: x 10). */
function filled(make: () => KVCache): KVCache {
  const cache = make();
  append(cache, [
    [1, 2],
    [3, 0],
    [4, 5],
  ]);
  cache.crop(1, { rows: [1] });
  append(
    cache,
    [
      [10, 20],
      [30, 0],
      [40, 50],
    ],
    1,
  );
  cache.crop(1, { layer: 1, rows: [1] });
  return cache;
}

describe.each(strategies)('%s: reorder', (_, make) => {
  test('[0, 1, 2] <- [2, 0, 0]: a beam dropped, one kept twice, lengths follow their rows', () => {
    const cache = filled(make);
    cache.reorder([2, 0, 0]);
    expect(held(cache, 3).ids).toEqual([
      [4, 5],
      [1, 2],
      [1, 2],
    ]);
    expect(held(cache, 3, 1).ids).toEqual([
      [40, 50],
      [10, 20],
      [10, 20],
    ]);
    expect([0, 1, 2].map((b) => cache.seqLength(0, b))).toEqual([2, 2, 2]);
    cache.dispose();
  });

  test('a cycle (0 <- 1 <- 2 <- 0) and a swap', () => {
    const cache = filled(make);
    cache.reorder([1, 2, 0]);
    expect(held(cache, 3).ids).toEqual([[3], [4, 5], [1, 2]]);
    cache.reorder([1, 0, 2]);
    expect(held(cache, 3).ids).toEqual([[4, 5], [3], [1, 2]]);
    expect(held(cache, 3, 1).ids).toEqual([[40, 50], [30], [10, 20]]);
    cache.dispose();
  });

  test('rows past indices.length are forgotten; decoding goes on in the kept rows', () => {
    const cache = filled(make);
    cache.reorder([2]);
    expect([0, 1, 2].map((b) => cache.seqLength(0, b))).toEqual([2, 0, 0]);
    append(cache, [[6]]);
    expect(held(cache, 1).ids[0]!.at(-1)).toBe(6);
    expect(cache.seqLength(0, 0)).toBe(3);
    cache.dispose();
  });

  test('rows that stay in place are not copied; the others copy only what they hold', () => {
    const cache = filled(make);
    const copies = vi.spyOn(LayerStorage.prototype, 'copyRow');
    const staged = vi.spyOn(LayerStorage.prototype, 'stageRow');
    cache.reorder([0, 1, 2]);
    expect(copies).not.toHaveBeenCalled();
    cache.reorder([0, 0, 2]); // only row 1 changes, in each of the 2 layers
    expect(copies).toHaveBeenCalledTimes(2);
    for (const call of copies.mock.calls)
      expect(call.slice(1)).toEqual([0, 1, cache.slotsHeld(0, 0)]);
    expect(staged).not.toHaveBeenCalled(); // no cycle, so nothing is staged on the host
    cache.dispose();
  });

  test('a rejected reorder changes nothing', () => {
    const cache = filled(make);
    const before = state(cache, 3);
    for (const bad of [[], [0, 1.5], [-1], [Number.NaN], 'abc', null, [1 << 21]]) {
      expect(() => cache.reorder(bad as never)).toThrow(ValueError);
      expect(state(cache, 3)).toEqual(before);
    }
    cache.dispose();
  });
});

describe('reorder and memory', () => {
  test('a static cache refuses more rows than maxBatchSize, changing nothing', () => {
    const cache = filled(strategies[0]![1]);
    const before = state(cache, 3);
    expect(() => cache.reorder([0, 1, 2, 0, 1])).toThrow(CacheCapacityError);
    expect(() => cache.reorder([0, 1, 2, 0, 1])).toThrow(/5 rows exceed maxBatchSize 4/);
    expect(() => cache.reorder([7])).toThrow(/row 0 is 7, not a batch row of this cache/);
    expect(state(cache, 3)).toEqual(before);
    cache.dispose();
  });

  test('growing rows: a dynamic cache grows its batch, and a budget it would pass changes nothing', () => {
    const heap = new KernelHeap({ initialBytes: 65536 });
    const cache = new DynamicKVCache({ ...one, initialSlots: 2, heap });
    append(cache, [[1, 2]]);
    cache.reorder([0, 0, 0]);
    expect(held(cache, 3).ids).toEqual([
      [1, 2],
      [1, 2],
      [1, 2],
    ]);
    expect(cache.bytesReserved()).toBe(heap.bytesAllocated());
    const tight = new DynamicKVCache({
      ...one,
      initialSlots: 2,
      heap,
      maxBytes: cache.bytesReserved(),
    });
    append(tight, [[1, 2]]);
    tight.reorder([0, 0, 0]); // fits: the budget is what the first cache reserves for 3 rows
    const before = state(tight, 3);
    expect(() => tight.reorder([0, 0, 0, 0, 0, 0, 0, 0])).toThrow(CacheCapacityError);
    expect(() => tight.reorder([0, 0, 0, 0, 0, 0, 0, 0])).toThrow(/over its budget maxBytes/);
    expect(state(tight, 3)).toEqual(before);
    tight.dispose();
    cache.dispose();
    expect(heap.bytesAllocated()).toBe(0);
  });

  test('a heap that cannot grow: the reorder throws and both layers are as they were', () => {
    const heap = new KernelHeap({ initialBytes: 65536, maximumBytes: 2 * 65536 });
    const dims = { nKvHeads: 4, headSize: 64 };
    const cache = new DynamicKVCache({ ...dims, nLayers: 2, initialSlots: 8, heap });
    const k = tf.fill([1, 4, 2, 64], 0.5);
    for (const layer of [0, 1]) cache.update(layer, { keys: k, values: k }, 0);
    k.dispose();
    const snapshot = () => {
      const r = cache.read(1, 1);
      const bits = Array.from(r.keys.dataSync());
      tf.dispose([r.keys, r.values]);
      return {
        lengths: [cache.seqLength(0), cache.seqLength(1)],
        bits,
        live: heap.bytesAllocated(),
        reserved: cache.bytesReserved(),
      };
    };
    const before = snapshot();
    // Each layer holds ~16 KiB; 4 rows need ~64 KiB per layer: layer 0's new blocks fit in the
    // 128 KiB heap beside the old ones, layer 1's do not, so layer 0's must be given back.
    const released = vi.spyOn(LayerStorage.prototype, 'release');
    expect(() => cache.reorder(new Array(4).fill(0))).toThrow(CacheCapacityError);
    expect(released).toHaveBeenCalledTimes(1);
    expect(snapshot()).toEqual(before);
    cache.dispose();
    expect(heap.bytesAllocated()).toBe(0);
  });
});

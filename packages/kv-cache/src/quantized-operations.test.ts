import {
  CacheCapacityError,
  CacheOperationError,
  FormatError,
  initBackend,
} from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { randomFloats } from '../test/reference.ts';
import { state } from '../test/support.ts';
import { DynamicKVCache } from './dynamic.ts';
import { KernelHeap } from './kernel/kernel-heap.ts';
import type { KVCache } from './kv-cache.ts';
import { QuantizedKVCache } from './quantized.ts';

// The contract's operations on a quantized cache: copies hold the quantized history and the
// float32 window as they are (read back identically), reorder handles cycles and repeats, the
// budget, ragged updates, and save/load refused with a typed error.

beforeAll(async () => {
  await initBackend('wasm');
});

const dims = { nLayers: 2, nKvHeads: 2, headSize: 8, bits: 8, groupSize: 4, residual: 2 } as const;

/** Appends T random positions to batch rows [0, B) of every layer. */
function grow(cache: KVCache, B: number, T: number, seed: number): void {
  for (let l = 0; l < cache.nLayers; l++) {
    const n = B * 2 * T * 8;
    const k = tf.tensor4d(randomFloats(n, seed + l), [B, 2, T, 8]);
    const v = tf.tensor4d(randomFloats(n, seed + l + 100), [B, 2, T, 8]);
    const starts = Array.from({ length: B }, (_, b) => cache.seqLength(l, b));
    cache.update(l, { keys: k, values: v }, starts);
    tf.dispose([k, v]);
  }
}

/** Three rows of different lengths, all with quantized groups (and one of layer 1 cropped). */
function filled(heap: KernelHeap, extra: object = {}): QuantizedKVCache {
  const cache = new QuantizedKVCache({ ...dims, heap, ...extra });
  grow(cache, 3, 13, 1);
  grow(cache, 2, 6, 2);
  cache.crop(8, { layer: 1, rows: [1] });
  return cache;
}

/** Per batch row of `layer`: its keys and values read back, every head, in position order. */
function rowsOf(cache: KVCache, layer: number, B: number): number[][] {
  const r = cache.read(layer, B);
  const t = r.keys.shape[2]!;
  const [k, v] = [r.keys.dataSync(), r.values.dataSync()];
  tf.dispose([r.keys, r.values]);
  return Array.from({ length: B }, (_, b) => {
    const n = cache.seqLength(layer, b) * 8;
    return [k, v].flatMap((x) =>
      [0, 1].flatMap((j) => Array.from(x.subarray((b * 2 + j) * t * 8, (b * 2 + j) * t * 8 + n))),
    );
  });
}

const quantizedLengths = (c: QuantizedKVCache, B: number) =>
  [0, 1].map((l) => Array.from({ length: B }, (_, b) => c.quantizedLength(l, b)));

describe('QuantizedKVCache: clone, fork, reorder', () => {
  test('clone holds the same rows and quantized lengths, decodes on identically, and is independent', () => {
    const heap = new KernelHeap();
    const cache = filled(heap);
    expect(quantizedLengths(cache, 3)).toEqual([
      [16, 16, 8],
      [16, 8, 8],
    ]);
    const copy = cache.clone();
    expect(copy).toBeInstanceOf(QuantizedKVCache);
    expect(copy.config()).toEqual(cache.config());
    expect(state(copy, 3)).toEqual({
      ...(state(cache, 3) as object),
      reserved: copy.bytesReserved(),
    });
    expect(quantizedLengths(copy as QuantizedKVCache, 3)).toEqual(quantizedLengths(cache, 3));
    const all = (c: KVCache) => [0, 1].map((l) => rowsOf(c, l, 3));
    expect(all(copy)).toEqual(all(cache));
    grow(cache, 3, 5, 3); // the same new rows to both: the same result
    grow(copy, 3, 5, 3);
    expect(all(copy)).toEqual(all(cache));
    expect((state(copy, 3) as { layers: unknown }).layers).toEqual(
      (state(cache, 3) as { layers: unknown }).layers,
    );
    cache.crop(0);
    expect(copy.seqLength(0, 0)).toBe(24);
    copy.dispose();
    cache.dispose();
    expect(heap.bytesAllocated()).toBe(0);
  });

  test('fork and reorder: row b gets row indices[b], with cycles and repeats', () => {
    const heap = new KernelHeap();
    const cache = filled(heap);
    const before = [0, 1].map((l) => rowsOf(cache, l, 3));
    const pick = (indices: number[]) => before.map((layer) => indices.map((i) => layer[i]));
    const forked = cache.fork([2, 2, 0]);
    expect([0, 1].map((l) => rowsOf(forked, l, 3))).toEqual(pick([2, 2, 0]));
    expect(quantizedLengths(forked as QuantizedKVCache, 3)).toEqual([
      [8, 8, 16],
      [8, 8, 16],
    ]);
    const reserved = cache.bytesReserved();
    cache.reorder([1, 0, 1]); // a cycle (0 <-> 1) and a repeat
    expect([0, 1].map((l) => rowsOf(cache, l, 3))).toEqual(pick([1, 0, 1]));
    expect(cache.bytesReserved()).toBeGreaterThanOrEqual(reserved); // the memory stays reserved
    expect(cache.bytesReserved()).toBe(heap.bytesAllocated() - forked.bytesReserved());
    cache.reorder([2]); // rows past the list are forgotten
    expect([0, 1, 2].map((b) => cache.seqLength(0, b))).toEqual([19, 0, 0]);
    for (const c of [forked, cache]) c.dispose();
    expect(heap.bytesAllocated()).toBe(0);
  });

  test('refused copies and reorders change nothing and leave nothing allocated', () => {
    const heap = new KernelHeap();
    const cache = filled(heap);
    const before = state(cache, 3);
    const live = heap.bytesAllocated();
    expect(() => cache.clone({ maxBytes: 1024 })).toThrow(CacheCapacityError);
    expect(() => cache.fork([0, 1], { maxBytes: 1024 })).toThrow(/over its budget maxBytes = 1024/);
    const full = new KernelHeap({ initialBytes: 65536, maximumBytes: 65536 });
    full.alloc(65536 - 64 - 16);
    expect(() => cache.clone({ heap: full })).toThrow(CacheCapacityError);
    expect(full.bytesAllocated()).toBe(65536 - 64 - 16);
    const tight = filled(heap, { maxBytes: cache.bytesReserved() });
    const tightBefore = state(tight, 3);
    expect(() => tight.reorder([0, 1, 2, 0, 1, 2])).toThrow(CacheCapacityError); // more rows, over budget
    expect(state(tight, 3)).toEqual(tightBefore);
    expect(heap.bytesAllocated()).toBe(live + tight.bytesReserved());
    expect(state(cache, 3)).toEqual(before);
    tight.dispose();
    cache.dispose();
  });
});

describe('QuantizedKVCache: budget, ragged updates, files', () => {
  test('an update past maxBytes throws CacheCapacityError and changes nothing; growth stops at the budget', () => {
    const heap = new KernelHeap();
    const free = filled(heap);
    const budget = free.bytesReserved() + 3000;
    const cache = new QuantizedKVCache({ ...dims, heap, maxBytes: budget });
    grow(cache, 3, 13, 1);
    let refused: unknown = null;
    for (let i = 0; i < 200 && refused === null; i++) {
      const before = state(cache, 3);
      try {
        grow(cache, 3, 4, 10 + i);
      } catch (error) {
        refused = error;
        expect(state(cache, 3)).toEqual(before);
      }
      expect(cache.bytesReserved()).toBeLessThanOrEqual(budget);
    }
    expect(refused).toBeInstanceOf(CacheCapacityError);
    expect((refused as CacheCapacityError).capacity).toBe(budget);
    for (const c of [free, cache]) c.dispose();
  });

  test('a ragged update stores each row as it would alone (only its columns)', () => {
    const heap = new KernelHeap();
    const ragged = new QuantizedKVCache({ ...dims, nLayers: 1, heap });
    const T = 11;
    const keys = tf.tensor4d(randomFloats(2 * 2 * T * 8, 5), [2, 2, T, 8]);
    const values = tf.tensor4d(randomFloats(2 * 2 * T * 8, 6), [2, 2, T, 8]);
    const spans = { first: [0, 4], count: [11, 7] }; // row 1: left padding of 4
    ragged.update(0, { keys, values }, [0, 0], { spans });
    expect([ragged.seqLength(0, 0), ragged.seqLength(0, 1)]).toEqual([11, 7]);
    expect([ragged.quantizedLength(0, 0), ragged.quantizedLength(0, 1)]).toEqual([8, 4]);
    const held = (c: KVCache, b: number, B: number) => {
      const r = c.read(0, B);
      const t = r.keys.shape[2]!;
      const n = c.seqLength(0, b) * 8;
      const out = [r.keys, r.values].map((x) => {
        const all = Array.from(x.dataSync());
        return [0, 1].flatMap((j) => all.slice((b * 2 + j) * t * 8, (b * 2 + j) * t * 8 + n));
      });
      tf.dispose([r.keys, r.values]);
      return out;
    };
    for (let b = 0; b < 2; b++) {
      const alone = new QuantizedKVCache({ ...dims, nLayers: 1, heap });
      const part = (x: tf.Tensor4D) =>
        tf.slice(x, [b, 0, spans.first[b]!, 0], [1, 2, spans.count[b]!, 8]);
      const rows = { keys: part(keys), values: part(values) };
      alone.update(0, rows, 0);
      expect(held(ragged, b, 2)).toEqual(held(alone, 0, 1));
      tf.dispose([rows.keys, rows.values]);
      alone.dispose();
    }
    tf.dispose([keys, values]);
    ragged.dispose();
  });

  test('save and load are refused with CacheOperationError; a damaged file is a FormatError', () => {
    const heap = new KernelHeap();
    const cache = filled(heap);
    const before = state(cache, 3);
    expect(() => cache.save()).toThrow(CacheOperationError);
    expect(() => cache.save()).toThrow(/holds float32 rows only/);
    const other = new DynamicKVCache({ nKvHeads: 2, headSize: 8, heap });
    grow(other, 1, 3, 1);
    expect(() => cache.load(other.save())).toThrow(CacheOperationError);
    expect(() => cache.load(new Uint8Array(3))).toThrow(FormatError);
    expect(state(cache, 3)).toEqual(before);
    for (const c of [other, cache]) c.dispose();
  });
});

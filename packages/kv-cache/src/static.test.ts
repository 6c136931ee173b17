import {
  CacheCapacityError,
  DisposedError,
  DTypeError,
  initBackend,
  ShapeError,
  ValueError,
} from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { StaticKVCache } from './static.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

const shape = { maxBatchSize: 3, nKvHeads: 2, headSize: 4, capacity: 6 };

/** (B, nkv, T, hs) filled with `base + flat index`, so every element is identifiable. */
function rows(B: number, T: number, base: number): tf.Tensor4D {
  const n = B * 2 * T * 4;
  return tf.tensor4d(
    Float32Array.from({ length: n }, (_, i) => base + i),
    [B, 2, T, 4],
  );
}

function snapshotBits(cache: StaticKVCache) {
  const k = cache.snapshot(0, 'keys');
  const v = cache.snapshot(0, 'values');
  const out = {
    length: cache.length(),
    k: k ? Array.from(k.dataSync()) : null,
    v: v ? Array.from(v.dataSync()) : null,
  };
  tf.dispose([k, v].filter((t) => t !== null));
  return out;
}

describe('StaticKVCache', () => {
  test('allocates on first write, zero-filled, in the seed layout (maxB, nkv, Tmax, hs)', () => {
    const cache = new StaticKVCache(shape);
    expect(cache.isAllocated()).toBe(false);
    expect(cache.snapshot(0, 'keys')).toBeNull();
    expect(cache.bytesReserved()).toBe(0);
    const k = rows(2, 3, 1);
    const v = rows(2, 3, 1001);
    cache.write(0, k, v, 0);
    expect(cache.isAllocated()).toBe(true);
    expect(cache.bytesReserved()).toBe(2 * 3 * 2 * 6 * 4 * 4);
    expect(cache.bytesUsed()).toBe(2 * 2 * 2 * 3 * 4 * 4);
    const full = cache.snapshot(0, 'keys')!;
    expect(full.shape).toEqual([3, 2, 6, 4]);
    const f = full.arraySync();
    // [:B, :, s:s+T] holds the rows written; everything else is zero.
    expect(f[1]![1]![2]).toEqual([1 + 44, 1 + 45, 1 + 46, 1 + 47]); // b=1, h=1, t=2
    expect(f[1]![1]![3]).toEqual([0, 0, 0, 0]);
    expect(f[2]!.flat(2).every((x) => x === 0)).toBe(true);
    tf.dispose([k, v, full]);
  });

  test('read returns rows [0, end) of the first B batch rows, and their positions', () => {
    const cache = new StaticKVCache(shape);
    const k0 = rows(2, 3, 1);
    const v0 = rows(2, 3, 501);
    cache.write(0, k0, v0, 0);
    const k1 = rows(2, 1, 100);
    const v1 = rows(2, 1, 600);
    cache.write(0, k1, v1, 3);
    expect(cache.length()).toBe(4);
    const { keys, values, positions } = cache.read(0, 2);
    expect(keys.shape).toEqual([2, 2, 4, 4]);
    expect(Array.from(positions)).toEqual([0, 1, 2, 3]);
    const expectedK = tf.concat([k0, k1], 2);
    const expectedV = tf.concat([v0, v1], 2);
    expect(Array.from(keys.dataSync())).toEqual(Array.from(expectedK.dataSync()));
    expect(Array.from(values.dataSync())).toEqual(Array.from(expectedV.dataSync()));
    const part = cache.read(0, 1, 2);
    expect(part.keys.shape).toEqual([1, 2, 2, 4]);
    tf.dispose([k0, v0, k1, v1, keys, values, expectedK, expectedV, part.keys, part.values]);
  });

  test('a write below the cached length rewinds: the length becomes startPos + T', () => {
    const cache = new StaticKVCache(shape);
    const k = rows(1, 5, 0);
    cache.write(0, k, k, 0);
    const r = rows(1, 1, 900);
    cache.write(0, r, r, 2);
    expect(cache.length()).toBe(3);
    const { keys } = cache.read(0, 1);
    expect(keys.shape[2]).toBe(3);
    expect(Array.from(keys.dataSync().slice(8, 12))).toEqual([900, 901, 902, 903]);
    tf.dispose([k, r, keys]);
  });

  test('layers are independent; reset(layer) clears one, reset() all', () => {
    const cache = new StaticKVCache({ ...shape, nLayers: 2 });
    const k = rows(1, 2, 1);
    cache.write(0, k, k, 0);
    cache.write(1, k, k, 0);
    cache.write(1, k, k, 2);
    expect([cache.length(0), cache.length(1)]).toEqual([2, 4]);
    cache.reset(1);
    expect([cache.length(0), cache.length(1)]).toEqual([2, 0]);
    const snap = cache.snapshot(1, 'keys')!;
    expect(tf.max(snap).dataSync()[0]).toBe(0);
    cache.reset();
    expect(cache.length(0)).toBe(0);
    tf.dispose([k, snap]);
  });

  const bad: [string, (c: StaticKVCache) => void, new (...a: never[]) => Error, RegExp][] = [
    [
      'layer out of range',
      (c) => c.write(1, rows(1, 1, 0), rows(1, 1, 0), 2),
      ValueError,
      /layer 1 is out of range/,
    ],
    [
      'batch too large',
      (c) => c.write(0, rows(4, 1, 0), rows(4, 1, 0), 2),
      CacheCapacityError,
      /batch size 4 exceeds maxBatchSize 3/,
    ],
    [
      'past capacity',
      (c) => c.write(0, rows(1, 5, 0), rows(1, 5, 0), 2),
      CacheCapacityError,
      /2 \+ 5 = 7 exceeds/,
    ],
    [
      'a gap',
      (c) => c.write(0, rows(1, 1, 0), rows(1, 1, 0), 3),
      ValueError,
      /startPos 3 would leave a gap/,
    ],
    [
      'wrong head size',
      (c) => c.write(0, tf.zeros([1, 2, 1, 3]), tf.zeros([1, 2, 1, 3]), 2),
      ShapeError,
      /hs=4\), got \[1, 2, 1, 3\]/,
    ],
    [
      'keys/values differ',
      (c) => c.write(0, rows(1, 1, 0), rows(1, 2, 0), 2),
      ShapeError,
      /same shape/,
    ],
    [
      'int32 keys',
      (c) => c.write(0, tf.zeros([1, 2, 1, 4], 'int32'), rows(1, 1, 0), 2),
      DTypeError,
      /keys must be float32/,
    ],
    [
      'read past the length',
      (c) => c.read(0, 1, 3),
      ValueError,
      /end must be an integer in \[1, 2\], got 3/,
    ],
  ];
  test.each(bad)(
    'rejects %s with a typed error and changes nothing',
    (_, call, ErrorClass, message) => {
      const cache = new StaticKVCache(shape);
      const k = rows(2, 2, 7);
      cache.write(0, k, k, 0);
      const before = snapshotBits(cache);
      expect(() => call(cache)).toThrow(ErrorClass);
      expect(() => call(cache)).toThrow(message);
      expect(snapshotBits(cache)).toEqual(before);
      k.dispose();
    },
  );

  test('bad construction and use after dispose', () => {
    expect(() => new StaticKVCache({ ...shape, capacity: 0 })).toThrow(
      /capacity must be a positive integer, got 0/,
    );
    const cache = new StaticKVCache(shape);
    const k = rows(1, 2, 0);
    cache.write(0, k, k, 0);
    k.dispose();
    expect(cache.bytesUsed()).toBeGreaterThan(0);
    cache.dispose();
    cache.dispose();
    expect(cache.isDisposed).toBe(true);
    expect(() => cache.length()).toThrow(DisposedError);
    expect(cache.bytesReserved()).toBe(0);
    expect(cache.bytesUsed()).toBe(0);
  });
});

describe('StaticKVCache allocation', () => {
  test('nLayers may be given as undefined (the default, 1)', () => {
    expect(new StaticKVCache({ ...shape, nLayers: undefined }).nLayers).toBe(1);
  });

  test('a layer whose V block cannot be allocated keeps no K block either', async () => {
    const { kernels } = await import('@kvkit/tensor-utils');
    const heap = kernels().heap;
    const cache = new StaticKVCache(shape);
    const before = heap.bytesAllocated();
    const alloc = heap.alloc.bind(heap);
    let calls = 0;
    heap.alloc = (bytes: number) => {
      if (++calls === 2) throw new Error('out of memory');
      return alloc(bytes);
    };
    const k = rows(1, 1, 0);
    try {
      expect(() => cache.write(0, k, k, 0)).toThrow(/out of memory/);
    } finally {
      heap.alloc = alloc;
    }
    expect(heap.bytesAllocated()).toBe(before);
    expect(cache.isAllocated()).toBe(false);
    expect(cache.length()).toBe(0);
    k.dispose();
  });
});

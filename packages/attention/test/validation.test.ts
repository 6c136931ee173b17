import {
  CacheCapacityError,
  DisposedError,
  DTypeError,
  rand,
  ShapeError,
  setSeed,
  ValueError,
} from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { CausalSelfAttention, GPT } from '../src/index.ts';
import { bits, setupBackend } from './support.ts';

// Every rejected call throws a typed error naming the offending values and leaves the module
// and its cache exactly as they were: same length, same bits in cache_k and cache_v.

beforeAll(setupBackend);

const C = 6;
const config = { ...GPT.getDefaultConfig(), nHead: 2, nEmbd: C, blockSize: 8, maxBatchSize: 4 };

/** A module with positions [0, 5) cached for a batch of 2. */
function primed() {
  setSeed(42);
  const mha = new CausalSelfAttention(config).eval();
  const x = rand([2, 5, C]);
  mha.forward(x, { useKvCache: true, startPos: 0 }).dispose();
  x.dispose();
  return mha;
}

function state(mha: CausalSelfAttention) {
  const k = mha.cacheK;
  const v = mha.cacheV;
  const s = { length: mha.kvCache?.seqLength() ?? null, k: bits(k), v: bits(v) };
  tf.dispose([k, v].filter((t) => t !== null));
  return s;
}

const cases: [
  string,
  () => tf.Tensor,
  { useKvCache?: boolean; startPos?: number },
  new (...a: never[]) => Error,
  RegExp,
][] = [
  [
    'x not rank 3',
    () => tf.zeros([2, C]),
    { useKvCache: true, startPos: 5 },
    ShapeError,
    /\(B, T, C=6\), got \[2, 6\]/,
  ],
  [
    'last dim != nEmbd',
    () => tf.zeros([2, 1, 5]),
    { useKvCache: true, startPos: 5 },
    ShapeError,
    /got \[2, 1, 5\]/,
  ],
  [
    'B > maxBatchSize',
    () => tf.zeros([5, 1, C]),
    { useKvCache: true, startPos: 5 },
    CacheCapacityError,
    /batch size 5 exceeds maxBatchSize 4/,
  ],
  [
    'T = 0',
    () => tf.zeros([2, 0, C]),
    { useKvCache: true, startPos: 5 },
    ShapeError,
    /T >= 1, got \[2, 0, 6\]/,
  ],
  [
    'non-integer startPos',
    () => tf.zeros([2, 1, C]),
    { useKvCache: true, startPos: 2.5 },
    ValueError,
    /startPos must be a non-negative integer position, got 2.5/,
  ],
  [
    'negative startPos',
    () => tf.zeros([2, 1, C]),
    { useKvCache: true, startPos: -1 },
    ValueError,
    /got -1/,
  ],
  [
    'startPos + T > blockSize',
    () => tf.zeros([2, 4, C]),
    { useKvCache: true, startPos: 5 },
    CacheCapacityError,
    /5 \+ 4 = 9 exceeds the capacity \(blockSize\) 8/,
  ],
  [
    'a gap past the cached length',
    () => tf.zeros([2, 1, C]),
    { useKvCache: true, startPos: 6 },
    ValueError,
    /startPos 6 of batch row 0 would leave a gap: it has seen positions \[0, 5\)/,
  ],
  [
    'wrong dtype',
    () => tf.zeros([2, 1, C], 'int32'),
    { useKvCache: true, startPos: 5 },
    DTypeError,
    /must be float32, got int32/,
  ],
  [
    'startPos without the cache',
    () => tf.zeros([2, 1, C]),
    { startPos: 3 },
    ValueError,
    /only meaningful with useKvCache/,
  ],
  [
    'T > blockSize without the cache',
    () => tf.zeros([1, 9, C]),
    {},
    ShapeError,
    /T = 9 exceeds blockSize 8/,
  ],
];

describe('forward rejects bad input and leaves the cache bit-for-bit unchanged', () => {
  test.each(cases)('%s', (_, input, options, ErrorClass, message) => {
    const mha = primed();
    const before = state(mha);
    const x = input();
    const tensorsBefore = tf.memory().numTensors;
    expect(() => mha.forward(x, options)).toThrow(ErrorClass);
    expect(() => mha.forward(x, options)).toThrow(message);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(state(mha)).toEqual(before);
    x.dispose();
    mha.dispose();
  });

  test('a rejected first call does not allocate the cache', () => {
    setSeed(42);
    const mha = new CausalSelfAttention(config).eval();
    const x = tf.zeros([2, 9, C]);
    expect(() => mha.forward(x, { useKvCache: true })).toThrow(CacheCapacityError);
    expect(mha.cacheK).toBeNull();
    expect(mha.kvCache).toBeNull(); // not even an empty cache object
    x.dispose();
    mha.dispose();
  });

  test('a disposed module or input tensor', () => {
    const mha = primed();
    const x = tf.zeros([2, 1, C]);
    x.dispose();
    expect(() => mha.forward(x, { useKvCache: true, startPos: 5 })).toThrow(DisposedError);
    mha.dispose();
    const y = tf.zeros([2, 1, C]);
    expect(() => mha.forward(y)).toThrow(/CausalSelfAttention has been disposed/);
    expect(() => mha.stateDict()).toThrow(DisposedError);
    y.dispose();
  });

  test('bad configs name the value', () => {
    expect(() => new CausalSelfAttention({ ...config, nEmbd: 7 })).toThrow(
      /nEmbd 7 must be divisible by nHead 2/,
    );
    expect(() => new CausalSelfAttention({ ...config, nKvHeads: 3 })).toThrow(
      /dividing nHead 2, got 3/,
    );
    expect(
      () => new CausalSelfAttention({ ...GPT.getDefaultConfig(), nHead: 1, nEmbd: 6 }),
    ).toThrow(/config.blockSize must be a positive integer, got null/);
  });
});

describe('loadStateDict is strict and atomic', () => {
  const good = () => {
    setSeed(1);
    const src = new CausalSelfAttention(config);
    const dict = src.stateDict();
    src.dispose();
    return dict;
  };

  test.each([
    [
      'a missing name',
      (d: Record<string, unknown>) => delete d['c_proj.bias'],
      ValueError,
      /missing keys \[c_proj.bias\]/,
    ],
    [
      'an unknown name',
      (d: Record<string, unknown>) => (d['c_attn.extra'] = { shape: [1], data: [0] }),
      ValueError,
      /unexpected keys \[c_attn.extra\]/,
    ],
    [
      'a wrong shape',
      (d: Record<string, unknown>) =>
        (d['c_proj.weight'] = { shape: [6, 5], data: new Array(30).fill(0) }),
      ShapeError,
      /'c_proj.weight' must have shape \[6, 6\], got \[6, 5\]/,
    ],
    [
      'too few values',
      (d: Record<string, unknown>) => (d['c_proj.bias'] = { shape: [6], data: [1, 2] }),
      ShapeError,
      /'c_proj.bias' has 2 values for shape \[6\]/,
    ],
  ] as const)('%s', (_, edit, ErrorClass, message) => {
    const mha = primed();
    const before = mha.stateDict();
    const dict: Record<string, unknown> = good();
    const owned = Object.values(dict) as tf.Tensor[];
    edit(dict);
    expect(() => mha.loadStateDict(dict as never)).toThrow(ErrorClass);
    expect(() => mha.loadStateDict(dict as never)).toThrow(message);
    const after = mha.stateDict();
    for (const name of Object.keys(before) as (keyof typeof before)[]) {
      expect(bits(after[name]), name).toEqual(bits(before[name]));
    }
    tf.dispose([...Object.values(before), ...Object.values(after), ...owned]);
    mha.dispose();
  });

  test('stateDict -> loadStateDict round-trips, with tensors or { shape, data }', () => {
    const a = primed();
    const dict = a.stateDict();
    const plain = Object.fromEntries(
      Object.entries(dict).map(([k, t]) => [k, { shape: t.shape, data: Array.from(t.dataSync()) }]),
    );
    setSeed(7);
    const b = new CausalSelfAttention(config).loadStateDict(dict);
    const c = new CausalSelfAttention(config).loadStateDict(plain);
    for (const m of [b, c]) {
      const s = m.stateDict();
      for (const k of Object.keys(dict) as (keyof typeof dict)[])
        expect(bits(s[k])).toEqual(bits(dict[k]));
      tf.dispose(Object.values(s));
      m.dispose();
    }
    tf.dispose(Object.values(dict));
    a.dispose();
  });
});

describe('caches given to the module', () => {
  test("a larger shared cache does not lift the module's blockSize", async () => {
    const { StaticKVCache } = await import('@kvkit/kv-cache');
    const shared = new StaticKVCache({ maxBatchSize: 4, nKvHeads: 2, headSize: 3, capacity: 64 });
    const mha = primed().useCache(shared);
    const x = tf.zeros([2, 9, C]);
    expect(() => mha.forward(x, { useKvCache: true, startPos: 0 })).toThrow(CacheCapacityError);
    expect(() => mha.forward(x, { useKvCache: true, startPos: 0 })).toThrow(
      /0 \+ 9 = 9 exceeds the capacity \(blockSize\) 8/,
    );
    expect(shared.seqLength()).toBe(0);
    x.dispose();
    mha.dispose();
    expect(shared.isDisposed).toBe(false); // not the module's to free
    shared.dispose();
  });

  test("useCache with the module's own cache keeps it alive", () => {
    const mha = primed();
    const own = mha.kvCache!;
    mha.useCache(own);
    expect(own.isDisposed).toBe(false);
    expect(own.seqLength()).toBe(5);
    mha.dispose();
    own.dispose();
  });

  test('layer must be a non-negative integer; a module on layer 2 gets a cache with that layer', () => {
    expect(() => new CausalSelfAttention(config, { layer: -1 })).toThrow(
      /layer must be a non-negative integer, got -1/,
    );
    expect(() => new CausalSelfAttention(config, { layer: 1.5 })).toThrow(ValueError);
    setSeed(42);
    const mha = new CausalSelfAttention(config, { layer: 2 }).eval();
    const x = tf.zeros([2, 3, C]);
    mha.forward(x, { useKvCache: true, startPos: 0 }).dispose();
    expect(mha.kvCache!.seqLength(2)).toBe(3);
    x.dispose();
    mha.dispose();
  });
});

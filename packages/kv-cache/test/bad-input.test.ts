import {
  CacheCapacityError,
  CacheOperationError,
  DisposedError,
  DTypeError,
  FormatError,
  initBackend,
  ShapeError,
  ValueError,
} from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  DynamicKVCache,
  KernelHeap,
  type KVCache,
  OutOfBlocksError,
  PagedKVCache,
  QuantizedKVCache,
  SequenceError,
  SinkKVCache,
  SlidingWindowKVCache,
  StaticKVCache,
} from '../src/index.ts';
import { append, ids, state } from './support.ts';

// The bad-input table: every call below is rejected with a typed error naming the offending
// values, and leaves the cache exactly as it was, on every strategy.

beforeAll(async () => {
  await initBackend('wasm');
});

const dims = { nKvHeads: 1, headSize: 1 };
const strategies: [string, () => KVCache][] = [
  ['static', () => new StaticKVCache({ ...dims, maxBatchSize: 2, capacity: 8 })],
  ['dynamic', () => new DynamicKVCache({ ...dims, maxBatchSize: 2 })],
  ['sliding-window', () => new SlidingWindowKVCache({ ...dims, window: 3, maxBatchSize: 2 })],
  ['sink', () => new SinkKVCache({ ...dims, sinkTokens: 1, window: 2, maxBatchSize: 2 })],
  ['paged', () => new PagedKVCache({ ...dims, blockSize: 2, numBlocks: 8, maxBatchSize: 2 })],
  // Groups of 4 and no float32 window: the 4 positions every case starts from are quantized.
  [
    'quantized',
    () => new QuantizedKVCache({ ...dims, bits: 8, groupSize: 4, residual: 0, maxBatchSize: 2 }),
  ],
];

const t = (shape: number[], dtype: 'float32' | 'int32' = 'float32') => tf.zeros(shape, dtype);
const tensors: tf.Tensor[] = [];
const keep = <T extends tf.Tensor>(x: T) => {
  tensors.push(x);
  return x;
};
afterAll(() => tf.dispose(tensors));

type Bad = [
  what: string,
  call: (c: KVCache) => unknown,
  error: new (...a: never[]) => Error,
  message: RegExp,
];
const one = () => ({ keys: keep(t([1, 1, 1, 1])), values: keep(t([1, 1, 1, 1])) });

const common: Bad[] = [
  [
    'a layer out of range',
    (c) => c.update(1, one(), 4),
    ValueError,
    /layer 1 is out of range: this cache holds 1 layer/,
  ],
  ['a NaN layer', (c) => c.update(Number.NaN, one(), 4), ValueError, /layer NaN is out of range/],
  [
    'more rows than maxBatchSize',
    (c) => c.update(0, { keys: keep(t([3, 1, 1, 1])), values: keep(t([3, 1, 1, 1])) }, 0),
    CacheCapacityError,
    /batch size 3 exceeds maxBatchSize 2/,
  ],
  [
    'no new positions',
    (c) => c.update(0, { keys: keep(t([1, 1, 0, 1])), values: keep(t([1, 1, 0, 1])) }, 4),
    ShapeError,
    /T must be at least 1 new position, got 0/,
  ],
  [
    'a negative startPos',
    (c) => c.update(0, one(), -1),
    ValueError,
    /startPos must be a non-negative integer position, got -1/,
  ],
  ['a fractional startPos', (c) => c.update(0, one(), 2.5), ValueError, /got 2\.5/],
  ['a NaN startPos', (c) => c.update(0, one(), Number.NaN), ValueError, /got NaN/],
  [
    'an infinite startPos',
    (c) => c.update(0, one(), Number.POSITIVE_INFINITY),
    ValueError,
    /got Infinity/,
  ],
  [
    'a startPos per row of the wrong length',
    (c) => c.update(0, one(), [4, 0]),
    ShapeError,
    /one position per batch row \(1\), got 2/,
  ],
  [
    'a gap',
    (c) => c.update(0, one(), 5),
    ValueError,
    /startPos 5 of batch row 0 would leave a gap: it has seen positions \[0, 4\)/,
  ],
  [
    'an overwrite without crop',
    (c) => c.update(0, one(), 2),
    CacheOperationError,
    /would overwrite \[2, 4\): crop\(2\) first/,
  ],
  [
    'the wrong head size',
    (c) => c.update(0, { keys: keep(t([1, 1, 1, 2])), values: keep(t([1, 1, 1, 2])) }, 4),
    ShapeError,
    /hs=1\), got \[1, 1, 1, 2\]/,
  ],
  [
    'the wrong number of heads',
    (c) => c.update(0, { keys: keep(t([1, 2, 1, 1])), values: keep(t([1, 2, 1, 1])) }, 4),
    ShapeError,
    /nkv=1/,
  ],
  [
    'a rank-3 key tensor',
    (c) => c.update(0, { keys: keep(t([1, 1, 1])), values: keep(t([1, 1, 1])) }, 4),
    ShapeError,
    /got \[1, 1, 1\]/,
  ],
  [
    'keys and values of different shapes',
    (c) => c.update(0, { keys: keep(t([1, 1, 1, 1])), values: keep(t([1, 1, 2, 1])) }, 4),
    ShapeError,
    /same shape/,
  ],
  [
    'int32 keys',
    (c) => c.update(0, { keys: keep(t([1, 1, 1, 1], 'int32')), values: keep(t([1, 1, 1, 1])) }, 4),
    DTypeError,
    /keys must be float32, got int32/,
  ],
  [
    'a disposed key tensor',
    (c) => {
      const k = t([1, 1, 1, 1]);
      k.dispose();
      return c.update(0, { keys: k, values: keep(t([1, 1, 1, 1])) }, 4);
    },
    DisposedError,
    /keys tensor has been disposed/,
  ],
  [
    'keys that are not a tensor',
    (c) => c.update(0, { keys: [[[[1]]]] as never, values: keep(t([1, 1, 1, 1])) }, 4),
    ValueError,
    /keys must be a tf.Tensor/,
  ],
  [
    'no rows at all',
    (c) => c.update(0, null as never, 4),
    ValueError,
    /rows must be \{ keys, values \} tensors or heap rows, got null/,
  ],
  [
    'heap rows from another heap',
    (c) =>
      c.update(
        0,
        {
          heap: new KernelHeap({ initialBytes: 65536 }),
          ptr: 0,
          batchStride: 8,
          rowStride: 8,
          keyOffset: 0,
          valueOffset: 4,
          batchSize: 1,
          T: 1,
        },
        4,
      ),
    ValueError,
    /heap rows must live in the cache’s own heap/,
  ],
  [
    'heap rows at a negative address',
    (c) =>
      c.update(
        0,
        {
          heap: c.heap,
          ptr: -16,
          batchStride: 8,
          rowStride: 8,
          keyOffset: 0,
          valueOffset: 4,
          batchSize: 1,
          T: 1,
        },
        4,
      ),
    ValueError,
    /rows.ptr must be a non-negative integer byte count, got -16/,
  ],
  [
    'a negative crop',
    (c) => c.crop(-1),
    ValueError,
    /crop: length must be a non-negative integer, got -1/,
  ],
  ['a NaN crop', (c) => c.crop(Number.NaN), ValueError, /got NaN/],
  [
    'a crop of a row out of range',
    (c) => c.crop(1, { rows: [5] }),
    ValueError,
    /batch row 5 is out of range: this cache holds 2 row/,
  ],
  [
    'a crop of a layer out of range',
    (c) => c.crop(1, { layer: 3 }),
    ValueError,
    /layer 3 is out of range/,
  ],
  [
    'a reserve of a fractional length',
    (c) => c.reserve(0, 1, 1.5),
    ValueError,
    /reserve: length must be a non-negative integer, got 1\.5/,
  ],
  [
    'a view of rows never allocated',
    (c) => c.view(0, 3),
    CacheCapacityError,
    /batch size 3 exceeds maxBatchSize 2/,
  ],
  [
    'a read of 0 rows',
    (c) => c.read(0, 0),
    ValueError,
    /batch size must be a positive integer, got 0/,
  ],
  [
    'a seqLength of a row out of range',
    (c) => c.seqLength(0, 2),
    ValueError,
    /batch row 2 is out of range/,
  ],
  [
    'spans of the wrong length',
    (c) => c.update(0, one(), 4, { spans: { first: [0, 0], count: [1, 1] } }),
    ShapeError,
    /spans.first must give one number per batch row \(1\), got 2/,
  ],
  [
    'spans past the update',
    (c) => c.update(0, one(), 4, { spans: { first: [1], count: [1] } }),
    ValueError,
    /spans of batch row 0: columns \[1, 1 \+ 1\) must lie within the update's \[0, 1\)/,
  ],
  [
    'a negative span',
    (c) => c.update(0, one(), 4, { spans: { first: [0], count: [-1] } }),
    ValueError,
    /columns \[0, 0 \+ -1\)/,
  ],
  [
    'spans that are not arrays',
    (c) => c.update(0, one(), 4, { spans: { first: 0, count: 1 } as never }),
    ValueError,
    /spans.first must be an array, got 0/,
  ],
  [
    'a reorder of no rows',
    (c) => c.reorder([]),
    ValueError,
    /reorder: expected at least one batch row, got none/,
  ],
  [
    'a reorder from a row out of range',
    (c) => c.reorder([0, 2]),
    ValueError,
    /reorder: row 1 is 2, not a batch row of this cache \(0 <= row < 2\)/,
  ],
  [
    'a reorder into more rows than maxBatchSize',
    (c) => c.reorder([0, 0, 0]),
    CacheCapacityError,
    /reorder: 3 rows exceed maxBatchSize 2/,
  ],
  ['a reorder by a NaN row', (c) => c.reorder([Number.NaN]), ValueError, /row 0 is NaN/],
  ['a fork of a fractional row', (c) => c.fork(0.5), ValueError, /fork: row 0 is 0.5/],
  [
    'a clone into a heap that is not one',
    (c) => c.clone({ heap: {} as never }),
    ValueError,
    /clone: heap must be a KernelHeap/,
  ],
  [
    'a load of an array of numbers',
    (c) => c.load([1, 2] as never),
    ValueError,
    /a cache file must be a Uint8Array, got Array/,
  ],
  [
    'a load of an empty file',
    (c) => c.load(new Uint8Array(0)),
    FormatError,
    /the file is 0 bytes, shorter than its 24-byte preamble/,
  ],
];

const two = (T: number) => ({ keys: keep(t([2, 1, T, 1])), values: keep(t([2, 1, T, 1])) });

const specific: Record<string, Bad[]> = {
  static: [
    [
      'a write past the capacity',
      (c) => c.update(0, { keys: keep(t([1, 1, 5, 1])), values: keep(t([1, 1, 5, 1])) }, 4),
      CacheCapacityError,
      /4 \+ 5 = 9 exceeds the capacity \(blockSize\) 8/,
    ],
    [
      'a reserve past the capacity',
      (c) => c.reserve(0, 1, 9),
      CacheCapacityError,
      /9 positions exceed the capacity 8/,
    ],
  ],
  dynamic: [
    [
      'an update past what int32 positions hold',
      (c) => c.checkUpdate(0, 1, 4, 2 ** 31),
      CacheCapacityError,
      /4 \+ 2147483648 = 2147483652 exceeds the capacity \(the int32 position limit\) 2147483647/,
    ],
  ],
  'sliding-window': [
    [
      'a chunk that would evict what its own queries see',
      (c) => c.update(0, { keys: keep(t([1, 1, 2, 1])), values: keep(t([1, 1, 2, 1])) }, 4),
      CacheCapacityError,
      /takes at most 1 new position\(s\) per update at startPos 4, got 2/,
    ],
    [
      'a crop past evicted positions',
      (c) => c.crop(2),
      CacheOperationError,
      /cannot crop batch row 0 from 4 to 2 positions: it has evicted positions \[0, 1\)/,
    ],
  ],
  paged: [
    [
      'a write past what the pool can hold',
      (c) => c.update(0, { keys: keep(t([1, 1, 13, 1])), values: keep(t([1, 1, 13, 1])) }, 4),
      CacheCapacityError,
      /4 \+ 13 = 17 exceeds the capacity \(numBlocks x blockSize\) 16/,
    ],
    [
      'a write needing more blocks than are free',
      (c) => c.update(0, two(7), [4, 0]),
      OutOfBlocksError,
      /out of KV blocks: update needs 8 new block\(s\) of 2 positions, 6 free/,
    ],
    [
      'a reserve needing more blocks than are free',
      (c) => c.reserve(0, 2, 9),
      OutOfBlocksError,
      /reserve needs 8 new block\(s\) of 2 positions, 6 free/,
    ],
    [
      'a bind of an unknown sequence',
      (c) => (c as PagedKVCache).bind([99]),
      SequenceError,
      /bind: sequence 99 is unknown to this cache/,
    ],
  ],
  sink: [
    [
      'a chunk that would evict what its own queries see',
      (c) => c.update(0, { keys: keep(t([1, 1, 2, 1])), values: keep(t([1, 1, 2, 1])) }, 4),
      CacheCapacityError,
      /takes at most 1 new position/,
    ],
    [
      'a crop past evicted positions',
      (c) => c.crop(2),
      CacheOperationError,
      /it has evicted positions \[1, 2\)/,
    ],
  ],
  quantized: [
    [
      'an update past what int32 positions hold',
      (c) => c.checkUpdate(0, 1, 4, 2 ** 31),
      CacheCapacityError,
      /4 \+ 2147483648 = 2147483652 exceeds the capacity \(the int32 position limit\) 2147483647/,
    ],
    [
      'a crop inside a quantized group',
      (c) => c.crop(2),
      CacheOperationError,
      /cannot crop batch row 0 from 4 to 2 positions: positions \[0, 4\) are stored quantized in groups of 4/,
    ],
    [
      'a rewind inside a quantized group',
      (c) => c.checkUpdate(0, 1, 3, 1, { crop: true }),
      CacheOperationError,
      /the float32 rows of \[0, 3\) are gone: crop to a multiple of 4 or to at least 4/,
    ],
  ],
};

describe.each(strategies)('%s: bad input', (name, make) => {
  test.each([...common, ...specific[name]!])(
    'rejects %s with a typed error and changes nothing',
    (_, call, ErrorClass, message) => {
      const cache = make();
      append(cache, [[1, 2, 3]]);
      append(cache, [[4]]);
      const before = state(cache, 2);
      expect(() => call(cache)).toThrow(ErrorClass);
      expect(() => call(cache)).toThrow(message);
      expect(state(cache, 2)).toEqual(before);
      cache.dispose();
    },
  );
});

describe('bad construction', () => {
  test.each([
    [
      'no options',
      () => new DynamicKVCache(undefined as never),
      /options must be an object, got undefined/,
    ],
    [
      'a missing headSize',
      () => new DynamicKVCache({ nKvHeads: 1 } as never),
      /headSize must be a positive integer <= 65536, got undefined/,
    ],
    [
      'a huge nKvHeads',
      () => new DynamicKVCache({ nKvHeads: 1e9, headSize: 1 }),
      /nKvHeads must be a positive integer <= 65536, got 1000000000/,
    ],
    [
      '0 layers',
      () => new DynamicKVCache({ ...dims, nLayers: 0 }),
      /nLayers must be a positive integer <= 65536, got 0/,
    ],
    [
      'a NaN maxBatchSize',
      () => new DynamicKVCache({ ...dims, maxBatchSize: Number.NaN }),
      /maxBatchSize must be a positive integer <= 1048576, got NaN/,
    ],
    [
      'a heap that is not a KernelHeap',
      () => new DynamicKVCache({ ...dims, heap: {} as never }),
      /heap must be a KernelHeap/,
    ],
    [
      'a window of 0',
      () => new SlidingWindowKVCache({ ...dims, window: 0 }),
      /window must be a positive integer <= 16777216, got 0/,
    ],
    ['no window', () => new SinkKVCache(dims as never), /window must be a positive integer/],
    [
      'negative sinks',
      () => new SinkKVCache({ ...dims, window: 2, sinkTokens: -1 }),
      /sinkTokens must be a positive integer <= 1048576, got -1/,
    ],
    [
      'an initialSlots of Infinity',
      () => new DynamicKVCache({ ...dims, initialSlots: Number.POSITIVE_INFINITY }),
      /initialSlots must be a positive integer/,
    ],
    [
      '16 bits',
      () => new QuantizedKVCache({ ...dims, bits: 16 as never }),
      /bits must be 8 or 4, got 16/,
    ],
    ['no bits', () => new QuantizedKVCache(dims as never), /bits must be 8 or 4, got undefined/],
    [
      'groups of 12',
      () => new QuantizedKVCache({ ...dims, bits: 8, groupSize: 12 }),
      /groupSize must be one of 4, 8, 16, 32, 64, 128, 256, 512, 1024, got 12/,
    ],
    [
      'a negative residual',
      () => new QuantizedKVCache({ ...dims, bits: 4, residual: -1 }),
      /residual must be a non-negative integer <= 1048576, got -1/,
    ],
    [
      'a quantized head size over 2048',
      () => new QuantizedKVCache({ nKvHeads: 1, headSize: 4096, bits: 8 }),
      /headSize must be <= 2048, got 4096/,
    ],
  ])('%s', (_, make, message) => {
    expect(make).toThrow(ValueError);
    expect(make).toThrow(message);
  });

  test('a rejected first write allocates nothing', () => {
    const heap = new KernelHeap({ initialBytes: 65536 });
    const cache = new DynamicKVCache({ ...dims, heap });
    const bad = ids([[1, 2]]);
    expect(() => cache.update(0, bad, 3)).toThrow(/would leave a gap/);
    expect(heap.bytesAllocated()).toBe(0);
    tf.dispose([bad.keys, bad.values]);
  });
});

import { CacheCapacityError, DisposedError, initBackend, ValueError } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { append, held } from '../test/support.ts';
import { KernelHeap } from './kernel/kernel-heap.ts';
import { OutOfBlocksError, SequenceError } from './paged/errors.ts';
import { PagedKVCache } from './paged.ts';

// Paged bad input: each call is refused with a typed error naming the offending values, and
// leaves every sequence, table, reference count, statistic and byte as it was.

beforeAll(async () => {
  await initBackend('wasm');
});

const one = { nKvHeads: 1, headSize: 1 };

/** Everything observable about a paged cache. */
function everything(cache: PagedKVCache): unknown {
  const sequences = cache.sequences().map((id) => {
    cache.bind([id]);
    return {
      id,
      table: cache.blockTable(id),
      lengths: Array.from({ length: cache.nLayers }, (_, l) => cache.sequenceLength(id, l)),
      held: Array.from({ length: cache.nLayers }, (_, l) => held(cache, 1, l)),
    };
  });
  return {
    sequences,
    refs: Array.from({ length: cache.numBlocks }, (_, b) => cache.refCount(b)),
    stats: cache.stats(),
    reserved: cache.bytesReserved(),
  };
}

/** Two sequences (a: 5 positions, b: a fork of a plus 1) and a freed one, in 2 layers. */
function setup() {
  const cache = new PagedKVCache({ ...one, nLayers: 2, blockSize: 2, numBlocks: 8 });
  const a = cache.addSequence([1, 2, 3, 4, 5]).id;
  cache.bind([a]);
  for (const l of [0, 1]) append(cache, [[1, 2, 3, 4, 5]], l);
  const b = cache.forkSequence(a);
  cache.bind([b]);
  for (const l of [0, 1]) append(cache, [[6]], l);
  const gone = cache.addSequence().id;
  cache.freeSequence(gone);
  return { cache, a, b, gone };
}

type Ctx = ReturnType<typeof setup>;
const bad: [string, (c: Ctx) => unknown, new (...args: never[]) => Error, RegExp][] = [
  [
    'a fork of an unknown sequence',
    (c) => c.cache.forkSequence(99),
    SequenceError,
    /forkSequence: sequence 99 is unknown to this cache/,
  ],
  [
    'a fork of a freed sequence',
    (c) => c.cache.forkSequence(c.gone),
    SequenceError,
    /forkSequence: sequence 3 was freed/,
  ],
  [
    'freeing a freed sequence',
    (c) => c.cache.freeSequence(c.gone),
    SequenceError,
    /freeSequence: sequence 3 was freed/,
  ],
  [
    'a fork of a non-integer id',
    (c) => c.cache.forkSequence(1.5),
    SequenceError,
    /sequence 1.5 is unknown/,
  ],
  [
    'token ids for a freed sequence',
    (c) => c.cache.appendTokens(c.gone, [1]),
    SequenceError,
    /appendTokens: sequence 3 was freed/,
  ],
  [
    'the table of a freed sequence',
    (c) => c.cache.blockTable(c.gone),
    SequenceError,
    /blockTable: sequence 3 was freed/,
  ],
  [
    'a bind of a freed sequence',
    (c) => c.cache.bind([c.a, c.gone]),
    SequenceError,
    /bind: sequence 3 was freed/,
  ],
  [
    'a sequence bound twice',
    (c) => c.cache.bind([c.a, c.a]),
    ValueError,
    /bind: sequence 1 is bound to two batch rows/,
  ],
  [
    'a bind of a non-array',
    (c) => c.cache.bind(1 as never),
    ValueError,
    /bind: expected an array of sequence ids, got 1/,
  ],
  [
    'a negative token id',
    (c) => c.cache.addSequence([1, -1]),
    ValueError,
    /tokens\[1\] must be a non-negative integer token id, got -1/,
  ],
  [
    'a fractional token id',
    (c) => c.cache.appendTokens(c.a, [1.5]),
    ValueError,
    /tokens\[0\] must be a non-negative integer token id, got 1.5/,
  ],
  ['a NaN token id', (c) => c.cache.addSequence([Number.NaN]), ValueError, /got NaN/],
  [
    'tokens that are not an array',
    (c) => c.cache.addSequence(7 as never),
    ValueError,
    /tokens must be an array of token ids, got 7/,
  ],
  [
    'a block out of range',
    (c) => c.cache.refCount(8),
    ValueError,
    /block 8 is out of range: the pool has 8/,
  ],
  [
    'a layer out of range',
    (c) => c.cache.sequenceLength(c.a, 2),
    ValueError,
    /layer 2 is out of range/,
  ],
  [
    'a write to a row bound to a freed sequence',
    (c) => {
      const s = c.cache.addSequence().id;
      c.cache.bind([s]);
      c.cache.freeSequence(s);
      const k = tf.zeros([1, 1, 1, 1]);
      try {
        return c.cache.update(0, { keys: k, values: k }, 0);
      } finally {
        k.dispose();
      }
    },
    SequenceError,
    /update \(batch row 0\): sequence 4 was freed/,
  ],
  [
    'a write needing more blocks than are free',
    (c) => {
      c.cache.bind([c.a, c.b]);
      const k = tf.zeros([2, 1, 5, 1]);
      try {
        return c.cache.update(0, { keys: k, values: k }, [5, 6]);
      } finally {
        k.dispose();
      }
    },
    OutOfBlocksError,
    // a writes [5, 10): its block 2 (b copied it earlier) and 2 new; b [6, 11): 3 new.
    /update needs 5 new block\(s\) of 2 positions, 4 free/,
  ],
];

describe('PagedKVCache: bad input', () => {
  test.each(bad)(
    'refuses %s with a typed error and changes nothing',
    (_, call, ErrorClass, message) => {
      const ctx = setup();
      const before = everything(ctx.cache);
      let error: unknown;
      try {
        call(ctx);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ErrorClass);
      expect((error as Error).message).toMatch(message);
      expect(everything(ctx.cache)).toEqual(before);
      ctx.cache.dispose();
    },
  );

  test('the errors carry their data', () => {
    const { cache, gone } = setup();
    const s = catchError(() => cache.forkSequence(gone)) as SequenceError;
    expect([s.name, s.sequence, s.state, s.argument]).toEqual([
      'SequenceError',
      gone,
      'freed',
      'sequence',
    ]);
    expect((catchError(() => cache.forkSequence(99)) as SequenceError).state).toBe('unknown');
    cache.bind([cache.addSequence().id]);
    const k = tf.zeros([1, 1, 9, 1]);
    const o = catchError(() => cache.update(0, { keys: k, values: k }, 0)) as OutOfBlocksError;
    k.dispose();
    expect(o).toBeInstanceOf(CacheCapacityError);
    expect([o.name, o.needed, o.free, o.requested, o.capacity]).toEqual([
      'OutOfBlocksError',
      5,
      4,
      5,
      4,
    ]);
    cache.dispose();
  });

  test.each([
    [
      'no numBlocks',
      () => new PagedKVCache(one as never),
      ValueError,
      /numBlocks must be a positive integer/,
    ],
    [
      'a blockSize of 0',
      () => new PagedKVCache({ ...one, numBlocks: 4, blockSize: 0 }),
      ValueError,
      /blockSize must be a positive integer <= 65536, got 0/,
    ],
    [
      'prefixCaching that is not a boolean',
      () => new PagedKVCache({ ...one, numBlocks: 4, prefixCaching: 'yes' as never }),
      ValueError,
      /prefixCaching must be true or false, got yes/,
    ],
    [
      'a pool past 4 GiB',
      () => new PagedKVCache({ nKvHeads: 64, headSize: 1024, numBlocks: 65536 }),
      CacheCapacityError,
      /needs 512 GiB; the kernel heap holds at most 4 GiB/,
    ],
  ])('bad construction: %s', (_, make, ErrorClass, message) => {
    expect(make).toThrow(ErrorClass);
    expect(make).toThrow(message);
  });

  test('a pool the heap cannot hold fails its first write and allocates nothing', () => {
    const heap = new KernelHeap({ initialBytes: 65536, maximumBytes: 65536 });
    const cache = new PagedKVCache({
      nKvHeads: 1,
      headSize: 64,
      blockSize: 16,
      numBlocks: 64,
      heap,
    });
    const k = tf.zeros([1, 1, 1, 64]);
    expect(() => cache.update(0, { keys: k, values: k }, 0)).toThrow(CacheCapacityError);
    expect([heap.bytesAllocated(), cache.bytesReserved(), cache.sequences()]).toEqual([0, 0, []]);
    k.dispose();
  });

  test('after dispose every method throws DisposedError; bytes are 0', () => {
    const { cache, a } = setup();
    cache.dispose();
    cache.dispose(); // idempotent
    for (const call of [
      () => cache.addSequence(),
      () => cache.forkSequence(a),
      () => cache.bind([]),
      () => cache.stats(),
      () => cache.seqLength(),
      () => cache.view(0, 1),
      () => cache.crop(0),
    ])
      expect(call).toThrow(DisposedError);
    expect([cache.bytesUsed(), cache.bytesReserved()]).toEqual([0, 0]);
  });
});

function catchError(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

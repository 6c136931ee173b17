import { CacheCapacityError, initBackend } from '@kvkit/tensor-utils';
import { beforeAll, describe, expect, test } from 'vitest';
import { append, held } from '../test/support.ts';
import { KernelHeap } from './kernel/kernel-heap.ts';
import { loadCache } from './load-cache.ts';
import { OutOfBlocksError } from './paged/errors.ts';
import { PagedKVCache } from './paged.ts';

// The contract's operations on a paged cache, where they act on block tables: reorder and fork
// share blocks instead of copying rows; clone copies the pool whole; save and load go through
// the cache file, one block table per row. Keys are token ids (values 10x).

beforeAll(async () => {
  await initBackend('wasm');
});

const one = { nKvHeads: 1, headSize: 1 };

/** Rows a = [1, 2, 3] and b = [4, 5] (ids of b known) in blocks of 2, bound to rows 0 and 1. */
function twoRows(heap?: KernelHeap) {
  const cache = new PagedKVCache({ ...one, blockSize: 2, numBlocks: 8, ...(heap ? { heap } : {}) });
  append(cache, [[1, 2, 3]]); // row 0 gets a sequence of its own: blocks 0 and 1
  const [a] = cache.boundSequences();
  const b = cache.addSequence([4, 5, 6]).id;
  cache.bind([b]);
  append(cache, [[4, 5]]); // block 2, cached under the ids [4, 5]
  cache.bind([a!, b]);
  return { cache, a: a!, b };
}

describe('PagedKVCache: reorder, clone, fork, save and load', () => {
  test('reorder rebinds rows: a row taken twice shares its blocks, a dropped one is freed', () => {
    const { cache, a, b } = twoRows();
    expect([cache.blockTable(a), cache.blockTable(b)]).toEqual([[0, 1], [2]]);
    cache.reorder([1, 1]); // beam search keeps b twice and drops a
    const [r0, r1] = cache.boundSequences();
    expect(r0).toBe(b);
    expect(cache.sequences()).toEqual([b, r1]); // a was freed
    expect(cache.blockTable(r1!)).toEqual([2]);
    expect(cache.refCount(2)).toBe(2);
    expect(cache.stats()).toMatchObject({ blocksUsed: 1, bytesCopied: 0 });
    append(cache, [[6], [7]]); // position 2: a new block each, nothing copied
    expect(held(cache, 2).ids).toEqual([
      [4, 5, 6],
      [4, 5, 7],
    ]);
    cache.crop(1);
    append(cache, [[8], [9]]); // into the shared block 2: the first writer copies it
    expect(held(cache, 2).ids).toEqual([
      [4, 8],
      [4, 9],
    ]);
    expect(cache.stats()).toMatchObject({ blocksCopied: 1, bytesCopied: 8 });
    cache.dispose();
  });

  test('clone is a copy of everything, on its own pool; the two then go their own ways', () => {
    const heap = new KernelHeap();
    const { cache, a, b } = twoRows(heap);
    const copy = cache.clone();
    expect(copy.sequences()).toEqual(cache.sequences());
    expect([copy.blockTable(a), copy.blockTable(b)]).toEqual([
      cache.blockTable(a),
      cache.blockTable(b),
    ]);
    expect(copy.stats()).toEqual(cache.stats());
    expect(held(copy, 2)).toEqual(held(cache, 2));
    expect(copy.addSequence([4, 5, 6]).reused).toBe(2); // the prefix cache came along
    append(copy, [[9], [9]]);
    expect(held(cache, 2).ids).toEqual([
      [1, 2, 3],
      [4, 5],
    ]);
    expect(cache.bytesReserved() + copy.bytesReserved()).toBe(heap.bytesAllocated());
    copy.dispose();
    cache.dispose();
    expect(heap.bytesAllocated()).toBe(0);
  });

  test('fork(rows) copies each block once: rows that shared a block share its copy', () => {
    const { cache, a } = twoRows();
    const c = cache.forkSequence(a); // shares blocks 0 and 1 with a
    cache.bind([a, c]);
    const copy = cache.fork([0, 1, 0]); // a, its fork, and a again
    const [x, y, z] = copy.boundSequences();
    expect([copy.blockTable(x!), copy.blockTable(y!), copy.blockTable(z!)]).toEqual([
      [0, 1],
      [0, 1],
      [0, 1],
    ]);
    expect([copy.refCount(0), copy.refCount(1)]).toEqual([3, 3]);
    expect(held(copy, 3).ids).toEqual([
      [1, 2, 3],
      [1, 2, 3],
      [1, 2, 3],
    ]);
    copy.dispose();
    cache.dispose();
  });

  test('save -> load: each row in blocks of its own, decoding on where it was', () => {
    const { cache } = twoRows();
    const again = loadCache(cache.save()) as PagedKVCache;
    expect(again.config()).toEqual(cache.config());
    expect(held(again, 2)).toEqual(held(cache, 2));
    const [r0, r1] = again.boundSequences();
    expect([again.blockTable(r0!), again.blockTable(r1!)]).toEqual([[0, 1], [2]]);
    append(again, [[7], [6]]);
    expect(held(again, 2).ids).toEqual([
      [1, 2, 3, 7],
      [4, 5, 6],
    ]);
    again.dispose();
    cache.dispose();
  });

  test('a file whose rows shared blocks may not fit the pool: OutOfBlocksError, nothing changed', () => {
    const cache = new PagedKVCache({ ...one, blockSize: 2, numBlocks: 4 });
    append(cache, [[1, 2, 3, 4, 5, 6]]); // 3 blocks
    const [a] = cache.boundSequences();
    cache.bind([a!, cache.forkSequence(a!)]); // 2 rows, 3 shared blocks
    const bytes = cache.save();
    const other = new PagedKVCache({ ...one, blockSize: 2, numBlocks: 4 });
    append(other, [[9]]);
    const before = { stats: other.stats(), held: held(other, 1) };
    expect(() => other.load(bytes)).toThrow(OutOfBlocksError);
    expect(() => other.load(bytes)).toThrow(
      /load needs 6 block\(s\) of 2 positions for the file's 2 row\(s\); the pool has 4/,
    );
    expect({ stats: other.stats(), held: held(other, 1) }).toEqual(before);
    other.dispose();
    cache.dispose();
  });

  test('a budget smaller than the pool: the first write is refused, nothing allocated', () => {
    const heap = new KernelHeap({ initialBytes: 65536 });
    const cache = new PagedKVCache({ ...one, blockSize: 2, numBlocks: 100, maxBytes: 1000, heap });
    // The pool: 100 blocks x 2 slots x (key + value) x 4 bytes = 1,600; its run table: 80.
    expect(() => append(cache, [[1]])).toThrow(CacheCapacityError);
    expect(() => append(cache, [[1]])).toThrow(
      /would reserve 1680 bytes, over its budget maxBytes = 1000 \(it reserves 0 now\)/,
    );
    expect([heap.bytesAllocated(), cache.sequences()]).toEqual([0, []]);
    const fits = new PagedKVCache({ ...one, blockSize: 2, numBlocks: 100, maxBytes: 2000, heap });
    append(fits, [[1]]);
    expect(fits.bytesReserved()).toBeLessThanOrEqual(2000);
    fits.dispose();
  });
});

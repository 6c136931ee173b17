import { initBackend } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { append, held } from '../test/support.ts';
import { KernelHeap } from './kernel/kernel-heap.ts';
import { PagedKVCache } from './paged.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

const one = { nKvHeads: 1, headSize: 1 };

/** The run table the kernel reads for batch row 0: [offset, count, firstPos, sink] per run. */
function runs(cache: PagedKVCache, layer = 0): number[][] {
  const { layout } = cache.view(layer, 1);
  const i32 = cache.heap.i32();
  const n = i32[layout.runCounts / 4]!;
  return Array.from({ length: n }, (_, r) =>
    Array.from(i32.subarray(layout.runs / 4 + 4 * r, layout.runs / 4 + 4 * r + 4)),
  );
}

/** Writes `ids` to every layer of the sequence bound to row 0, layer after layer. */
function appendAll(cache: PagedKVCache, seq: number, rowIds: number[]): void {
  cache.bind([seq]);
  for (let l = 0; l < cache.nLayers; l++) append(cache, [rowIds], l);
}

describe('PagedKVCache: block tables', () => {
  test('blockSize 2: [1, 2, 3] + [4, 5] fills blocks 0, 1, 2, read in place as one run', () => {
    const cache = new PagedKVCache({ ...one, blockSize: 2, numBlocks: 8 });
    append(cache, [[1, 2, 3]]); // row 0 gets a sequence of its own
    const [seq] = cache.boundSequences();
    expect(cache.blockTable(seq!)).toEqual([0, 1]);
    append(cache, [[4, 5]]);
    expect(cache.blockTable(seq!)).toEqual([0, 1, 2]);
    expect(held(cache, 1)).toEqual({ ids: [[1, 2, 3, 4, 5]], positions: [[0, 1, 2, 3, 4]] });
    // A block is 2 slots x (key + value) x 1 head x 1 float: 16 bytes. Blocks 0, 1, 2 follow
    // each other in memory: one run of 5 positions, where the keys are.
    expect(cache.stats().bytesPerBlock).toBe(16);
    expect(runs(cache)).toEqual([[0, 5, 0, 0]]);
    const { layout } = cache.view(0, 1);
    expect(layout.kind).toBe('paged');
    const f32 = cache.heap.f32();
    expect([0, 4, 8, 12, 16].map((offset) => f32[(layout.keys + offset) / 4])).toEqual([
      1, 2, 3, 4, 5,
    ]);
    cache.dispose();
  });

  test('fork shares every block; a write into a shared block copies that block only', () => {
    const cache = new PagedKVCache({ ...one, blockSize: 2, numBlocks: 8 });
    const { id: a } = cache.addSequence();
    appendAll(cache, a, [1, 2, 3]);
    const b = cache.forkSequence(a);
    expect(cache.blockTable(b)).toEqual(cache.blockTable(a));
    expect([cache.refCount(0), cache.refCount(1)]).toEqual([2, 2]);
    expect(cache.stats()).toMatchObject({ blocksUsed: 2, blocksShared: 2, bytesCopied: 0 });
    appendAll(cache, b, [9]); // position 3 is in block 1, shared: b copies it (1 slot: 8 bytes)
    expect(cache.blockTable(b)).toEqual([0, 2]);
    expect([cache.refCount(0), cache.refCount(1), cache.refCount(2)]).toEqual([2, 1, 1]);
    expect(cache.stats()).toMatchObject({ bytesCopied: 8, blocksCopied: 1, blocksShared: 1 });
    // b's blocks 0 and 2 are not neighbours: two runs, the second at block 2 (2 x 2 slots x 4 bytes).
    expect(runs(cache)).toEqual([
      [0, 2, 0, 0],
      [16, 2, 2, 0],
    ]);
    appendAll(cache, a, [7]); // block 1 is a's alone now: written in place
    expect(cache.stats()).toMatchObject({ bytesCopied: 8, blocksCopied: 1 });
    cache.bind([a, b]);
    expect(held(cache, 2).ids).toEqual([
      [1, 2, 3, 7],
      [1, 2, 3, 9],
    ]);
    cache.dispose();
  });

  test('forking a 1,000-token sequence 8 times copies no key or value byte', () => {
    const heap = new KernelHeap();
    const dims = { nLayers: 2, nKvHeads: 2, headSize: 4 };
    const cache = new PagedKVCache({ ...dims, blockSize: 16, numBlocks: 200, heap });
    const { id } = cache.addSequence();
    cache.bind([id]);
    const k = tf.randomUniform([1, 2, 1000, 4], -1, 1, 'float32', 7);
    for (let l = 0; l < 2; l++) cache.update(l, { keys: k, values: k }, 0);
    k.dispose();
    const pool = cache.view(0, 1).layout.keys;
    const before = heap.f32().slice(pool / 4, pool / 4 + (200 * cache.stats().bytesPerBlock) / 4);
    const allocated = heap.bytesAllocated();
    const forks = Array.from({ length: 8 }, () => cache.forkSequence(id));
    const table = cache.blockTable(id);
    expect(table).toHaveLength(63); // ceil(1000 / 16)
    for (const f of forks) expect(cache.blockTable(f)).toEqual(table);
    expect(table.map((b) => cache.refCount(b))).toEqual(new Array(63).fill(9));
    expect(cache.stats()).toMatchObject({ bytesCopied: 0, blocksCopied: 0, blocksUsed: 63 });
    expect(heap.bytesAllocated()).toBe(allocated);
    expect(heap.f32().slice(pool / 4, pool / 4 + before.length)).toEqual(before);
    // Each fork then decodes a token: the first 8 writers copy the last, partial block
    // (1000 % 16 = 8 slots x 2 layers x (key + value) x 2 heads x 4 floats x 4 bytes = 1,024
    // bytes each); the ninth holder finds it its own and writes in place.
    const t = tf.zeros([1, 2, 1, 4]);
    for (const seq of [...forks, id]) {
      cache.bind([seq]);
      for (let l = 0; l < 2; l++) cache.update(l, { keys: t, values: t }, 1000);
    }
    t.dispose();
    expect(cache.stats()).toMatchObject({ bytesCopied: 8 * 1024, blocksCopied: 8, blocksUsed: 71 });
    cache.dispose();
    expect(heap.bytesAllocated()).toBe(0);
  });

  test('rows past the binding get sequences of their own; a view needs bound rows', () => {
    const cache = new PagedKVCache({ ...one, blockSize: 2, numBlocks: 8 });
    const { id } = cache.addSequence();
    cache.bind([id]);
    append(cache, [[1], [2]]);
    const [, second] = cache.boundSequences();
    expect(cache.sequences()).toEqual([id, second]);
    expect(cache.sequenceLength(second!)).toBe(1);
    cache.bind([second!]);
    expect(() => cache.view(0, 2)).toThrow(
      /view: batch rows \[0, 2\) requested, but 1 row\(s\) are bound/,
    );
    expect(held(cache, 1).ids).toEqual([[2]]);
    cache.dispose();
  });

  test('bytes: the pool and run tables are exactly what the heap handed out; dispose gives them back', () => {
    const heap = new KernelHeap({ initialBytes: 65536 });
    const cache = new PagedKVCache({ nLayers: 2, ...one, blockSize: 4, numBlocks: 10, heap });
    expect(cache.bytesReserved()).toBe(0); // nothing before the first use
    append(cache, [[1, 2, 3, 4, 5]], 0);
    expect(cache.bytesReserved()).toBe(heap.bytesAllocated());
    // The pool: 10 blocks x 2 layers x (key + value) x 4 slots x 4 bytes; then the run tables.
    expect(cache.bytesReserved()).toBeGreaterThan(10 * 2 * 2 * 4 * 4);
    expect(cache.bytesUsed()).toBe(5 * 2 * 4); // 5 slots of layer 0 only
    expect(cache.bytesPerToken()).toBe(2 * 2 * 4);
    cache.dispose();
    expect([heap.bytesAllocated(), cache.bytesReserved(), cache.bytesUsed()]).toEqual([0, 0, 0]);
    expect(cache.isDisposed).toBe(true);
  });

  test('10,000 single-token steps after a reserve: heap, tensors and stats flat', () => {
    const heap = new KernelHeap();
    const cache = new PagedKVCache({
      nKvHeads: 1,
      headSize: 4,
      blockSize: 16,
      numBlocks: 640,
      heap,
    });
    const t = tf.zeros([1, 1, 1, 4]);
    cache.reserve(0, 1, 10_008);
    const start = {
      tensors: tf.memory().numTensors,
      live: heap.bytesAllocated(),
      total: heap.bytesTotal(),
    };
    for (let p = 0; p < 10_008; p++) cache.update(0, { keys: t, values: t }, p);
    expect({
      tensors: tf.memory().numTensors,
      live: heap.bytesAllocated(),
      total: heap.bytesTotal(),
    }).toEqual(start);
    expect(cache.stats()).toMatchObject({
      blocksUsed: 626,
      blocksFree: 14,
      wasteBytes: 8 * 2 * 4 * 4,
    });
    t.dispose();
    cache.dispose();
  });
});

describe('PagedKVCache: memory', () => {
  test('64 sequences of random lengths 1..2048 waste under 4% of the allocated bytes', () => {
    let x = 12345;
    const lengths = Array.from({ length: 64 }, () => {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      return 1 + (x % 2048);
    });
    const bs = 16;
    const blocks = lengths.reduce((n, L) => n + Math.ceil(L / bs), 0);
    const cache = new PagedKVCache({ nKvHeads: 1, headSize: 4, blockSize: bs, numBlocks: blocks });
    for (const L of lengths) {
      const { id } = cache.addSequence();
      cache.bind([id]);
      const k = tf.zeros([1, 1, L, 4]);
      cache.update(0, { keys: k, values: k }, 0);
      k.dispose();
    }
    // Independently: each sequence wastes the unused tail of its last block.
    const slots = blocks * bs;
    const used = lengths.reduce((a, b) => a + b, 0);
    const s = cache.stats();
    expect(s.blocksUsed).toBe(blocks);
    expect(s.blocksFree).toBe(0);
    expect(s.bytesUsed).toBe(used * 2 * 4 * 4);
    expect(s.waste).toBeCloseTo((slots - used) / slots, 12);
    expect(s.waste).toBeLessThan(0.04);
    cache.dispose();
  });
});

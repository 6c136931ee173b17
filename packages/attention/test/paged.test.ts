import { KernelHeap, OutOfBlocksError, PagedKVCache } from '@kvkit/kv-cache';
import { maxAbsDiff, rand, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { CausalSelfAttention, GPT } from '../src/index.ts';
import { attentionFloat64, setupBackend, weightsOf } from './support.ts';

// A paged cache driven by CausalSelfAttention, unchanged: bind a sequence to batch row 0, then
// forward as with any cache. Expected values are float64 re-computations of the no-cache
// forward over each sequence's whole input.

beforeAll(setupBackend);

const config = { ...GPT.getDefaultConfig(), nEmbd: 8, nHead: 2, blockSize: 64, maxBatchSize: 1 };
const dims = { nKvHeads: 2, headSize: 4 };

function build(implementation: 'kernel' | 'reference') {
  setSeed(3);
  return new CausalSelfAttention(config, { implementation }).eval();
}

/** float64 attention of the whole (1, T, C) input, as a tensor. */
function expected(mha: CausalSelfAttention, x: tf.Tensor): tf.Tensor {
  const shape = x.shape as [number, number, number];
  const { nHead, nKvHeads } = mha.dims;
  const data = x.dataSync() as Float32Array;
  const want = attentionFloat64(data, shape, nHead, nKvHeads, weightsOf(mha));
  return tf.tensor(Float32Array.from(want), shape);
}

/** Runs positions [from, T) of x through the module: one chunk, then one token at a time. */
function run(mha: CausalSelfAttention, x: tf.Tensor, from: number, chunk: number): tf.Tensor {
  const T = x.shape[1]!;
  const outs: tf.Tensor[] = [];
  for (let s = from; s < T; ) {
    const n = s === from ? Math.min(chunk, T - s) : 1;
    const piece = tf.slice(x, [0, s, 0], [1, n, 8]);
    outs.push(mha.forward(piece, { useKvCache: true, startPos: s }));
    piece.dispose();
    s += n;
  }
  const y = tf.concat(outs, 1);
  tf.dispose(outs);
  return y;
}

describe.each(['kernel', 'reference'] as const)(
  'a paged cache through CausalSelfAttention (%s)',
  (implementation) => {
    test('8 sequences share an 18-token prompt: 7 of them prefill only its last 2 positions', () => {
      const cache = new PagedKVCache({ ...dims, blockSize: 4, numBlocks: 64 });
      const m = build(implementation).useCache(cache);
      setSeed(9);
      const prompt = rand([1, 18, 8]);
      const ids = Array.from({ length: 18 }, (_, i) => i); // prompt row i is token i
      let worst = 0;
      for (let s = 0; s < 8; s++) {
        const { id, reused } = cache.addSequence(ids);
        expect(reused).toBe(s === 0 ? 0 : 16); // 4 full blocks, at most 17 positions
        cache.bind([id]);
        const x = tf.concat([prompt, rand([1, 5, 8])], 1); // this sequence's own continuation
        const y = run(m, x, reused, 18 - reused);
        const want = expected(m, x);
        const tail = tf.slice(want, [0, reused, 0], [1, -1, 8]);
        worst = Math.max(worst, maxAbsDiff(y, tail));
        tf.dispose([x, y, want, tail]);
      }
      expect(worst).toBeLessThanOrEqual(1e-5);
      const stats = cache.stats();
      expect(stats).toMatchObject({ prefixHits: 7 * 4, prefixMisses: 4, blocksShared: 4 });
      // 4 shared prompt blocks, then per sequence 2 + 5 positions in 2 blocks of its own.
      expect(stats.blocksUsed).toBe(4 + 8 * 2);
      prompt.dispose();
      m.dispose();
      cache.dispose();
    });

    test('a fork continues on its own: each branch equals the no-cache forward of its input', () => {
      const cache = new PagedKVCache({ ...dims, blockSize: 4, numBlocks: 32 });
      const m = build(implementation).useCache(cache);
      setSeed(10);
      const common = rand([1, 10, 8]);
      const a = cache.addSequence().id;
      cache.bind([a]);
      run(m, common, 0, 10).dispose();
      const b = cache.forkSequence(a);
      let worst = 0;
      for (const seq of [a, b]) {
        cache.bind([seq]);
        const x = tf.concat([common, rand([1, 3, 8])], 1);
        const y = run(m, x, 10, 1);
        const want = expected(m, x);
        const tail = tf.slice(want, [0, 10, 0], [1, -1, 8]);
        worst = Math.max(worst, maxAbsDiff(y, tail));
        tf.dispose([x, y, want, tail]);
      }
      expect(worst).toBeLessThanOrEqual(1e-5);
      // Only block 2 (positions 8 and 9 when forked) was copied, by the first branch to write
      // into it: 2 slots x (key + value) x 2 heads x 4 floats x 4 bytes.
      expect(cache.stats()).toMatchObject({ blocksCopied: 1, bytesCopied: 2 * 2 * 2 * 4 * 4 });
      common.dispose();
      m.dispose();
      cache.dispose();
    });
  },
);

describe('sequences of different lengths in one batch', () => {
  test('three bound sequences decode together with a start position per row', () => {
    const cache = new PagedKVCache({ ...dims, blockSize: 4, numBlocks: 32 });
    const m = build('kernel').useCache(cache);
    setSeed(12);
    const inputs = [5, 9, 12].map((n) => rand([1, n + 4, 8])); // each: its prompt, then 4 tokens
    const ids = inputs.map((x, s) => {
      const { id } = cache.addSequence();
      cache.bind([id]);
      const n = x.shape[1]! - 4;
      run(m, tf.slice(x, [0, 0, 0], [1, n, 8]), 0, n).dispose();
      return { id, n, s };
    });
    cache.bind(ids.map((r) => r.id));
    const outs: tf.Tensor[][] = [[], [], []];
    for (let i = 0; i < 4; i++) {
      const step = tf.concat(
        ids.map((r) => tf.slice(inputs[r.s]!, [0, r.n + i, 0], [1, 1, 8])),
        0,
      );
      const y = m.forward(step, { useKvCache: true, startPos: ids.map((r) => r.n + i) }); // (3, 1, C)
      for (const r of ids) outs[r.s]!.push(tf.slice(y, [r.s, 0, 0], [1, 1, 8]));
      tf.dispose([step, y]);
    }
    let worst = 0;
    for (const r of ids) {
      const got = tf.concat(outs[r.s]!, 1);
      const want = expected(m, inputs[r.s]!);
      const tail = tf.slice(want, [0, r.n, 0], [1, 4, 8]);
      worst = Math.max(worst, maxAbsDiff(got, tail));
      tf.dispose([got, want, tail, ...outs[r.s]!]);
    }
    expect(worst).toBeLessThanOrEqual(1e-5);
    expect(ids.map((r) => cache.sequenceLength(r.id))).toEqual([9, 13, 16]);
    tf.dispose(inputs);
    m.dispose();
    cache.dispose();
  });
});

describe('a paged cache shared by two layers', () => {
  test('a cached prompt is reused once both layers have written it, and equals the no-cache forward', () => {
    const cache = new PagedKVCache({ nLayers: 2, ...dims, blockSize: 4, numBlocks: 32 });
    const [l0, l1] = [0, 1].map((layer) => {
      setSeed(20 + layer);
      return new CausalSelfAttention(config, { layer }).eval().useCache(cache);
    }) as [CausalSelfAttention, CausalSelfAttention];
    setSeed(11);
    const x = rand([1, 13, 8]);
    const ids = Array.from({ length: 13 }, (_, i) => 7 * i);
    const forward = (from: number) => {
      const piece = tf.slice(x, [0, from, 0], [1, -1, 8]);
      const h = l0.forward(piece, { useKvCache: true, startPos: from });
      const probe = cache.addSequence(ids).reused; // before layer 1 has written this sequence
      const y = l1.forward(h, { useKvCache: true, startPos: from });
      tf.dispose([piece, h]);
      return { y, probe };
    };
    cache.bind([cache.addSequence(ids).id]);
    const first = forward(0);
    expect(first.probe).toBe(0); // layer 0 alone holds the prompt: not cached yet
    const { id, reused } = cache.addSequence(ids);
    expect(reused).toBe(12); // 3 full blocks, once both layers hold them
    cache.bind([id]);
    const second = forward(reused);
    const h = l0.forward(x);
    const want = l1.forward(h); // the no-cache forward of both layers
    const tail = tf.slice(want, [0, 12, 0], [1, 1, 8]);
    expect(maxAbsDiff(first.y, want)).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(second.y, tail)).toBeLessThanOrEqual(1e-5);
    tf.dispose([x, first.y, second.y, h, want, tail]);
    l0.dispose();
    l1.dispose();
    cache.dispose();
  });
});

describe('a paged cache under load', () => {
  test('out of blocks: the forward throws OutOfBlocksError and the cache is as it was', () => {
    const cache = new PagedKVCache({ ...dims, blockSize: 4, numBlocks: 4 });
    setSeed(3);
    // A pool of 16 positions fits a model of blockSize 16 (useCache refuses smaller ones).
    const m = new CausalSelfAttention({ ...config, blockSize: 16 }).eval().useCache(cache);
    const x = rand([1, 13, 8]);
    const first = tf.slice(x, [0, 0, 0], [1, 10, 8]);
    cache.bind([cache.addSequence().id]);
    m.forward(tf.slice(x, [0, 0, 0], [1, 1, 8]), { useKvCache: true, startPos: 0 }).dispose(); // another sequence holds a block
    cache.bind([cache.addSequence().id]);
    const y = m.forward(first, { useKvCache: true, startPos: 0 });
    const before = cache.stats();
    const piece = tf.slice(x, [0, 10, 0], [1, 3, 8]);
    expect(() => m.forward(piece, { useKvCache: true, startPos: 10 })).toThrow(OutOfBlocksError);
    expect(() => m.forward(piece, { useKvCache: true, startPos: 10 })).toThrow(
      /needs 1 new block\(s\) of 4 positions, 0 free/,
    );
    expect(cache.stats()).toEqual(before);
    expect(cache.seqLength()).toBe(10);
    tf.dispose([x, y, piece, first]);
    m.dispose();
    cache.dispose();
  });

  test('10,000 single-token steps leave tensors, the tfjs heap and the kvkit heap flat', () => {
    const heap = new KernelHeap();
    const cache = new PagedKVCache({ ...dims, blockSize: 16, numBlocks: 640, heap });
    setSeed(3);
    const m = new CausalSelfAttention({ ...config, blockSize: 10_080 }).eval().useCache(cache);
    cache.bind([cache.addSequence().id]);
    cache.reserve(0, 1, 10_080); // the blocks and run tables the whole run will need
    const token = rand([1, 1, 8]);
    const tfjsHeap = () =>
      (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.byteLength ?? 0;
    for (let p = 0; p < 80; p++) m.forward(token, { useKvCache: true, startPos: p }).dispose();
    const state = () => ({
      tensors: tf.memory().numTensors,
      tfjs: tfjsHeap(),
      live: heap.bytesAllocated(),
      total: heap.bytesTotal(),
      reserved: cache.bytesReserved(),
    });
    const start = state();
    for (let p = 80; p < 10_080; p++) m.forward(token, { useKvCache: true, startPos: p }).dispose();
    expect(state()).toEqual(start);
    expect(cache.seqLength()).toBe(10_080);
    tf.dispose(token);
    m.dispose();
    cache.dispose();
    expect(heap.bytesAllocated()).toBe(0);
  });
});

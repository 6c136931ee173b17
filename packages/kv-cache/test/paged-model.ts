import { expect } from 'vitest';
import {
  attend,
  type DynamicKVCache,
  type HeapRows,
  type KernelHeap,
  type KVView,
  type PagedKVCache,
} from '../src/index.ts';
import { attentionFloat64, randomFloats } from './reference.ts';

// The model the paged property test checks a paged cache against: each live sequence's token
// ids and per-layer lengths, rows derived from them, and the invariants after every operation.

export interface Dims {
  nLayers: number;
  nkv: number;
  group: number;
  hs: number;
  bs: number;
  numBlocks: number;
}

export interface Model {
  id: number;
  tokens: number[];
  lengths: number[];
  /** Token ids the cache knows (a prefix of tokens). */
  known: number;
}

/** The (key | value) row of a position: a function of the layer and the whole token prefix. */
export function rowsOf(
  d: Dims,
  layer: number,
  tokens: readonly number[],
  upTo: number,
): Float32Array[] {
  const width = d.nkv * d.hs;
  let h = 0x811c9dc5 ^ (layer * 0x9e3779b9);
  return tokens.slice(0, upTo).map((t) => {
    h = Math.imul(h ^ (t + 1), 0x01000193) >>> 0;
    return randomFloats(2 * width, h || 1);
  });
}

/** The kernel's output for T query rows from position `start`, over one batch row's view. */
export function kernel(
  view: KVView,
  heap: KernelHeap,
  q: Float32Array,
  T: number,
  start: number,
  nh: number,
  hs: number,
) {
  const qp = heap.alloc(q.byteLength);
  const outp = heap.alloc(q.byteLength);
  heap.f32().set(q, qp / 4);
  const rb = nh * hs * 4;
  attend(
    view,
    { ptr: qp, batchStride: T * rb, rowStride: rb, T, nHead: nh, startPos: [start] },
    { ptr: outp, batchStride: T * rb, rowStride: rb },
  );
  const out = heap.f32().slice(outp / 4, outp / 4 + q.length);
  heap.free(qp);
  heap.free(outp);
  return out;
}

/** Heap rows (row i = [k | v]) for an update of one batch row. */
export function heapRows(heap: KernelHeap, rows: Float32Array[], width: number): HeapRows {
  const ptr = heap.alloc(rows.length * 2 * width * 4);
  rows.forEach((r, i) => {
    heap.f32().set(r, ptr / 4 + i * 2 * width);
  });
  const rb = 2 * width * 4;
  return {
    heap,
    ptr,
    batchStride: rows.length * rb,
    rowStride: rb,
    keyOffset: 0,
    valueOffset: width * 4,
    batchSize: 1,
    T: rows.length,
  };
}

/** The invariants, after every operation. Returns the worst attention difference. */
export function check(
  cache: PagedKVCache,
  heap: KernelHeap,
  dense: DynamicKVCache,
  d: Dims,
  live: Model[],
  history: (m: Model, l: number) => { keys: Float32Array[]; values: Float32Array[] },
  salt: number,
): number {
  const tables = live.map((m) => cache.blockTable(m.id));
  const count = new Array<number>(d.numBlocks).fill(0);
  for (const t of tables) for (const b of t) count[b]!++;
  expect(Array.from({ length: d.numBlocks }, (_, b) => cache.refCount(b))).toEqual(count);
  const s = cache.stats();
  expect(s.blocksUsed).toBe(count.filter((n) => n > 0).length);
  expect(s.blocksShared).toBe(count.filter((n) => n > 1).length);
  expect(s.blocksUsed + s.blocksCached + s.blocksFree).toBe(d.numBlocks);
  expect(cache.bytesReserved()).toBe(heap.bytesAllocated());
  const nh = d.nkv * d.group;
  const width = d.nkv * d.hs;
  let worst = 0;
  const wrong: string[] = []; // bit differences between read() and the sequence's rows
  for (const m of live) {
    cache.bind([m.id]);
    for (let l = 0; l < d.nLayers; l++) {
      const L = m.lengths[l]!;
      expect(cache.sequenceLength(m.id, l)).toBe(L);
      const h = history(m, l);
      const read = cache.read(l, 1); // (1, nkv, L, hs)
      const rk = read.keys.dataSync() as Float32Array;
      const rv = read.values.dataSync() as Float32Array;
      read.keys.dispose();
      read.values.dispose();
      for (let p = 0; p < L; p++) {
        for (let j = 0; j < d.nkv; j++) {
          for (let e = 0; e < d.hs; e++) {
            const at = (j * L + p) * d.hs + e;
            if (
              !Object.is(rk[at], h.keys[p]![j * d.hs + e]) ||
              !Object.is(rv[at], h.values[p]![j * d.hs + e])
            )
              wrong.push(`sequence ${m.id} layer ${l} position ${p} head ${j} element ${e}`);
          }
        }
      }
      if (L === 0) continue;
      // The last position's query, on the paged view, on a dense cache, and in float64.
      const q = randomFloats(nh * d.hs, salt + l);
      const paged = kernel(cache.view(l, 1), heap, q, 1, L - 1, nh, d.hs);
      dense.reset();
      const rows = h.keys.map((k, p) => Float32Array.from([...k, ...h.values[p]!]));
      const src = heapRows(dense.heap, rows, width);
      const denseOut = kernel(dense.update(0, src, 0), dense.heap, q, 1, L - 1, nh, d.hs);
      dense.heap.free(src.ptr);
      const want = attentionFloat64(q, L - 1, h.keys, h.values, {
        nh,
        nkv: d.nkv,
        hs: d.hs,
        visibility: { window: null, sinks: 0 },
      });
      for (let e = 0; e < want.length; e++) {
        worst = Math.max(worst, Math.abs(paged[e]! - want[e]!), Math.abs(paged[e]! - denseOut[e]!));
      }
    }
  }
  expect(wrong).toEqual([]);
  return worst;
}

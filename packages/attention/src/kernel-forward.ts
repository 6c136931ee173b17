import {
  attend,
  attendOwnRows,
  type HeapRows,
  type KernelHeap,
  type KVCache,
  type RowSpans,
  readInto,
} from '@kvkit/kv-cache';
import * as tf from '@tensorflow/tfjs-core';
import { cachePieces } from './chunk-pieces.ts';
import type { AttentionDims } from './config.ts';
import type { Linear } from './linear.ts';

/** What the kernel path needs of the module. */
export interface KernelForwardArgs {
  x: tf.Tensor; // (B, T, C)
  dims: AttentionDims;
  cAttn: Linear;
  cProj: Linear;
  heap: KernelHeap;
  cache: KVCache | null;
  layer: number;
  /** Each batch row's first (real) position. */
  startPos: readonly number[];
  /** Ragged batches: each row's real columns; null when nothing is padding. */
  spans: RowSpans | null;
  /** Reserves the cache's memory and rewinds it: called once, right before the cache first changes. */
  beforeWrite: () => void;
}

/**
 * The fast path: the projections as tfjs matMuls (XNNPACK) plus a bias add, and everything
 * between them in kvkit's WebAssembly kernel. c_attn's output is copied once into the kernel
 * heap (`readInto`); the cache stores its key/value rows from there and attention reads the
 * cached rows where they are. Returns null, having changed nothing, when a chunk of several
 * positions holds a NaN or an infinity: the caller then takes the reference path, whose
 * NaN semantics are PyTorch's (a hidden key's non-finite value still poisons `att @ v`, which
 * the kernel, reading only visible keys, would not reproduce).
 */
export function forwardKernel(a: KernelForwardArgs): tf.Tensor3D | null {
  const [B, T, C] = a.x.shape as [number, number, number];
  const { nHead: nh, nKvHeads: nkv, headSize: hs } = a.dims;
  const W = C + 2 * nkv * hs; // one c_attn row: [q | k | v]
  const heap = a.heap;
  const qkvBytes = B * T * W * 4;
  const io = heap.alloc(qkvBytes + B * T * C * 4); // staged rows, then the attention output
  try {
    const qkv = tf.tidy(() => a.cAttn.apply(tf.reshape(a.x, [B * T, C]) as tf.Tensor2D)); // (B*T, W)
    try {
      readInto(qkv, heap.f32(), io / 4);
    } finally {
      qkv.dispose();
    }
    if (T > 1 && !heap.allFinite(io, B * T * W)) return null;
    const out = io + qkvBytes;
    const rows: HeapRows = {
      heap,
      ptr: io,
      batchStride: T * W * 4,
      rowStride: W * 4,
      keyOffset: C * 4,
      valueOffset: (C + nkv * hs) * 4,
      batchSize: B,
      T,
    };
    // Every batch row's T queries from its start position (the pieces below narrow it).
    const queries = {
      ptr: io,
      batchStride: T * W * 4,
      rowStride: W * 4,
      T,
      nHead: nh,
      startPos: a.startPos,
    };
    const output = { ptr: out, batchStride: T * C * 4, rowStride: C * 4 };
    // Padding rows are not attended: their output stays 0 (the caller zeroes the module's too).
    if (a.spans) heap.f32().fill(0, out / 4, out / 4 + B * T * C);
    if (a.cache) {
      a.beforeWrite();
      if (!a.spans && a.cache.maxUpdateLength(a.layer, a.startPos, B) >= T) {
        // The common case: the whole chunk in one update and one kernel call.
        attend(a.cache.update(a.layer, rows, a.startPos), queries, output);
      } else {
        // A ring cache takes one position at a time once it is full: attend piece by piece.
        for (const p of cachePieces(a.cache, a.layer, a.startPos, T, a.spans)) {
          const spans = p.spans ? { spans: p.spans } : {};
          const piece = { ...rows, ptr: io + p.from * W * 4, T: p.T };
          const view = a.cache.update(a.layer, piece, p.startPos, spans);
          attend(
            view,
            { ...queries, ptr: piece.ptr, T: p.T, nHead: nh, startPos: p.startPos, ...spans },
            { ...output, ptr: out + p.from * C * 4 },
          );
        }
      }
    } else {
      attendOwnRows(
        rows,
        { nHead: nh, nKvHeads: nkv, headSize: hs },
        a.spans ? { ...queries, spans: a.spans } : queries,
        output,
      );
    }
    // tfjs copies the view into its own heap at once, so the kernel heap block can be freed.
    const y = tf.tensor2d(heap.f32().subarray(out / 4, out / 4 + B * T * C), [B * T, C]); // (B*T, C)
    try {
      return tf.tidy(() => tf.reshape(a.cProj.apply(y), [B, T, C]) as tf.Tensor3D);
    } finally {
      y.dispose();
    }
  } finally {
    heap.free(io);
  }
}

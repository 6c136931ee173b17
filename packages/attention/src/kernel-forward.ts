import {
  attend,
  attendOwnRows,
  type HeapRows,
  type KernelHeap,
  type KVCache,
  readInto,
} from '@kvkit/kv-cache';
import * as tf from '@tensorflow/tfjs-core';
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
  startPos: number;
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
    const queries = { ptr: io, batchStride: T * W * 4, rowStride: W * 4 };
    const output = { ptr: out, batchStride: T * C * 4, rowStride: C * 4 };
    if (a.cache) {
      a.beforeWrite();
      // A ring cache takes one position at a time once it is full: attend piece by piece.
      for (let done = 0; done < T; ) {
        const s = a.startPos + done;
        const n = Math.min(T - done, a.cache.maxUpdateLength(a.layer, s, B));
        const view = a.cache.update(a.layer, { ...rows, ptr: io + done * W * 4, T: n }, s);
        const at = done * W * 4;
        attend(
          view,
          { ...queries, ptr: io + at, T: n, nHead: nh, startPos: new Array(B).fill(s) },
          { ...output, ptr: out + done * C * 4 },
        );
        done += n;
      }
    } else {
      attendOwnRows(rows, { nHead: nh, nKvHeads: nkv, headSize: hs }, queries, output);
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

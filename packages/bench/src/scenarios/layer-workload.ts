import { CausalSelfAttention, GPT } from '@kvkit/attention';
import { attend, type CacheSpec } from '@kvkit/kv-cache';
import { rand, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import type { Timing } from '../report/schema.ts';
import type { ScenarioContext } from '../scenario.ts';
import { timeit } from '../timeit.ts';

/** One attention layer shaped like GPT-2 small (C=768, 12 heads), unless told otherwise. */
export interface LayerShape {
  C: number;
  nHead: number;
  nKvHeads?: number;
  B: number;
  blockSize: number;
  /** The cache strategy (the module's own cache); static when omitted. */
  cache?: CacheSpec;
}

export const gpt2Small = { C: 768, nHead: 12 } as const;
/** Quick runs shrink the layer so the whole smoke run stays well under a minute. */
export const quickLayer = { C: 64, nHead: 4 } as const;

/**
 * A layer whose cache can be filled to t positions, and the two ways of producing the next
 * token's attention output at context t: one cached decode step (write position t, attend
 * over t+1 keys) or the uncached forward of the whole prefix of t+1 tokens.
 */
export function layerWorkload(shape: LayerShape) {
  setSeed(0);
  const mha = new CausalSelfAttention(
    {
      ...GPT.getDefaultConfig(),
      nEmbd: shape.C,
      nHead: shape.nHead,
      nKvHeads: shape.nKvHeads ?? null,
      blockSize: shape.blockSize,
      maxBatchSize: shape.B,
    },
    shape.cache ? { cache: shape.cache } : {},
  ).eval();
  const x = rand([shape.B, shape.blockSize, shape.C]);
  const token = tf.slice(x, [0, 0, 0], [shape.B, 1, shape.C]);
  return {
    mha,
    /** Caches positions [0, t) (in chunks, so no single call is huge). */
    fill(t: number): void {
      mha.resetCache();
      for (let start = 0; start < t; start += 256) {
        const n = Math.min(256, t - start);
        const chunk = tf.slice(x, [0, start, 0], [shape.B, n, shape.C]);
        mha.forward(chunk, { useKvCache: true, startPos: start }).dispose();
        chunk.dispose();
      }
    },
    /**
     * Caches positions [0, t) with random keys and values written straight into the cache (no
     * projections: what a step then costs does not depend on how the rows got there), in the
     * largest updates the strategy takes.
     */
    fillDirect(t: number): void {
      mha.forward(token, { useKvCache: true, startPos: 0 }).dispose(); // builds the module's cache
      const cache = mha.kvCache!;
      cache.reset();
      const { nKvHeads: nkv, headSize: hs } = mha.dims;
      for (let start = 0; start < t; ) {
        const n = Math.min(t - start, 256, cache.maxUpdateLength(mha.layer, start, shape.B));
        const rows = tf.tidy(() =>
          tf.randomUniform([shape.B, nkv, n, hs], -1, 1, 'float32', start),
        );
        cache.update(mha.layer, { keys: rows, values: rows }, start);
        rows.dispose();
        start += n;
      }
    },
    /** One decode step at context t (the cache must hold at least t positions). */
    cachedStep(t: number): void {
      mha.forward(token, { useKvCache: true, startPos: t }).dispose();
    },
    /** The prefix [0, t] as a tensor, for uncachedStep. */
    prefix(t: number): tf.Tensor {
      return tf.slice(x, [0, 0, 0], [shape.B, t + 1, shape.C]);
    },
    uncachedStep(prefix: tf.Tensor): void {
      mha.forward(prefix).dispose();
    },
    /**
     * The attention part of a decode step at context t alone: kvkit's kernel over the t + 1
     * cached rows, for one query row per head (the projections around it are left out). The
     * cache must hold t + 1 positions. Returns the bytes of K and V it reads.
     */
    attentionOnly(t: number): { run: () => void; bytes: number; dispose: () => void } {
      const cache = mha.kvCache!;
      const heap = cache.heap;
      const { nHead: nh, nKvHeads: nkv, headSize: hs } = mha.dims;
      const rowBytes = nh * hs * 4;
      const q = heap.alloc(shape.B * rowBytes);
      const out = heap.alloc(shape.B * rowBytes);
      heap.f32().fill(0.01, q / 4, q / 4 + shape.B * nh * hs);
      const view = cache.view(mha.layer, shape.B); // the layout the module's step reads
      // Made once: the timed call is the kernel and attend()'s own checks, nothing of ours.
      const queries = {
        ptr: q,
        batchStride: rowBytes,
        rowStride: rowBytes,
        T: 1,
        nHead: nh,
        startPos: new Array<number>(shape.B).fill(t),
      };
      const output = { ptr: out, batchStride: rowBytes, rowStride: rowBytes };
      return {
        run: () => attend(view, queries, output),
        bytes: 2 * shape.B * nkv * (t + 1) * hs * 4,
        dispose: () => {
          heap.free(q);
          heap.free(out);
        },
      };
    },
    dispose(): void {
      tf.dispose([x, token]);
      mha.dispose();
    },
  };
}

/**
 * Builds a layer, caches t positions and times one decode step there: the measurement the
 * capacity, heads and batch scenarios each make for several shapes.
 */
export function timeDecodeStep(
  ctx: ScenarioContext,
  shape: LayerShape,
  t: number,
  message: string,
): { timing: Timing; bytesUsed: number; bytesReserved: number } {
  const w = layerWorkload(shape);
  try {
    w.fill(t);
    ctx.progress(message);
    const timing = timeit(() => w.cachedStep(t), { budgetMs: 10_000, ...ctx.timing });
    const cache = w.mha.kvCache!;
    return { timing, bytesUsed: cache.bytesUsed(), bytesReserved: cache.bytesReserved() };
  } finally {
    w.dispose();
  }
}

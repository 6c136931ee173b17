import { CausalSelfAttention, GPT } from '@kvkit/attention';
import { rand, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';

/** One attention layer shaped like GPT-2 small (C=768, 12 heads), unless told otherwise. */
export interface LayerShape {
  C: number;
  nHead: number;
  nKvHeads?: number;
  B: number;
  blockSize: number;
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
  const mha = new CausalSelfAttention({
    ...GPT.getDefaultConfig(),
    nEmbd: shape.C,
    nHead: shape.nHead,
    nKvHeads: shape.nKvHeads ?? null,
    blockSize: shape.blockSize,
    maxBatchSize: shape.B,
  }).eval();
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
    dispose(): void {
      tf.dispose([x, token]);
      mha.dispose();
    },
  };
}

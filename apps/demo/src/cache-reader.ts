// The one place the demo reads a KV cache, through the public API that exists today:
// `mha.kvCache` (the KVCache contract: seqLength per row), `mha.cacheK` / `mha.cacheV` (the
// static cache's snapshot, the seed's `cache_k` / `cache_v`), and `mha.cAttn` for the query.
// When the cache contract changes (per-row lengths, strategies without a fixed layout), this
// module is what adapts; the panels only see `CacheSnapshot` and `strategies`.
import { CausalSelfAttention, type GPTConfig } from '@kvkit/attention';
import { setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';

/** A cache strategy the demo can show: how to build a module that uses it. */
export interface StrategyChoice {
  id: string;
  label: string;
  /** Builds the seeded module (weights as the notebook's) with this strategy's cache. */
  build(config: GPTConfig): CausalSelfAttention;
}

/** Every cache strategy kvkit has today; a new strategy is one more entry. */
export const strategies: readonly StrategyChoice[] = [
  {
    id: 'static',
    label: "static (the notebook's)",
    build(config) {
      setSeed(42);
      return new CausalSelfAttention(config).eval();
    },
  },
];

/** What the cache holds for the first `batchRows` batch rows, copied out of it. */
export interface CacheSnapshot {
  /** Positions the cache can hold (Tmax). */
  capacity: number;
  nKvHeads: number;
  headSize: number;
  /** Positions each batch row has seen (`seqLength(layer, row)`: rows have their own). */
  lengths: number[];
  /** Per batch row: keys, then values, `(nkv, Tmax, hs)` row-major. */
  keys: Float32Array[];
  values: Float32Array[];
  /** `mha.cacheK`, rows [0, batchRows): for printing the torch way, as the notebook does. */
  keysTensor: tf.Tensor;
}

/** Reads the cache of `mha` (null before its first cached forward). Dispose keysTensor. */
export function readCache(mha: CausalSelfAttention, batchRows: number): CacheSnapshot | null {
  const cache = mha.kvCache;
  const cacheK = mha.cacheK; // (maxBatchSize, nkv, Tmax, hs)
  const cacheV = mha.cacheV;
  if (!cache || !cacheK || !cacheV) {
    tf.dispose([cacheK, cacheV].filter((t): t is tf.Tensor4D => t !== null));
    return null;
  }
  const [, nkv, tmax, hs] = cacheK.shape;
  const keysTensor = tf.slice(cacheK, [0, 0, 0, 0], [batchRows, nkv, tmax, hs]);
  const k = keysTensor.dataSync() as Float32Array;
  const v = cacheV.dataSync() as Float32Array;
  const per = nkv * tmax * hs;
  const snapshot: CacheSnapshot = {
    capacity: tmax,
    nKvHeads: nkv,
    headSize: hs,
    lengths: Array.from({ length: batchRows }, (_, b) => cache.seqLength(mha.layer, b)),
    keys: Array.from({ length: batchRows }, (_, b) => k.slice(b * per, (b + 1) * per)),
    values: Array.from({ length: batchRows }, (_, b) => v.slice(b * per, (b + 1) * per)),
    keysTensor,
  };
  tf.dispose([cacheK, cacheV]);
  return snapshot;
}

/**
 * The attention weights of the newest query (the last row of `x`, `(B, T, C)`) over the cached
 * positions, per batch row and query head: softmax(q k^T / sqrt(hs)), recomputed in float64
 * from the module's c_attn weights and the cache snapshot (query head h reads kv head
 * floor(h / (nh / nkv))). Call after the forward that wrote `x`.
 */
export function newestQueryWeights(
  mha: CausalSelfAttention,
  x: tf.Tensor,
  snapshot: CacheSnapshot,
): number[][][] {
  const [B, T, C] = x.shape as [number, number, number];
  const { nHead } = mha.dims;
  const hs = snapshot.headSize;
  const last = tf.tidy(() => {
    const row = tf.reshape(tf.slice(x, [0, T - 1, 0], [B, 1, C]), [B, C]) as tf.Tensor2D;
    return mha.cAttn.apply(row); // (B, C + 2*nkv*hs): [q | k | v]
  });
  const qkv = last.dataSync();
  const width = last.shape[1];
  last.dispose();
  const group = nHead / snapshot.nKvHeads;
  return Array.from({ length: B }, (_, b) =>
    Array.from({ length: nHead }, (_, h) => {
      const len = snapshot.lengths[b]!;
      const kvh = Math.floor(h / group);
      const scores = Array.from({ length: len }, (_, t) => {
        let dot = 0;
        for (let d = 0; d < hs; d++) {
          const q = qkv[b * width + h * hs + d]!;
          dot += q * snapshot.keys[b]![(kvh * snapshot.capacity + t) * hs + d]!;
        }
        return dot / Math.sqrt(hs);
      });
      const max = Math.max(...scores);
      const exps = scores.map((s) => Math.exp(s - max));
      const sum = exps.reduce((a, e) => a + e, 0);
      return exps.map((e) => e / sum);
    }),
  );
}

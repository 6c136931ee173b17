// The one place the demo reads a KV cache, through the public contract every strategy keeps:
// `kvCache.read(layer, B)` (the rows each batch row holds, in position order, with each key's
// position), `seqLength(layer, row)` and `slotsHeld(layer, row)` per row, `visibility`, and
// `bytesUsed()` / `bytesReserved()` (a quantized cache's `read` gives its rows dequantized, and
// its `quantizedLength` how many are quantized). The static cache's `mha.cacheK` snapshot (the notebook's
// `cache_k`) exists for that strategy only and is used only to print it as the notebook does.
// The panels only see `CacheSnapshot`.
import type { CausalSelfAttention } from '@kvkit/attention';
import { QuantizedKVCache, type Visibility } from '@kvkit/kv-cache';
import { formatTensor } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';

/** What one batch row holds. */
export interface RowSnapshot {
  /** Positions the row has seen (`seqLength`): where its next token goes. */
  seqLength: number;
  /** Slots it holds (`slotsHeld`): fewer than seqLength once a windowed cache evicts. */
  slotsHeld: number;
  /** The positions held, ascending. */
  positions: number[];
  /** How many of them (the oldest) a quantized cache holds in int8 / int4; 0 for the others. */
  quantized: number;
  /** Keys, then values, of the held positions: `(nkv, positions.length, hs)` row-major. */
  keys: Float32Array;
  values: Float32Array;
}

/** What the cache holds for the first `batchRows` batch rows, copied out of it. */
export interface CacheSnapshot {
  strategy: string;
  nKvHeads: number;
  headSize: number;
  visibility: Visibility;
  rows: RowSnapshot[];
  bytesUsed: number;
  bytesReserved: number;
  /** The held keys printed the torch way, and what they are. */
  printed: { label: string; text: string };
}

/** Reads the cache of `mha` (null before its first cached forward). */
export function readCache(mha: CausalSelfAttention, batchRows: number): CacheSnapshot | null {
  const cache = mha.kvCache;
  if (!cache) return null;
  const { layer } = mha;
  const { keys, values, positions } = cache.read(layer, batchRows); // (B, nkv, t, hs) each
  const [, nkv, t, hs] = keys.shape as [number, number, number, number];
  let k: Float32Array;
  let v: Float32Array;
  let printed: CacheSnapshot['printed'];
  try {
    k = keys.dataSync() as Float32Array;
    v = values.dataSync() as Float32Array;
    printed = printedKeys(mha, batchRows, keys);
  } finally {
    tf.dispose([keys, values]);
  }
  const rows = Array.from({ length: batchRows }, (_, b): RowSnapshot => {
    const held: number[] = []; // columns of row b that hold a position
    for (let j = 0; j < t; j++) if (positions[b * t + j]! >= 0) held.push(j);
    const pick = (src: Float32Array) => {
      const out = new Float32Array(nkv * held.length * hs);
      for (let h = 0; h < nkv; h++) {
        held.forEach((j, i) => {
          const from = ((b * nkv + h) * t + j) * hs;
          out.set(src.subarray(from, from + hs), (h * held.length + i) * hs);
        });
      }
      return out;
    };
    return {
      seqLength: cache.seqLength(layer, b),
      slotsHeld: cache.slotsHeld(layer, b),
      positions: held.map((j) => positions[b * t + j]!),
      quantized: cache instanceof QuantizedKVCache ? cache.quantizedLength(layer, b) : 0,
      keys: pick(k),
      values: pick(v),
    };
  });
  return {
    strategy: cache.strategy,
    nKvHeads: nkv,
    headSize: hs,
    visibility: cache.visibility,
    rows,
    bytesUsed: cache.bytesUsed(),
    bytesReserved: cache.bytesReserved(),
    printed,
  };
}

/** The static cache prints as the notebook's `mha.cache_k[:B]`; any other strategy its `read` keys. */
function printedKeys(
  mha: CausalSelfAttention,
  batchRows: number,
  keys: tf.Tensor,
): CacheSnapshot['printed'] {
  const cacheK = mha.kvCache?.strategy === 'static' ? mha.cacheK : null; // (maxBatchSize, nkv, Tmax, hs)
  if (!cacheK) {
    return { label: `kvCache.read(${mha.layer}, ${batchRows}).keys`, text: formatTensor(keys) };
  }
  const [, nkv, tmax, hs] = cacheK.shape;
  const shown = tf.slice(cacheK, [0, 0, 0, 0], [batchRows, nkv, tmax, hs]);
  try {
    return {
      label: `mha.cacheK[:${batchRows}], as the notebook prints it`,
      text: formatTensor(shown),
    };
  } finally {
    tf.dispose([cacheK, shown]);
  }
}

/** Whether a query at `query` sees the key at `p` under the cache's visibility rule. */
export function visible(v: Visibility, query: number, p: number): boolean {
  return p <= query && (v.window === null || p > query - v.window || p < v.sinks);
}

/**
 * The attention weights of each row's newest query (its last column of `x`, `(B, T, C)`: every
 * row's newest token with left padding or none) over the positions it sees, per batch row and
 * query head, indexed by position (null where the query sees nothing: not held, or outside its
 * window): softmax(q k^T / sqrt(hs)), recomputed in float64 from the module's c_attn weights
 * and the snapshot (query head h reads kv head floor(h / (nh / nkv))). Call after the forward
 * that wrote `x`.
 */
export function newestQueryWeights(
  mha: CausalSelfAttention,
  x: tf.Tensor,
  snapshot: CacheSnapshot,
): (number | null)[][][] {
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
  return Array.from({ length: B }, (_, b) => {
    const row = snapshot.rows[b]!;
    const query = row.seqLength - 1;
    const n = row.positions.length;
    const seen = row.positions
      .map((p, i) => ({ p, i }))
      .filter(({ p }) => visible(snapshot.visibility, query, p));
    return Array.from({ length: nHead }, (_, h) => {
      const kvh = Math.floor(h / group);
      const scores = seen.map(({ i }) => {
        let dot = 0;
        for (let d = 0; d < hs; d++) {
          dot += qkv[b * width + h * hs + d]! * row.keys[(kvh * n + i) * hs + d]!;
        }
        return dot / Math.sqrt(hs);
      });
      const max = Math.max(...scores);
      const exps = scores.map((s) => Math.exp(s - max));
      const sum = exps.reduce((a, e) => a + e, 0);
      const out: (number | null)[] = new Array(Math.max(0, row.seqLength)).fill(null);
      seen.forEach(({ p }, j) => {
        out[p] = exps[j]! / sum;
      });
      return out;
    });
  });
}

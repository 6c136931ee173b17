import * as tf from '@tensorflow/tfjs-core';
import type { KVCache } from '../src/index.ts';

/**
 * Keys and values `(B, 1, T, 1)` whose only element is a token id (values = 10x the id), so a
 * cache's contents read back as the ids it holds: Hugging Face's cache-test style.
 */
export function ids(rows: number[][]): { keys: tf.Tensor4D; values: tf.Tensor4D } {
  const B = rows.length;
  const T = rows[0]!.length;
  return {
    keys: tf.tensor4d(rows.flat(), [B, 1, T, 1]),
    values: tf.tensor4d(
      rows.flat().map((x) => 10 * x),
      [B, 1, T, 1],
    ),
  };
}

/** What batch rows [0, B) hold, per row in position order: the key ids and their positions. */
export function held(
  cache: KVCache,
  B: number,
  layer = 0,
): { ids: number[][]; positions: number[][] } {
  const r = cache.read(layer, B);
  const t = r.keys.shape[2]!;
  const k = Array.from(r.keys.dataSync());
  const out = {
    ids: Array.from({ length: B }, (_, b) =>
      k.slice(b * t, (b + 1) * t).filter((_, i) => r.positions[b * t + i]! >= 0),
    ),
    positions: Array.from({ length: B }, (_, b) =>
      Array.from(r.positions.subarray(b * t, (b + 1) * t)).filter((p) => p >= 0),
    ),
  };
  tf.dispose([r.keys, r.values]);
  return out;
}

/** Writes `rows` at each row's current length (the common case) and disposes the tensors. */
export function append(cache: KVCache, rows: number[][], layer = 0): void {
  const starts = rows.map((_, b) => cache.seqLength(layer, b));
  const t = ids(rows);
  try {
    cache.update(layer, t, starts);
  } finally {
    tf.dispose([t.keys, t.values]);
  }
}

/** Everything observable about a cache, to check that a rejected call changed nothing. */
export function state(cache: KVCache, B: number): unknown {
  const layers = Array.from({ length: cache.nLayers }, (_, l) => {
    const lengths = Array.from({ length: B }, (_, b) => cache.seqLength(l, b));
    const rows = lengths.some((n) => n > 0) ? held(cache, B, l) : null;
    return { lengths, rows };
  });
  return { layers, used: cache.bytesUsed(), reserved: cache.bytesReserved() };
}

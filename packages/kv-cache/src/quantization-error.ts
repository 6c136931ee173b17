import { ShapeError, ValueError } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { attend } from './kernel/attend.ts';
import type { KVCache } from './kv-cache.ts';

/** Largest and mean absolute difference over a set of elements. */
export interface ErrorStats {
  max: number;
  mean: number;
}

/** What `quantizationError` reports. */
export interface QuantizationErrorReport {
  /** Over every key / value element held by both caches. */
  keys: ErrorStats;
  values: ErrorStats;
  /** Over every element of one attention output row per batch row and query head. */
  attention: ErrorStats;
  /** Positions compared (summed over batch rows). */
  positions: number;
}

export interface QuantizationErrorOptions {
  layer?: number;
  /** Batch rows [0, batchSize) are compared; each must hold at least one position. Default 1. */
  batchSize?: number;
  /** Query heads (a multiple of nKvHeads); default nKvHeads. */
  nHead?: number;
  /**
   * Query rows `(B, nHead * hs)`, at each batch row's last position; uniform in [-1, 1) from
   * `seed` when omitted.
   */
  queries?: Float32Array;
  seed?: number;
}

/**
 * How far a cache (a `QuantizedKVCache`, say) is from a float cache fed the same tokens: the
 * keys and values each holds (`read`), and attention's kernel over each, for one query per batch
 * row and head at the row's last position (it sees every position held).
 *
 * @example
 * const q = new QuantizedKVCache({ bits: 8, nKvHeads: 12, headSize: 64 });
 * const f = new DynamicKVCache({ nKvHeads: 12, headSize: 64 });
 * for (const c of [q, f]) c.update(0, { keys, values }, 0);
 * quantizationError(q, f, { nHead: 12 }).attention; // { max, mean }
 */
export function quantizationError(
  cache: KVCache,
  reference: KVCache,
  options: QuantizationErrorOptions = {},
): QuantizationErrorReport {
  const { layer = 0, batchSize: B = 1, seed = 1 } = options;
  const { nKvHeads: nkv, headSize: hs } = cache;
  const nh = options.nHead ?? nkv;
  if (reference.nKvHeads !== nkv || reference.headSize !== hs) {
    throw new ShapeError(
      `quantizationError: the caches differ in shape: nkv ${nkv} / ${reference.nKvHeads}, hs ${hs} / ${reference.headSize}`,
      { expected: [nkv, hs], actual: [reference.nKvHeads, reference.headSize] },
    );
  }
  if (!Number.isInteger(nh) || nh < 1 || nh % nkv !== 0) {
    throw new ValueError(
      `quantizationError: nHead must be a positive multiple of ${nkv}, got ${nh}`,
      {
        argument: 'nHead',
        value: nh,
      },
    );
  }
  const lengths = Array.from({ length: B }, (_, b) => cache.seqLength(layer, b));
  lengths.forEach((n, b) => {
    if (n < 1 || reference.seqLength(layer, b) !== n) {
      throw new ValueError(
        `quantizationError: batch row ${b} holds ${n} positions here and ${reference.seqLength(layer, b)} in the reference; both must hold the same positive number`,
        { argument: 'reference', value: reference.seqLength(layer, b) },
      );
    }
  });
  const queries = options.queries ?? uniform(B * nh * hs, seed);
  if (queries.length !== B * nh * hs) {
    throw new ShapeError(
      `quantizationError: queries must hold B x nHead x hs = ${B * nh * hs} floats, got ${queries.length}`,
      { expected: [B, nh * hs], actual: [queries.length] },
    );
  }
  const [keys, values, positions] = compareRows(cache, reference, layer, B);
  const a = kernelOutput(cache, layer, B, nh, queries, lengths);
  const b = kernelOutput(reference, layer, B, nh, queries, lengths);
  return { keys, values, attention: stats(a, b), positions };
}

function compareRows(
  cache: KVCache,
  reference: KVCache,
  layer: number,
  B: number,
): [ErrorStats, ErrorStats, number] {
  const x = cache.read(layer, B);
  const y = reference.read(layer, B);
  try {
    const same =
      x.keys.shape.every((d, i) => d === y.keys.shape[i]) &&
      x.positions.every((p, i) => p === y.positions[i]);
    if (!same) {
      throw new ValueError(
        'quantizationError: the caches hold different positions (compare a cache with a float cache of the same strategy window)',
        { argument: 'reference', value: reference.strategy },
      );
    }
    const t = x.keys.shape[2]!;
    const hs = x.keys.shape[3]!;
    const keep = (k: Float32Array) =>
      k.filter(
        (_, i) =>
          x.positions[Math.floor(i / (hs * t * cache.nKvHeads)) * t + (Math.floor(i / hs) % t)]! >=
          0,
      );
    const kx = keep(x.keys.dataSync() as Float32Array);
    const ky = keep(y.keys.dataSync() as Float32Array);
    const vx = keep(x.values.dataSync() as Float32Array);
    const vy = keep(y.values.dataSync() as Float32Array);
    return [stats(kx, ky), stats(vx, vy), x.positions.filter((p) => p >= 0).length];
  } finally {
    tf.dispose([x.keys, x.values, y.keys, y.values]);
  }
}

function kernelOutput(
  cache: KVCache,
  layer: number,
  B: number,
  nh: number,
  queries: Float32Array,
  lengths: number[],
): Float32Array {
  const heap = cache.heap;
  const rowBytes = nh * cache.headSize * 4;
  const q = heap.alloc(B * rowBytes);
  const out = heap.alloc(B * rowBytes);
  try {
    heap.f32().set(queries, q / 4);
    attend(
      cache.view(layer, B),
      {
        ptr: q,
        batchStride: rowBytes,
        rowStride: rowBytes,
        T: 1,
        nHead: nh,
        startPos: lengths.map((n) => n - 1),
      },
      { ptr: out, batchStride: rowBytes, rowStride: rowBytes },
    );
    return heap.f32().slice(out / 4, out / 4 + queries.length);
  } finally {
    heap.free(q);
    heap.free(out);
  }
}

function stats(a: ArrayLike<number>, b: ArrayLike<number>): ErrorStats {
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    max = Math.max(max, d);
    sum += d;
  }
  return { max, mean: a.length === 0 ? 0 : sum / a.length };
}

/** Floats uniform in [-1, 1) from a small LCG (reproducible queries, not for statistics). */
function uniform(n: number, seed: number): Float32Array {
  let x = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return (x / 2 ** 32) * 2 - 1;
  });
}

import {
  CacheCapacityError,
  CacheOperationError,
  DisposedError,
  DTypeError,
  ShapeError,
  ValueError,
} from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { KernelHeap } from './kernel/kernel-heap.ts';
import type { CropOptions, KVCacheOptions, KVRows, RowSpans, StartPositions } from './kv-cache.ts';

/**
 * Argument checks shared by the cache strategies. Each throws a typed error whose message
 * names the offending values; none of them mutates anything.
 */

/** Positions are int32 in the kernel: no sequence may reach this. */
export const MAX_POSITION = 0x7fffffff;

/** A required positive integer option (a missing key is an error, not NaN later). */
export function positiveInteger(
  options: object,
  argument: string,
  { required = true, max = MAX_POSITION }: { required?: boolean; max?: number } = {},
): number | null {
  const value = (options as Record<string, unknown>)[argument];
  if (value === undefined && !required) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new ValueError(
      `KV cache ${argument} must be a positive integer${max < MAX_POSITION ? ` <= ${max}` : ''}, got ${String(value)}`,
      { argument, value },
    );
  }
  return value;
}

export function checkCacheOptions(options: KVCacheOptions & { maxBatchSize?: number | null }): {
  nLayers: number;
  nKvHeads: number;
  headSize: number;
  maxBatchSize: number | null;
  maxBytes: number | null;
} {
  if (typeof options !== 'object' || options === null) {
    throw new ValueError(`KV cache options must be an object, got ${String(options)}`, {
      argument: 'options',
      value: options,
    });
  }
  if (options.heap !== undefined && !(options.heap instanceof KernelHeap)) {
    throw new ValueError('KV cache heap must be a KernelHeap', {
      argument: 'heap',
      value: options.heap,
    });
  }
  return {
    nLayers: positiveInteger({ nLayers: options.nLayers ?? 1 }, 'nLayers', { max: 65536 })!,
    nKvHeads: positiveInteger(options, 'nKvHeads', { max: 65536 })!,
    headSize: positiveInteger(options, 'headSize', { max: 65536 })!,
    maxBatchSize:
      options.maxBatchSize === null
        ? null
        : positiveInteger(options, 'maxBatchSize', { required: false, max: 1 << 20 }),
    maxBytes: checkMaxBytes(options.maxBytes),
  };
}

/** A memory budget: null/undefined (none) or a non-negative integer number of bytes. */
export function checkMaxBytes(maxBytes: unknown): number | null {
  if (maxBytes === undefined || maxBytes === null) return null;
  if (typeof maxBytes !== 'number' || !Number.isSafeInteger(maxBytes) || maxBytes < 0) {
    throw new ValueError(
      `KV cache maxBytes must be a non-negative integer number of bytes or null, got ${String(maxBytes)}`,
      { argument: 'maxBytes', value: maxBytes },
    );
  }
  return maxBytes;
}

/**
 * Batch rows for `reorder` / `fork`: a non-empty array of integer rows of the cache, at most
 * `maxBatchSize` of them.
 */
export function checkRowList(
  rows: readonly number[],
  maxBatchSize: number | null,
  operation: string,
): number[] {
  if (!Array.isArray(rows) && !ArrayBuffer.isView(rows)) {
    throw new ValueError(`${operation}: expected an array of batch rows, got ${String(rows)}`, {
      argument: 'rows',
      value: rows,
    });
  }
  if (rows.length === 0) {
    throw new ValueError(`${operation}: expected at least one batch row, got none`, {
      argument: 'rows',
      value: rows,
    });
  }
  const limit = maxBatchSize ?? 1 << 20;
  if (rows.length > limit) {
    throw new CacheCapacityError(`${operation}: ${rows.length} rows exceed maxBatchSize ${limit}`, {
      capacity: limit,
      requested: rows.length,
    });
  }
  for (const [i, r] of Array.from(rows).entries()) {
    if (!Number.isInteger(r) || r < 0 || r >= limit) {
      throw new ValueError(
        `${operation}: row ${i} is ${r}, not a batch row of this cache (0 <= row < ${limit})`,
        { argument: 'rows', value: r },
      );
    }
  }
  return Array.from(rows);
}

/** Spans of a ragged update: per batch row, columns [first, first + count) within [0, T). */
export function checkSpans(spans: RowSpans, batchSize: number, T: number): RowSpans {
  if (typeof spans !== 'object' || spans === null) {
    throw new ValueError(`spans must be { first, count } arrays, got ${String(spans)}`, {
      argument: 'spans',
      value: spans,
    });
  }
  for (const key of ['first', 'count'] as const) {
    const a = spans[key];
    if (!Array.isArray(a) && !ArrayBuffer.isView(a)) {
      throw new ValueError(`spans.${key} must be an array, got ${String(a)}`, {
        argument: `spans.${key}`,
        value: a,
      });
    }
    if (a.length !== batchSize) {
      throw new ShapeError(
        `spans.${key} must give one number per batch row (${batchSize}), got ${a.length}`,
        { expected: [batchSize], actual: [a.length] },
      );
    }
  }
  for (let b = 0; b < batchSize; b++) {
    const first = spans.first[b]!;
    const count = spans.count[b]!;
    if (
      !Number.isInteger(first) ||
      !Number.isInteger(count) ||
      first < 0 ||
      count < 0 ||
      first + count > T
    ) {
      throw new ValueError(
        `spans of batch row ${b}: columns [${first}, ${first} + ${count}) must lie within the update's [0, ${T})`,
        { argument: 'spans', value: [first, count] },
      );
    }
  }
  return { first: Array.from(spans.first), count: Array.from(spans.count) };
}

export function checkLayer(layer: number, nLayers: number): void {
  if (!Number.isInteger(layer) || layer < 0 || layer >= nLayers) {
    throw new ValueError(`layer ${layer} is out of range: this cache holds ${nLayers} layer(s)`, {
      argument: 'layer',
      value: layer,
    });
  }
}

export function checkBatch(batchSize: number, maxBatchSize: number | null): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new ValueError(`batch size must be a positive integer, got ${batchSize}`, {
      argument: 'batchSize',
      value: batchSize,
    });
  }
  if (maxBatchSize !== null && batchSize > maxBatchSize) {
    throw new CacheCapacityError(`batch size ${batchSize} exceeds maxBatchSize ${maxBatchSize}`, {
      capacity: maxBatchSize,
      requested: batchSize,
    });
  }
}

/** A batch row index, below maxBatchSize when there is one. */
export function checkRowIndex(row: number, maxBatchSize: number | null): void {
  if (!Number.isInteger(row) || row < 0 || (maxBatchSize !== null && row >= maxBatchSize)) {
    throw new ValueError(
      `batch row ${row} is out of range${maxBatchSize === null ? '' : `: this cache holds ${maxBatchSize} row(s)`}`,
      { argument: 'row', value: row },
    );
  }
}

/**
 * One batch row's part of `checkUpdate`, the same for every strategy: no gap past the `seen`
 * positions, no overwrite below them unless the update crops first (then `checkCrop` says
 * whether the strategy can), no position past `limit` (`limitLabel` says what bounds it).
 */
export function checkRowUpdate(
  row: number,
  start: number,
  seen: number,
  newPositions: number,
  o: { crop: boolean; strategy: string; limit: number; limitLabel: string; checkCrop?: () => void },
): void {
  if (start > seen) {
    throw new ValueError(
      `startPos ${start} of batch row ${row} would leave a gap: it has seen positions [0, ${seen}), so startPos must be <= ${seen}`,
      { argument: 'startPos', value: start },
    );
  }
  if (start < seen) {
    if (!o.crop) {
      throw new CacheOperationError(
        `batch row ${row} has seen ${seen} positions; an update at startPos ${start} would overwrite [${start}, ${seen}): crop(${start}) first`,
        { strategy: o.strategy, operation: 'update' },
      );
    }
    o.checkCrop?.();
  }
  if (start + newPositions > o.limit) {
    throw new CacheCapacityError(
      `startPos + T = ${start} + ${newPositions} = ${start + newPositions} exceeds the capacity (${o.limitLabel}) ${o.limit}`,
      { capacity: o.limit, requested: start + newPositions },
    );
  }
}

export function checkUpdateLength(newPositions: number): void {
  if (!Number.isInteger(newPositions) || newPositions < 1) {
    throw new ShapeError(`T must be at least 1 new position, got ${newPositions}`, {
      expected: 'T >= 1',
      actual: [newPositions],
    });
  }
}

/** One start position per batch row, each a non-negative integer. */
export function checkStartPositions(startPos: StartPositions, batchSize: number): number[] {
  const starts =
    typeof startPos === 'number' ? new Array<number>(batchSize).fill(startPos) : startPos;
  if (!Array.isArray(starts) && !ArrayBuffer.isView(starts)) {
    throw new ValueError(
      `startPos must be a number or an array of numbers, got ${String(startPos)}`,
      {
        argument: 'startPos',
        value: startPos,
      },
    );
  }
  if (starts.length !== batchSize) {
    throw new ShapeError(
      `startPos must give one position per batch row (${batchSize}), got ${starts.length}`,
      { expected: [batchSize], actual: [starts.length] },
    );
  }
  for (const s of starts) {
    if (!Number.isInteger(s) || s < 0 || s >= MAX_POSITION) {
      throw new ValueError(`startPos must be a non-negative integer position, got ${s}`, {
        argument: 'startPos',
        value: s,
      });
    }
  }
  return Array.from(starts);
}

/** New rows: float32 `(B, nkv, T, hs)` key and value tensors, or heap rows on the cache's heap. */
export function checkRows(
  rows: KVRows,
  nKvHeads: number,
  headSize: number,
  heap: KernelHeap,
): { batchSize: number; T: number } {
  if (typeof rows !== 'object' || rows === null) {
    throw new ValueError(
      `rows must be { keys, values } tensors or heap rows, got ${String(rows)}`,
      {
        argument: 'rows',
        value: rows,
      },
    );
  }
  if ('ptr' in rows) {
    if (rows.heap !== heap) {
      throw new ValueError('heap rows must live in the cache’s own heap', {
        argument: 'rows.heap',
        value: rows.heap,
      });
    }
    for (const key of ['ptr', 'batchStride', 'rowStride', 'keyOffset', 'valueOffset'] as const) {
      if (!Number.isInteger(rows[key]) || rows[key] < 0) {
        throw new ValueError(
          `rows.${key} must be a non-negative integer byte count, got ${rows[key]}`,
          {
            argument: `rows.${key}`,
            value: rows[key],
          },
        );
      }
    }
    checkBatch(rows.batchSize, null);
    checkUpdateLength(rows.T);
    const end =
      rows.ptr +
      (rows.batchSize - 1) * rows.batchStride +
      (rows.T - 1) * rows.rowStride +
      Math.max(rows.keyOffset, rows.valueOffset) +
      nKvHeads * headSize * 4;
    if (end > heap.bytesTotal()) {
      throw new ValueError(
        `heap rows end at byte ${end}, past the heap's ${heap.bytesTotal()} bytes`,
        {
          argument: 'rows',
          value: rows,
        },
      );
    }
    return { batchSize: rows.batchSize, T: rows.T };
  }
  const { keys, values } = rows;
  for (const [name, t] of [
    ['keys', keys],
    ['values', values],
  ] as const) {
    if (!(t instanceof tf.Tensor)) {
      throw new ValueError(`${name} must be a tf.Tensor, got ${typeof t}`, {
        argument: name,
        value: t,
      });
    }
    if (t.isDisposed) throw new DisposedError(`${name} tensor`);
    if (t.dtype !== 'float32') {
      throw new DTypeError(`${name} must be float32, got ${t.dtype}`, {
        expected: 'float32',
        actual: t.dtype,
      });
    }
    if (t.rank !== 4 || t.shape[1] !== nKvHeads || t.shape[3] !== headSize) {
      throw new ShapeError(
        `${name} must have shape (B, nkv=${nKvHeads}, T, hs=${headSize}), got [${t.shape.join(', ')}]`,
        { expected: `[B, ${nKvHeads}, T, ${headSize}]`, actual: t.shape },
      );
    }
  }
  if (keys.shape.some((d, i) => d !== values.shape[i])) {
    throw new ShapeError(
      `keys and values must have the same shape, got [${keys.shape.join(', ')}] and [${values.shape.join(', ')}]`,
      { expected: keys.shape, actual: values.shape },
    );
  }
  const [B, , T] = keys.shape as [number, number, number, number];
  checkBatch(B, null);
  checkUpdateLength(T);
  return { batchSize: B, T };
}

/** A length for `crop` or `reserve`: a non-negative integer. */
export function checkLength(call: 'crop' | 'reserve', length: number): void {
  if (!Number.isInteger(length) || length < 0) {
    throw new ValueError(`${call}: length must be a non-negative integer, got ${length}`, {
      argument: 'length',
      value: length,
    });
  }
}

/** The layers a crop names: one, or all of them. */
export function cropLayers(options: CropOptions, nLayers: number): number[] {
  if (options.layer === undefined) return Array.from({ length: nLayers }, (_, l) => l);
  checkLayer(options.layer, nLayers);
  return [options.layer];
}

/** The batch rows a crop names: the given ones (checked), or the `known` rows. */
export function cropRows(
  options: CropOptions,
  known: number,
  maxBatchSize: number | null,
): readonly number[] {
  if (options.rows === undefined) return Array.from({ length: known }, (_, b) => b);
  for (const b of options.rows) checkRowIndex(b, maxBatchSize);
  return options.rows;
}

/** A QuantizedKVCache's own settings: bits 8 or 4, groupSize a power of two, residual >= 0. */
export function checkQuantizedOptions(
  options: { bits?: unknown; groupSize?: unknown; residual?: unknown },
  headSize: number,
  groupSizes: readonly number[],
  maxHeadSize: number,
): { bits: 8 | 4; groupSize: number; residual: number } {
  const { bits, groupSize = 32, residual = 64 } = options;
  if (bits !== 8 && bits !== 4) {
    throw new ValueError(`QuantizedKVCache bits must be 8 or 4, got ${String(bits)}`, {
      argument: 'bits',
      value: bits,
    });
  }
  if (typeof groupSize !== 'number' || !groupSizes.includes(groupSize)) {
    throw new ValueError(
      `QuantizedKVCache groupSize must be one of ${groupSizes.join(', ')}, got ${String(groupSize)}`,
      { argument: 'groupSize', value: groupSize },
    );
  }
  if (
    typeof residual !== 'number' ||
    !Number.isInteger(residual) ||
    residual < 0 ||
    residual > 1 << 20
  ) {
    throw new ValueError(
      `QuantizedKVCache residual must be a non-negative integer <= ${1 << 20}, got ${String(residual)}`,
      { argument: 'residual', value: residual },
    );
  }
  if (headSize > maxHeadSize) {
    throw new ValueError(`QuantizedKVCache headSize must be <= ${maxHeadSize}, got ${headSize}`, {
      argument: 'headSize',
      value: headSize,
    });
  }
  return { bits, groupSize, residual };
}

/**
 * The checks every cache's `checkUpdate` starts with, in this order: the layer, the batch size,
 * the update's length, the start positions, the spans. Returns each batch row's start position
 * and number of new positions.
 */
export function checkUpdateArgs(
  layer: number,
  nLayers: number,
  batchSize: number,
  maxBatchSize: number | null,
  startPos: StartPositions,
  newPositions: number,
  spans: RowSpans | undefined,
): { starts: number[]; counts: number[] } {
  checkLayer(layer, nLayers);
  checkBatch(batchSize, maxBatchSize);
  checkUpdateLength(newPositions);
  const starts = checkStartPositions(startPos, batchSize);
  return { starts, counts: spanCounts(spans, batchSize, newPositions) };
}

/** New positions per batch row of an update of T positions: T each, or the spans' counts. */
export function spanCounts(spans: RowSpans | undefined, batchSize: number, T: number): number[] {
  return spans ? [...checkSpans(spans, batchSize, T).count] : new Array<number>(batchSize).fill(T);
}

/** A view of batch rows [0, B) needs storage for them. */
export function checkViewRows(batchSize: number, rows: number, layer: number): void {
  if (batchSize > rows) {
    throw new ValueError(
      `view: batch rows [0, ${batchSize}) requested, but layer ${layer} holds storage for ${rows}`,
      { argument: 'batchSize', value: batchSize },
    );
  }
}

/** Where a clone or fork goes: `options.heap` (a KernelHeap) and budget, or the source's. */
export function cloneTarget(
  options: { heap?: KernelHeap; maxBytes?: number | null },
  source: { heap: KernelHeap; maxBytes: number | null },
): { heap: KernelHeap; maxBytes: number | null } {
  if (options.heap !== undefined && !(options.heap instanceof KernelHeap)) {
    throw new ValueError('clone: heap must be a KernelHeap', {
      argument: 'heap',
      value: options.heap,
    });
  }
  return {
    heap: options.heap ?? source.heap,
    maxBytes: options.maxBytes === undefined ? source.maxBytes : checkMaxBytes(options.maxBytes),
  };
}

import { CacheCapacityError, DTypeError, ShapeError, ValueError } from '@kvkit/tensor-utils';
import type { Tensor } from '@tensorflow/tfjs-core';
import type { KVCacheShape } from './kv-cache.ts';

/**
 * Argument checks shared by the cache strategies. Each throws a typed error whose message
 * names the offending values; none of them mutates anything.
 */

export function checkCacheShape(shape: KVCacheShape): Required<KVCacheShape> {
  const full = { ...shape, nLayers: shape.nLayers ?? 1 };
  for (const [argument, value] of Object.entries(full)) {
    if (!Number.isInteger(value) || (value as number) < 1) {
      throw new ValueError(
        `KV cache ${argument} must be a positive integer, got ${String(value)}`,
        {
          argument,
          value,
        },
      );
    }
  }
  return full;
}

export function checkLayer(layer: number, nLayers: number): void {
  if (!Number.isInteger(layer) || layer < 0 || layer >= nLayers) {
    throw new ValueError(`layer ${layer} is out of range: this cache holds ${nLayers} layer(s)`, {
      argument: 'layer',
      value: layer,
    });
  }
}

export function checkBatch(batchSize: number, maxBatchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new ValueError(`batch size must be a positive integer, got ${batchSize}`, {
      argument: 'batchSize',
      value: batchSize,
    });
  }
  if (batchSize > maxBatchSize) {
    throw new CacheCapacityError(`batch size ${batchSize} exceeds maxBatchSize ${maxBatchSize}`, {
      capacity: maxBatchSize,
      requested: batchSize,
    });
  }
}

/** startPos must be an integer in [0, length] (no gap) and startPos + T must fit. */
export function checkPositions(
  startPos: number,
  newPositions: number,
  length: number,
  capacity: number,
): void {
  if (!Number.isInteger(newPositions) || newPositions < 1) {
    throw new ShapeError(`T must be at least 1 new position, got ${newPositions}`, {
      expected: 'T >= 1',
      actual: [newPositions],
    });
  }
  if (!Number.isInteger(startPos) || startPos < 0) {
    throw new ValueError(`startPos must be a non-negative integer, got ${startPos}`, {
      argument: 'startPos',
      value: startPos,
    });
  }
  if (startPos + newPositions > capacity) {
    throw new CacheCapacityError(
      `startPos + T = ${startPos} + ${newPositions} = ${startPos + newPositions} exceeds the capacity (blockSize) ${capacity}`,
      { capacity, requested: startPos + newPositions },
    );
  }
  if (startPos > length) {
    throw new ValueError(
      `startPos ${startPos} would leave a gap: only positions [0, ${length}) are cached, so startPos must be <= ${length}`,
      { argument: 'startPos', value: startPos },
    );
  }
}

/** keys and values must both be float32 (B, nkv, T, hs) with the cache's nkv and hs. */
export function checkKeyValues(
  keys: Tensor,
  values: Tensor,
  nKvHeads: number,
  headSize: number,
): void {
  for (const [name, t] of [
    ['keys', keys],
    ['values', values],
  ] as const) {
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
}

import type { KVCache } from '@kvkit/kv-cache';
import { CacheCapacityError, DisposedError, ShapeError, ValueError } from '@kvkit/tensor-utils';
import type { GPTDimensions } from './config.ts';

/**
 * The positions a GPT forward of T tokens at `startPos` may take: without the cache, startPos 0
 * and T <= blockSize; with it, startPos + T <= blockSize (the position embeddings end there,
 * whatever the cache strategy).
 */
export function checkPositions(
  useKvCache: boolean,
  startPos: number,
  [B, T]: [number, number],
  blockSize: number,
): void {
  if (!useKvCache) {
    if (startPos !== 0) {
      throw new ValueError(`GPT.forward: startPos ${startPos} needs useKvCache: true`, {
        argument: 'startPos',
        value: startPos,
      });
    }
    if (T > blockSize) {
      throw new ShapeError(`GPT.forward: T = ${T} exceeds blockSize ${blockSize}`, {
        expected: `T <= ${blockSize}`,
        actual: [B, T],
      });
    }
    return;
  }
  if (!Number.isSafeInteger(startPos) || startPos < 0) {
    throw new ValueError(`GPT.forward: startPos must be a non-negative integer, got ${startPos}`, {
      argument: 'startPos',
      value: startPos,
    });
  }
  if (startPos + T > blockSize) {
    throw new CacheCapacityError(
      `GPT.forward: startPos + T = ${startPos} + ${T} exceeds blockSize ${blockSize} (the position embeddings)`,
      { capacity: blockSize, requested: startPos + T },
    );
  }
}

/**
 * Whether `cache` can serve every block of a model: a KVCache, alive, with at least nLayer
 * layers, the model's key/value heads and head size, and positions up to blockSize.
 */
export function checkModelCache(
  cache: KVCache,
  dims: Readonly<GPTDimensions>,
  where: string,
): void {
  if (cache === null || typeof cache !== 'object' || typeof cache.update !== 'function') {
    throw new ValueError(`${where}: expected a KVCache`, { argument: 'cache', value: cache });
  }
  if (cache.isDisposed) throw new DisposedError(`${where}: cache`);
  const { nLayer, nKvHeads, headSize, blockSize, maxBatchSize } = dims;
  if (
    cache.nLayers < nLayer ||
    cache.nKvHeads !== nKvHeads ||
    cache.headSize !== headSize ||
    (cache.maxPosition !== null && cache.maxPosition < blockSize)
  ) {
    throw new ShapeError(
      `${where}: cache (layers=${cache.nLayers}, nkv=${cache.nKvHeads}, hs=${cache.headSize}, maxPosition=${cache.maxPosition}) ` +
        `does not fit this model (layers=${nLayer}, nkv=${nKvHeads}, hs=${headSize}, blockSize=${blockSize})`,
      {
        expected: [nLayer, maxBatchSize, nKvHeads, blockSize, headSize],
        actual: [
          cache.nLayers,
          cache.maxBatchSize ?? -1,
          cache.nKvHeads,
          cache.maxPosition ?? -1,
          cache.headSize,
        ],
      },
    );
  }
}

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
  windowed = false,
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
  if (startPos + T > blockSize && !windowed) {
    throw new CacheCapacityError(
      `GPT.forward: startPos + T = ${startPos} + ${T} exceeds blockSize ${blockSize} (the position embeddings; a sliding-window or sink cache goes past it)`,
      { capacity: blockSize, requested: startPos + T },
    );
  }
}

/**
 * The position embedding a token at absolute position p takes: p itself below blockSize; past
 * it (only a windowed cache gets there), blockSize - 1, the place of the newest token in
 * minGPT's cropped context. An approximation: the cached keys keep the embeddings they were
 * made with, where crop-and-recompute would give every token of the window a new one each step
 * (docs/guide/generation.md compares the two).
 */
export function embeddingPosition(p: number, blockSize: number): number {
  return p < blockSize ? p : blockSize - 1;
}

/**
 * Whether a cache lets the model decode past blockSize: a windowed one (sliding window or
 * sinks) whose sinks and window together fit in blockSize, so no query attends over more
 * positions than the model was trained on.
 */
export function decodesPastBlockSize(
  cache: Pick<KVCache, 'visibility'>,
  blockSize: number,
): boolean {
  const { window, sinks } = cache.visibility;
  return window !== null && window + sinks <= blockSize;
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

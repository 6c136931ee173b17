import { CacheCapacityError } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { checkLayer, positiveInteger } from './checks.ts';
import { ContiguousKVCache } from './contiguous-cache.ts';
import type { KVCacheOptions } from './kv-cache.ts';

export interface StaticKVCacheOptions extends KVCacheOptions {
  /** Batch rows preallocated per layer (the notebook's max_batch_size). */
  maxBatchSize: number;
  /** Positions per batch row (the model's blockSize). */
  capacity: number;
}

/** The heap is a 32-bit WebAssembly memory: no layer may need more than this. */
const HEAP_LIMIT = 2 ** 32;

/**
 * The seed notebook's cache: per layer, zero-filled `cache_k`/`cache_v` of shape
 * `(maxBatchSize, nkv, capacity, hs)` allocated on the first write, slot p holding position p.
 * A write copies only the new rows; attention's kernel reads rows [0, seqLength) in place, so a
 * step costs what it reads, not what was preallocated. Crops are always possible.
 *
 * @example
 * const cache = new StaticKVCache({ maxBatchSize: 64, nKvHeads: 1, headSize: 6, capacity: 8 });
 * cache.update(0, { keys: k, values: v }, 0);   // k, v: (2, 1, 3, 6): positions 0..2
 * cache.seqLength(0, 1);                        // 3
 * const cacheK = cache.snapshot(0, 'keys');     // (64, 1, 8, 6), what the seed prints
 */
export class StaticKVCache extends ContiguousKVCache {
  readonly strategy = 'static';
  declare readonly maxBatchSize: number;
  readonly capacity: number;
  readonly maxPosition: number;
  readonly maxSlots: number;

  constructor(options: StaticKVCacheOptions) {
    super(checkStatic(options));
    this.capacity = options.capacity;
    this.maxPosition = options.capacity;
    this.maxSlots = options.capacity;
  }

  /** Whether a layer's storage has been allocated (it is, from the first write on). */
  isAllocated(layer = 0): boolean {
    this.checkAlive();
    checkLayer(layer, this.nLayers);
    return this.layers[layer]!.allocated;
  }

  /**
   * The whole allocation of a layer as a new tensor `(maxBatchSize, nkv, capacity, hs)`, zeros
   * where nothing was written: what the seed prints as `mha.cache_k`. Null before the first
   * write. The caller owns (and disposes) the returned tensor. O(capacity): for inspection.
   */
  snapshot(layer: number, which: 'keys' | 'values'): tf.Tensor4D | null {
    this.checkAlive();
    checkLayer(layer, this.nLayers);
    const s = this.layers[layer]!;
    if (!s.allocated) return null;
    const shape: [number, number, number, number] = [
      this.maxBatchSize,
      this.nKvHeads,
      this.capacity,
      this.headSize,
    ]; // (maxB, nkv, Tmax, hs)
    const data = s.snapshot(which);
    return tf.tensor4d(data, shape);
  }

  protected slotsFor(): number {
    return this.capacity;
  }

  protected rowsFor(): number {
    return this.maxBatchSize;
  }
}

function checkStatic(options: StaticKVCacheOptions): StaticKVCacheOptions {
  const maxBatchSize = positiveInteger(options ?? {}, 'maxBatchSize', { max: 1 << 20 })!;
  const capacity = positiveInteger(options, 'capacity')!;
  const nKvHeads = positiveInteger(options, 'nKvHeads', { max: 65536 })!;
  const headSize = positiveInteger(options, 'headSize', { max: 65536 })!;
  const bytes = maxBatchSize * nKvHeads * capacity * headSize * 4;
  if (2 * bytes > HEAP_LIMIT) {
    throw new CacheCapacityError(
      `a static cache of maxBatchSize ${maxBatchSize} x nKvHeads ${nKvHeads} x capacity ${capacity} x headSize ${headSize} ` +
        `needs ${(2 * bytes) / 2 ** 30} GiB per layer; the kernel heap holds at most 4 GiB`,
      { capacity: HEAP_LIMIT, requested: 2 * bytes },
    );
  }
  return options;
}

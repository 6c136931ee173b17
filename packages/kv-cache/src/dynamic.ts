import { positiveInteger } from './checks.ts';
import { ContiguousKVCache } from './contiguous-cache.ts';
import type { KVCacheOptions } from './kv-cache.ts';

export interface DynamicKVCacheOptions extends KVCacheOptions {
  /** Batch rows it may grow to; unbounded when omitted. */
  maxBatchSize?: number;
  /** Slots per row of the first allocation (one "block"). Default 16. */
  initialSlots?: number;
}

/**
 * A cache with no capacity to choose: each layer's storage grows geometrically (to at least
 * twice its slots) when a write needs more, copying what it holds once, so a step costs
 * amortised O(new rows) and the reserved bytes stay under twice the used bytes plus the first
 * block. Slot p holds position p, as in the static cache; positions are unbounded.
 *
 * @example
 * const cache = new DynamicKVCache({ nLayers: 12, nKvHeads: 12, headSize: 64 });
 */
export class DynamicKVCache extends ContiguousKVCache {
  readonly strategy = 'dynamic';
  readonly maxPosition = null;
  readonly maxSlots = null;
  readonly initialSlots: number;

  constructor(options: DynamicKVCacheOptions) {
    super(options);
    this.initialSlots = positiveInteger(
      { initialSlots: options.initialSlots ?? 16 },
      'initialSlots',
      {
        max: 1 << 24,
      },
    )!;
  }

  protected slotsFor(length: number, current: number): number {
    if (length <= current) return current;
    return Math.max(length, 2 * current, this.initialSlots);
  }

  protected rowsFor(batchSize: number, current: number): number {
    return Math.max(batchSize, current);
  }
}

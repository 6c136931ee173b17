import { positiveInteger } from './checks.ts';
import type { KVCacheOptions, Visibility } from './kv-cache.ts';
import type { SlotRun } from './layer-storage.ts';
import { SlotKVCache } from './slot-cache.ts';

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
export class DynamicKVCache extends SlotKVCache {
  readonly strategy = 'dynamic';
  readonly layoutKind = 'contiguous';
  readonly visibility: Visibility = { window: null, sinks: 0 };
  readonly maxPosition = null;
  readonly maxSlots = null;
  readonly initialSlots: number;

  constructor(options: DynamicKVCacheOptions) {
    super(options, 1);
    this.initialSlots = positiveInteger(
      { initialSlots: options.initialSlots ?? 16 },
      'initialSlots',
      {
        max: 1 << 24,
      },
    )!;
  }

  protected slotOf(position: number): number {
    return position;
  }

  protected runsOf(length: number): SlotRun[] {
    return [{ slot: 0, count: length, firstPos: 0, sink: false }];
  }

  protected heldSlots(length: number): number {
    return length;
  }

  protected slotsFor(length: number, current: number): number {
    if (length <= current) return current;
    return Math.max(length, 2 * current, this.initialSlots);
  }

  protected rowsFor(batchSize: number, current: number): number {
    return Math.max(batchSize, current);
  }

  protected cropRefusal(): null {
    return null;
  }
}

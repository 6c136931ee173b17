import type { KVCacheOptions, Visibility } from './kv-cache.ts';
import type { SlotRun } from './layer-storage.ts';
import { SlotKVCache } from './slot-cache.ts';

/**
 * The storage the static and dynamic caches share: slot p holds position p, so a row is one run
 * `[0, seqLength)`, every earlier position is visible, and any crop is possible. They differ in
 * how much they allocate.
 */
export abstract class ContiguousKVCache extends SlotKVCache {
  readonly layoutKind = 'contiguous';
  readonly visibility: Visibility = { window: null, sinks: 0 };

  protected constructor(options: KVCacheOptions & { maxBatchSize?: number | null }) {
    super(options, 1);
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

  protected cropRefusal(): null {
    return null;
  }
}

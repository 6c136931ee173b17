import { positiveInteger } from './checks.ts';
import type { KVCacheOptions } from './kv-cache.ts';
import { RingKVCache } from './ring-cache.ts';

export interface SlidingWindowKVCacheOptions extends KVCacheOptions {
  /** Positions a query sees: itself and the `window - 1` before it. */
  window: number;
  /** Batch rows it may grow to; unbounded when omitted. */
  maxBatchSize?: number;
}

/**
 * Mistral's rolling buffer: a ring of `window` slots per row, position p in slot p % window. A
 * query sees the last `window` positions, so decoding goes on for ever at constant memory and
 * step time. A prompt longer than the window is written a position at a time once the ring is
 * full (attention splits the chunk; the projections still run on the whole chunk at once).
 * Cropping works until the ring first wraps; after that it is refused.
 *
 * @example
 * const cache = new SlidingWindowKVCache({ window: 512, nKvHeads: 12, headSize: 64 });
 */
export class SlidingWindowKVCache extends RingKVCache {
  readonly strategy = 'sliding-window';
  readonly window: number;

  constructor(options: SlidingWindowKVCacheOptions) {
    const window = positiveInteger(options ?? {}, 'window', { max: 1 << 24 })!;
    super(options, 0, window);
    this.window = window;
  }
}

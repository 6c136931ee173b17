import { positiveInteger } from './checks.ts';
import type { KVCacheOptions } from './kv-cache.ts';
import { RingKVCache } from './ring-cache.ts';

export interface SinkKVCacheOptions extends KVCacheOptions {
  /** The first positions every query keeps seeing (StreamingLLM's attention sinks). Default 4. */
  sinkTokens?: number;
  /** Recent positions a query sees besides the sinks (itself included). */
  window: number;
  /** Batch rows it may grow to; unbounded when omitted. */
  maxBatchSize?: number;
}

/**
 * StreamingLLM: the first `sinkTokens` positions, which soak up attention mass, plus a ring of
 * the last `window` positions: `sinkTokens + window` slots per row for ever. Positions keep
 * their original values; with absolute position embeddings (GPT-2) the keys were made from them
 * before caching. (StreamingLLM with rotary embeddings instead re-numbers the cached positions
 * and re-rotates the keys; see docs/concepts/sink-cache.md.)
 *
 * @example
 * const cache = new SinkKVCache({ sinkTokens: 4, window: 508, nKvHeads: 12, headSize: 64 });
 */
export class SinkKVCache extends RingKVCache {
  readonly strategy = 'sink';
  readonly sinkTokens: number;
  readonly window: number;

  constructor(options: SinkKVCacheOptions) {
    const sinkTokens =
      options?.sinkTokens === 0
        ? 0
        : positiveInteger({ sinkTokens: options?.sinkTokens ?? 4 }, 'sinkTokens', {
            max: 1 << 20,
          })!;
    const window = positiveInteger(options ?? {}, 'window', { max: 1 << 24 })!;
    super(options, sinkTokens, window);
    this.sinkTokens = sinkTokens;
    this.window = window;
  }
}

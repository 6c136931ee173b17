import { ValueError } from '@kvkit/tensor-utils';
import { DynamicKVCache } from './dynamic.ts';
import type { KernelHeap } from './kernel/kernel-heap.ts';
import type { KVCache } from './kv-cache.ts';
import { QuantizedKVCache } from './quantized.ts';
import { SinkKVCache } from './sink.ts';
import { SlidingWindowKVCache } from './sliding-window.ts';
import { StaticKVCache } from './static.ts';

/** What a model knows when it builds its own cache. */
export interface CacheShape {
  nLayers: number;
  nKvHeads: number;
  headSize: number;
  /** Batch rows (the static cache preallocates them; the others grow up to them). */
  maxBatchSize: number;
  /** Longest context (the static cache's capacity). */
  blockSize: number;
  heap?: KernelHeap;
}

/**
 * How a model picks its cache strategy: a name, a strategy with its settings, or a function
 * that builds any `KVCache` from the model's shape.
 *
 * @example
 * new CausalSelfAttention(config, { cache: { strategy: 'sliding-window', window: 512 } });
 */
export type CacheSpec =
  | 'static'
  | 'dynamic'
  | { strategy: 'static' }
  | { strategy: 'dynamic'; initialSlots?: number }
  | { strategy: 'sliding-window'; window: number }
  | { strategy: 'sink'; window: number; sinkTokens?: number }
  | { strategy: 'quantized'; bits: 8 | 4; groupSize?: number; residual?: number }
  | ((shape: CacheShape) => KVCache);

/** Builds the cache a spec names, for a model of this shape. */
export function createCache(spec: CacheSpec, shape: CacheShape): KVCache {
  if (typeof spec === 'function') return spec(shape);
  const s = typeof spec === 'string' ? { strategy: spec } : spec;
  const base = {
    nLayers: shape.nLayers,
    nKvHeads: shape.nKvHeads,
    headSize: shape.headSize,
    maxBatchSize: shape.maxBatchSize,
    ...(shape.heap ? { heap: shape.heap } : {}),
  };
  switch (s?.strategy) {
    case 'static':
      return new StaticKVCache({ ...base, capacity: shape.blockSize });
    case 'dynamic':
      return new DynamicKVCache({
        ...base,
        initialSlots: 'initialSlots' in s ? s.initialSlots : undefined,
      });
    case 'sliding-window':
      return new SlidingWindowKVCache({ ...base, window: (s as { window: number }).window });
    case 'sink':
      return new SinkKVCache({ ...base, ...(s as { window: number; sinkTokens?: number }) });
    case 'quantized':
      return new QuantizedKVCache({
        ...base,
        ...(s as { bits: 8 | 4; groupSize?: number; residual?: number }),
      });
    default:
      throw new ValueError(
        `cache must be 'static', 'dynamic', { strategy: 'sliding-window', window }, { strategy: 'sink', window, sinkTokens }, { strategy: 'quantized', bits } or a function, got ${JSON.stringify(spec)}`,
        { argument: 'cache', value: spec },
      );
  }
}

/**
 * Throws the error `createCache(spec, ...)` would throw for the spec itself (an unknown
 * strategy, a bad window), whatever the model's sizes; builds nothing that allocates.
 */
export function checkCacheSpec(spec: CacheSpec): void {
  if (typeof spec === 'function') return;
  createCache(spec, {
    nLayers: 1,
    nKvHeads: 1,
    headSize: 1,
    maxBatchSize: 1,
    blockSize: 1,
  }).dispose();
}

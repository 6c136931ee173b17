// The cache strategies the demo offers, in the order of its pickers (the cache view and text
// generation share this list). Each entry builds a kvkit cache for a model's shape through the
// public API only (`createCache` and `PagedKVCache` from @kvkit/kv-cache); the panels never
// name a strategy class. A new strategy is one more entry here.
import { type CacheShape, createCache, type KVCache, PagedKVCache } from '@kvkit/kv-cache';

/** A cache strategy the demo can show, with settings scaled to the model's context. */
export interface StrategyChoice {
  id: string;
  /** Picker label for a model of this context (it names the settings used). */
  label(blockSize: number): string;
  /** The cache, for a model of this shape (usable as a `CacheSpec` function). */
  create(shape: CacheShape): KVCache;
}

/**
 * Window sizes for a context of `blockSize` positions: half of it for the sliding window, and
 * for the sink cache `blockSize / 16` sinks (at least 1) plus the rest of that half, so both
 * windowed caches visibly evict before the context is full.
 */
export function windowSettings(blockSize: number): {
  window: number;
  sinkTokens: number;
  sinkWindow: number;
} {
  const window = Math.max(2, Math.floor(blockSize / 2));
  const sinkTokens = Math.max(1, Math.floor(blockSize / 16));
  return { window, sinkTokens, sinkWindow: Math.max(1, window - sinkTokens) };
}

/** Positions per block of the paged cache: an eighth of the context (at least 2). */
export function pagedBlockSize(blockSize: number): number {
  return Math.max(2, Math.floor(blockSize / 8));
}

/** The dynamic cache's first allocation: an eighth of the context, so it visibly grows. */
const initialSlots = (blockSize: number) => Math.max(1, Math.floor(blockSize / 8));

export const strategies: readonly StrategyChoice[] = [
  {
    id: 'static',
    label: () => "static (the notebook's)",
    create: (shape) => createCache('static', shape),
  },
  {
    id: 'dynamic',
    label: (T) => `dynamic (grows ×2 from ${initialSlots(T)})`,
    create: (shape) =>
      createCache({ strategy: 'dynamic', initialSlots: initialSlots(shape.blockSize) }, shape),
  },
  {
    id: 'sliding-window',
    label: (T) => `sliding window (${windowSettings(T).window})`,
    create: (shape) =>
      createCache(
        { strategy: 'sliding-window', window: windowSettings(shape.blockSize).window },
        shape,
      ),
  },
  {
    id: 'sink',
    label: (T) => {
      const w = windowSettings(T);
      return `sink (${w.sinkTokens} + ${w.sinkWindow})`;
    },
    create: (shape) => {
      const w = windowSettings(shape.blockSize);
      return createCache(
        { strategy: 'sink', sinkTokens: w.sinkTokens, window: w.sinkWindow },
        shape,
      );
    },
  },
  {
    id: 'paged',
    label: (T) => `paged (blocks of ${pagedBlockSize(T)})`,
    create: (shape) => {
      const blockSize = pagedBlockSize(shape.blockSize);
      // Enough blocks for every batch row to reach the model's context.
      const numBlocks = Math.ceil(shape.blockSize / blockSize) * shape.maxBatchSize;
      return new PagedKVCache({
        nLayers: shape.nLayers,
        nKvHeads: shape.nKvHeads,
        headSize: shape.headSize,
        maxBatchSize: shape.maxBatchSize,
        blockSize,
        numBlocks,
        ...(shape.heap ? { heap: shape.heap } : {}),
      });
    },
  },
];

/**
 * Strategies that have a place in the pickers but are not offered, because kvkit does not ship
 * them yet. They are not rendered: an entry moves to `strategies` when its cache lands.
 * - `quantized`: int8 / int4 keys and values (`{ strategy: 'quantized', bits }` for
 *   `createCache`), with its bytes against the float32 caches'.
 */
export const plannedStrategies: readonly { id: string; label: string; needs: string }[] = [
  {
    id: 'quantized',
    label: 'quantized (int8)',
    needs: "a quantized KVCache in @kvkit/kv-cache ({ strategy: 'quantized', bits: 8 })",
  },
];

/** The entry with this id, or the first one (static). */
export function strategyById(id: string): StrategyChoice {
  return strategies.find((s) => s.id === id) ?? strategies[0]!;
}

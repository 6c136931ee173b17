// The cache strategies the demo offers, in the order of its pickers (the cache view and text
// generation share this list): every strategy @kvkit/kv-cache ships, the quantized one at 8 and
// at 4 bits. Each entry builds a kvkit cache for a model's shape through the public API only
// (`createCache` and `PagedKVCache` from @kvkit/kv-cache); the panels never name a strategy
// class. A new strategy is one more entry here.
import {
  type CacheShape,
  createCache,
  GROUP_SIZES,
  type KVCache,
  PagedKVCache,
} from '@kvkit/kv-cache';

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

/**
 * The quantized caches' settings for a context of `blockSize` positions: groups of a quarter of
 * it (the smallest group size the kernel reads, 4, at least), and as many recent positions kept
 * in float32, so that half the context or more is quantized once it fills.
 */
export function quantizedSettings(blockSize: number): { groupSize: number; residual: number } {
  const quarter = Math.floor(blockSize / 4);
  const groupSize = [...GROUP_SIZES].reverse().find((g) => g <= quarter) ?? GROUP_SIZES[0]!;
  return { groupSize, residual: groupSize };
}

/** The quantized entry at `bits` bits. */
function quantized(bits: 8 | 4): StrategyChoice {
  return {
    id: `quantized-int${bits}`,
    label: (T) => {
      const q = quantizedSettings(T);
      return `quantized int${bits} (groups of ${q.groupSize}, last ${q.residual} in float32)`;
    },
    create: (shape) =>
      createCache({ strategy: 'quantized', bits, ...quantizedSettings(shape.blockSize) }, shape),
  };
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
  quantized(8),
  quantized(4),
];

/** The entry with this id, or the first one (static). */
export function strategyById(id: string): StrategyChoice {
  return strategies.find((s) => s.id === id) ?? strategies[0]!;
}

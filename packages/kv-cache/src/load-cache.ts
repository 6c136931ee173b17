import { CacheCapacityError, ValueError } from '@kvkit/tensor-utils';
import { type CacheFileHeader, fail, readCacheFile } from './cache-file.ts';
import { checkMaxBytes } from './checks.ts';
import { DynamicKVCache } from './dynamic.ts';
import { KernelHeap } from './kernel/kernel-heap.ts';
import type { KVCache } from './kv-cache.ts';
import { PagedKVCache } from './paged.ts';
import { SinkKVCache } from './sink.ts';
import { SlidingWindowKVCache } from './sliding-window.ts';
import { StaticKVCache } from './static.ts';

export interface LoadCacheOptions {
  /** The heap of the new cache; `defaultHeap()` when omitted. */
  heap?: KernelHeap;
  /** The new cache's budget (see `KVCache.maxBytes`); none when omitted. */
  maxBytes?: number | null;
}

type Build = (options: Record<string, unknown>) => KVCache;

/** The strategies a file may name, built from the config it records. */
const strategies: Readonly<Record<string, Build>> = {
  static: (c) => new StaticKVCache(c as never),
  dynamic: (c) => new DynamicKVCache(c as never),
  'sliding-window': (c) => new SlidingWindowKVCache(c as never),
  sink: (c) => new SinkKVCache(c as never),
  paged: (c) => new PagedKVCache(c as never),
};

/**
 * A new cache restored from a file `save()` wrote, of the strategy and config the file records:
 * it decodes on bit for bit as the saved cache would have. The whole file is checked first
 * (see `KVCache.load`): a damaged, truncated, wrong-version or unknown-strategy file, or one
 * whose config no strategy accepts, throws FormatError (`reason` says which) having allocated
 * nothing. The caller owns the cache (`dispose()`).
 *
 * @example
 * const bytes = cache.save();                       // a Uint8Array: store it, send it
 * const again = loadCache(bytes);                   // same strategy, config and contents
 */
export function loadCache(bytes: Uint8Array, options: LoadCacheOptions = {}): KVCache {
  if (options.heap !== undefined && !(options.heap instanceof KernelHeap)) {
    throw new ValueError('loadCache: heap must be a KernelHeap', {
      argument: 'heap',
      value: options.heap,
    });
  }
  const maxBytes = checkMaxBytes(options.maxBytes);
  const file = readCacheFile(bytes);
  const build = Object.hasOwn(strategies, file.strategy) ? strategies[file.strategy] : undefined;
  if (!build) {
    fail(
      'strategy',
      `the file holds a '${file.strategy}' cache; this release loads ${Object.keys(strategies).join(', ')}`,
    );
  }
  let cache: KVCache;
  try {
    cache = build({ ...file.config, ...(options.heap ? { heap: options.heap } : {}), maxBytes });
  } catch (error) {
    if (!(error instanceof ValueError || error instanceof CacheCapacityError)) throw error;
    fail('config', `no ${file.strategy} cache has the file's config: ${error.message}`, error);
  }
  try {
    cache.load(bytes);
  } catch (error) {
    cache.dispose();
    throw error;
  }
  return cache;
}

/**
 * What a cache file holds, without loading it: its version, strategy, dtype, config and each
 * row's seqLength and held slots. Checks the whole file as `loadCache` does (FormatError) and
 * allocates nothing in any heap.
 *
 * @example
 * inspectCacheFile(bytes).lengths; // [[5, 3]]: layer 0 has rows of 5 and 3 positions
 */
export function inspectCacheFile(bytes: Uint8Array): CacheFileHeader & { version: number } {
  const { body: _, ...header } = readCacheFile(bytes);
  return header;
}

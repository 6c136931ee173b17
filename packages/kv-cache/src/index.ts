// Public API of @kvkit/kv-cache.
export type { KVCache, KVCacheShape, KVHeapRows, KVHeapStorage, KVReadResult } from './kv-cache.ts';
export { StaticKVCache } from './static.ts';

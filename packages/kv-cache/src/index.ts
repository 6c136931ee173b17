// Public API of @kvkit/kv-cache: names are listed explicitly, types with `export type`.
export {
  CACHE_FILE_FORMAT,
  CACHE_FILE_MAGIC,
  CACHE_FILE_VERSION,
  type CacheFileHeader,
} from './cache-file.ts';
export { type CacheShape, type CacheSpec, checkCacheSpec, createCache } from './create-cache.ts';
export { DynamicKVCache, type DynamicKVCacheOptions } from './dynamic.ts';
export { attend, attendOwnRows, type OutputRows, type QueryRows } from './kernel/attend.ts';
export { defaultHeap, KernelHeap, type KernelHeapOptions } from './kernel/kernel-heap.ts';
export {
  checkLayoutSupported,
  GROUP_SIZES,
  type HeapRows,
  type KVLayout,
  type KVView,
  type LayoutKind,
  type QuantizedDType,
  type QuantizedFormat,
  type QuantizedLayout,
  quantizedFormat,
  type RowDType,
  RUN_QUANTIZED,
  RUN_SINK,
} from './kernel/layout.ts';
export { readInto } from './kernel/tensor-io.ts';
export type {
  CacheConfig,
  CloneOptions,
  CropOptions,
  KVCache,
  KVCacheOptions,
  KVReadResult,
  KVRows,
  RowSpans,
  StartPositions,
  UpdateOptions,
  Visibility,
} from './kv-cache.ts';
export { inspectCacheFile, type LoadCacheOptions, loadCache } from './load-cache.ts';
export { OutOfBlocksError, SequenceError } from './paged/errors.ts';
export type { PagedCacheStats } from './paged/stats.ts';
export { PagedKVCache, type PagedKVCacheOptions } from './paged.ts';
export {
  type ErrorStats,
  type QuantizationErrorOptions,
  type QuantizationErrorReport,
  quantizationError,
} from './quantization-error.ts';
export { QuantizedKVCache, type QuantizedKVCacheOptions } from './quantized.ts';
export { SinkKVCache, type SinkKVCacheOptions } from './sink.ts';
export { SlidingWindowKVCache, type SlidingWindowKVCacheOptions } from './sliding-window.ts';
export { StaticKVCache, type StaticKVCacheOptions } from './static.ts';

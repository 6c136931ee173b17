import type { Tensor } from '@tensorflow/tfjs-core';

/**
 * The contract between attention and a key-value cache. Attention never sees how a strategy
 * stores rows: it asks the cache to check a write, to write the new rows, and to read back
 * the keys and values its queries attend to, with the absolute position of each key.
 *
 * Shapes use one alphabet: B (batch), nkv (key/value heads), T (new positions), hs (head size),
 * Tmax (capacity, the config's blockSize).
 */
export interface KVCache {
  /** A short name of the strategy, e.g. `static`. */
  readonly kind: string;
  /** Layers this cache holds; layer indices run 0..nLayers-1. */
  readonly nLayers: number;
  /** Rows (batch entries) the cache can hold. */
  readonly maxBatchSize: number;
  readonly nKvHeads: number;
  readonly headSize: number;
  /** Largest absolute position + 1 the cache accepts (the model's blockSize). */
  readonly capacity: number;
  /**
   * Whether `dispose()` was called; every other method then throws DisposedError, except
   * `bytesUsed()` / `bytesReserved()` (0) and `dispose()` itself (a no-op).
   */
  readonly isDisposed: boolean;

  /** Positions currently cached for a layer: the next decode step writes at this position. */
  length(layer?: number): number;
  /**
   * Throws a typed error, and changes nothing, if `write` with these arguments would be
   * rejected: a bad layer, batch > maxBatchSize, T = 0, a bad startPos, startPos + T > capacity,
   * or a gap (startPos > length). (`write` also checks the tensors' shapes and dtypes.)
   */
  checkWrite(layer: number, batchSize: number, startPos: number, newPositions: number): void;
  /**
   * Stores keys and values `(B, nkv, T, hs)` at positions `[startPos, startPos + T)` of batch
   * rows `[0, B)`. A startPos below the cached length overwrites from there (rollback): the
   * length becomes `startPos + T`. Does not take ownership of the tensors.
   */
  write(layer: number, keys: Tensor, values: Tensor, startPos: number): void;
  /**
   * The keys and values of batch rows `[0, batchSize)` that a query at positions below `end`
   * may attend to, as new tensors `(B, nkv, t, hs)` the caller owns, with the absolute
   * position of each of the t rows.
   */
  read(layer: number, batchSize: number, end?: number): KVReadResult;
  /** Forgets every cached position (all layers, or one). */
  reset(layer?: number): void;
  /** Bytes holding cached positions now. */
  bytesUsed(): number;
  /** Bytes the cache has allocated (0 before first use for lazy strategies). */
  bytesReserved(): number;
  /**
   * Optional fast path: where a layer's rows live in the kvkit kernel heap
   * (`kernels().heap`), so attention's kernel reads them in place. Null before first use.
   */
  heapStorage?(layer: number): KVHeapStorage | null;
  /**
   * Optional fast path: `write` from rows already in the kernel heap. Row (b, i) of the new
   * positions starts at `src.ptr + (b*T + i) * src.rowStride`; its key for kv head j at
   * `+ src.keyOffset + j*hs*4`, its value at `+ src.valueOffset + j*hs*4` (bytes). Same checks
   * and semantics as `write`.
   */
  writeFromHeap?(
    layer: number,
    src: KVHeapRows,
    batchSize: number,
    newPositions: number,
    startPos: number,
  ): void;
  /**
   * Optional: a layer's whole storage as a new tensor the caller owns, for inspection (the seed's
   * `cache_k`); null before first use. Strategies without a fixed layout may leave it out.
   */
  snapshot?(layer: number, which: 'keys' | 'values'): Tensor | null;
  /** Frees everything. Idempotent. */
  dispose(): void;
}

export interface KVReadResult {
  /** (B, nkv, t, hs) */
  keys: Tensor;
  /** (B, nkv, t, hs) */
  values: Tensor;
  /** Absolute position of key row i (length t); for a static cache, position i is row i. */
  positions: Int32Array;
}

/** Byte addresses and strides of a layer's keys and values in the kernel heap. */
export interface KVHeapStorage {
  keys: number;
  values: number;
  /** Bytes between batch entries, between kv heads, and between positions. */
  batchStride: number;
  headStride: number;
  rowStride: number;
}

/** New rows in the kernel heap (see `KVCache.writeFromHeap`); all in bytes. */
export interface KVHeapRows {
  ptr: number;
  rowStride: number;
  keyOffset: number;
  valueOffset: number;
}

/** The shape a cache is built for. */
export interface KVCacheShape {
  /** Layers to hold (one per attention layer sharing the cache). Default 1. */
  nLayers?: number;
  maxBatchSize: number;
  nKvHeads: number;
  headSize: number;
  /** Positions per layer (the model's blockSize). */
  capacity: number;
}

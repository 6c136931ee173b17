import type { Tensor } from '@tensorflow/tfjs-core';
import type { KernelHeap } from './kernel/kernel-heap.ts';
import type { HeapRows, KVView, LayoutKind, RowDType } from './kernel/layout.ts';

/**
 * The contract between attention and a key-value cache, kept by every strategy. Shapes use one
 * alphabet: B (batch rows), nkv (key/value heads), T (new positions), hs (head size), t (keys).
 *
 * A cache holds `nLayers` layers; each layer keeps, per batch row, the positions that row has
 * seen (`seqLength`), the slots it holds (`slotsHeld`, fewer for windowed strategies) and the
 * rows themselves, in a `KernelHeap` where attention's kernel reads them in place.
 * One call per layer per step, `update`, stores the new rows and returns the `KVView` attention
 * reads. Every call checks all of its arguments before it changes anything: a rejected call
 * leaves the cache exactly as it was. Rewinding is an explicit `crop`, which a strategy may
 * refuse (`CacheOperationError`). Beyond a step: ragged updates (`spans`), `reorder` (beam
 * search), `clone` / `fork`, `save` / `load`, and a memory budget (`maxBytes`). A strategy that
 * cannot do one of them throws `CacheOperationError` naming it. See
 * docs/decisions/kv-cache-contract.md and docs/decisions/cache-operations.md.
 */
export interface KVCache {
  /** The strategy's name: `static`, `dynamic`, `sliding-window`, `sink`, ... */
  readonly strategy: string;
  /** How positions map to slots (what the kernel is told). */
  readonly layoutKind: LayoutKind;
  readonly dtype: RowDType;
  readonly nLayers: number;
  readonly nKvHeads: number;
  readonly headSize: number;
  /** The heap the rows live in; attention runs its kernel there. */
  readonly heap: KernelHeap;
  /** Batch rows the cache can hold; null when it grows with the batch. */
  readonly maxBatchSize: number | null;
  /** Largest position + 1 a batch row may reach; null when unbounded. */
  readonly maxPosition: number | null;
  /** Slots one batch row of one layer holds at most; null when it grows without bound. */
  readonly maxSlots: number | null;
  /** Which earlier positions a query sees (the rule the reference path masks with). */
  readonly visibility: Visibility;
  /**
   * Whether `dispose()` was called; every method then throws DisposedError, except
   * `bytesUsed()` / `bytesReserved()` (0) and `dispose()` itself (a no-op).
   */
  readonly isDisposed: boolean;
  /**
   * The memory budget: the most bytes `bytesReserved()` may reach, or null for no limit. A call
   * that would reserve more (`update`, `reserve`, `reorder`, `load`) throws CacheCapacityError
   * `{ capacity: maxBytes, requested }` before anything changes. A growing strategy grows to
   * what the budget allows (its geometric step falls back to the exact size it needs).
   */
  readonly maxBytes: number | null;

  /**
   * The strategy's settings, as its constructor takes them (without `heap` and `maxBytes`):
   * what `save()` records and `clone()` copies. Two caches of one strategy with equal configs
   * accept each other's saved files.
   */
  config(): CacheConfig;

  /** Positions batch row `row` of `layer` has seen: the position its next update writes. */
  seqLength(layer?: number, row?: number): number;
  /** Slots batch row `row` of `layer` holds now (<= seqLength). */
  slotsHeld(layer?: number, row?: number): number;
  /**
   * The most new positions one `update` of batch rows [0, B) may carry at these start
   * positions (a ring takes one position at a time once it would evict a position that an
   * earlier query of the same update still needs). Infinity when there is no such limit.
   */
  maxUpdateLength(layer: number, startPos: StartPositions, batchSize?: number): number;
  /**
   * Throws a typed error, and changes nothing, if `update(layer, rows of B x T, startPos)` would
   * be rejected. With `{ crop: true }`, batch rows that have seen more than their startPos are
   * checked as if cropped to it first (the seed's rewind), and that crop is checked too. With
   * `{ inPieces: true }`, T may exceed `maxUpdateLength`: the caller will split the update.
   * With `{ spans }`, batch row b carries `spans.count[b]` of the T positions (see `update`).
   */
  checkUpdate(
    layer: number,
    batchSize: number,
    startPos: StartPositions,
    newPositions: number,
    options?: { crop?: boolean; inPieces?: boolean; spans?: RowSpans },
  ): void;
  /**
   * Makes room for batch rows [0, B) to reach `length` positions, without changing what is
   * cached (so a later update cannot fail for want of memory). Throws, changing nothing, when
   * the heap cannot grow or the cache cannot hold that much.
   */
  reserve(layer: number, batchSize: number, length: number): void;
  /**
   * Stores keys and values for batch rows [0, B) at positions [s_b, s_b + T), where s_b (one
   * start position, or one per row) must equal the row's seqLength, and returns what a query of
   * those rows reads now. The view is valid until the next change to this layer.
   *
   * Ragged batches: with `{ spans }`, batch row b stores only columns
   * `[spans.first[b], spans.first[b] + spans.count[b])` of its T new rows, at positions
   * `[s_b, s_b + spans.count[b])`; the other columns are padding and are never stored (a row
   * with count 0 stores nothing). So a left- or right-padded batch leaves each row holding
   * exactly what it would hold alone.
   */
  update(layer: number, rows: KVRows, startPos: StartPositions, options?: UpdateOptions): KVView;
  /** What a query of batch rows [0, B) reads now, without writing. */
  view(layer: number, batchSize: number): KVView;
  /**
   * The rows batch rows [0, B) hold, in position order, as new tensors `(B, nkv, t, hs)` the
   * caller owns (t = the most slots any of them holds), with each key's position (`-1` where a
   * row holds fewer than t). O(rows held): for the reference path, tests and inspection.
   */
  read(layer: number, batchSize: number): KVReadResult;
  /** Throws, changing nothing, if `crop(length, options)` would be refused. */
  checkCrop(length: number, options?: CropOptions): void;
  /**
   * Forgets positions >= `length` of the given batch rows (all by default) of one layer (all by
   * default): decoding then goes on as if they had never been seen. A strategy that can no
   * longer do that (it evicted positions the shorter sequence needs) throws CacheOperationError.
   */
  crop(length: number, options?: CropOptions): void;
  /** Forgets every cached position of a layer (or all layers); the memory stays reserved. */
  reset(layer?: number): void;
  /**
   * Rebuilds the batch from the rows it holds (beam search's `reorder_cache`): afterwards, in
   * every layer, batch row b holds what row `indices[b]` held before (its seqLength, positions
   * and key/value rows), for b in [0, indices.length); rows at or past `indices.length` are
   * forgotten (seqLength 0; their memory stays reserved). An index may repeat (a beam kept
   * twice) or be left out (a beam dropped). A row with `indices[b] === b` is not copied; every
   * other row copies only the slots its source holds, and no tensor is made, so nothing of the
   * old rows outlives the call. Throws, changing nothing: ValueError for an empty or non-array
   * `indices`, or an index that is not an integer row of this cache; CacheCapacityError for more
   * than `maxBatchSize` indices, or when the rows must grow past the heap or `maxBytes`;
   * DisposedError after `dispose()`.
   */
  reorder(indices: readonly number[]): void;
  /**
   * A new cache of the same strategy and config, holding a copy of every batch row of every
   * layer (seqLengths, positions, key/value rows bit for bit): it decodes on exactly as this one
   * would, and neither sees the other's later changes. On `options.heap` (this cache's heap by
   * default), with `options.maxBytes` (this cache's budget by default). The caller owns it
   * (`dispose()`). Throws, allocating nothing that outlives the call: CacheCapacityError when
   * the heap or the budget cannot hold the copy; DisposedError after `dispose()`.
   */
  clone(options?: CloneOptions): KVCache;
  /**
   * Like `clone`, for some batch rows: the new cache's row i is a copy of row `rows[i]` of this
   * one, in every layer (a number is one row). Rows may repeat. Throws, allocating nothing that
   * outlives the call: ValueError for an empty list or an index that is not a row of this cache;
   * CacheCapacityError for more rows than `maxBatchSize`, or when the heap or the budget cannot
   * hold the copy; DisposedError after `dispose()`.
   */
  fork(rows: number | readonly number[], options?: CloneOptions): KVCache;
  /**
   * The cache as a kvkit cache file (little-endian, versioned, checksummed; the format is
   * documented in docs/operations/save-format.md): strategy, config, dtype, every row's
   * seqLength and the key/value rows it holds, in position order. `load` on a cache of the same
   * strategy and config, or `loadCache(bytes)`, restores a cache that decodes on bit for bit.
   * Positions a row no longer holds (cropped or evicted) are not saved.
   */
  save(): Uint8Array;
  /**
   * Replaces everything this cache holds (every layer and row) with the contents of a file
   * `save()` wrote. The whole file is checked before anything is allocated or changed: a file
   * that is damaged, truncated, of another format version, or written by a cache of another
   * strategy, config or dtype throws FormatError (`reason` says which check failed:
   * `magic`, `version`, `truncated`, `trailing-bytes`, `header-checksum`, `header`,
   * `strategy`, `dtype`, `config`, `lengths`, `body-checksum`), and CacheCapacityError when the
   * heap or `maxBytes` cannot hold it; either way the cache is left exactly as it was.
   */
  load(bytes: Uint8Array): void;
  /** Bytes of key/value rows the held slots occupy now (all layers). */
  bytesUsed(): number;
  /** Every heap byte the cache holds: row storage and its run tables (all layers). */
  bytesReserved(): number;
  /**
   * Key/value bytes one position adds to every layer:
   * `2 (keys and values) x nLayers x nkv x hs x bytes per element` (4 for float32 rows).
   */
  bytesPerToken(): number;
  /**
   * Optional: a layer's whole storage as a new tensor the caller owns, for inspection (the seed's
   * `cache_k`); null before first use.
   */
  snapshot?(layer: number, which: 'keys' | 'values'): Tensor | null;
  /** Frees everything. Idempotent. */
  dispose(): void;
}

/** One start position for every batch row, or one per row. */
export type StartPositions = number | readonly number[];

/**
 * Which positions a query at position P sees: p <= P, and p > P - window unless p < sinks.
 * `window: null` is plain causal attention.
 */
export interface Visibility {
  window: number | null;
  sinks: number;
}

/** New keys and values: `(B, nkv, T, hs)` float32 tensors, or rows already in the heap. */
export type KVRows = { keys: Tensor; values: Tensor } | HeapRows;

export interface KVReadResult {
  /** (B, nkv, t, hs) */
  keys: Tensor;
  /** (B, nkv, t, hs) */
  values: Tensor;
  /** (B, t) row-major: the position of each key, -1 for padding. */
  positions: Int32Array;
}

/**
 * Which of an update's T columns each batch row really carries (ragged batches): row b's are
 * columns `[first[b], first[b] + count[b])`; the others are padding. Left padding puts the
 * padding first (`first[b] = T - count[b]`), right padding last (`first[b] = 0`).
 */
export interface RowSpans {
  first: readonly number[];
  count: readonly number[];
}

export interface UpdateOptions {
  /** Ragged batches: the columns each batch row carries (all T when omitted). */
  spans?: RowSpans;
}

/**
 * A strategy's settings as its constructor takes them: the four every cache has, and the
 * strategy's own (`capacity`, `window`, `sinkTokens`, `initialSlots`, ...).
 */
export interface CacheConfig {
  readonly nLayers: number;
  readonly nKvHeads: number;
  readonly headSize: number;
  /** null: the batch grows without a limit. */
  readonly maxBatchSize: number | null;
  readonly [setting: string]: number | null;
}

export interface CloneOptions {
  /** The heap of the new cache; the source's when omitted. */
  heap?: KernelHeap;
  /** The new cache's budget; the source's when omitted (null: none). */
  maxBytes?: number | null;
}

export interface CropOptions {
  /** The layer to crop; all layers when omitted. */
  layer?: number;
  /** The batch rows to crop; every row when omitted. */
  rows?: readonly number[];
}

/** What every strategy's constructor takes. */
export interface KVCacheOptions {
  /** Layers to hold (one per attention layer sharing the cache). Default 1. */
  nLayers?: number;
  nKvHeads: number;
  headSize: number;
  /** The heap to keep rows in; `defaultHeap()` when omitted. */
  heap?: KernelHeap;
  /** The memory budget (see `KVCache.maxBytes`); no limit when omitted or null. */
  maxBytes?: number | null;
}

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
 * refuse (`CacheOperationError`). See docs/decisions/kv-cache-contract.md.
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
   */
  checkUpdate(
    layer: number,
    batchSize: number,
    startPos: StartPositions,
    newPositions: number,
    options?: { crop?: boolean; inPieces?: boolean },
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
   */
  update(layer: number, rows: KVRows, startPos: StartPositions): KVView;
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
  /** Bytes of key/value rows the held slots occupy now (all layers). */
  bytesUsed(): number;
  /** Every heap byte the cache holds: row storage and its run tables (all layers). */
  bytesReserved(): number;
  /** Key/value bytes one position adds to every layer: `2 x nLayers x nkv x hs x 4`. */
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
}

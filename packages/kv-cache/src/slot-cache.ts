import { CacheCapacityError, CacheOperationError, DisposedError } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import {
  checkBatch,
  checkCacheOptions,
  checkLayer,
  checkLength,
  checkRowIndex,
  checkRowList,
  checkRows,
  checkRowUpdate,
  checkSpans,
  checkStartPositions,
  checkUpdateArgs,
  checkViewRows,
  cloneTarget,
  cropLayers,
  cropRows,
  MAX_POSITION,
} from './checks.ts';
import { gatherRows } from './gather-rows.ts';
import { defaultHeap, type KernelHeap } from './kernel/kernel-heap.ts';
import type { KVView, LayoutKind, RowDType } from './kernel/layout.ts';
import type {
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
import { type Growth, growLayers } from './layer-growth.ts';
import { LayerStorage, type SlotRun } from './layer-storage.ts';
import { loadRows, saveRows } from './slot-file.ts';

/**
 * What the strategies share: per layer, a `LayerStorage` in the heap and each batch row's
 * seqLength; validation before mutation; update / view / read / crop / reorder / clone / save /
 * load on top of a few questions each strategy answers (where a position goes, which runs a row
 * holds, how much to allocate, whether a crop is possible, how to build an empty twin).
 * Every row holds its positions in slots [0, heldSlots(length)), so copying a row is copying
 * that prefix of slots.
 */
export abstract class SlotKVCache implements KVCache {
  abstract readonly strategy: string;
  abstract readonly layoutKind: LayoutKind;
  abstract readonly maxPosition: number | null;
  abstract readonly maxSlots: number | null;
  abstract readonly visibility: Visibility;
  readonly dtype: RowDType = 'float32';
  readonly nLayers: number;
  readonly nKvHeads: number;
  readonly headSize: number;
  readonly heap: KernelHeap;
  readonly maxBatchSize: number | null;
  readonly maxBytes: number | null;
  protected readonly layers: LayerStorage[];
  /** seqLength of every batch row, per layer (rows never written are 0). */
  protected readonly lengths: number[][];
  #disposed = false;
  /** `slotOf`, bound once (the per-step write path makes no closure). */
  readonly #slotAt = (position: number) => this.slotOf(position);

  protected constructor(
    options: KVCacheOptions & { maxBatchSize?: number | null },
    maxRuns: number,
  ) {
    const o = checkCacheOptions(options);
    this.nLayers = o.nLayers;
    this.nKvHeads = o.nKvHeads;
    this.headSize = o.headSize;
    this.maxBatchSize = o.maxBatchSize;
    this.maxBytes = o.maxBytes;
    this.heap = options.heap ?? defaultHeap();
    this.layers = Array.from(
      { length: o.nLayers },
      () => new LayerStorage(this.heap, o.nKvHeads, o.headSize, maxRuns),
    );
    this.lengths = Array.from({ length: o.nLayers }, () => []);
  }

  /** The slot position p of a row goes to. */
  protected abstract slotOf(position: number): number;
  /** The runs a row that has seen `length` positions holds, in position order. */
  protected abstract runsOf(length: number): SlotRun[];
  /** Slots a row holds after seeing `length` positions. */
  protected abstract heldSlots(length: number): number;
  /**
   * Slots to allocate per row for rows to reach `length`, given `current` (>= current); with
   * `tight`, the least that will do (a growing strategy's fallback under a budget).
   */
  protected abstract slotsFor(length: number, current: number, tight?: boolean): number;
  /** Rows to allocate for `batchSize` rows, given `current` (>= current). */
  protected abstract rowsFor(batchSize: number, current: number): number;
  /** Why a row that has seen `length` positions cannot be cropped to `to`; null if it can. */
  protected abstract cropRefusal(length: number, to: number): string | null;
  /** The strategy's own settings (what `config()` adds to the four every cache has). */
  protected abstract settings(): Record<string, number | null>;
  /** A new, empty cache of this strategy and config (it allocates nothing). */
  protected abstract emptyLike(options: { heap: KernelHeap; maxBytes: number | null }): SlotKVCache;

  config(): CacheConfig {
    const { nLayers, nKvHeads, headSize, maxBatchSize } = this;
    return { nLayers, nKvHeads, headSize, maxBatchSize, ...this.settings() };
  }

  get isDisposed(): boolean {
    return this.#disposed;
  }

  seqLength(layer = 0, row = 0): number {
    this.checkAlive();
    checkLayer(layer, this.nLayers);
    checkRowIndex(row, this.maxBatchSize);
    return this.lengths[layer]![row] ?? 0;
  }

  slotsHeld(layer = 0, row = 0): number {
    return this.heldSlots(this.seqLength(layer, row));
  }

  maxUpdateLength(_layer: number, _startPos: StartPositions, _batchSize?: number): number {
    return Number.POSITIVE_INFINITY;
  }

  checkUpdate(
    layer: number,
    batchSize: number,
    startPos: StartPositions,
    newPositions: number,
    options: { crop?: boolean; inPieces?: boolean; spans?: RowSpans } = {},
  ): void {
    this.checkAlive();
    const { starts, counts } = checkUpdateArgs(
      layer,
      this.nLayers,
      batchSize,
      this.maxBatchSize,
      startPos,
      newPositions,
      options.spans,
    );
    const lengths = this.lengths[layer]!;
    for (let b = 0; b < batchSize; b++) {
      const s = starts[b]!;
      const n = counts[b]!;
      const seen = lengths[b] ?? 0;
      checkRowUpdate(b, s, seen, n, {
        crop: options.crop ?? false,
        strategy: this.strategy,
        limit: this.maxPosition ?? MAX_POSITION, // positions are int32 in the kernel
        limitLabel: this.maxPosition === null ? 'the int32 position limit' : 'blockSize',
        checkCrop: () => this.#checkCropRow(b, seen, s),
      });
    }
    const most = this.maxUpdateLength(layer, starts, batchSize);
    const longest = Math.max(...counts);
    if (!options.inPieces && longest > most) {
      throw new CacheCapacityError(
        `a ${this.strategy} cache takes at most ${most} new position(s) per update at startPos ${starts.join(', ')}, got ${longest}: split the update`,
        { capacity: most, requested: longest },
      );
    }
  }

  reserve(layer: number, batchSize: number, length: number): void {
    this.checkAlive();
    checkLayer(layer, this.nLayers);
    checkBatch(batchSize, this.maxBatchSize);
    checkLength('reserve', length);
    if (this.maxPosition !== null && length > this.maxPosition) {
      throw new CacheCapacityError(
        `reserve: ${length} positions exceed the capacity ${this.maxPosition}`,
        { capacity: this.maxPosition, requested: length },
      );
    }
    const growth = this.#growthFor(layer, batchSize, length);
    if (growth) this.#grow([growth], true);
  }

  update(
    layer: number,
    rows: KVRows,
    startPos: StartPositions,
    options: UpdateOptions = {},
  ): KVView {
    this.checkAlive();
    const { batchSize: B, T } = checkRows(rows, this.nKvHeads, this.headSize, this.heap);
    this.checkUpdate(layer, B, startPos, T, options.spans ? { spans: options.spans } : {});
    const starts = checkStartPositions(startPos, B);
    const spans = options.spans ? checkSpans(options.spans, B, T) : null;
    const host =
      'ptr' in rows
        ? rows
        : {
            keys: rows.keys.dataSync() as Float32Array,
            values: rows.values.dataSync() as Float32Array,
            T,
          };
    let end = 0;
    for (let b = 0; b < B; b++) end = Math.max(end, starts[b]! + (spans ? spans.count[b]! : T));
    this.reserve(layer, B, end); // the last step that may fail
    const s = this.layers[layer]!;
    const lengths = this.lengths[layer]!;
    for (let b = 0; b < B; b++) {
      const start = starts[b]!;
      const n = spans ? spans.count[b]! : T;
      if (n > 0) s.writeRows(b, n, start, this.#slotAt, host, spans ? spans.first[b]! : 0);
      lengths[b] = start + n;
    }
    return this.view(layer, B);
  }

  view(layer: number, batchSize: number): KVView {
    this.checkAlive();
    checkLayer(layer, this.nLayers);
    checkBatch(batchSize, this.maxBatchSize);
    const s = this.layers[layer]!;
    checkViewRows(batchSize, s.rows, layer);
    const lengths = this.lengths[layer]!;
    let maxKeys = 0;
    for (let b = 0; b < batchSize; b++) {
      const seen = lengths[b] ?? 0;
      s.writeRuns(b, this.runsOf(seen));
      maxKeys = Math.max(maxKeys, this.heldSlots(seen));
    }
    return {
      heap: this.heap,
      batchSize,
      maxKeys,
      layout: {
        kind: this.layoutKind,
        dtype: this.dtype,
        nKvHeads: this.nKvHeads,
        headSize: this.headSize,
        keys: s.keys,
        values: s.values,
        headStride: s.headStride,
        rowStride: s.rowStride,
        runs: s.meta,
        runStride: s.runStride,
        runCounts: s.runCounts,
        window: this.visibility.window,
      },
    };
  }

  read(layer: number, batchSize: number): KVReadResult {
    this.checkAlive();
    checkLayer(layer, this.nLayers);
    checkBatch(batchSize, this.maxBatchSize);
    const s = this.layers[layer]!;
    const lengths = this.lengths[layer]!;
    const runs = Array.from({ length: batchSize }, (_, b) =>
      b < s.rows ? this.runsOf(lengths[b] ?? 0) : [],
    );
    const t = Math.max(0, ...runs.map((r) => r.reduce((n, x) => n + x.count, 0)));
    const { nKvHeads: nkv, headSize: hs } = this;
    const k = new Float32Array(batchSize * nkv * t * hs);
    const v = new Float32Array(k.length);
    const positions = new Int32Array(batchSize * t).fill(-1);
    for (let b = 0; b < batchSize; b++) {
      let at = 0;
      for (const r of runs[b]!) {
        for (let j = 0; j < nkv; j++) {
          const dst = ((b * nkv + j) * t + at) * hs;
          s.readSlots('keys', b, j, r.slot, r.count, k, dst);
          s.readSlots('values', b, j, r.slot, r.count, v, dst);
        }
        for (let i = 0; i < r.count; i++) positions[b * t + at + i] = r.firstPos + i;
        at += r.count;
      }
    }
    const shape: [number, number, number, number] = [batchSize, nkv, t, hs]; // (B, nkv, t, hs)
    return { keys: tf.tensor4d(k, shape), values: tf.tensor4d(v, shape), positions };
  }

  checkCrop(length: number, options: CropOptions = {}): void {
    this.checkAlive();
    checkLength('crop', length);
    for (const layer of cropLayers(options, this.nLayers)) {
      const lengths = this.lengths[layer]!;
      for (const b of cropRows(options, lengths.length, this.maxBatchSize)) {
        this.#checkCropRow(b, lengths[b] ?? 0, length);
      }
    }
  }

  crop(length: number, options: CropOptions = {}): void {
    this.checkCrop(length, options);
    for (const layer of cropLayers(options, this.nLayers)) {
      const lengths = this.lengths[layer]!;
      for (const b of cropRows(options, lengths.length, this.maxBatchSize)) {
        if ((lengths[b] ?? 0) > length) lengths[b] = length;
      }
    }
  }

  reset(layer?: number): void {
    this.checkAlive();
    if (layer !== undefined) checkLayer(layer, this.nLayers);
    for (let l = 0; l < this.nLayers; l++) {
      if (layer !== undefined && l !== layer) continue;
      this.lengths[l]!.length = 0;
      this.layers[l]!.clear();
    }
  }

  reorder(indices: readonly number[]): void {
    this.checkAlive();
    const rows = checkRowList(indices, this.maxBatchSize, 'reorder');
    const growth: Growth[] = [];
    for (let l = 0; l < this.nLayers; l++) {
      const s = this.layers[l]!;
      const lengths = this.lengths[l]!;
      let needed = 0; // destinations past the storage need rows only if their source holds something
      rows.forEach((src, b) => {
        if ((lengths[src] ?? 0) > 0) needed = b + 1;
      });
      if (needed > s.rows) {
        const r = this.rowsFor(needed, s.rows);
        growth.push({ layer: l, rows: r, slots: s.slots, tightSlots: s.slots });
      }
    }
    this.#grow(growth, true);
    for (let l = 0; l < this.nLayers; l++) {
      gatherRows(this.layers[l]!, this.lengths[l]!, rows, (n) => this.heldSlots(n));
    }
  }

  clone(options: CloneOptions = {}): KVCache {
    this.checkAlive();
    const known = Math.max(0, ...this.lengths.map((l) => l.length));
    return this.#copyRows(
      Array.from({ length: known }, (_, b) => b),
      options,
    );
  }

  fork(rows: number | readonly number[], options: CloneOptions = {}): KVCache {
    this.checkAlive();
    const list = checkRowList(typeof rows === 'number' ? [rows] : rows, this.maxBatchSize, 'fork');
    return this.#copyRows(list, options);
  }

  save(): Uint8Array {
    this.checkAlive();
    return saveRows({
      strategy: this.strategy,
      dtype: this.dtype,
      config: this.config(),
      layers: this.layers,
      lengths: this.lengths,
      held: (n) => this.heldSlots(n),
      runsOf: (n) => this.runsOf(n),
    });
  }

  load(bytes: Uint8Array): void {
    this.checkAlive();
    loadRows(bytes, {
      strategy: this.strategy,
      dtype: this.dtype,
      config: this.config(),
      maxPosition: this.maxPosition,
      held: (n) => this.heldSlots(n),
      runsOf: (n) => this.runsOf(n),
      layers: this.layers,
      lengths: this.lengths,
      grow: (rows, maxLengths) => {
        const growth: Growth[] = [];
        maxLengths.forEach((length, l) => {
          const g = length > 0 ? this.#growthFor(l, rows, length) : null;
          if (g) growth.push(g);
        });
        this.#grow(growth, false);
      },
    });
  }

  bytesUsed(): number {
    if (this.#disposed) return 0;
    let slots = 0;
    for (const lengths of this.lengths) for (const n of lengths) slots += this.heldSlots(n ?? 0);
    return 2 * slots * this.nKvHeads * this.headSize * 4;
  }

  bytesReserved(): number {
    return this.layers.reduce((n, s) => n + s.bytesReserved(), 0);
  }

  bytesPerToken(): number {
    return 2 * this.nLayers * this.nKvHeads * this.headSize * 4;
  }

  dispose(): void {
    if (this.#disposed) return;
    for (const s of this.layers) s.free();
    for (const lengths of this.lengths) lengths.length = 0;
    this.#disposed = true;
  }

  protected checkAlive(): void {
    if (this.#disposed) throw new DisposedError(`${this.constructor.name}`);
  }

  /** How a layer must grow for `batchSize` rows to reach `length` positions; null: it need not. */
  #growthFor(layer: number, batchSize: number, length: number): Growth | null {
    const s = this.layers[layer]!;
    const rows = this.rowsFor(batchSize, s.rows);
    const slots = this.slotsFor(length, s.slots);
    if (s.allocated && rows <= s.rows && slots <= s.slots) return null;
    return {
      layer,
      rows: Math.max(rows, s.rows),
      slots: Math.max(slots, s.slots),
      tightSlots: Math.max(this.slotsFor(length, s.slots, true), s.slots),
    };
  }

  #grow(plan: Growth[], keep: boolean): void {
    growLayers(this.layers, this.lengths, plan, {
      keep,
      maxBytes: this.maxBytes,
      strategy: this.strategy,
    });
  }

  /** A new cache holding copies of `rows` (row i <- rows[i]) of every layer. */
  #copyRows(rows: readonly number[], options: CloneOptions): SlotKVCache {
    const copy = this.emptyLike(cloneTarget(options, this));
    try {
      const growth: Growth[] = [];
      for (let l = 0; l < this.nLayers; l++) {
        const longest = Math.max(0, ...rows.map((r) => this.lengths[l]![r] ?? 0));
        const g = longest > 0 ? copy.#growthFor(l, rows.length, longest) : null;
        if (g) growth.push(g);
      }
      copy.#grow(growth, false);
      for (let l = 0; l < this.nLayers; l++) {
        rows.forEach((r, i) => {
          const length = this.lengths[l]![r] ?? 0;
          if (length === 0) return;
          copy.layers[l]!.copyRow(this.layers[l]!, r, i, this.heldSlots(length));
          copy.lengths[l]![i] = length;
        });
      }
    } catch (error) {
      copy.dispose();
      throw error;
    }
    return copy;
  }

  #checkCropRow(row: number, length: number, to: number): void {
    if (to >= length) return;
    const why = this.cropRefusal(length, to);
    if (why !== null) {
      throw new CacheOperationError(
        `cannot crop batch row ${row} from ${length} to ${to} positions: ${why}`,
        { strategy: this.strategy, operation: 'crop' },
      );
    }
  }
}

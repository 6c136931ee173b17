import {
  CacheCapacityError,
  CacheOperationError,
  DisposedError,
  ValueError,
} from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import {
  checkBatch,
  checkCacheOptions,
  checkLayer,
  checkRows,
  checkStartPositions,
  checkUpdateLength,
  MAX_POSITION,
} from './checks.ts';
import { defaultHeap, type KernelHeap } from './kernel/kernel-heap.ts';
import type { KVView, LayoutKind, RowDType } from './kernel/layout.ts';
import type {
  CropOptions,
  KVCache,
  KVCacheOptions,
  KVReadResult,
  KVRows,
  StartPositions,
  Visibility,
} from './kv-cache.ts';
import { LayerStorage, type SlotRun } from './layer-storage.ts';

/**
 * What the strategies share: per layer, a `LayerStorage` in the heap and each batch row's
 * seqLength; validation before mutation; update / view / read / crop on top of four questions
 * each strategy answers (where a position goes, which runs a row holds, how much to allocate,
 * whether a crop is possible).
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
  protected readonly layers: LayerStorage[];
  /** seqLength of every batch row, per layer (rows never written are 0). */
  protected readonly lengths: number[][];
  #disposed = false;

  protected constructor(
    options: KVCacheOptions & { maxBatchSize?: number | null },
    maxRuns: number,
  ) {
    const o = checkCacheOptions(options);
    this.nLayers = o.nLayers;
    this.nKvHeads = o.nKvHeads;
    this.headSize = o.headSize;
    this.maxBatchSize = o.maxBatchSize;
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
  /** Slots to allocate per row for rows to reach `length`, given `current` (>= current). */
  protected abstract slotsFor(length: number, current: number): number;
  /** Rows to allocate for `batchSize` rows, given `current` (>= current). */
  protected abstract rowsFor(batchSize: number, current: number): number;
  /** Why a row that has seen `length` positions cannot be cropped to `to`; null if it can. */
  protected abstract cropRefusal(length: number, to: number): string | null;

  get isDisposed(): boolean {
    return this.#disposed;
  }

  seqLength(layer = 0, row = 0): number {
    this.checkAlive();
    checkLayer(layer, this.nLayers);
    this.#checkRowIndex(row);
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
    options: { crop?: boolean; inPieces?: boolean } = {},
  ): void {
    this.checkAlive();
    checkLayer(layer, this.nLayers);
    checkBatch(batchSize, this.maxBatchSize);
    checkUpdateLength(newPositions);
    const starts = checkStartPositions(startPos, batchSize);
    const lengths = this.lengths[layer]!;
    for (let b = 0; b < batchSize; b++) {
      const s = starts[b]!;
      const seen = lengths[b] ?? 0;
      if (s > seen) {
        throw new ValueError(
          `startPos ${s} of batch row ${b} would leave a gap: it has seen positions [0, ${seen}), so startPos must be <= ${seen}`,
          { argument: 'startPos', value: s },
        );
      }
      if (s < seen) {
        if (!options.crop) {
          throw new CacheOperationError(
            `batch row ${b} has seen ${seen} positions; an update at startPos ${s} would overwrite [${s}, ${seen}): crop(${s}) first`,
            { strategy: this.strategy, operation: 'update' },
          );
        }
        this.#checkCropRow(b, seen, s);
      }
      const limit = this.maxPosition ?? MAX_POSITION; // positions are int32 in the kernel
      if (s + newPositions > limit) {
        throw new CacheCapacityError(
          `startPos + T = ${s} + ${newPositions} = ${s + newPositions} exceeds the capacity ${this.maxPosition === null ? '(the int32 position limit)' : '(blockSize)'} ${limit}`,
          { capacity: limit, requested: s + newPositions },
        );
      }
    }
    const most = this.maxUpdateLength(layer, starts, batchSize);
    if (!options.inPieces && newPositions > most) {
      throw new CacheCapacityError(
        `a ${this.strategy} cache takes at most ${most} new position(s) per update at startPos ${starts.join(', ')}, got ${newPositions}: split the update`,
        { capacity: most, requested: newPositions },
      );
    }
  }

  reserve(layer: number, batchSize: number, length: number): void {
    this.checkAlive();
    checkLayer(layer, this.nLayers);
    checkBatch(batchSize, this.maxBatchSize);
    if (!Number.isInteger(length) || length < 0) {
      throw new ValueError(`reserve: length must be a non-negative integer, got ${length}`, {
        argument: 'length',
        value: length,
      });
    }
    if (this.maxPosition !== null && length > this.maxPosition) {
      throw new CacheCapacityError(
        `reserve: ${length} positions exceed the capacity ${this.maxPosition}`,
        { capacity: this.maxPosition, requested: length },
      );
    }
    const s = this.layers[layer]!;
    const rows = this.rowsFor(batchSize, s.rows);
    const slots = this.slotsFor(length, s.slots);
    if (s.allocated && rows <= s.rows && slots <= s.slots) return;
    const lengths = this.lengths[layer]!;
    s.grow(Math.max(rows, s.rows), Math.max(slots, s.slots), (b) =>
      Math.min(lengths[b] ?? 0, s.slots),
    );
  }

  update(layer: number, rows: KVRows, startPos: StartPositions): KVView {
    this.checkAlive();
    const { batchSize: B, T } = checkRows(rows, this.nKvHeads, this.headSize, this.heap);
    this.checkUpdate(layer, B, startPos, T);
    const starts = checkStartPositions(startPos, B);
    const host =
      'ptr' in rows
        ? rows
        : {
            keys: rows.keys.dataSync() as Float32Array,
            values: rows.values.dataSync() as Float32Array,
            B,
          };
    this.reserve(layer, B, Math.max(...starts) + T); // the last step that may fail
    const s = this.layers[layer]!;
    const lengths = this.lengths[layer]!;
    for (let b = 0; b < B; b++) {
      const start = starts[b]!;
      s.writeRows(b, T, (i) => this.slotOf(start + i), host);
      lengths[b] = start + T;
    }
    return this.view(layer, B);
  }

  view(layer: number, batchSize: number): KVView {
    this.checkAlive();
    checkLayer(layer, this.nLayers);
    checkBatch(batchSize, this.maxBatchSize);
    const s = this.layers[layer]!;
    if (batchSize > s.rows) {
      throw new ValueError(
        `view: batch rows [0, ${batchSize}) requested, but layer ${layer} holds storage for ${s.rows}`,
        { argument: 'batchSize', value: batchSize },
      );
    }
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
    if (!Number.isInteger(length) || length < 0) {
      throw new ValueError(`crop: length must be a non-negative integer, got ${length}`, {
        argument: 'length',
        value: length,
      });
    }
    for (const layer of this.#layersOf(options)) {
      const lengths = this.lengths[layer]!;
      for (const b of this.#rowsOf(options, lengths.length)) {
        this.#checkCropRow(b, lengths[b] ?? 0, length);
      }
    }
  }

  crop(length: number, options: CropOptions = {}): void {
    this.checkCrop(length, options);
    for (const layer of this.#layersOf(options)) {
      const lengths = this.lengths[layer]!;
      for (const b of this.#rowsOf(options, lengths.length)) {
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

  #checkRowIndex(row: number): void {
    if (
      !Number.isInteger(row) ||
      row < 0 ||
      (this.maxBatchSize !== null && row >= this.maxBatchSize)
    ) {
      throw new ValueError(
        `batch row ${row} is out of range${this.maxBatchSize === null ? '' : `: this cache holds ${this.maxBatchSize} row(s)`}`,
        { argument: 'row', value: row },
      );
    }
  }

  #layersOf(options: CropOptions): number[] {
    if (options.layer === undefined) return Array.from({ length: this.nLayers }, (_, l) => l);
    checkLayer(options.layer, this.nLayers);
    return [options.layer];
  }

  #rowsOf(options: CropOptions, known: number): readonly number[] {
    if (options.rows === undefined) return Array.from({ length: known }, (_, b) => b);
    for (const b of options.rows) this.#checkRowIndex(b);
    return options.rows;
  }
}

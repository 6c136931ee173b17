import { CacheOperationError, DisposedError } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { readCacheFile } from './cache-file.ts';
import {
  checkBatch,
  checkCacheOptions,
  checkLayer,
  checkLength,
  checkQuantizedOptions,
  checkRowIndex,
  checkRowList,
  checkRows,
  checkRowUpdate,
  checkStartPositions,
  checkUpdateArgs,
  checkViewRows,
  cloneTarget,
  cropLayers,
  cropRows,
  MAX_POSITION,
} from './checks.ts';
import { defaultHeap, type KernelHeap } from './kernel/kernel-heap.ts';
import {
  GROUP_SIZES,
  type KVView,
  MAX_QUANTIZED_HEAD_SIZE,
  type QuantizedDType,
} from './kernel/layout.ts';
import type {
  CacheConfig,
  CloneOptions,
  CropOptions,
  KVCache,
  KVCacheOptions,
  KVReadResult,
  KVRows,
  StartPositions,
  UpdateOptions,
  Visibility,
} from './kv-cache.ts';
import {
  bytesForRows,
  checkBudget,
  copyRows,
  groupsHeld,
  type QuantizedStore,
} from './quantized-rows.ts';
import { QuantizedLayer, type RowSource } from './quantized-storage.ts';

export interface QuantizedKVCacheOptions extends KVCacheOptions {
  /** Bits per stored element: 8 (int8, symmetric) or 4 (int4 with a zero point). */
  bits: 8 | 4;
  /** Positions per key group (keys are scaled per channel) = channels per value group. Default 32. */
  groupSize?: number;
  /** The most recent positions kept in float32 (at least this many, fewer than residual + groupSize). Default 64. */
  residual?: number;
  /** Batch rows it may grow to; unbounded when omitted or null. */
  maxBatchSize?: number | null;
}

/**
 * KIVI's cache: the most recent `residual` positions (and up to `groupSize - 1` more) of every
 * batch row in float32, everything older quantized to int8 or int4: keys per channel over groups
 * of `groupSize` positions, values per position over groups of `groupSize` channels, each group
 * with a bfloat16 scale (and an int8 zero point for int4). A group is quantized once, when its
 * newest position falls `residual` behind the row's length, straight from the float32 window;
 * attention's kernel reads the quantized rows in place, dequantizing inside its dot products.
 * Positions are unbounded; the quantized history grows geometrically.
 *
 * Rewinding: a crop to n keeps whatever is quantized below n. It is refused when it would end
 * inside a quantized group (n below the quantized length and not a multiple of `groupSize`):
 * the float rows of that group are gone. So a row can always be cropped by up to `residual`
 * positions, or to any multiple of `groupSize` (0 included). `reorder`, `clone` and `fork` copy
 * rows as they are (quantized history and window); `save` and `load` throw CacheOperationError:
 * the kvkit cache file (format version 1) holds float32 rows only. See
 * docs/concepts/quantized-cache.md.
 *
 * @example
 * const cache = new QuantizedKVCache({ bits: 8, nLayers: 12, nKvHeads: 12, headSize: 64 });
 * cache.bytesPerToken(); // 12 x 12 x 136 bytes once quantized, against 12 x 12 x 512 in float32
 */
export class QuantizedKVCache implements KVCache {
  readonly strategy = 'quantized';
  readonly layoutKind = 'ring';
  readonly dtype: QuantizedDType;
  readonly bits: 8 | 4;
  readonly groupSize: number;
  readonly residual: number;
  readonly nLayers: number;
  readonly nKvHeads: number;
  readonly headSize: number;
  readonly heap: KernelHeap;
  readonly maxBatchSize: number | null;
  readonly maxBytes: number | null;
  readonly maxPosition = null;
  readonly maxSlots = null;
  readonly visibility: Visibility = { window: null, sinks: 0 };
  /** Per layer: the storage, and each batch row's length and quantized length. */
  #store: QuantizedStore;
  #disposed = false;

  constructor(options: QuantizedKVCacheOptions) {
    const o = checkCacheOptions(options);
    const q = checkQuantizedOptions(options, o.headSize, GROUP_SIZES, MAX_QUANTIZED_HEAD_SIZE);
    this.bits = q.bits;
    this.dtype = q.bits === 8 ? 'int8' : 'int4';
    this.groupSize = q.groupSize;
    this.residual = q.residual;
    this.nLayers = o.nLayers;
    this.nKvHeads = o.nKvHeads;
    this.headSize = o.headSize;
    this.maxBatchSize = o.maxBatchSize;
    this.maxBytes = o.maxBytes;
    this.heap = options.heap ?? defaultHeap();
    this.#store = this.#emptyStore();
  }

  get isDisposed(): boolean {
    return this.#disposed;
  }

  config(): CacheConfig {
    const { nLayers, nKvHeads, headSize, maxBatchSize, bits, groupSize, residual } = this;
    return { nLayers, nKvHeads, headSize, maxBatchSize, bits, groupSize, residual };
  }

  seqLength(layer = 0, row = 0): number {
    this.#alive();
    checkLayer(layer, this.nLayers);
    checkRowIndex(row, this.maxBatchSize);
    return this.#store.lengths[layer]![row] ?? 0;
  }

  /** Every position seen is held (quantized or in float32). */
  slotsHeld(layer = 0, row = 0): number {
    return this.seqLength(layer, row);
  }

  /** Positions batch row `row` of `layer` holds quantized: [0, quantizedLength). */
  quantizedLength(layer = 0, row = 0): number {
    this.seqLength(layer, row);
    return this.#store.quantized[layer]![row] ?? 0;
  }

  maxUpdateLength(_layer: number, _startPos: StartPositions, _batchSize?: number): number {
    return Number.POSITIVE_INFINITY;
  }

  checkUpdate(
    layer: number,
    batchSize: number,
    startPos: StartPositions,
    newPositions: number,
    options: { crop?: boolean; inPieces?: boolean; spans?: UpdateOptions['spans'] } = {},
  ): void {
    this.#alive();
    const { starts, counts } = checkUpdateArgs(
      layer,
      this.nLayers,
      batchSize,
      this.maxBatchSize,
      startPos,
      newPositions,
      options.spans,
    );
    for (let b = 0; b < batchSize; b++) {
      const s = starts[b]!;
      const seen = this.#store.lengths[layer]![b] ?? 0;
      checkRowUpdate(b, s, seen, counts[b]!, {
        crop: options.crop ?? false,
        strategy: this.strategy,
        limit: MAX_POSITION, // positions are int32 in the kernel
        limitLabel: 'the int32 position limit',
        checkCrop: () => this.#checkCropRow(layer, b, s),
      });
    }
  }

  reserve(layer: number, batchSize: number, length: number): void {
    this.#alive();
    checkLayer(layer, this.nLayers);
    checkBatch(batchSize, this.maxBatchSize);
    checkLength('reserve', length);
    const s = this.#store.layers[layer]!;
    const quantized = this.#store.quantized[layer]!;
    const rows = Math.max(batchSize, s.rows);
    const need = Math.max(
      Math.floor(Math.max(length - this.residual, 0) / this.groupSize),
      ...Array.from(quantized, (q) => (q ?? 0) / this.groupSize),
    );
    if (s.allocated && rows <= s.rows && need <= s.groups) return;
    // Twice the groups, or (under the budget) exactly what is needed.
    const now = this.bytesReserved();
    const others = now - s.bytesReserved();
    let groups = need <= s.groups ? s.groups : Math.max(need, 2 * s.groups);
    if (this.maxBytes !== null && others + s.bytesFor(rows, groups) > this.maxBytes) {
      groups = Math.max(need, s.groups);
    }
    checkBudget(others + s.bytesFor(rows, groups), now, this.maxBytes, this.strategy);
    s.grow(rows, groups, (b) => groupsHeld(this.#store, layer, b));
  }

  update(
    layer: number,
    rows: KVRows,
    startPos: StartPositions,
    options: UpdateOptions = {},
  ): KVView {
    this.#alive();
    const { batchSize: B, T } = checkRows(rows, this.nKvHeads, this.headSize, this.heap);
    this.checkUpdate(layer, B, startPos, T, options);
    const starts = checkStartPositions(startPos, B);
    const spans = options.spans ?? {
      first: new Array<number>(B).fill(0),
      count: new Array<number>(B).fill(T),
    };
    const { groupSize: G, residual: R } = this;
    const src: RowSource =
      'ptr' in rows
        ? rows
        : {
            keys: rows.keys.dataSync() as Float32Array,
            values: rows.values.dataSync() as Float32Array,
            B,
            T,
          };
    this.reserve(layer, B, Math.max(...starts.map((s, b) => s + spans.count[b]!))); // the last step that may fail
    const s = this.#store.layers[layer]!;
    const lengths = this.#store.lengths[layer]!;
    const quantized = this.#store.quantized[layer]!;
    const ring = s.ringSlots;
    for (let b = 0; b < B; b++) {
      const start = starts[b]!;
      const n = spans.count[b]!;
      let q = quantized[b] ?? 0;
      for (let i = 0; i < n; ) {
        // As many positions as fit before an unquantized row would be overwritten, or the
        // ring's end; then the groups whose newest position is now `residual` behind.
        const p = start + i;
        const m = Math.min(n - i, ring - (p - q), ring - (p % ring));
        s.writeRows(b, p, m, src, spans.first[b]! + i);
        i += m;
        while (start + i - R >= q + G) {
          s.quantize(b, q / G);
          q += G;
        }
      }
      lengths[b] = start + n;
      quantized[b] = q;
    }
    return this.view(layer, B);
  }

  view(layer: number, batchSize: number): KVView {
    this.#alive();
    checkLayer(layer, this.nLayers);
    checkBatch(batchSize, this.maxBatchSize);
    const s = this.#store.layers[layer]!;
    checkViewRows(batchSize, s.rows, layer);
    return s.view(this.#store.lengths[layer]!, this.#store.quantized[layer]!, batchSize);
  }

  /** Quantized positions read back dequantized (what the kernel computes with), the rest as stored. */
  read(layer: number, batchSize: number): KVReadResult {
    this.#alive();
    checkLayer(layer, this.nLayers);
    checkBatch(batchSize, this.maxBatchSize);
    const { lengths, quantized, layers } = this.#store;
    const r = layers[layer]!.readBatch(lengths[layer]!, quantized[layer]!, batchSize);
    const shape: [number, number, number, number] = [batchSize, this.nKvHeads, r.t, this.headSize]; // (B, nkv, t, hs)
    return {
      keys: tf.tensor4d(r.keys, shape),
      values: tf.tensor4d(r.values, shape),
      positions: r.positions,
    };
  }

  checkCrop(length: number, options: CropOptions = {}): void {
    this.#alive();
    checkLength('crop', length);
    for (const layer of cropLayers(options, this.nLayers)) {
      for (const b of cropRows(options, this.#store.lengths[layer]!.length, this.maxBatchSize)) {
        this.#checkCropRow(layer, b, length);
      }
    }
  }

  crop(length: number, options: CropOptions = {}): void {
    this.checkCrop(length, options);
    for (const layer of cropLayers(options, this.nLayers)) {
      const lengths = this.#store.lengths[layer]!;
      const quantized = this.#store.quantized[layer]!;
      for (const b of cropRows(options, lengths.length, this.maxBatchSize)) {
        if ((lengths[b] ?? 0) <= length) continue;
        lengths[b] = length;
        if ((quantized[b] ?? 0) > length) quantized[b] = length; // a multiple of groupSize
      }
    }
  }

  reset(layer?: number): void {
    this.#alive();
    if (layer !== undefined) checkLayer(layer, this.nLayers);
    for (let l = 0; l < this.nLayers; l++) {
      if (layer !== undefined && l !== layer) continue;
      this.#store.lengths[l]!.length = 0;
      this.#store.quantized[l]!.length = 0;
    }
  }

  /**
   * Row b <- row indices[b] in every layer (beam search). The rows are copied into new storage,
   * at least as large as the old (so the heap needs room for a second copy while it runs), which
   * then replaces it; rows past indices.length are forgotten.
   */
  reorder(indices: readonly number[]): void {
    this.#alive();
    const rows = checkRowList(indices, this.maxBatchSize, 'reorder');
    const old = this.#store;
    const minimum = (l: number) =>
      old.layers[l]!.allocated ? ([old.layers[l]!.rows, old.layers[l]!.groups] as const) : null;
    const now = this.bytesReserved();
    checkBudget(bytesForRows(old, rows, minimum), now, this.maxBytes, this.strategy);
    const next = this.#emptyStore();
    try {
      copyRows(old, next, rows, minimum);
    } catch (error) {
      for (const s of next.layers) s.free();
      throw error;
    }
    for (const s of old.layers) s.free();
    this.#store = next;
  }

  clone(options: CloneOptions = {}): KVCache {
    this.#alive();
    const known = Math.max(0, ...this.#store.lengths.map((l) => l.length));
    return this.#copy(
      Array.from({ length: known }, (_, b) => b),
      options,
    );
  }

  fork(rows: number | readonly number[], options: CloneOptions = {}): KVCache {
    this.#alive();
    const list = checkRowList(typeof rows === 'number' ? [rows] : rows, this.maxBatchSize, 'fork');
    return this.#copy(list, options);
  }

  /** Refused: the kvkit cache file (format version 1) holds float32 rows only. */
  save(): Uint8Array {
    this.#alive();
    throw this.#noFile('save');
  }

  /**
   * Refused, changing nothing: see `save`. A damaged file, or one that is no Uint8Array, is the
   * FormatError or ValueError every cache gives it; a sound one is CacheOperationError.
   */
  load(bytes: Uint8Array): void {
    this.#alive();
    readCacheFile(bytes);
    throw this.#noFile('load');
  }

  /**
   * Bytes of the positions held: per batch row and layer, `nkv x (keyGroupBytes +
   * valueGroupBytes)` per quantized group and `2 x nkv x hs x 4` per float32 position.
   */
  bytesUsed(): number {
    if (this.#disposed) return 0;
    let bytes = 0;
    this.#store.layers.forEach((s, l) => {
      const f = s.format;
      this.#store.lengths[l]!.forEach((n, b) => {
        const q = this.#store.quantized[l]![b] ?? 0;
        bytes += this.nKvHeads * ((q / f.groupSize) * (f.keyGroupBytes + f.valueGroupBytes));
        bytes += 2 * (n - q) * this.nKvHeads * this.headSize * 4;
      });
    });
    return bytes;
  }

  bytesReserved(): number {
    return this.#store.layers.reduce((n, s) => n + s.bytesReserved(), 0);
  }

  /**
   * Bytes one position adds to every layer once quantized (its rows and its share of the
   * group parameters): `nLayers x nkv x (keyGroupBytes + valueGroupBytes) / groupSize`. The
   * float32 window adds `2 x nkv x hs x 4` per layer for each of its residual..residual +
   * groupSize - 1 positions.
   */
  bytesPerToken(): number {
    const f = this.#store.layers[0]!.format;
    return (this.nLayers * this.nKvHeads * (f.keyGroupBytes + f.valueGroupBytes)) / f.groupSize;
  }

  dispose(): void {
    if (this.#disposed) return;
    for (const s of this.#store.layers) s.free();
    for (const l of [...this.#store.lengths, ...this.#store.quantized]) l.length = 0;
    this.#disposed = true;
  }

  #alive(): void {
    if (this.#disposed) throw new DisposedError('QuantizedKVCache');
  }

  #emptyStore(heap: KernelHeap = this.heap): QuantizedStore {
    const d = {
      nKvHeads: this.nKvHeads,
      headSize: this.headSize,
      dtype: this.dtype,
      groupSize: this.groupSize,
    };
    return {
      layers: Array.from(
        { length: this.nLayers },
        () => new QuantizedLayer(heap, d, this.residual + this.groupSize),
      ),
      lengths: Array.from({ length: this.nLayers }, () => []),
      quantized: Array.from({ length: this.nLayers }, () => []),
    };
  }

  /** A new cache of this config holding copies of `rows` (row i <- rows[i]) of every layer. */
  #copy(rows: readonly number[], options: CloneOptions): QuantizedKVCache {
    const target = cloneTarget(options, this);
    const { nLayers, nKvHeads, headSize, maxBatchSize, bits, groupSize, residual } = this;
    const copy = new QuantizedKVCache({
      ...{ nLayers, nKvHeads, headSize, maxBatchSize, bits, groupSize, residual },
      ...target,
    });
    const { maxBytes } = target;
    checkBudget(bytesForRows(this.#store, rows), 0, maxBytes, this.strategy);
    try {
      copyRows(this.#store, copy.#store, rows);
    } catch (error) {
      copy.dispose();
      throw error;
    }
    return copy;
  }

  #noFile(operation: 'save' | 'load'): CacheOperationError {
    return new CacheOperationError(
      `${operation}: a quantized cache cannot be saved or loaded yet: the kvkit cache file (format version 1) holds float32 rows only`,
      { strategy: this.strategy, operation },
    );
  }

  /** Refuses a crop of batch row b of `layer` to `to` that would end inside a quantized group. */
  #checkCropRow(layer: number, b: number, to: number): void {
    const length = this.#store.lengths[layer]![b] ?? 0;
    const q = this.#store.quantized[layer]![b] ?? 0;
    if (to >= length || to >= q || to % this.groupSize === 0) return;
    throw new CacheOperationError(
      `cannot crop batch row ${b} from ${length} to ${to} positions: positions [0, ${q}) are stored quantized in groups of ${this.groupSize}, ` +
        `and the float32 rows of [${to - (to % this.groupSize)}, ${to}) are gone: crop to a multiple of ${this.groupSize} or to at least ${q}`,
      { strategy: this.strategy, operation: 'crop' },
    );
  }
}

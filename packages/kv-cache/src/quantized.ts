import { CacheOperationError, DisposedError, ValueError } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import {
  checkBatch,
  checkCacheOptions,
  checkLayer,
  checkLength,
  checkNextStart,
  checkPositionLimit,
  checkRowIndex,
  checkRows,
  checkStartPositions,
  checkUpdateLength,
  cropLayers,
  cropRows,
} from './checks.ts';
import { defaultHeap, type KernelHeap } from './kernel/kernel-heap.ts';
import {
  GROUP_SIZES,
  type KVView,
  MAX_QUANTIZED_HEAD_SIZE,
  type QuantizedDType,
} from './kernel/layout.ts';
import type {
  CropOptions,
  KVCache,
  KVCacheOptions,
  KVReadResult,
  KVRows,
  StartPositions,
  Visibility,
} from './kv-cache.ts';
import { QuantizedLayer, type RowSource } from './quantized-storage.ts';

export interface QuantizedKVCacheOptions extends KVCacheOptions {
  /** Bits per stored element: 8 (int8, symmetric) or 4 (int4 with a zero point). */
  bits: 8 | 4;
  /** Positions per key group (keys are scaled per channel) = channels per value group. Default 32. */
  groupSize?: number;
  /** The most recent positions kept in float32 (at least this many, fewer than residual + groupSize). Default 64. */
  residual?: number;
  /** Batch rows it may grow to; unbounded when omitted. */
  maxBatchSize?: number;
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
 * positions, or to any multiple of `groupSize` (0 included). See docs/concepts/quantized-cache.md.
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
  readonly maxPosition = null;
  readonly maxSlots = null;
  readonly visibility: Visibility = { window: null, sinks: 0 };
  readonly #layers: QuantizedLayer[];
  /** Per layer and batch row: positions seen, and positions held quantized (a multiple of G). */
  readonly #lengths: number[][];
  readonly #quantized: number[][];
  #disposed = false;

  constructor(options: QuantizedKVCacheOptions) {
    const o = checkCacheOptions(options);
    const bits = options.bits;
    if (bits !== 8 && bits !== 4) {
      throw new ValueError(`QuantizedKVCache bits must be 8 or 4, got ${String(bits)}`, {
        argument: 'bits',
        value: bits,
      });
    }
    const groupSize = options.groupSize ?? 32;
    if (!GROUP_SIZES.includes(groupSize)) {
      throw new ValueError(
        `QuantizedKVCache groupSize must be one of ${GROUP_SIZES.join(', ')}, got ${String(groupSize)}`,
        { argument: 'groupSize', value: groupSize },
      );
    }
    const residual = options.residual ?? 64;
    if (!Number.isInteger(residual) || residual < 0 || residual > 1 << 20) {
      throw new ValueError(
        `QuantizedKVCache residual must be a non-negative integer <= ${1 << 20}, got ${String(residual)}`,
        { argument: 'residual', value: residual },
      );
    }
    if (o.headSize > MAX_QUANTIZED_HEAD_SIZE) {
      throw new ValueError(
        `QuantizedKVCache headSize must be <= ${MAX_QUANTIZED_HEAD_SIZE}, got ${o.headSize}`,
        { argument: 'headSize', value: o.headSize },
      );
    }
    this.bits = bits;
    this.dtype = bits === 8 ? 'int8' : 'int4';
    this.groupSize = groupSize;
    this.residual = residual;
    this.nLayers = o.nLayers;
    this.nKvHeads = o.nKvHeads;
    this.headSize = o.headSize;
    this.maxBatchSize = o.maxBatchSize;
    this.heap = options.heap ?? defaultHeap();
    const d = { nKvHeads: o.nKvHeads, headSize: o.headSize, dtype: this.dtype, groupSize };
    this.#layers = Array.from(
      { length: o.nLayers },
      () => new QuantizedLayer(this.heap, d, residual + groupSize),
    );
    this.#lengths = Array.from({ length: o.nLayers }, () => []);
    this.#quantized = Array.from({ length: o.nLayers }, () => []);
  }

  get isDisposed(): boolean {
    return this.#disposed;
  }

  seqLength(layer = 0, row = 0): number {
    this.#alive();
    checkLayer(layer, this.nLayers);
    checkRowIndex(row, this.maxBatchSize);
    return this.#lengths[layer]![row] ?? 0;
  }

  /** Every position seen is held (quantized or in float32). */
  slotsHeld(layer = 0, row = 0): number {
    return this.seqLength(layer, row);
  }

  /** Positions batch row `row` of `layer` holds quantized: [0, quantizedLength). */
  quantizedLength(layer = 0, row = 0): number {
    this.seqLength(layer, row);
    return this.#quantized[layer]![row] ?? 0;
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
    this.#alive();
    checkLayer(layer, this.nLayers);
    checkBatch(batchSize, this.maxBatchSize);
    checkUpdateLength(newPositions);
    const starts = checkStartPositions(startPos, batchSize);
    for (let b = 0; b < batchSize; b++) {
      const s = starts[b]!;
      const seen = this.#lengths[layer]![b] ?? 0;
      if (checkNextStart(b, s, seen, options.crop, this.strategy)) this.#checkCropRow(layer, b, s);
      checkPositionLimit(s, newPositions, null);
    }
  }

  reserve(layer: number, batchSize: number, length: number): void {
    this.#alive();
    checkLayer(layer, this.nLayers);
    checkBatch(batchSize, this.maxBatchSize);
    checkLength('reserve', length);
    const s = this.#layers[layer]!;
    const quantized = this.#quantized[layer]!;
    const rows = Math.max(batchSize, s.rows);
    const need = Math.max(
      Math.floor(Math.max(length - this.residual, 0) / this.groupSize),
      ...quantized.map((q) => q / this.groupSize),
    );
    if (s.allocated && rows <= s.rows && need <= s.groups) return;
    const groups = need <= s.groups ? s.groups : Math.max(need, 2 * s.groups);
    s.grow(rows, groups, (b) => (quantized[b] ?? 0) / this.groupSize);
  }

  update(layer: number, rows: KVRows, startPos: StartPositions): KVView {
    this.#alive();
    const { batchSize: B, T } = checkRows(rows, this.nKvHeads, this.headSize, this.heap);
    this.checkUpdate(layer, B, startPos, T);
    const starts = checkStartPositions(startPos, B);
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
    this.reserve(layer, B, Math.max(...starts) + T); // the last step that may fail
    const s = this.#layers[layer]!;
    const lengths = this.#lengths[layer]!;
    const quantized = this.#quantized[layer]!;
    const ring = s.ringSlots;
    for (let b = 0; b < B; b++) {
      const start = starts[b]!;
      let q = quantized[b] ?? 0;
      for (let i = 0; i < T; ) {
        // As many positions as fit before an unquantized row would be overwritten, or the
        // ring's end; then the groups whose newest position is now `residual` behind.
        const p = start + i;
        const n = Math.min(T - i, ring - (p - q), ring - (p % ring));
        s.writeRows(b, p, n, src, i);
        i += n;
        while (start + i - R >= q + G) {
          s.quantize(b, q / G);
          q += G;
        }
      }
      lengths[b] = start + T;
      quantized[b] = q;
    }
    return this.view(layer, B);
  }

  view(layer: number, batchSize: number): KVView {
    this.#alive();
    checkLayer(layer, this.nLayers);
    checkBatch(batchSize, this.maxBatchSize);
    const s = this.#layers[layer]!;
    if (batchSize > s.rows) {
      throw new ValueError(
        `view: batch rows [0, ${batchSize}) requested, but layer ${layer} holds storage for ${s.rows}`,
        { argument: 'batchSize', value: batchSize },
      );
    }
    const lengths = this.#lengths[layer]!;
    let maxKeys = 0;
    for (let b = 0; b < batchSize; b++) {
      s.writeRuns(b, lengths[b] ?? 0, this.#quantized[layer]![b] ?? 0);
      maxKeys = Math.max(maxKeys, lengths[b] ?? 0);
    }
    return {
      heap: this.heap,
      batchSize,
      maxKeys,
      layout: {
        kind: 'ring',
        dtype: 'float32',
        nKvHeads: this.nKvHeads,
        headSize: this.headSize,
        keys: s.ringKeys,
        values: s.ringValues,
        headStride: s.ringSlots * this.headSize * 4,
        rowStride: this.headSize * 4,
        runs: s.meta,
        runStride: s.runStride,
        runCounts: s.runCounts,
        window: null,
        quantized: s.quantized,
      },
    };
  }

  /** Quantized positions read back dequantized (what the kernel computes with), the rest as stored. */
  read(layer: number, batchSize: number): KVReadResult {
    this.#alive();
    checkLayer(layer, this.nLayers);
    checkBatch(batchSize, this.maxBatchSize);
    const s = this.#layers[layer]!;
    const lengths = Array.from({ length: batchSize }, (_, b) =>
      b < s.rows ? (this.#lengths[layer]![b] ?? 0) : 0,
    );
    const t = Math.max(0, ...lengths);
    const { nKvHeads: nkv, headSize: hs } = this;
    const keys = new Float32Array(batchSize * nkv * t * hs);
    const values = new Float32Array(keys.length);
    const positions = new Int32Array(batchSize * t).fill(-1);
    for (let b = 0; b < batchSize; b++) {
      const q = this.#quantized[layer]![b] ?? 0;
      for (let p = 0; p < lengths[b]!; p++) {
        for (let j = 0; j < nkv; j++) {
          s.readRow(b, j, p, q, { keys, values, to: ((b * nkv + j) * t + p) * hs });
        }
        positions[b * t + p] = p;
      }
    }
    const shape: [number, number, number, number] = [batchSize, nkv, t, hs]; // (B, nkv, t, hs)
    return { keys: tf.tensor4d(keys, shape), values: tf.tensor4d(values, shape), positions };
  }

  checkCrop(length: number, options: CropOptions = {}): void {
    this.#alive();
    checkLength('crop', length);
    for (const layer of cropLayers(options, this.nLayers)) {
      for (const b of cropRows(options, this.#lengths[layer]!.length, this.maxBatchSize)) {
        this.#checkCropRow(layer, b, length);
      }
    }
  }

  crop(length: number, options: CropOptions = {}): void {
    this.checkCrop(length, options);
    for (const layer of cropLayers(options, this.nLayers)) {
      const lengths = this.#lengths[layer]!;
      const quantized = this.#quantized[layer]!;
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
      this.#lengths[l]!.length = 0;
      this.#quantized[l]!.length = 0;
    }
  }

  /**
   * Bytes of the positions held: per batch row and layer, `nkv x (keyGroupBytes +
   * valueGroupBytes)` per quantized group and `2 x nkv x hs x 4` per float32 position.
   */
  bytesUsed(): number {
    if (this.#disposed) return 0;
    let bytes = 0;
    this.#layers.forEach((s, l) => {
      const f = s.format;
      this.#lengths[l]!.forEach((n, b) => {
        const q = this.#quantized[l]![b] ?? 0;
        bytes += this.nKvHeads * ((q / f.groupSize) * (f.keyGroupBytes + f.valueGroupBytes));
        bytes += 2 * (n - q) * this.nKvHeads * this.headSize * 4;
      });
    });
    return bytes;
  }

  bytesReserved(): number {
    return this.#layers.reduce((n, s) => n + s.bytesReserved(), 0);
  }

  /**
   * Bytes one position adds to every layer once quantized (its rows and its share of the
   * group parameters): `nLayers x nkv x (keyGroupBytes + valueGroupBytes) / groupSize`. The
   * float32 window adds `2 x nkv x hs x 4` per layer for each of its residual..residual +
   * groupSize - 1 positions.
   */
  bytesPerToken(): number {
    const f = this.#layers[0]!.format;
    return (this.nLayers * this.nKvHeads * (f.keyGroupBytes + f.valueGroupBytes)) / f.groupSize;
  }

  dispose(): void {
    if (this.#disposed) return;
    for (const s of this.#layers) s.free();
    for (const l of [...this.#lengths, ...this.#quantized]) l.length = 0;
    this.#disposed = true;
  }

  #alive(): void {
    if (this.#disposed) throw new DisposedError('QuantizedKVCache');
  }

  /** Refuses a crop of batch row b of `layer` to `to` that would end inside a quantized group. */
  #checkCropRow(layer: number, b: number, to: number): void {
    const length = this.#lengths[layer]![b] ?? 0;
    const q = this.#quantized[layer]![b] ?? 0;
    if (to >= length || to >= q || to % this.groupSize === 0) return;
    throw new CacheOperationError(
      `cannot crop batch row ${b} from ${length} to ${to} positions: positions [0, ${q}) are stored quantized in groups of ${this.groupSize}, ` +
        `and the float32 rows of [${to - (to % this.groupSize)}, ${to}) are gone: crop to a multiple of ${this.groupSize} or to at least ${q}`,
      { strategy: this.strategy, operation: 'crop' },
    );
  }
}

import { KV_ALIGNMENT } from './kernel/allocator.ts';
import type { KernelHeap } from './kernel/kernel-heap.ts';
import {
  type HeapRows,
  type KVView,
  type QuantizedDType,
  type QuantizedFormat,
  type QuantizedLayout,
  quantizedFormat,
  RUN_BYTES,
  RUN_QUANTIZED,
} from './kernel/layout.ts';
import { quantizeKeyGroup, quantizeValueRow, readKeyRow, readValueRow } from './quantize.ts';

/** Runs per batch row: the quantized history, then the window's ring in at most two pieces. */
const MAX_RUNS = 3;
/**
 * Bytes after the last value group: the kernel reads up to 36 scales and zero points past a
 * block's first row and masks what is not the block's (attention.wat, $value_qblock).
 */
const VALUE_SLACK = 128;

/**
 * New rows for one batch row, where a projection or the caller left them: rows already in the
 * heap (`HeapRows`), or `(B, nkv, T, hs)` host arrays.
 */
export type RowSource =
  | HeapRows
  | { keys: Float32Array; values: Float32Array; B: number; T: number };

/**
 * One layer of a `QuantizedKVCache` in a heap: the float32 window as a ring of `ringSlots`
 * slots per batch row (`(rows, nkv, ringSlots, hs)` keys and values, position p in slot
 * p mod ringSlots), the quantized history as groups (`(nkv, rows x groups)` key groups and value
 * groups in the kernel's format, batch row b's group g at index b x groups + g), and the run
 * tables. Growing reallocates and copies what is held, all or nothing.
 */
export class QuantizedLayer {
  readonly format: QuantizedFormat;
  readonly ringSlots: number;
  readonly #heap: KernelHeap;
  readonly #nkv: number;
  readonly #hs: number;
  readonly #dtype: QuantizedDType;
  ringKeys = -1;
  ringValues = -1;
  meta = -1;
  groupKeys = -1;
  groupValues = -1;
  rows = 0;
  /** Groups each batch row has room for. */
  groups = 0;

  constructor(
    heap: KernelHeap,
    d: { nKvHeads: number; headSize: number; dtype: QuantizedDType; groupSize: number },
    ringSlots: number,
  ) {
    this.#heap = heap;
    this.#nkv = d.nKvHeads;
    this.#hs = d.headSize;
    this.#dtype = d.dtype;
    this.format = quantizedFormat(d.dtype, d.headSize, d.groupSize);
    this.ringSlots = ringSlots;
  }

  get allocated(): boolean {
    return this.ringKeys >= 0;
  }

  get runStride(): number {
    return MAX_RUNS * RUN_BYTES;
  }

  get runCounts(): number {
    return this.meta + this.rows * this.runStride;
  }

  /** The kernel's description of the quantized groups. */
  get quantized(): QuantizedLayout {
    const f = this.format;
    return {
      dtype: this.#dtype,
      groupSize: f.groupSize,
      keys: this.groupKeys,
      values: this.groupValues,
      keyHeadStride: this.rows * this.groups * f.keyGroupBytes,
      valueHeadStride: this.rows * this.groups * f.valueGroupBytes,
    };
  }

  bytesReserved(): number {
    if (!this.allocated) return 0;
    const h = this.#heap;
    return [this.ringKeys, this.ringValues, this.meta, this.groupKeys, this.groupValues].reduce(
      (n, ptr) => n + h.sizeOf(ptr),
      0,
    );
  }

  /** The block sizes for `rows` batch rows of `groups` groups: ring keys, values, meta, groups. */
  #sizes(rows: number, groups: number): number[] {
    const f = this.format;
    const ringBytes = rows * this.#nkv * this.ringSlots * this.#hs * 4;
    return [
      ringBytes,
      ringBytes,
      rows * (this.runStride + 4),
      this.#nkv * rows * groups * f.keyGroupBytes,
      this.#nkv * rows * groups * f.valueGroupBytes + VALUE_SLACK,
    ];
  }

  /** What `bytesReserved()` would be with storage for `rows` rows of `groups` groups. */
  bytesFor(rows: number, groups: number): number {
    return this.#sizes(rows, groups).reduce((n, b) => n + Math.max(16, Math.ceil(b / 16) * 16), 0);
  }

  /**
   * Reallocates for `rows` batch rows of `groups` groups (both >= the current ones), keeping the
   * ring and the first `held(b)` groups of every batch row. All or nothing.
   */
  grow(rows: number, groups: number, held: (row: number) => number): void {
    const heap = this.#heap;
    const f = this.format;
    const sizes = this.#sizes(rows, groups);
    const taken: number[] = [];
    try {
      // Row blocks on KV_ALIGNMENT boundaries, the run table (index 2) on 16 (see HeapAllocator.alloc).
      sizes.forEach((bytes, i) => {
        taken.push(heap.alloc(bytes, i === 2 ? 16 : KV_ALIGNMENT));
      });
    } catch (error) {
      for (const ptr of taken) heap.free(ptr);
      throw error;
    }
    const [ringKeys, ringValues, meta, groupKeys, groupValues] = taken as [
      number,
      number,
      number,
      number,
      number,
    ];
    const u8 = heap.u8();
    u8.fill(0, meta, meta + heap.sizeOf(meta));
    if (this.allocated) {
      const ringRow = this.#nkv * this.ringSlots * this.#hs * 4; // bytes of one batch row's ring
      u8.copyWithin(ringKeys, this.ringKeys, this.ringKeys + this.rows * ringRow);
      u8.copyWithin(ringValues, this.ringValues, this.ringValues + this.rows * ringRow);
      for (const [to, from, bytes] of [
        [groupKeys, this.groupKeys, f.keyGroupBytes],
        [groupValues, this.groupValues, f.valueGroupBytes],
      ] as const) {
        for (let j = 0; j < this.#nkv; j++) {
          for (let b = 0; b < this.rows; b++) {
            const src = from + (j * this.rows * this.groups + b * this.groups) * bytes;
            const dst = to + (j * rows * groups + b * groups) * bytes;
            u8.copyWithin(dst, src, src + held(b) * bytes);
          }
        }
      }
      this.free();
    }
    Object.assign(this, { ringKeys, ringValues, meta, groupKeys, groupValues, rows, groups });
  }

  /**
   * Copies batch row `from` of `src` (a layer of the same format and window) into row `to` of
   * this one: its whole ring and its first `groups` groups, every head. This layer must have the
   * rows and groups.
   */
  copyRow(src: QuantizedLayer, from: number, to: number, groups: number): void {
    const u8 = this.#heap.u8();
    const srcU8 = src.#heap.u8();
    const ringRow = this.#nkv * this.ringSlots * this.#hs * 4;
    for (const [dst, source] of [
      [this.ringKeys, src.ringKeys],
      [this.ringValues, src.ringValues],
    ] as const) {
      u8.set(
        srcU8.subarray(source + from * ringRow, source + (from + 1) * ringRow),
        dst + to * ringRow,
      );
    }
    const f = this.format;
    for (const [which, bytes] of [
      ['groupKeys', f.keyGroupBytes],
      ['groupValues', f.valueGroupBytes],
    ] as const) {
      for (let j = 0; j < this.#nkv; j++) {
        const at = src.#groupAt(src[which], bytes, j, from, 0);
        u8.set(
          srcU8.subarray(at, at + groups * bytes),
          this.#groupAt(this[which], bytes, j, to, 0),
        );
      }
    }
  }

  /** Float index of ring slot `slot` of batch row b, head j (keys or values). */
  #ringAt(base: number, b: number, j: number, slot: number): number {
    return base / 4 + ((b * this.#nkv + j) * this.ringSlots + slot) * this.#hs;
  }

  #groupAt(base: number, bytes: number, j: number, b: number, g: number): number {
    return base + (j * this.rows * this.groups + b * this.groups + g) * bytes;
  }

  /**
   * Copies new rows i .. i+n-1 of batch row b from `src` into the ring slots of positions
   * p .. p+n-1 (consecutive slots: the caller keeps the run inside the ring).
   */
  writeRows(b: number, p: number, n: number, src: RowSource, i: number): void {
    const hs = this.#hs;
    const nkv = this.#nkv;
    const rowBytes = hs * 4;
    const slot = p % this.ringSlots;
    const to = (b * nkv * this.ringSlots + slot) * rowBytes;
    if ('ptr' in src) {
      const from = src.ptr + b * src.batchStride + i * src.rowStride;
      for (const [base, offset] of [
        [this.ringKeys, src.keyOffset],
        [this.ringValues, src.valueOffset],
      ] as const) {
        this.#heap.copyRows(
          { ptr: from + offset, rowStride: src.rowStride, headStride: rowBytes },
          { ptr: base + to, rowStride: rowBytes, headStride: this.ringSlots * rowBytes },
          n,
          nkv,
          rowBytes,
        );
      }
      return;
    }
    const f32 = this.#heap.f32();
    for (let j = 0; j < nkv; j++) {
      const from = ((b * nkv + j) * src.T + i) * hs; // (B, nkv, T, hs): a (b, j) run is contiguous
      const at = this.#ringAt(0, b, j, slot);
      f32.set(src.keys.subarray(from, from + n * hs), this.ringKeys / 4 + at);
      f32.set(src.values.subarray(from, from + n * hs), this.ringValues / 4 + at);
    }
  }

  /** Quantizes positions [gG, gG + G) of batch row b, from the ring, into its group g. */
  quantize(b: number, g: number): void {
    const f = this.format;
    const G = f.groupSize;
    const io = { src: this.#heap.f32(), dst: this.#heap.u8() };
    const rows = new Int32Array(G);
    for (let j = 0; j < this.#nkv; j++) {
      for (let r = 0; r < G; r++)
        rows[r] = this.#ringAt(this.ringKeys, b, j, (g * G + r) % this.ringSlots);
      quantizeKeyGroup(
        f,
        io,
        rows,
        this.#hs,
        this.#groupAt(this.groupKeys, f.keyGroupBytes, j, b, g),
      );
      const values = this.#groupAt(this.groupValues, f.valueGroupBytes, j, b, g);
      for (let r = 0; r < G; r++) {
        const from = this.#ringAt(this.ringValues, b, j, (g * G + r) % this.ringSlots);
        quantizeValueRow(f, io, from, this.#hs, values, r);
      }
    }
  }

  /**
   * Writes batch row b's run table: positions [0, quantized) as one quantized run, then
   * [quantized, length) from the ring (up to its end, then wrapped).
   */
  writeRuns(b: number, length: number, quantized: number): void {
    const i32 = this.#heap.i32();
    const base = (this.meta + b * this.runStride) / 4;
    const ringRow = this.#nkv * this.ringSlots * this.#hs * 4;
    const runs: number[][] = [];
    if (quantized > 0) runs.push([b * this.groups, quantized, 0, RUN_QUANTIZED]);
    const first = quantized % this.ringSlots;
    const head = Math.min(length - quantized, this.ringSlots - first);
    const rowBytes = this.#hs * 4;
    if (head > 0) runs.push([b * ringRow + first * rowBytes, head, quantized, 0]);
    if (length - quantized > head)
      runs.push([b * ringRow, length - quantized - head, quantized + head, 0]);
    for (const [i, r] of runs.entries()) i32.set(r, base + 4 * i);
    i32[this.runCounts / 4 + b] = runs.length;
  }

  /**
   * Position p of batch row b, head j, as float32 (dequantized when p < quantized) into
   * `keys` / `values` at float index `to`.
   */
  readRow(
    b: number,
    j: number,
    p: number,
    quantized: number,
    out: { keys: Float32Array; values: Float32Array; to: number },
  ): void {
    const f = this.format;
    const hs = this.#hs;
    if (p < quantized) {
      const g = Math.floor(p / f.groupSize);
      const r = p % f.groupSize;
      const u8 = this.#heap.u8();
      readKeyRow(
        f,
        u8,
        this.#groupAt(this.groupKeys, f.keyGroupBytes, j, b, g),
        r,
        hs,
        out.keys,
        out.to,
      );
      readValueRow(
        f,
        u8,
        this.#groupAt(this.groupValues, f.valueGroupBytes, j, b, g),
        r,
        hs,
        out.values,
        out.to,
      );
      return;
    }
    const f32 = this.#heap.f32();
    const slot = p % this.ringSlots;
    const k = this.#ringAt(this.ringKeys, b, j, slot);
    const v = this.#ringAt(this.ringValues, b, j, slot);
    out.keys.set(f32.subarray(k, k + hs), out.to);
    out.values.set(f32.subarray(v, v + hs), out.to);
  }

  /**
   * The kernel's view of batch rows [0, B) (lengths[b] positions seen, quantized[b] of them
   * quantized): run tables written, the float32 window as a ring, the history as groups.
   */
  view(lengths: readonly number[], quantized: readonly number[], B: number): KVView {
    let maxKeys = 0;
    for (let b = 0; b < B; b++) {
      this.writeRuns(b, lengths[b] ?? 0, quantized[b] ?? 0);
      maxKeys = Math.max(maxKeys, lengths[b] ?? 0);
    }
    const rowStride = this.#hs * 4;
    return {
      heap: this.#heap,
      batchSize: B,
      maxKeys,
      layout: {
        kind: 'ring',
        dtype: 'float32',
        nKvHeads: this.#nkv,
        headSize: this.#hs,
        keys: this.ringKeys,
        values: this.ringValues,
        headStride: this.ringSlots * rowStride,
        rowStride,
        runs: this.meta,
        runStride: this.runStride,
        runCounts: this.runCounts,
        window: null,
        quantized: this.quantized,
      },
    };
  }

  /**
   * What batch rows [0, B) hold, in position order, as `(B, nkv, t, hs)` arrays (quantized
   * positions dequantized), and each key's position (-1 past a row's length).
   */
  readBatch(lengths: readonly number[], quantized: readonly number[], B: number) {
    const nkv = this.#nkv;
    const hs = this.#hs;
    const held = Array.from({ length: B }, (_, b) => (b < this.rows ? (lengths[b] ?? 0) : 0));
    const t = Math.max(0, ...held);
    const keys = new Float32Array(B * nkv * t * hs);
    const values = new Float32Array(keys.length);
    const positions = new Int32Array(B * t).fill(-1);
    for (let b = 0; b < B; b++) {
      for (let p = 0; p < held[b]!; p++) {
        for (let j = 0; j < nkv; j++) {
          this.readRow(b, j, p, quantized[b] ?? 0, {
            keys,
            values,
            to: ((b * nkv + j) * t + p) * hs,
          });
        }
        positions[b * t + p] = p;
      }
    }
    return { keys, values, positions, t };
  }

  free(): void {
    if (!this.allocated) return;
    for (const ptr of [this.ringKeys, this.ringValues, this.meta, this.groupKeys, this.groupValues])
      this.#heap.free(ptr);
    Object.assign(this, {
      ringKeys: -1,
      ringValues: -1,
      meta: -1,
      groupKeys: -1,
      groupValues: -1,
      rows: 0,
      groups: 0,
    });
  }
}

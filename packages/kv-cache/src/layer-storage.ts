import type { KernelHeap } from './kernel/kernel-heap.ts';
import { type HeapRows, RUN_BYTES } from './kernel/layout.ts';

/** A run of consecutive positions in consecutive slots: `count` slots from `slot`, from `firstPos`. */
export interface SlotRun {
  slot: number;
  count: number;
  firstPos: number;
  sink: boolean;
}

/**
 * One layer's rows in a heap: keys and values as `(rows, nkv, slots, hs)` float32 blocks, and a
 * metadata block with each batch row's run table (`maxRuns` entries) and run count, the form in
 * which the kernel reads them. Growing reallocates all three and copies what is held; a failed
 * allocation frees what it took and leaves the old blocks in place.
 *
 * Blocks are not zero-filled (that would cost O(capacity) per allocation, and nothing reads a
 * slot before it is written): each row's high-water mark says which slots hold something, and
 * `snapshot` shows zeros past it, as a zero-initialised tensor would.
 */
export class LayerStorage {
  readonly #heap: KernelHeap;
  readonly #nkv: number;
  readonly #hs: number;
  readonly #maxRuns: number;
  keys = -1;
  values = -1;
  meta = -1;
  rows = 0;
  slots = 0;
  /** Per batch row: slots [0, written[b]) have been written since allocation or `clear`. */
  #written: number[] = [];

  constructor(heap: KernelHeap, nKvHeads: number, headSize: number, maxRuns: number) {
    this.#heap = heap;
    this.#nkv = nKvHeads;
    this.#hs = headSize;
    this.#maxRuns = maxRuns;
  }

  get allocated(): boolean {
    return this.keys >= 0;
  }

  get rowStride(): number {
    return this.#hs * 4;
  }

  get headStride(): number {
    return this.slots * this.#hs * 4;
  }

  get batchStride(): number {
    return this.#nkv * this.headStride;
  }

  get runStride(): number {
    return this.#maxRuns * RUN_BYTES;
  }

  /** Byte address of the run counts (int32 per batch row), after the run tables. */
  get runCounts(): number {
    return this.meta + this.rows * this.runStride;
  }

  bytesReserved(): number {
    const h = this.#heap;
    return this.allocated ? h.sizeOf(this.keys) + h.sizeOf(this.values) + h.sizeOf(this.meta) : 0;
  }

  /**
   * Reallocates for `rows` x `slots` (both >= the current ones), keeping the first `extent(b)`
   * slots of every batch row b. All or nothing.
   */
  grow(rows: number, slots: number, extent: (row: number) => number): void {
    const heap = this.#heap;
    const kvBytes = rows * this.#nkv * slots * this.#hs * 4;
    const metaBytes = rows * (this.#maxRuns * RUN_BYTES + 4);
    const taken: number[] = [];
    try {
      for (const bytes of [kvBytes, kvBytes, metaBytes]) taken.push(heap.alloc(bytes));
    } catch (error) {
      for (const ptr of taken) heap.free(ptr);
      throw error;
    }
    const [keys, values, meta] = taken as [number, number, number];
    const written: number[] = [];
    if (this.allocated) {
      const rowBytes = this.rowStride;
      for (let b = 0; b < this.rows; b++) {
        written[b] = Math.min(extent(b), this.#written[b] ?? 0);
        if (written[b] === 0) continue;
        for (const [from, to] of [
          [this.keys, keys],
          [this.values, values],
        ] as const) {
          // Per head, the written slots are one contiguous run: one copy per head.
          heap.copyRows(
            { ptr: from + b * this.batchStride, rowStride: 0, headStride: this.headStride },
            {
              ptr: to + b * this.#nkv * slots * rowBytes,
              rowStride: 0,
              headStride: slots * rowBytes,
            },
            1,
            this.#nkv,
            written[b]! * rowBytes,
          );
        }
      }
      this.free();
    }
    Object.assign(this, { keys, values, meta, rows, slots });
    this.#written = written;
  }

  /**
   * Copies T new rows of batch row b into slots `slotOf(i)` (i = 0..T-1), from `(B, nkv, T, hs)`
   * host arrays or from rows already in the heap (one kernel call per run of consecutive slots).
   */
  writeRows(
    b: number,
    T: number,
    slotOf: (i: number) => number,
    src: { keys: Float32Array; values: Float32Array; B: number } | HeapRows,
  ): void {
    const heap = this.#heap;
    const hs = this.#hs;
    const nkv = this.#nkv;
    const rowBytes = hs * 4;
    for (let i = 0; i < T; ) {
      const slot = slotOf(i);
      let n = 1; // consecutive slots go in one copy
      while (i + n < T && slotOf(i + n) === slot + n) n++;
      this.#written[b] = Math.max(this.#written[b] ?? 0, slot + n);
      if ('ptr' in src) {
        const from = src.ptr + b * src.batchStride + i * src.rowStride;
        const to = b * this.batchStride + slot * rowBytes;
        for (const [base, offset] of [
          [this.keys, src.keyOffset],
          [this.values, src.valueOffset],
        ] as const) {
          heap.copyRows(
            { ptr: from + offset, rowStride: src.rowStride, headStride: rowBytes },
            { ptr: base + to, rowStride: rowBytes, headStride: this.headStride },
            n,
            nkv,
            rowBytes,
          );
        }
      } else {
        const f32 = heap.f32();
        for (let j = 0; j < nkv; j++) {
          const from = ((b * nkv + j) * T + i) * hs; // (B, nkv, T, hs): a (b, j) run is contiguous
          const at = ((b * nkv + j) * this.slots + slot) * hs;
          f32.set(src.keys.subarray(from, from + n * hs), this.keys / 4 + at);
          f32.set(src.values.subarray(from, from + n * hs), this.values / 4 + at);
        }
      }
      i += n;
    }
  }

  /** Writes batch row b's run table (at most maxRuns runs) for the kernel. */
  writeRuns(b: number, runs: readonly SlotRun[]): void {
    const i32 = this.#heap.i32();
    let at = (this.meta + b * this.runStride) / 4;
    let n = 0;
    for (const r of runs) {
      if (r.count === 0) continue;
      i32[at] = b * this.batchStride + r.slot * this.rowStride;
      i32[at + 1] = r.count;
      i32[at + 2] = r.firstPos;
      i32[at + 3] = r.sink ? 1 : 0;
      at += 4;
      n++;
    }
    i32[this.runCounts / 4 + b] = n;
  }

  /** Copies slots [slot, slot + n) of batch row b, head j, into `dst` at float offset `at`. */
  readSlots(
    which: 'keys' | 'values',
    b: number,
    j: number,
    slot: number,
    n: number,
    dst: Float32Array,
    at: number,
  ): void {
    const base = (which === 'keys' ? this.keys : this.values) / 4;
    const src = base + ((b * this.#nkv + j) * this.slots + slot) * this.#hs;
    dst.set(this.#heap.f32().subarray(src, src + n * this.#hs), at);
  }

  /**
   * The whole `which` block as a new array `(rows, nkv, slots, hs)`, with zeros in every slot no
   * write has reached since allocation or `clear` (O(capacity): for inspection).
   */
  snapshot(which: 'keys' | 'values'): Float32Array {
    const hs = this.#hs;
    const out = new Float32Array(this.rows * this.#nkv * this.slots * hs);
    const f32 = this.#heap.f32();
    const base = (which === 'keys' ? this.keys : this.values) / 4;
    for (let b = 0; b < this.rows; b++) {
      const n = (this.#written[b] ?? 0) * hs;
      for (let j = 0; j < this.#nkv; j++) {
        const at = (b * this.#nkv + j) * this.slots * hs;
        out.set(f32.subarray(base + at, base + at + n), at);
      }
    }
    return out;
  }

  /** Forgets what was written: every slot reads as never written (the allocation stays). */
  clear(): void {
    this.#written = [];
  }

  free(): void {
    if (!this.allocated) return;
    for (const ptr of [this.keys, this.values, this.meta]) this.#heap.free(ptr);
    Object.assign(this, { keys: -1, values: -1, meta: -1, rows: 0, slots: 0 });
    this.#written = [];
  }
}

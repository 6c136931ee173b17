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
   * Reallocates for `rows` x `slots` (both >= the current ones), zero-filled, keeping the first
   * `extent(b)` slots of every batch row b. All or nothing.
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
    const f32 = heap.f32();
    for (const ptr of taken) f32.fill(0, ptr / 4, (ptr + heap.sizeOf(ptr)) / 4);
    if (this.allocated) {
      const hs = this.#hs;
      const [oldHead, newHead] = [this.slots * hs, slots * hs]; // floats between kv heads
      for (let b = 0; b < this.rows; b++) {
        const n = extent(b) * hs;
        if (n === 0) continue;
        for (let j = 0; j < this.#nkv; j++) {
          const from = (b * this.#nkv + j) * oldHead;
          const to = (b * this.#nkv + j) * newHead;
          f32.copyWithin(keys / 4 + to, this.keys / 4 + from, this.keys / 4 + from + n);
          f32.copyWithin(values / 4 + to, this.values / 4 + from, this.values / 4 + from + n);
        }
      }
      this.free();
    }
    Object.assign(this, { keys, values, meta, rows, slots });
  }

  /**
   * Copies T new rows of batch row b into slots `slotOf(i)` (i = 0..T-1), from `(B, nkv, T, hs)`
   * host arrays or from rows already in the heap.
   */
  writeRows(
    b: number,
    T: number,
    slotOf: (i: number) => number,
    src: { keys: Float32Array; values: Float32Array; B: number } | HeapRows,
  ): void {
    const f32 = this.#heap.f32();
    const hs = this.#hs;
    const nkv = this.#nkv;
    for (let j = 0; j < nkv; j++) {
      const dst = (b * nkv + j) * this.slots * hs; // floats from the block's start
      if ('ptr' in src) {
        for (let i = 0; i < T; i++) {
          const row = (src.ptr + b * src.batchStride + i * src.rowStride) / 4 + j * hs;
          const at = dst + slotOf(i) * hs;
          f32.copyWithin(this.keys / 4 + at, row + src.keyOffset / 4, row + src.keyOffset / 4 + hs);
          f32.copyWithin(
            this.values / 4 + at,
            row + src.valueOffset / 4,
            row + src.valueOffset / 4 + hs,
          );
        }
        continue;
      }
      const from = (b * nkv + j) * T * hs; // (B, nkv, T, hs): one (b, j) run is contiguous
      for (let i = 0; i < T; ) {
        let n = 1; // copy consecutive slots in one go
        while (i + n < T && slotOf(i + n) === slotOf(i) + n) n++;
        const at = dst + slotOf(i) * hs;
        f32.set(src.keys.subarray(from + i * hs, from + (i + n) * hs), this.keys / 4 + at);
        f32.set(src.values.subarray(from + i * hs, from + (i + n) * hs), this.values / 4 + at);
        i += n;
      }
    }
  }

  /** Writes batch row b's run table (at most maxRuns runs) for the kernel. */
  writeRuns(b: number, runs: readonly SlotRun[]): void {
    const i32 = this.#heap.i32();
    const base = (this.meta + b * this.runStride) / 4;
    let n = 0;
    for (const r of runs) {
      if (r.count === 0) continue;
      i32.set(
        [b * this.batchStride + r.slot * this.rowStride, r.count, r.firstPos, r.sink ? 1 : 0],
        base + 4 * n,
      );
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
    const src =
      (which === 'keys' ? this.keys : this.values) / 4 +
      ((b * this.#nkv + j) * this.slots + slot) * this.#hs;
    dst.set(this.#heap.f32().subarray(src, src + n * this.#hs), at);
  }

  /** Zero-fills the row storage (the allocation stays). */
  clear(): void {
    if (!this.allocated) return;
    const f32 = this.#heap.f32();
    for (const ptr of [this.keys, this.values])
      f32.fill(0, ptr / 4, (ptr + this.#heap.sizeOf(ptr)) / 4);
  }

  free(): void {
    if (!this.allocated) return;
    for (const ptr of [this.keys, this.values, this.meta]) this.#heap.free(ptr);
    Object.assign(this, { keys: -1, values: -1, meta: -1, rows: 0, slots: 0 });
  }
}

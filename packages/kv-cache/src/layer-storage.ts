import { blockBytes, KV_ALIGNMENT } from './kernel/allocator.ts';
import type { KernelHeap } from './kernel/kernel-heap.ts';
import { type HeapRows, RUN_BYTES } from './kernel/layout.ts';

/** A run of consecutive positions in consecutive slots: `count` slots from `slot`, from `firstPos`. */
export interface SlotRun {
  slot: number;
  count: number;
  firstPos: number;
  sink: boolean;
}

/** New rows on the host: `(B, nkv, T, hs)` float32 keys and values. */
export interface HostRows {
  keys: Float32Array;
  values: Float32Array;
  T: number;
}

/** Blocks taken for a new size, not yet in use (see `allocate` / `adopt`). */
export interface Blocks {
  keys: number;
  values: number;
  meta: number;
  rows: number;
  slots: number;
}

/** One row's slots [0, n) of every key/value head, copied out of the heap. */
export interface StagedRow {
  keys: Float32Array;
  values: Float32Array;
}

/**
 * One layer's rows in a heap: keys and values as `(rows, nkv, slots, hs)` float32 blocks, and a
 * metadata block with each batch row's run table (`maxRuns` entries) and run count, the form in
 * which the kernel reads them. Growing reallocates all three and copies what is held, in two
 * steps (`allocate`, then `adopt`) so a caller growing several layers can take every block
 * before it changes any layer; a failed allocation frees what it took.
 *
 * Blocks are not zero-filled (that would cost O(capacity) per allocation, and nothing reads a
 * slot before it is written): each row's high-water mark says which slots hold something, and
 * `snapshot` shows zeros past it, as a zero-initialised tensor would.
 */
export class LayerStorage {
  readonly heap: KernelHeap;
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
    this.heap = heap;
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
    const h = this.heap;
    return this.allocated ? h.sizeOf(this.keys) + h.sizeOf(this.values) + h.sizeOf(this.meta) : 0;
  }

  /** The heap bytes a layer of `rows` x `slots` reserves (what `bytesReserved` would say). */
  bytesFor(rows: number, slots: number): number {
    const kv = blockBytes(rows * this.#nkv * slots * this.#hs * 4);
    return 2 * kv + blockBytes(rows * (this.#maxRuns * RUN_BYTES + 4));
  }

  /** Takes blocks for `rows` x `slots`, all or nothing; changes nothing else. */
  allocate(rows: number, slots: number): Blocks {
    const heap = this.heap;
    const kvBytes = rows * this.#nkv * slots * this.#hs * 4;
    const metaBytes = rows * (this.#maxRuns * RUN_BYTES + 4);
    const taken: number[] = [];
    try {
      // Key and value blocks start on a 4 KiB boundary (see HeapAllocator.alloc: the kernel reads
      // rows that start part-way into 256 bytes ~15% slower).
      for (const [bytes, alignment] of [
        [kvBytes, KV_ALIGNMENT],
        [kvBytes, KV_ALIGNMENT],
        [metaBytes, 16],
      ] as const)
        taken.push(heap.alloc(bytes, alignment));
    } catch (error) {
      for (const ptr of taken) heap.free(ptr);
      throw error;
    }
    const [keys, values, meta] = taken as [number, number, number];
    return { keys, values, meta, rows, slots };
  }

  /** Gives back blocks that were never adopted. */
  release(blocks: Blocks): void {
    for (const ptr of [blocks.keys, blocks.values, blocks.meta]) this.heap.free(ptr);
  }

  /**
   * Moves to `blocks` (at least the current rows and slots), keeping the first `extent(b)` slots
   * of every batch row b, and frees the old blocks. Cannot fail.
   */
  adopt(blocks: Blocks, extent: (row: number) => number): void {
    const written: number[] = [];
    if (this.allocated) {
      const rowBytes = this.rowStride;
      for (let b = 0; b < this.rows; b++) {
        written[b] = Math.min(extent(b), this.#written[b] ?? 0);
        if (written[b] === 0) continue;
        for (const [from, to] of [
          [this.keys, blocks.keys],
          [this.values, blocks.values],
        ] as const) {
          // Per head, the written slots are one contiguous run: one copy per head.
          this.heap.copyRows(
            { ptr: from + b * this.batchStride, rowStride: 0, headStride: this.headStride },
            {
              ptr: to + b * this.#nkv * blocks.slots * rowBytes,
              rowStride: 0,
              headStride: blocks.slots * rowBytes,
            },
            1,
            this.#nkv,
            written[b]! * rowBytes,
          );
        }
      }
      this.free();
    }
    Object.assign(this, blocks);
    this.#written = written;
  }

  /** Reallocates for `rows` x `slots` (both >= the current ones). All or nothing. */
  grow(rows: number, slots: number, extent: (row: number) => number): void {
    this.adopt(this.allocate(rows, slots), extent);
  }

  /**
   * Copies `count` new rows of batch row b, source columns `column .. column + count - 1`, into
   * slots `slotOf(i)` (i = 0..count-1), from `(B, nkv, T, hs)` host arrays or from rows already
   * in the heap (one kernel call per run of consecutive slots).
   */
  writeRows(
    b: number,
    count: number,
    start: number,
    slotOf: (position: number) => number,
    src: HostRows | HeapRows,
    column = 0,
  ): void {
    const heap = this.heap;
    const hs = this.#hs;
    const nkv = this.#nkv;
    const rowBytes = hs * 4;
    for (let i = 0; i < count; ) {
      const slot = slotOf(start + i);
      let n = 1; // consecutive slots go in one copy
      while (i + n < count && slotOf(start + i + n) === slot + n) n++;
      this.#mark(b, slot + n);
      const c = column + i; // the source column of slot `slot`
      if ('ptr' in src) {
        // Rows (b, c..c+n) of every head, for keys then values: one kernel call each.
        const from = src.ptr + b * src.batchStride + c * src.rowStride;
        const to = b * this.batchStride + slot * rowBytes;
        const row = src.rowStride;
        heap.copyRowsRaw(
          from + src.keyOffset,
          row,
          rowBytes,
          this.keys + to,
          rowBytes,
          this.headStride,
          n,
          nkv,
          rowBytes,
        );
        heap.copyRowsRaw(
          from + src.valueOffset,
          row,
          rowBytes,
          this.values + to,
          rowBytes,
          this.headStride,
          n,
          nkv,
          rowBytes,
        );
      } else {
        const f32 = heap.f32();
        for (let j = 0; j < nkv; j++) {
          const from = ((b * nkv + j) * src.T + c) * hs; // (B, nkv, T, hs): a (b, j) run is contiguous
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
    const i32 = this.heap.i32();
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

  /** Float index of slot `slot` of batch row b, head j, in the keys or values block. */
  #at(which: 'keys' | 'values', b: number, j: number, slot: number): number {
    const block = which === 'keys' ? this.keys : this.values;
    return block / 4 + ((b * this.#nkv + j) * this.slots + slot) * this.#hs;
  }

  /** Slots [0, end) of batch row b now hold something. */
  #mark(b: number, end: number): void {
    this.#written[b] = Math.max(this.#written[b] ?? 0, end);
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
    const src = this.#at(which, b, j, slot);
    dst.set(this.heap.f32().subarray(src, src + n * this.#hs), at);
  }

  /** The bytes of slots [slot, slot + n) of batch row b, head j: a view, valid until the next alloc. */
  slotBytes(which: 'keys' | 'values', b: number, j: number, slot: number, n: number): Uint8Array {
    const at = this.#at(which, b, j, slot) * 4;
    return this.heap.u8().subarray(at, at + n * this.#hs * 4);
  }

  /** Writes `bytes` (whole rows of hs float32) into batch row b, head j, from slot `slot`. */
  setSlotBytes(which: 'keys' | 'values', b: number, j: number, slot: number, bytes: Uint8Array) {
    this.heap.u8().set(bytes, this.#at(which, b, j, slot) * 4);
    this.#mark(b, slot + bytes.length / (this.#hs * 4));
  }

  /** Slots [0, n) of batch row `from` of `src` (this layer or one of the same dims) into row `to`. */
  copyRow(src: LayerStorage, from: number, to: number, n: number): void {
    if (n === 0) return;
    this.#mark(to, n);
    if (src.heap === this.heap) {
      for (const which of ['keys', 'values'] as const) {
        this.heap.copyRows(
          { ptr: src.#at(which, from, 0, 0) * 4, rowStride: 0, headStride: src.headStride },
          { ptr: this.#at(which, to, 0, 0) * 4, rowStride: 0, headStride: this.headStride },
          1,
          this.#nkv,
          n * this.rowStride,
        );
      }
      return;
    }
    const count = n * this.#hs; // across heaps: through the host
    for (const which of ['keys', 'values'] as const) {
      for (let j = 0; j < this.#nkv; j++) {
        const at = src.#at(which, from, j, 0);
        this.heap.f32().set(src.heap.f32().subarray(at, at + count), this.#at(which, to, j, 0));
      }
    }
  }

  /** A host copy of slots [0, n) of batch row b (to survive the row being overwritten). */
  stageRow(b: number, n: number): StagedRow {
    const staged = {
      keys: new Float32Array(this.#nkv * n * this.#hs),
      values: new Float32Array(this.#nkv * n * this.#hs),
    };
    for (let j = 0; j < this.#nkv; j++) {
      this.readSlots('keys', b, j, 0, n, staged.keys, j * n * this.#hs);
      this.readSlots('values', b, j, 0, n, staged.values, j * n * this.#hs);
    }
    return staged;
  }

  /** Writes a staged row (of n slots) into slots [0, n) of batch row b. */
  unstageRow(b: number, staged: StagedRow, n: number): void {
    const f32 = this.heap.f32();
    const count = n * this.#hs;
    this.#mark(b, n);
    for (let j = 0; j < this.#nkv; j++) {
      f32.set(staged.keys.subarray(j * count, (j + 1) * count), this.#at('keys', b, j, 0));
      f32.set(staged.values.subarray(j * count, (j + 1) * count), this.#at('values', b, j, 0));
    }
  }

  /**
   * The whole `which` block as a new array `(rows, nkv, slots, hs)`, with zeros in every slot no
   * write has reached since allocation or `clear` (O(capacity): for inspection).
   */
  snapshot(which: 'keys' | 'values'): Float32Array {
    const hs = this.#hs;
    const out = new Float32Array(this.rows * this.#nkv * this.slots * hs);
    const f32 = this.heap.f32();
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
    for (const ptr of [this.keys, this.values, this.meta]) this.heap.free(ptr);
    Object.assign(this, { keys: -1, values: -1, meta: -1, rows: 0, slots: 0 });
    this.#written = [];
  }
}

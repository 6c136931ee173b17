import type { KernelHeap } from '../kernel/kernel-heap.ts';
import { RUN_BYTES } from '../kernel/layout.ts';

/**
 * One layer's run tables in the heap, the form the kernel reads: per batch row, `runs` entries
 * of `[offset, count, firstPos, sink]` (int32), then one run count per row. A paged view has up
 * to one run per block, so the tables grow with the longest sequence (geometrically).
 */
export class RunTables {
  readonly #heap: KernelHeap;
  ptr = -1;
  rows = 0;
  runs = 0;

  constructor(heap: KernelHeap) {
    this.#heap = heap;
  }

  get runStride(): number {
    return this.runs * RUN_BYTES;
  }

  /** Byte address of the run counts (int32 per batch row), after the tables. */
  get runCounts(): number {
    return this.ptr + this.rows * this.runStride;
  }

  /** Makes room for `rows` x `runs`; all or nothing. Returns whether it allocated. */
  ensure(rows: number, runs: number): boolean {
    const size = this.#sizeFor(rows, runs);
    if (size === null) return false;
    const ptr = this.#heap.alloc(size.rows * (size.runs * RUN_BYTES + 4));
    this.free();
    Object.assign(this, { ptr, ...size });
    return true;
  }

  /** The bytes `ensure(rows, runs)` would add to what the tables reserve (0 if none). */
  growth(rows: number, runs: number): number {
    const size = this.#sizeFor(rows, runs);
    if (size === null) return 0;
    const bytes = Math.max(16, Math.ceil((size.rows * (size.runs * RUN_BYTES + 4)) / 16) * 16);
    return bytes - this.bytesReserved();
  }

  #sizeFor(rows: number, runs: number): { rows: number; runs: number } | null {
    if (this.ptr >= 0 && rows <= this.rows && runs <= this.runs) return null;
    return {
      rows: Math.max(rows, this.rows),
      runs: runs <= this.runs ? this.runs : Math.max(runs, 2 * this.runs, 4),
    };
  }

  /**
   * Writes batch row b's runs for a sequence of `length` positions: one run per block of its
   * table, `[blockOffset(block), positions in it, first position, 0]`, except that consecutive
   * pool blocks (b, b + 1, ...) are consecutive in memory and make one run.
   */
  writeRow(
    b: number,
    table: readonly number[],
    length: number,
    blockSize: number,
    blockOffset: (block: number) => number,
  ): void {
    const i32 = this.#heap.i32();
    const base = (this.ptr + b * this.runStride) / 4;
    const blocks = Math.ceil(length / blockSize);
    let count = 0;
    for (let i = 0; i < blocks; i++) {
      const n = Math.min(blockSize, length - i * blockSize);
      if (i > 0 && table[i] === table[i - 1]! + 1) {
        i32[base + 4 * (count - 1) + 1]! += n; // the previous run goes on into this block
        continue;
      }
      const at = base + 4 * count++;
      i32[at] = blockOffset(table[i]!);
      i32[at + 1] = n;
      i32[at + 2] = i * blockSize;
      i32[at + 3] = 0; // a paged run is never a sink run
    }
    i32[this.runCounts / 4 + b] = count;
  }

  bytesReserved(): number {
    return this.ptr >= 0 ? this.#heap.sizeOf(this.ptr) : 0;
  }

  free(): void {
    if (this.ptr >= 0) this.#heap.free(this.ptr);
    Object.assign(this, { ptr: -1, rows: 0, runs: 0 });
  }
}

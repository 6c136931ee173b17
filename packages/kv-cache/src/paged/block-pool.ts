import { KV_ALIGNMENT } from '../kernel/allocator.ts';
import type { KernelHeap } from '../kernel/kernel-heap.ts';
import type { HeapRows } from '../kernel/layout.ts';
import { PrefixIndex } from './prefix-index.ts';

export interface PoolDims {
  blockSize: number;
  numBlocks: number;
  nLayers: number;
  nKvHeads: number;
  headSize: number;
}

/** New rows as `(B, nkv, T, hs)` host arrays, or rows already in the heap. */
export type RowSource = { keys: Float32Array; values: Float32Array; T: number } | HeapRows;

/**
 * A paged cache's blocks: one heap allocation for `numBlocks` blocks, each holding `blockSize`
 * positions of every layer's keys and values, and what each block is doing: referenced by
 * block tables (a count), kept unreferenced for prefix reuse (least recently used first), or
 * empty. Memory is `(nLayers, keys | values, nkv, numBlocks, bs, hs)`: the key of layer l,
 * head j, block b, slot s is at `layerKeys(l) + j·headStride + offset(b, s)`, with
 * `offset(b, s) = (b·bs + s)·hs·4`. One head's blocks follow each other, so blocks b and b + 1
 * of a table are one run for the kernel, as contiguous as a static cache's rows.
 */
export class BlockPool {
  readonly dims: Readonly<PoolDims>;
  /** Key and value bytes of one block, all layers. */
  readonly bytesPerBlock: number;
  /** Bytes of one layer's keys in the whole pool (its values take as many). */
  readonly #side: number;
  /** Bytes of one head's key (or value) at one position. */
  readonly #rowBytes: number;
  readonly #heap: KernelHeap;
  readonly #refs: Int32Array;
  /** Empty blocks; the lowest ids on top. */
  readonly #free: number[];
  /** Unreferenced blocks the prefix index still names, least recently used first. */
  readonly #cached = new Map<number, true>();
  readonly index = new PrefixIndex();
  ptr = -1;
  /** Key/value bytes copy-on-write has copied, and the blocks it copied, since construction. */
  bytesCopied = 0;
  blocksCopied = 0;

  constructor(heap: KernelHeap, dims: PoolDims) {
    this.#heap = heap;
    this.dims = Object.freeze({ ...dims });
    this.bytesPerBlock = dims.nLayers * 2 * dims.nKvHeads * dims.blockSize * dims.headSize * 4;
    this.#side = dims.numBlocks * dims.nKvHeads * dims.blockSize * dims.headSize * 4;
    this.#rowBytes = dims.headSize * 4;
    this.#refs = new Int32Array(dims.numBlocks);
    this.#free = Array.from({ length: dims.numBlocks }, (_, i) => dims.numBlocks - 1 - i);
  }

  get allocated(): boolean {
    return this.ptr >= 0;
  }

  /** Bytes the pool's memory takes in the heap once allocated. */
  bytesNeeded(): number {
    return Math.max(16, Math.ceil((this.dims.numBlocks * this.bytesPerBlock) / 16) * 16);
  }

  /** Takes the pool's memory from the heap (throws, changing nothing, if it cannot). */
  allocate(): void {
    if (!this.allocated)
      this.ptr = this.#heap.alloc(this.dims.numBlocks * this.bytesPerBlock, KV_ALIGNMENT);
  }

  /** Gives a pool that holds nothing yet back to the heap (a failed first use). */
  deallocate(): void {
    if (this.allocated) this.#heap.free(this.ptr);
    this.ptr = -1;
  }

  bytesReserved(): number {
    return this.allocated ? this.#heap.sizeOf(this.ptr) : 0;
  }

  refCount(block: number): number {
    return this.#refs[block]!;
  }

  get emptyCount(): number {
    return this.#free.length;
  }

  get cachedCount(): number {
    return this.#cached.size;
  }

  /** Blocks a call may take: empty ones, then cached ones (evicted, least recently used first). */
  get available(): number {
    return this.#free.length + this.#cached.size;
  }

  /** A block for a new reference (count 1). The caller has checked `available`. */
  take(): number {
    let block = this.#free.pop();
    if (block === undefined) {
      const [oldest] = this.#cached.keys();
      if (oldest === undefined) throw new Error('BlockPool.take: no block available'); // checked by callers
      this.#cached.delete(oldest);
      this.index.remove(oldest);
      block = oldest;
    }
    this.#refs[block] = 1;
    return block;
  }

  /** One more block table holds `block` (a fork, or a prefix-cache hit). */
  retain(block: number): void {
    if (this.#refs[block] === 0) this.#cached.delete(block);
    this.#refs[block]! += 1;
  }

  /** One block table fewer holds `block`; unreferenced, it is cached if the index names it. */
  release(block: number): void {
    this.#refs[block]! -= 1;
    if (this.#refs[block]! > 0) return;
    if (this.index.has(block)) this.#cached.set(block, true);
    else this.#free.push(block);
  }

  /**
   * Copy-on-write: a new block holding the first `extent(l)` slots of every layer l of `from`.
   * The caller has checked `available`, and releases `from` itself.
   */
  copy(from: number, extent: (layer: number) => number): number {
    const to = this.take();
    const { nLayers, nKvHeads } = this.dims;
    for (let l = 0; l < nLayers; l++) {
      const bytes = extent(l) * this.#rowBytes;
      if (bytes === 0) continue;
      for (const base of [this.layerKeys(l), this.layerValues(l)]) {
        // Per head, a block's slots are contiguous: one copy per head.
        this.#heap.copyRows(
          { ptr: base + this.offset(from, 0), rowStride: 0, headStride: this.headStride },
          { ptr: base + this.offset(to, 0), rowStride: 0, headStride: this.headStride },
          1,
          nKvHeads,
          bytes,
        );
      }
      this.bytesCopied += 2 * nKvHeads * bytes;
    }
    this.blocksCopied++;
    return to;
  }

  /** Byte address of layer l's keys (head 0, block 0, slot 0). */
  layerKeys(layer: number): number {
    return this.ptr + layer * 2 * this.#side;
  }

  /** Byte address of layer l's values (head 0, block 0, slot 0). */
  layerValues(layer: number): number {
    return this.layerKeys(layer) + this.#side;
  }

  /** Byte offset of (block, slot) from a head's first slot. */
  offset(block: number, slot: number): number {
    return (block * this.dims.blockSize + slot) * this.dims.headSize * 4;
  }

  /** Bytes between one key/value head's slots and the next head's. */
  get headStride(): number {
    return this.#side / this.dims.nKvHeads;
  }

  /**
   * Copies `count` new positions of batch row b (columns [first, first + count) of `src`) into
   * layer l at positions [start, start + count) of the sequence whose block table is `table`
   * (which covers them).
   */
  writeRows(
    layer: number,
    table: readonly number[],
    start: number,
    count: number,
    src: RowSource,
    b: number,
    first = 0,
  ): void {
    const { nKvHeads: nkv, blockSize: bs, headSize: hs } = this.dims;
    const rowBytes = this.#rowBytes;
    for (let i = 0; i < count; ) {
      const p = start + i;
      const n = Math.min(count - i, bs - (p % bs)); // positions left in this block
      const at = this.offset(table[Math.floor(p / bs)]!, p % bs);
      if ('ptr' in src) {
        // One kernel call per block and side: n rows of every head.
        const row = src.ptr + b * src.batchStride + (first + i) * src.rowStride;
        for (const [base, offset] of [
          [this.layerKeys(layer), src.keyOffset],
          [this.layerValues(layer), src.valueOffset],
        ] as const) {
          this.#heap.copyRows(
            { ptr: row + offset, rowStride: src.rowStride, headStride: rowBytes },
            { ptr: base + at, rowStride: rowBytes, headStride: this.headStride },
            n,
            nkv,
            rowBytes,
          );
        }
      } else {
        const f32 = this.#heap.f32();
        for (let j = 0; j < nkv; j++) {
          const dst = (at + j * this.headStride) / 4;
          const from = ((b * nkv + j) * src.T + first + i) * hs; // (B, nkv, T, hs): a (b, j) run is contiguous
          f32.set(src.keys.subarray(from, from + n * hs), this.layerKeys(layer) / 4 + dst);
          f32.set(src.values.subarray(from, from + n * hs), this.layerValues(layer) / 4 + dst);
        }
      }
      i += n;
    }
  }

  /** Every cached block becomes empty, and the prefix index forgets them all. */
  forgetCached(): void {
    for (const block of this.#cached.keys()) this.#free.push(block);
    this.#cached.clear();
    this.index.clear();
    this.#free.sort((a, b) => b - a); // the lowest ids on top again
  }

  /**
   * Makes this pool (same dims, allocated if `src` is) a copy of `src`, possibly in another heap: every
   * block's memory, reference count and state, the prefix index and the copy counters.
   */
  copyFrom(src: BlockPool): void {
    const bytes = this.dims.numBlocks * this.bytesPerBlock;
    if (src.allocated)
      this.#heap.u8().set(src.#heap.u8().subarray(src.ptr, src.ptr + bytes), this.ptr);
    this.#refs.set(src.#refs);
    this.#free.splice(0, this.#free.length, ...src.#free);
    this.#cached.clear();
    for (const block of src.#cached.keys()) this.#cached.set(block, true);
    this.index.copyFrom(src.index);
    this.bytesCopied = src.bytesCopied;
    this.blocksCopied = src.blocksCopied;
  }

  /** Copies every layer's keys and values of block `from` of `src` (any heap) into block `to`. */
  copyBlockFrom(src: BlockPool, from: number, to: number): void {
    const { nLayers, nKvHeads } = this.dims;
    const n = this.dims.blockSize * this.#rowBytes;
    const srcU8 = src.#heap.u8();
    const dstU8 = this.#heap.u8();
    for (let l = 0; l < nLayers; l++) {
      for (const side of [0, this.#side]) {
        for (let j = 0; j < nKvHeads; j++) {
          const a = src.layerKeys(l) + side + j * this.headStride + src.offset(from, 0);
          dstU8.set(
            srcU8.subarray(a, a + n),
            this.layerKeys(l) + side + j * this.headStride + this.offset(to, 0),
          );
        }
      }
    }
  }

  /** The bytes of `n` slots from `slot` of one block, layer and head (a view of the heap). */
  slotBytes(
    which: 'keys' | 'values',
    layer: number,
    block: number,
    head: number,
    slot: number,
    n: number,
  ): Uint8Array {
    const base = which === 'keys' ? this.layerKeys(layer) : this.layerValues(layer);
    const at = base + head * this.headStride + this.offset(block, slot);
    return this.#heap.u8().subarray(at, at + n * this.#rowBytes);
  }

  /** Writes `bytes` (whole slots) from `slot` of one block, layer and head. */
  setSlotBytes(
    which: 'keys' | 'values',
    layer: number,
    block: number,
    head: number,
    slot: number,
    bytes: Uint8Array,
  ): void {
    const base = which === 'keys' ? this.layerKeys(layer) : this.layerValues(layer);
    this.#heap.u8().set(bytes, base + head * this.headStride + this.offset(block, slot));
  }

  /** Returns the memory to the heap. */
  dispose(): void {
    this.deallocate();
    this.#cached.clear();
    this.index.clear();
  }
}

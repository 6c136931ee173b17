import { CacheCapacityError, ValueError } from '@kvkit/tensor-utils';

/**
 * A first-fit allocator over a WebAssembly.Memory (the memory of a `KernelHeap`). Blocks are
 * 16-byte aligned (v128 loads) or as asked, freed blocks coalesce with their neighbours, and the memory
 * grows (64 KiB pages) when nothing fits.
 *
 * Growing a Memory detaches every typed-array view of the old buffer: take views through
 * `f32()` / `u8()` after any `alloc`, never keep one across it.
 */
export class HeapAllocator {
  readonly memory: WebAssembly.Memory;
  /** Free blocks [start, end), sorted by start, never adjacent (coalesced). */
  #free: [number, number][] = [];
  #sizes = new Map<number, number>();
  #f32: Float32Array | null = null;
  #i32: Int32Array | null = null;
  #u8: Uint8Array | null = null;
  #top: number;

  /** `base`: the first byte the allocator may hand out. */
  constructor(memory: WebAssembly.Memory, base = 64) {
    this.memory = memory;
    this.#top = align(base);
  }

  /**
   * Reserves `bytes` (rounded up to 16) and returns the block's byte offset, a multiple of
   * `alignment` (a power of two, at least 16). A gap left before an aligned block stays free.
   * Caches ask for `KV_ALIGNMENT` for their key/value blocks: rows that start part-way into a 256-byte
   * block read ~15% slower in the attention kernel (GPT-2-small rows, 2,049 positions: 740-780
   * us at offsets 64 or 128 mod 256, 620-660 us at 0, 256 or 512, measured on one heap).
   */
  alloc(bytes: number, alignment = 16): number {
    if (!Number.isInteger(bytes) || bytes < 0) {
      throw new ValueError(`alloc: bytes must be a non-negative integer, got ${bytes}`, {
        argument: 'bytes',
        value: bytes,
      });
    }
    if (!Number.isInteger(alignment) || alignment < 16 || (alignment & (alignment - 1)) !== 0) {
      throw new ValueError(`alloc: alignment must be a power of two >= 16, got ${alignment}`, {
        argument: 'alignment',
        value: alignment,
      });
    }
    const size = blockBytes(bytes);
    for (let i = 0; i < this.#free.length; i++) {
      const [start, end] = this.#free[i]!;
      const at = alignUp(start, alignment);
      if (at + size > end) continue;
      // What is left of the free block: the gap before `at`, and the tail after the block.
      const rest: [number, number][] = [];
      if (at > start) rest.push([start, at]);
      if (at + size < end) rest.push([at + size, end]);
      this.#free.splice(i, 1, ...rest);
      this.#sizes.set(at, size);
      return at;
    }
    const at = alignUp(this.#top, alignment);
    const need = at + size - this.memory.buffer.byteLength;
    if (need > 0) this.#grow(need);
    // The free list never holds a block ending at the top (free() gives such a tail back), so
    // the gap is a new last entry.
    if (at > this.#top) this.#free.push([this.#top, at]);
    this.#top = at + size;
    this.#sizes.set(at, size);
    return at;
  }

  /** Returns a block to the heap. Freeing an unknown offset is an error (double free). */
  free(ptr: number): void {
    const size = this.#sizes.get(ptr);
    if (size === undefined)
      throw new ValueError(`free: ${ptr} is not an allocated block`, {
        argument: 'ptr',
        value: ptr,
      });
    this.#sizes.delete(ptr);
    let start = ptr;
    let end = ptr + size;
    // Merge with the neighbours, keeping the list sorted.
    let i = this.#free.findIndex(([s]) => s > start);
    if (i === -1) i = this.#free.length;
    const prev = this.#free[i - 1];
    if (prev && prev[1] === start) {
      start = prev[0];
      this.#free.splice(--i, 1);
    }
    const next = this.#free[i];
    if (next && next[0] === end) {
      end = next[1];
      this.#free.splice(i, 1);
    }
    if (end === this.#top)
      this.#top = start; // give the tail back
    else this.#free.splice(i, 0, [start, end]);
  }

  /** The memory as float32 (index = byte offset / 4). Re-fetch after any alloc. */
  f32(): Float32Array {
    if (this.#f32?.buffer !== this.memory.buffer) this.#f32 = new Float32Array(this.memory.buffer);
    return this.#f32;
  }

  /** The memory as int32 (index = byte offset / 4). Re-fetch after any alloc. */
  i32(): Int32Array {
    if (this.#i32?.buffer !== this.memory.buffer) this.#i32 = new Int32Array(this.memory.buffer);
    return this.#i32;
  }

  u8(): Uint8Array {
    if (this.#u8?.buffer !== this.memory.buffer) this.#u8 = new Uint8Array(this.memory.buffer);
    return this.#u8;
  }

  /** The size of a live block (its request rounded up to 16 bytes); 0 for any other offset. */
  sizeOf(ptr: number): number {
    return this.#sizes.get(ptr) ?? 0;
  }

  /** Bytes in live blocks. */
  bytesAllocated(): number {
    let total = 0;
    for (const size of this.#sizes.values()) total += size;
    return total;
  }

  /** Size of the memory, in bytes (it only grows). */
  bytesTotal(): number {
    return this.memory.buffer.byteLength;
  }

  #grow(bytes: number): void {
    // Grow geometrically so a long run of small allocations costs few grow calls; near the
    // memory's limit, fall back to exactly the pages needed.
    const needed = Math.ceil(bytes / 65536);
    for (const pages of [
      Math.max(needed, Math.ceil(this.memory.buffer.byteLength / 65536 / 4)),
      needed,
    ]) {
      try {
        this.memory.grow(pages);
        return;
      } catch (cause) {
        if (pages === needed) {
          const now = this.memory.buffer.byteLength;
          throw new CacheCapacityError(
            `the kvkit kernel heap cannot grow by ${pages * 64} KiB (now ${now / 1048576} MiB)`,
            { capacity: now, requested: now + pages * 65536 },
            { cause },
          );
        }
      }
    }
  }
}

/** Where caches start their key/value row blocks: a multiple of this many bytes (see `alloc`). */
export const KV_ALIGNMENT = 4096;

/** The bytes `alloc(bytes)` takes: the request rounded up to 16, at least 16. */
export function blockBytes(bytes: number): number {
  return Math.max(16, align(bytes));
}

function align(n: number): number {
  return Math.ceil(n / 16) * 16;
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

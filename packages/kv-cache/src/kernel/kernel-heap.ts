import { HeapAllocator } from './allocator.ts';
import { attentionWasmBase64 } from './attention-wasm.ts';

/**
 * The raw arguments of the kernel's `attend` export, in its order (see attention.wat). Callers
 * go through `attend()` in attend.ts, which builds them from a `KVView` and checks the layout.
 */
export interface AttendCall {
  q: number;
  qBatch: number;
  qRow: number;
  out: number;
  outBatch: number;
  outRow: number;
  k: number;
  v: number;
  kvHead: number;
  kvRow: number;
  runs: number;
  runBatch: number;
  runCounts: number;
  qStart: number;
  B: number;
  T: number;
  nh: number;
  group: number;
  hs: number;
  window: number;
  scale: number;
  scores: number;
  /** The quantized-rows descriptor (see attention.wat), or 0 when no run is quantized. */
  quantized: number;
}

interface Exports {
  attend(...args: number[]): void;
  copy_rows(...args: number[]): void;
  all_finite(ptr: number, n: number): number;
  exp_neg(x: number): number;
  exp_neg4(x: number): number;
}

export interface KernelHeapOptions {
  /** Bytes the memory starts with (rounded up to 64 KiB pages). Default 1 MiB. */
  initialBytes?: number;
  /** Bytes the memory may grow to (rounded up to pages); default 4 GiB, WebAssembly's limit. */
  maximumBytes?: number;
}

const PAGE = 65536;
const MAX_PAGES = 65536;
let compiled: WebAssembly.Module | null = null;

/**
 * A WebAssembly memory with kvkit's attention kernel instantiated over it, and a first-fit
 * allocator for its bytes: where KV caches keep their rows, so the kernel reads them in place.
 * Caches take a heap in their options (`defaultHeap()` unless told otherwise); attention runs
 * on the heap of the cache it reads. The module (~3 KB, embedded as base64) compiles
 * synchronously once per process, in Node and in browsers.
 *
 * @example
 * const heap = new KernelHeap({ maximumBytes: 64 << 20 }); // a private, bounded heap
 * const cache = new DynamicKVCache({ nKvHeads: 4, headSize: 16, heap });
 */
export class KernelHeap extends HeapAllocator {
  readonly #exports: Exports;

  constructor(options: KernelHeapOptions = {}) {
    const pages = (bytes: number) => Math.min(MAX_PAGES, Math.max(1, Math.ceil(bytes / PAGE)));
    const initial = pages(options.initialBytes ?? 1 << 20);
    const maximum = Math.max(initial, pages(options.maximumBytes ?? MAX_PAGES * PAGE));
    const memory = new WebAssembly.Memory({ initial, maximum });
    super(memory);
    compiled ??= new WebAssembly.Module(
      Uint8Array.from(atob(attentionWasmBase64), (c) => c.charCodeAt(0)),
    );
    const instance = new WebAssembly.Instance(compiled, { env: { memory } });
    this.#exports = instance.exports as unknown as Exports;
  }

  /** Runs the kernel on already-checked arguments. Use `attend()` (attend.ts) instead. */
  attendRaw(a: AttendCall): void {
    this.#exports.attend(
      a.q,
      a.qBatch,
      a.qRow,
      a.out,
      a.outBatch,
      a.outRow,
      a.k,
      a.v,
      a.kvHead,
      a.kvRow,
      a.runs,
      a.runBatch,
      a.runCounts,
      a.qStart,
      a.B,
      a.T,
      a.nh,
      a.group,
      a.hs,
      a.window,
      a.scale,
      a.scores,
      a.quantized,
    );
  }

  /**
   * Copies a grid of `rows` x `heads` rows of `bytes` bytes each within the heap: row i of head j
   * from `src.ptr + i*src.rowStride + j*src.headStride` to the same place in `dst`'s strides.
   * The caller has checked every address.
   */
  copyRows(
    src: { ptr: number; rowStride: number; headStride: number },
    dst: { ptr: number; rowStride: number; headStride: number },
    rows: number,
    heads: number,
    bytes: number,
  ): void {
    this.copyRowsRaw(
      src.ptr,
      src.rowStride,
      src.headStride,
      dst.ptr,
      dst.rowStride,
      dst.headStride,
      rows,
      heads,
      bytes,
    );
  }

  /** `copyRows` with its strides as plain numbers, for the per-step path (no objects made). */
  copyRowsRaw(
    src: number,
    srcRow: number,
    srcHead: number,
    dst: number,
    dstRow: number,
    dstHead: number,
    rows: number,
    heads: number,
    bytes: number,
  ): void {
    this.#exports.copy_rows(src, srcRow, srcHead, dst, dstRow, dstHead, rows, heads, bytes);
  }

  /** Whether the `count` float32 values at byte offset `ptr` are all finite. */
  allFinite(ptr: number, count: number): boolean {
    return this.#exports.all_finite(ptr, count) === 1;
  }

  /** The kernel's e^x for x <= 0, scalar and 4-lane forms (for tests). */
  expNeg(x: number): number {
    return this.#exports.exp_neg(x);
  }

  expNeg4(x: number): number {
    return this.#exports.exp_neg4(x);
  }
}

let shared: KernelHeap | null = null;

/** The process-wide heap every cache uses unless given one (created on first use). */
export function defaultHeap(): KernelHeap {
  shared ??= new KernelHeap();
  return shared;
}

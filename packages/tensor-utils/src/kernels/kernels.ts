import { attentionWasmBase64 } from './attention-wasm.ts';
import { KernelHeap } from './heap.ts';

/**
 * kvkit's own WebAssembly SIMD kernels (assembled from attention.wat) and the heap they work in.
 * The module is ~2 KB and compiles synchronously on first use, in Node and in browsers.
 *
 * Why a kernel of our own: tfjs-wasm runs batched and transposed matMuls (every attention
 * matMul) through a naive loop at ~3 GFLOP/s and slices by reading whole tensors; this kernel
 * reads keys and values in place, once, with SIMD, and fuses scale, causal mask and softmax.
 */
export interface AttendArgs {
  /** Byte address of query row (b=0, i=0), head 0, and the byte stride between rows (b, i). */
  q: number;
  qRow: number;
  /** Byte addresses of key/value row 0 of (b=0, kv head 0), and byte strides. */
  k: number;
  v: number;
  kvBatch: number;
  kvHead: number;
  kvRow: number;
  /** Byte address of output row (b=0, i=0), head 0, and the byte stride between rows. */
  out: number;
  outRow: number;
  B: number;
  T: number;
  nh: number;
  /** Query heads per key/value head (nh / nkv). */
  group: number;
  hs: number;
  /** Absolute position of query row 0; query i sees key rows 0 .. startPos + i. */
  startPos: number;
  /** Key rows available (at most startPos + T). */
  tKeys: number;
  scale: number;
}

interface Exports {
  memory: WebAssembly.Memory;
  attend(...args: number[]): void;
  exp_neg(x: number): number;
  exp_neg4(x: number): number;
}

export class Kernels {
  readonly heap: KernelHeap;
  readonly #exports: Exports;
  #scores = 0;
  #scoresCapacity = 0;

  constructor() {
    const bytes = Uint8Array.from(atob(attentionWasmBase64), (c) => c.charCodeAt(0));
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
    this.#exports = instance.exports as unknown as Exports;
    this.heap = new KernelHeap(this.#exports.memory);
  }

  /** Runs attention for every (batch, head, query row); see AttendArgs for the layout. */
  attend(a: AttendArgs): void {
    this.#ensureScores(a.tKeys);
    this.#exports.attend(
      a.q,
      a.qRow,
      a.k,
      a.v,
      a.kvBatch,
      a.kvHead,
      a.kvRow,
      a.out,
      a.outRow,
      this.#scores,
      a.B,
      a.T,
      a.nh,
      a.group,
      a.hs,
      a.startPos,
      a.tKeys,
      a.scale,
    );
  }

  /**
   * Makes room for attention over up to `tKeys` keys now, so decoding never allocates as the
   * context grows (attention modules reserve their blockSize on first use).
   */
  reserve(tKeys: number): void {
    this.#ensureScores(tKeys);
  }

  /** The kernel's e^x for x <= 0, scalar and 4-lane forms (for tests). */
  expNeg(x: number): number {
    return this.#exports.exp_neg(x);
  }

  expNeg4(x: number): number {
    return this.#exports.exp_neg4(x);
  }

  #ensureScores(n: number): void {
    if (n <= this.#scoresCapacity) return;
    const capacity = Math.max(n, 2 * this.#scoresCapacity, 1024);
    const scores = this.heap.alloc(capacity * 4); // first: if this throws, nothing has changed
    if (this.#scoresCapacity > 0) this.heap.free(this.#scores);
    this.#scores = scores;
    this.#scoresCapacity = capacity;
  }
}

let shared: Kernels | null = null;

/** The process-wide kernels and heap (created on first use). */
export function kernels(): Kernels {
  shared ??= new Kernels();
  return shared;
}

import { DisposedError, kernels, ValueError } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import {
  checkBatch,
  checkCacheShape,
  checkKeyValues,
  checkLayer,
  checkPositions,
} from './checks.ts';
import type { KVCache, KVCacheShape, KVHeapRows, KVHeapStorage, KVReadResult } from './kv-cache.ts';

/**
 * The seed notebook's cache: per layer, zero-filled `cache_k`/`cache_v` of shape
 * `(maxBatchSize, nkv, Tmax, hs)`, allocated on first write, written at `[:B, :, s:s+T]`.
 *
 * The rows live in the kvkit kernel heap (`kernels().heap`), not in tfjs tensors: on the wasm
 * backend, slicing or scattering into a preallocated tensor reads the whole tensor each step
 * (O(capacity)). Here a write copies only the T new rows, attention's kernel reads rows
 * `[0, end)` in place (`heapStorage`), and the generic `read` copies only the rows asked for.
 * See docs/decisions/kv-cache-storage.md.
 *
 * @example
 * const cache = new StaticKVCache({ maxBatchSize: 64, nKvHeads: 1, headSize: 6, capacity: 8 });
 * cache.write(0, k, v, 0);                    // k, v: (2, 1, 3, 6)
 * const { keys, values } = cache.read(0, 2);  // (2, 1, 3, 6) each; dispose them when done
 */
export class StaticKVCache implements KVCache {
  readonly kind = 'static';
  readonly nLayers: number;
  readonly maxBatchSize: number;
  readonly nKvHeads: number;
  readonly headSize: number;
  readonly capacity: number;

  /** Byte offsets of each layer's K and V blocks in the kernel heap; -1 = not allocated. */
  #keys: number[];
  #values: number[];
  #lengths: number[];
  /** Batch rows ever written per layer (for bytesUsed). */
  #rows: number[];
  #disposed = false;

  constructor(shape: KVCacheShape) {
    const s = checkCacheShape(shape);
    this.nLayers = s.nLayers;
    this.maxBatchSize = s.maxBatchSize;
    this.nKvHeads = s.nKvHeads;
    this.headSize = s.headSize;
    this.capacity = s.capacity;
    this.#keys = new Array(s.nLayers).fill(-1);
    this.#values = new Array(s.nLayers).fill(-1);
    this.#lengths = new Array(s.nLayers).fill(0);
    this.#rows = new Array(s.nLayers).fill(0);
  }

  get isDisposed(): boolean {
    return this.#disposed;
  }

  /** Whether a layer's storage has been allocated (it is, from the first write on). */
  isAllocated(layer = 0): boolean {
    this.#alive();
    checkLayer(layer, this.nLayers);
    return this.#keys[layer]! >= 0;
  }

  length(layer = 0): number {
    this.#alive();
    checkLayer(layer, this.nLayers);
    return this.#lengths[layer]!;
  }

  checkWrite(layer: number, batchSize: number, startPos: number, newPositions: number): void {
    this.#alive();
    checkLayer(layer, this.nLayers);
    checkBatch(batchSize, this.maxBatchSize);
    checkPositions(startPos, newPositions, this.#lengths[layer]!, this.capacity);
  }

  write(layer: number, keys: tf.Tensor, values: tf.Tensor, startPos: number): void {
    this.#alive();
    checkKeyValues(keys, values, this.nKvHeads, this.headSize);
    const [B, , T] = keys.shape as [number, number, number, number];
    this.checkWrite(layer, B, startPos, T);
    const k = keys.dataSync() as Float32Array;
    const v = values.dataSync() as Float32Array;
    this.#allocate(layer);
    const f32 = kernels().heap.f32();
    const kBase = this.#keys[layer]! / 4;
    const vBase = this.#values[layer]! / 4;
    const hs = this.headSize;
    const run = T * hs; // one (b, h) run of new rows is contiguous in both layouts
    for (let bh = 0; bh < B * this.nKvHeads; bh++) {
      const dst = (bh * this.capacity + startPos) * hs;
      f32.set(k.subarray(bh * run, (bh + 1) * run), kBase + dst);
      f32.set(v.subarray(bh * run, (bh + 1) * run), vBase + dst);
    }
    this.#commit(layer, B, startPos + T);
  }

  writeFromHeap(
    layer: number,
    src: KVHeapRows,
    batchSize: number,
    newPositions: number,
    startPos: number,
  ): void {
    this.checkWrite(layer, batchSize, startPos, newPositions);
    this.#allocate(layer);
    const f32 = kernels().heap.f32();
    const hs = this.headSize;
    const nkv = this.nKvHeads;
    const kBase = this.#keys[layer]! / 4;
    const vBase = this.#values[layer]! / 4;
    for (let b = 0; b < batchSize; b++) {
      for (let i = 0; i < newPositions; i++) {
        const row = (src.ptr + (b * newPositions + i) * src.rowStride) / 4;
        for (let j = 0; j < nkv; j++) {
          const dst = ((b * nkv + j) * this.capacity + startPos + i) * hs;
          const k = row + src.keyOffset / 4 + j * hs;
          const v = row + src.valueOffset / 4 + j * hs;
          f32.copyWithin(kBase + dst, k, k + hs);
          f32.copyWithin(vBase + dst, v, v + hs);
        }
      }
    }
    this.#commit(layer, batchSize, startPos + newPositions);
  }

  heapStorage(layer: number): KVHeapStorage | null {
    this.#alive();
    checkLayer(layer, this.nLayers);
    if (this.#keys[layer]! < 0) return null;
    const rowStride = this.headSize * 4;
    const headStride = this.capacity * rowStride;
    return {
      keys: this.#keys[layer]!,
      values: this.#values[layer]!,
      batchStride: this.nKvHeads * headStride,
      headStride,
      rowStride,
    };
  }

  read(layer: number, batchSize: number, end?: number): KVReadResult {
    this.#alive();
    checkLayer(layer, this.nLayers);
    checkBatch(batchSize, this.maxBatchSize);
    const length = this.#lengths[layer]!;
    const stop = end ?? length;
    if (!Number.isInteger(stop) || stop < 1 || stop > length) {
      throw new ValueError(`read: end must be an integer in [1, ${length}], got ${stop}`, {
        argument: 'end',
        value: stop,
      });
    }
    const hs = this.headSize;
    const run = stop * hs;
    const rows = batchSize * this.nKvHeads;
    const k = new Float32Array(rows * run);
    const v = new Float32Array(rows * run);
    const f32 = kernels().heap.f32();
    const kBase = this.#keys[layer]! / 4;
    const vBase = this.#values[layer]! / 4;
    for (let bh = 0; bh < rows; bh++) {
      const src = bh * this.capacity * hs;
      k.set(f32.subarray(kBase + src, kBase + src + run), bh * run);
      v.set(f32.subarray(vBase + src, vBase + src + run), bh * run);
    }
    const shape: [number, number, number, number] = [batchSize, this.nKvHeads, stop, hs]; // (B, nkv, t, hs)
    const positions = new Int32Array(stop);
    for (let i = 0; i < stop; i++) positions[i] = i;
    return { keys: tf.tensor4d(k, shape), values: tf.tensor4d(v, shape), positions };
  }

  /**
   * The whole allocation of a layer as a new tensor `(maxBatchSize, nkv, Tmax, hs)`, zeros where
   * nothing was written: what the seed prints as `mha.cache_k`. Null before the first write.
   * The caller owns (and disposes) the returned tensor. Costs O(capacity): for inspection only.
   */
  snapshot(layer: number, which: 'keys' | 'values'): tf.Tensor4D | null {
    this.#alive();
    checkLayer(layer, this.nLayers);
    const ptr = (which === 'keys' ? this.#keys : this.#values)[layer]!;
    if (ptr < 0) return null;
    const data = kernels()
      .heap.f32()
      .slice(ptr / 4, ptr / 4 + this.#layerSize());
    return tf.tensor4d(data, [this.maxBatchSize, this.nKvHeads, this.capacity, this.headSize]);
  }

  reset(layer?: number): void {
    this.#alive();
    if (layer !== undefined) checkLayer(layer, this.nLayers);
    const f32 = kernels().heap.f32();
    for (let l = 0; l < this.nLayers; l++) {
      if (layer !== undefined && l !== layer) continue;
      for (const ptr of [this.#keys[l]!, this.#values[l]!]) {
        if (ptr >= 0) f32.fill(0, ptr / 4, ptr / 4 + this.#layerSize());
      }
      this.#lengths[l] = 0;
      this.#rows[l] = 0;
    }
  }

  bytesUsed(): number {
    let rows = 0;
    for (let l = 0; l < this.nLayers; l++) rows += this.#rows[l]! * this.#lengths[l]!;
    return 2 * rows * this.nKvHeads * this.headSize * Float32Array.BYTES_PER_ELEMENT;
  }

  bytesReserved(): number {
    const allocated = this.#keys.filter((k) => k >= 0).length;
    return 2 * allocated * this.#layerSize() * Float32Array.BYTES_PER_ELEMENT;
  }

  dispose(): void {
    if (this.#disposed) return;
    const heap = kernels().heap;
    for (const ptr of [...this.#keys, ...this.#values]) if (ptr >= 0) heap.free(ptr);
    this.#keys.fill(-1);
    this.#values.fill(-1);
    this.#lengths.fill(0);
    this.#rows.fill(0);
    this.#disposed = true;
  }

  /** Allocates a layer's zero-filled blocks on its first write. */
  #allocate(layer: number): void {
    if (this.#keys[layer]! >= 0) return;
    const heap = kernels().heap;
    const bytes = this.#layerSize() * 4;
    const k = heap.alloc(bytes);
    let v: number;
    try {
      v = heap.alloc(bytes);
    } catch (error) {
      heap.free(k); // all or nothing: a failed write leaves no half-allocated layer behind
      throw error;
    }
    heap.f32().fill(0, k / 4, (k + bytes) / 4); // freed blocks keep old rows: zero them
    heap.f32().fill(0, v / 4, (v + bytes) / 4);
    this.#keys[layer] = k;
    this.#values[layer] = v;
  }

  #commit(layer: number, batchSize: number, length: number): void {
    this.#lengths[layer] = length;
    this.#rows[layer] = Math.max(this.#rows[layer]!, batchSize);
  }

  #layerSize(): number {
    return this.maxBatchSize * this.nKvHeads * this.capacity * this.headSize;
  }

  #alive(): void {
    if (this.#disposed) throw new DisposedError('StaticKVCache');
  }
}

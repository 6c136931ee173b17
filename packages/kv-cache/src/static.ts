import { DisposedError, ValueError } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import {
  checkBatch,
  checkCacheShape,
  checkKeyValues,
  checkLayer,
  checkPositions,
} from './checks.ts';
import type { KVCache, KVCacheShape, KVReadResult } from './kv-cache.ts';

/**
 * The seed notebook's cache: per layer, zero-filled `cache_k`/`cache_v` of shape
 * `(maxBatchSize, nkv, Tmax, hs)`, allocated on first write, written at `[:B, :, s:s+T]`.
 *
 * Storage is host memory (one Float32Array per layer for K and one for V) rather than a tfjs
 * tensor: on the wasm backend, slicing or scattering into a preallocated tensor reads the
 * whole tensor each step (O(capacity)), while here a write copies only the T new rows and a
 * read copies only the rows `[0, end)` of the B batch rows asked for.
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

  #keys: (Float32Array | null)[];
  #values: (Float32Array | null)[];
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
    this.#keys = new Array(s.nLayers).fill(null);
    this.#values = new Array(s.nLayers).fill(null);
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
    return this.#keys[layer] !== null;
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
    this.#keys[layer] ??= new Float32Array(this.#layerSize()); // allocated on first write
    this.#values[layer] ??= new Float32Array(this.#layerSize());
    const kStore = this.#keys[layer];
    const vStore = this.#values[layer];
    const hs = this.headSize;
    const run = T * hs; // one (b, h) run of new rows is contiguous in both layouts
    for (let bh = 0; bh < B * this.nKvHeads; bh++) {
      const dst = (bh * this.capacity + startPos) * hs;
      kStore.set(k.subarray(bh * run, (bh + 1) * run), dst);
      vStore.set(v.subarray(bh * run, (bh + 1) * run), dst);
    }
    this.#lengths[layer] = startPos + T;
    this.#rows[layer] = Math.max(this.#rows[layer]!, B);
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
    const kStore = this.#keys[layer]!;
    const vStore = this.#values[layer]!;
    for (let bh = 0; bh < rows; bh++) {
      const src = bh * this.capacity * hs;
      k.set(kStore.subarray(src, src + run), bh * run);
      v.set(vStore.subarray(src, src + run), bh * run);
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
    const store = (which === 'keys' ? this.#keys : this.#values)[layer];
    if (!store) return null;
    return tf.tensor4d(store.slice(), [
      this.maxBatchSize,
      this.nKvHeads,
      this.capacity,
      this.headSize,
    ]);
  }

  reset(layer?: number): void {
    this.#alive();
    if (layer !== undefined) checkLayer(layer, this.nLayers);
    for (let l = 0; l < this.nLayers; l++) {
      if (layer !== undefined && l !== layer) continue;
      this.#keys[l]?.fill(0);
      this.#values[l]?.fill(0);
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
    const allocated = this.#keys.filter((k) => k !== null).length;
    return 2 * allocated * this.#layerSize() * Float32Array.BYTES_PER_ELEMENT;
  }

  dispose(): void {
    this.#keys = this.#keys.map(() => null);
    this.#values = this.#values.map(() => null);
    this.#disposed = true;
  }

  #layerSize(): number {
    return this.maxBatchSize * this.nKvHeads * this.capacity * this.headSize;
  }

  #alive(): void {
    if (this.#disposed) throw new DisposedError('StaticKVCache');
  }
}

import { type KVCache, StaticKVCache } from '@kvkit/kv-cache';
import {
  CacheCapacityError,
  DisposedError,
  DTypeError,
  getDefaultGenerator,
  kernels,
  readInto,
  ShapeError,
  ValueError,
} from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { type AttentionDims, attentionDims, type GPTConfig } from './config.ts';
import { dropout } from './dropout.ts';
import { Linear } from './linear.ts';
import { causalMask } from './mask.ts';
import { readStateDict, type StateDict } from './state-dict.ts';

export interface AttentionOptions {
  /** Which layer of a shared cache this module writes. Default 0. */
  layer?: number;
  /** `kernel` (default) or `reference` (plain tfjs ops; see CausalSelfAttention.implementation). */
  implementation?: 'kernel' | 'reference';
}

export interface ForwardOptions {
  /** Write this chunk's keys/values to the cache and attend over everything cached. */
  useKvCache?: boolean;
  /** Absolute position of the chunk's first token (cached path only). */
  startPos?: number;
}

/**
 * minGPT's `CausalSelfAttention` with the fork's key-value cache, on TensorFlow.js.
 *
 * `cAttn` maps C to `[q | k | v]` (C + 2*nkv*hs), heads attend causally, `cProj` maps back.
 * Parameters are drawn from the default generator in torch's order, so `setSeed(42)` before
 * construction gives the notebook's weights. Query head h reads key/value head
 * `floor(h / (nh / nkv))` (MHA, GQA and MQA). The no-cache forward is the reference; the
 * cached forward matches it for any chunk schedule.
 *
 * @example
 * setSeed(42);
 * const mha = new CausalSelfAttention({ ...GPT.getDefaultConfig(), nHead: 1, nEmbd: 6, blockSize: 8 });
 * mha.eval();
 * const y = mha.forward(x);                                          // (B, T, C)
 * const y0 = mha.forward(tf.slice(x, [0, 0, 0], [2, 3, 6]), { useKvCache: true, startPos: 0 });
 */
export class CausalSelfAttention {
  readonly dims: Readonly<AttentionDims>;
  /** Which layer of the cache this module writes (0 unless it shares a multi-layer cache). */
  readonly layer: number;
  readonly cAttn: Linear;
  readonly cProj: Linear;
  #training = true; // torch modules start in training mode
  #cache: KVCache | null = null;
  #ownsCache = true;
  #disposed = false;

  /**
   * `kernel` (default): attention runs in kvkit's WebAssembly kernel whenever dropout is off.
   * `reference`: always the plain-tfjs path (the oracle the kernel is tested against).
   */
  readonly implementation: 'kernel' | 'reference';

  constructor(config: Partial<GPTConfig>, options: AttentionOptions = {}) {
    this.dims = Object.freeze(attentionDims(config));
    this.layer = options.layer ?? 0;
    if (!Number.isInteger(this.layer) || this.layer < 0) {
      throw new ValueError(`layer must be a non-negative integer, got ${String(this.layer)}`, {
        argument: 'layer',
        value: this.layer,
      });
    }
    this.implementation = options.implementation ?? 'kernel';
    if (this.implementation !== 'kernel' && this.implementation !== 'reference') {
      throw new ValueError(
        `implementation must be 'kernel' or 'reference', got '${String(this.implementation)}'`,
        {
          argument: 'implementation',
          value: this.implementation,
        },
      );
    }
    const { nEmbd, nKvHeads, headSize } = this.dims;
    this.cAttn = new Linear(nEmbd, nEmbd + 2 * nKvHeads * headSize); // key, query, value projections
    this.cProj = new Linear(nEmbd, nEmbd); // output projection
  }

  get training(): boolean {
    return this.#training;
  }

  /** Dropout off (as `module.eval()`); returns this. */
  eval(): this {
    this.#training = false;
    return this;
  }

  /** Dropout on (as `module.train()`); returns this. */
  train(mode = true): this {
    this.#training = mode;
    return this;
  }

  /** The cache in use, or null before the first cached forward (it is created lazily). */
  get kvCache(): KVCache | null {
    return this.#cache;
  }

  /**
   * Uses `cache` (any strategy, possibly shared by several layers) from now on. The module does
   * not own it: `dispose()` leaves it alone. The previous cache, if the module owned it, is freed.
   */
  useCache(cache: KVCache): this {
    this.#alive();
    const { maxBatchSize, nKvHeads, headSize, blockSize } = this.dims;
    if (
      cache.nKvHeads !== nKvHeads ||
      cache.headSize !== headSize ||
      cache.capacity < blockSize ||
      this.layer >= cache.nLayers
    ) {
      throw new ShapeError(
        `useCache: cache (nkv=${cache.nKvHeads}, hs=${cache.headSize}, capacity=${cache.capacity}, layers=${cache.nLayers}) ` +
          `does not fit this layer (nkv=${nKvHeads}, hs=${headSize}, blockSize=${blockSize}, layer=${this.layer})`,
        {
          expected: [maxBatchSize, nKvHeads, blockSize, headSize],
          actual: [cache.maxBatchSize, cache.nKvHeads, cache.capacity, cache.headSize],
        },
      );
    }
    if (cache !== this.#cache && this.#ownsCache) this.#cache?.dispose();
    this.#cache = cache;
    this.#ownsCache = false;
    return this;
  }

  /** The seed's `cache_k`: `(maxBatchSize, nkv, blockSize, hs)`, a new tensor you dispose; null before use. */
  get cacheK(): tf.Tensor4D | null {
    return (this.#cache?.snapshot?.(this.layer, 'keys') ?? null) as tf.Tensor4D | null;
  }

  /** The seed's `cache_v`: `(maxBatchSize, nkv, blockSize, hs)`, a new tensor you dispose; null before use. */
  get cacheV(): tf.Tensor4D | null {
    return (this.#cache?.snapshot?.(this.layer, 'values') ?? null) as tf.Tensor4D | null;
  }

  /** Forgets the cached positions (the allocation stays). */
  resetCache(): void {
    this.#alive();
    this.#cache?.reset(this.layer);
  }

  /**
   * Attention over `x` `(B, T, C)`, returning `(B, T, C)`. Without the cache, the T tokens
   * attend causally among themselves. With `useKvCache`, their keys and values are written at
   * positions `[startPos, startPos + T)` and they attend over positions `[0, startPos + T)`.
   * A startPos below the cached length rewinds the cache to there. Every argument is checked
   * before anything changes: a rejected call leaves the cache exactly as it was.
   */
  forward(x: tf.Tensor, options: ForwardOptions = {}): tf.Tensor3D {
    const { useKvCache = false, startPos = 0 } = options;
    this.#checkInput(x, useKvCache, startPos);
    const [B, T] = x.shape as [number, number, number];
    const cache = useKvCache ? (this.#cache ?? this.#newCache()) : null;
    cache?.checkWrite(this.layer, B, startPos, T);
    if (cache && !this.#cache) {
      // Adopted only now that the call is accepted: a rejected first call leaves kvCache null.
      this.#cache = cache;
      this.#ownsCache = true;
    }

    const cacheForKernel = cache?.heapStorage && cache.writeFromHeap ? cache : null;
    const dropoutActive = this.#training && (this.dims.attnPdrop > 0 || this.dims.residPdrop > 0);
    if (
      this.implementation === 'kernel' &&
      !dropoutActive &&
      (cache === null || cacheForKernel !== null)
    ) {
      return this.#forwardKernel(x, cacheForKernel, startPos);
    }
    return this.#forwardReference(x, cache, startPos);
  }

  /**
   * The fast path: projections as tfjs matMuls (XNNPACK) plus a bias add, and everything between them
   * (cache write, scores, causal mask, softmax, weighted values) in kvkit's WebAssembly kernel,
   * which reads the cached rows in place. Used whenever dropout is off and the cache (if any)
   * keeps its rows in the kernel heap.
   */
  #forwardKernel(x: tf.Tensor, cache: KVCache | null, startPos: number): tf.Tensor3D {
    const [B, T, C] = x.shape as [number, number, number];
    const { nHead: nh, nKvHeads: nkv, headSize: hs } = this.dims;
    const W = C + 2 * nkv * hs; // one c_attn row: [q | k | v]
    const k = kernels();
    k.reserve(this.dims.blockSize); // the score scratch never grows during decoding
    let io = -1;
    let out = -1;
    try {
      io = k.heap.alloc(B * T * W * 4);
      out = k.heap.alloc(B * T * C * 4);
      const qkv = tf.tidy(() => this.cAttn.apply(tf.reshape(x, [B * T, C]) as tf.Tensor2D)); // (B*T, W)
      try {
        readInto(qkv, k.heap.f32(), io / 4); // no intermediate array: straight into the kernel heap
      } finally {
        qkv.dispose();
      }
      const src = { ptr: io, rowStride: W * 4, keyOffset: C * 4, valueOffset: (C + nkv * hs) * 4 };
      let kv: { k: number; v: number; kvBatch: number; kvHead: number; kvRow: number };
      if (cache) {
        cache.writeFromHeap!(this.layer, src, B, T, startPos);
        const s = cache.heapStorage!(this.layer)!;
        kv = {
          k: s.keys,
          v: s.values,
          kvBatch: s.batchStride,
          kvHead: s.headStride,
          kvRow: s.rowStride,
        };
      } else {
        // No cache: this chunk's own keys and values, read where c_attn put them.
        kv = {
          k: io + src.keyOffset,
          v: io + src.valueOffset,
          kvBatch: T * W * 4,
          kvHead: hs * 4,
          kvRow: W * 4,
        };
      }
      k.attend({
        q: io,
        qRow: W * 4,
        ...kv,
        out,
        outRow: C * 4,
        B,
        T,
        nh,
        group: nh / nkv,
        hs,
        startPos: cache ? startPos : 0,
        tKeys: cache ? startPos + T : T,
        scale: Math.fround(1 / Math.sqrt(hs)),
      });
      // tfjs copies the view into its own heap at once, so the kernel heap block can be freed.
      const y = tf.tensor2d(k.heap.f32().subarray(out / 4, out / 4 + B * T * C), [B * T, C]); // (B*T, C)
      try {
        return tf.tidy(() => tf.reshape(this.cProj.apply(y), [B, T, C]) as tf.Tensor3D);
      } finally {
        y.dispose();
      }
    } finally {
      if (io >= 0) k.heap.free(io);
      if (out >= 0) k.heap.free(out);
    }
  }

  /**
   * The reference path, in plain tfjs ops: what the kernel path is tested against, and the path
   * for training mode (dropout on the attention weights) and for caches without heap storage.
   */
  #forwardReference(x: tf.Tensor, cache: KVCache | null, startPos: number): tf.Tensor3D {
    const [B, T, C] = x.shape as [number, number, number];
    const { nHead: nh, nKvHeads: nkv, headSize: hs } = this.dims;
    return tf.tidy(() => {
      const qkv = this.cAttn.apply(tf.reshape(x, [B * T, C])); // (B*T, C + 2*nkv*hs)
      const [q, k, v] = tf.split(qkv, [C, nkv * hs, nkv * hs], 1);
      const qh = tf.transpose(tf.reshape(q!, [B, T, nh, hs]), [0, 2, 1, 3]); // (B, nh, T, hs)
      let keys = tf.transpose(tf.reshape(k!, [B, T, nkv, hs]), [0, 2, 1, 3]); // (B, nkv, T, hs)
      let values = tf.transpose(tf.reshape(v!, [B, T, nkv, hs]), [0, 2, 1, 3]); // (B, nkv, T, hs)
      let keyPositions: Int32Array = Int32Array.from({ length: T }, (_, i) => startPos + i);
      if (cache) {
        cache.write(this.layer, keys, values, startPos);
        const read = cache.read(this.layer, B, startPos + T); // (B, nkv, t, hs)
        keys = read.keys;
        values = read.values;
        keyPositions = read.positions;
      }
      const g = nh / nkv; // query heads per key/value head; they share one score matrix
      const qg = tf.reshape(qh, [B, nkv, g * T, hs]); // (B, nkv, g*T, hs)
      let att = tf.mul(tf.matMul(qg, keys, false, true), Math.fround(1 / Math.sqrt(hs))); // (B, nkv, g*T, t)
      const mask = causalMask(startPos, T, keyPositions, g); // (g*T, t) or null
      if (mask) att = tf.add(att, mask);
      att = tf.softmax(att, -1);
      if (this.#training) att = dropout(att, this.dims.attnPdrop, getDefaultGenerator());
      const yg = tf.matMul(att, values); // (B, nkv, g*T, hs)
      const y = tf.reshape(tf.transpose(tf.reshape(yg, [B, nh, T, hs]), [0, 2, 1, 3]), [
        B * T,
        C,
      ]) as tf.Tensor2D; // (B*T, C)
      let out: tf.Tensor = tf.reshape(this.cProj.apply(y), [B, T, C]); // (B, T, C)
      if (this.#training) out = dropout(out, this.dims.residPdrop, getDefaultGenerator());
      return out as tf.Tensor3D;
    });
  }

  /** Parameters under torch's names and layouts, as new tensors the caller owns. */
  stateDict(): Record<
    'c_attn.weight' | 'c_attn.bias' | 'c_proj.weight' | 'c_proj.bias',
    tf.Tensor
  > {
    this.#alive();
    const a = this.cAttn.state();
    const p = this.cProj.state();
    return {
      'c_attn.weight': a.weight,
      'c_attn.bias': a.bias,
      'c_proj.weight': p.weight,
      'c_proj.bias': p.bias,
    };
  }

  /**
   * Loads torch-named parameters (`c_attn.weight` as `(out, in)`, ...), given as tensors or
   * `{ shape, data }` objects. Strict: all four names, no others, exact shapes; on any problem
   * it throws and the module keeps its old parameters.
   */
  loadStateDict(dict: StateDict): this {
    this.#alive();
    const { nEmbd: C, nKvHeads, headSize } = this.dims;
    const qkv = C + 2 * nKvHeads * headSize;
    const p = readStateDict(
      dict,
      {
        'c_attn.weight': [qkv, C],
        'c_attn.bias': [qkv],
        'c_proj.weight': [C, C],
        'c_proj.bias': [C],
      },
      'CausalSelfAttention',
    );
    this.cAttn.load(p['c_attn.weight']!, p['c_attn.bias']!);
    this.cProj.load(p['c_proj.weight']!, p['c_proj.bias']!);
    return this;
  }

  get isDisposed(): boolean {
    return this.#disposed;
  }

  /** Frees the parameters and the cache this module created. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.cAttn.dispose();
    this.cProj.dispose();
    if (this.#ownsCache) this.#cache?.dispose();
    this.#cache = null;
    this.#disposed = true;
  }

  /** The seed's cache for this module: created on the first cached forward, sized from dims. */
  #newCache(): KVCache {
    const { maxBatchSize, nKvHeads, headSize, blockSize } = this.dims;
    return new StaticKVCache({
      nLayers: this.layer + 1,
      maxBatchSize,
      nKvHeads,
      headSize,
      capacity: blockSize,
    });
  }

  #checkInput(x: tf.Tensor, useKvCache: boolean, startPos: number): void {
    this.#alive();
    if (!(x instanceof tf.Tensor)) {
      throw new ValueError(`forward: x must be a tf.Tensor, got ${typeof x}`, {
        argument: 'x',
        value: x,
      });
    }
    if (x.isDisposed) throw new DisposedError('forward: input tensor x');
    if (x.dtype !== 'float32') {
      throw new DTypeError(`forward: x must be float32, got ${x.dtype}`, {
        expected: 'float32',
        actual: x.dtype,
      });
    }
    const { nEmbd, blockSize } = this.dims;
    if (x.rank !== 3 || x.shape[2] !== nEmbd) {
      throw new ShapeError(
        `forward: x must have shape (B, T, C=${nEmbd}), got [${x.shape.join(', ')}]`,
        {
          expected: `[B, T, ${nEmbd}]`,
          actual: x.shape,
        },
      );
    }
    const [B, T] = x.shape as [number, number];
    if (B === 0 || T === 0) {
      throw new ShapeError(`forward: x must have B >= 1 and T >= 1, got [${x.shape.join(', ')}]`, {
        expected: '[B >= 1, T >= 1, C]',
        actual: x.shape,
      });
    }
    if (useKvCache && Number.isInteger(startPos) && startPos >= 0 && startPos + T > blockSize) {
      // The cache may be larger (a shared one); the module's own limit is its blockSize.
      throw new CacheCapacityError(
        `startPos + T = ${startPos} + ${T} = ${startPos + T} exceeds the capacity (blockSize) ${blockSize}`,
        { capacity: blockSize, requested: startPos + T },
      );
    }
    if (!useKvCache) {
      if (startPos !== 0) {
        throw new ValueError(
          `forward: startPos ${startPos} is only meaningful with useKvCache: true`,
          {
            argument: 'startPos',
            value: startPos,
          },
        );
      }
      if (T > blockSize) {
        throw new ShapeError(`forward: T = ${T} exceeds blockSize ${blockSize}`, {
          expected: `T <= ${blockSize}`,
          actual: x.shape,
        });
      }
    }
    // Cache-related checks (batch, startPos, capacity, gaps) are the cache's: forward runs them
    // through checkWrite before anything is written.
  }

  #alive(): void {
    if (this.#disposed) throw new DisposedError('CausalSelfAttention');
  }
}

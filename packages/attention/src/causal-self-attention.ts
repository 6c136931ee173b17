import {
  type CacheSpec,
  checkCacheSpec,
  createCache,
  defaultHeap,
  type KernelHeap,
  type KVCache,
  type RowSpans,
} from '@kvkit/kv-cache';
import {
  CacheCapacityError,
  DisposedError,
  DTypeError,
  ShapeError,
  ValueError,
} from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { type AttentionDims, attentionDims, type GPTConfig } from './config.ts';
import { forwardKernel } from './kernel-forward.ts';
import { Linear } from './linear.ts';
import { type AttentionMask, paddingSpans, zeroPadding } from './padding.ts';
import { forwardReference } from './reference-forward.ts';
import { readStateDict, type StateDict } from './state-dict.ts';

/** The cache's checks for a call without padding (made once: the decode loop runs it every step). */
const CACHED_CALL = { crop: true, inPieces: true } as const;

export interface AttentionOptions {
  /** Which layer of a shared cache this module writes. Default 0. */
  layer?: number;
  /** `kernel` (default) or `reference` (plain tfjs ops; see CausalSelfAttention.implementation). */
  implementation?: 'kernel' | 'reference';
  /**
   * The cache strategy the module builds on its first cached forward: `'static'` (default, the
   * seed's), `'dynamic'`, `{ strategy: 'sliding-window', window }`,
   * `{ strategy: 'sink', window, sinkTokens }`, or a function building any KVCache.
   */
  cache?: CacheSpec;
  /** The kernel heap for the module's own cache and its no-cache forward; `defaultHeap()`. */
  heap?: KernelHeap;
}

export interface ForwardOptions {
  /** Write this chunk's keys/values to the cache and attend over everything cached. */
  useKvCache?: boolean;
  /**
   * Absolute position of the chunk's first token (cached path only): one for every batch row,
   * or one per row (ragged batches: each row continues from its own length). With
   * `attentionMask`, the position of each row's first real token.
   */
  startPos?: number | readonly number[];
  /**
   * Ragged batches: `(B, T)`, 1 where a column is a real token and 0 where it is padding
   * (Hugging Face's `attention_mask`), as a tensor or nested arrays. Each row's tokens must be
   * one contiguous run: left padding (`0 0 1 1`) or right padding (`1 1 0 0`). Padding is never
   * written to the cache and never attended, and its output rows are 0, so every row computes
   * what it would alone. A row of all padding changes nothing.
   */
  attentionMask?: AttentionMask;
}

/**
 * minGPT's `CausalSelfAttention` with the fork's key-value cache, on TensorFlow.js.
 *
 * `cAttn` maps C to `[q | k | v]` (C + 2*nkv*hs), heads attend causally, `cProj` maps back.
 * Parameters are drawn from the default generator in torch's order, so `setSeed(42)` before
 * construction gives the notebook's weights. Query head h reads key/value head
 * `floor(h / (nh / nkv))` (MHA, GQA and MQA). The no-cache forward is the reference; the
 * cached forward matches it for any chunk schedule, with any cache strategy (a windowed one
 * matching the no-cache forward under the same visibility rule).
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
  /** The strategy of the cache the module builds for itself (see AttentionOptions.cache). */
  readonly cacheSpec: CacheSpec;
  /** The heap of the module's own cache and of its no-cache kernel forward. */
  readonly heap: KernelHeap;
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
        { argument: 'implementation', value: this.implementation },
      );
    }
    this.cacheSpec = options.cache ?? 'static';
    this.heap = options.heap ?? defaultHeap();
    checkCacheSpec(this.cacheSpec); // a bad spec fails now, not at the first cached forward
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
   * not own it: `dispose()` leaves it alone. The previous cache, if the module owned it, is
   * freed. Passing the module's own cache changes nothing (the module keeps owning it).
   */
  useCache(cache: KVCache): this {
    this.#alive();
    if (cache === this.#cache) return this;
    if (typeof cache !== 'object' || cache === null || typeof cache.update !== 'function') {
      throw new ValueError(`useCache: expected a KVCache, got ${String(cache)}`, {
        argument: 'cache',
        value: cache,
      });
    }
    if (cache.isDisposed) throw new DisposedError('useCache: the cache');
    const { maxBatchSize, nKvHeads, headSize, blockSize } = this.dims;
    if (
      cache.nKvHeads !== nKvHeads ||
      cache.headSize !== headSize ||
      (cache.maxPosition !== null && cache.maxPosition < blockSize) ||
      this.layer >= cache.nLayers
    ) {
      throw new ShapeError(
        `useCache: cache (nkv=${cache.nKvHeads}, hs=${cache.headSize}, maxPosition=${cache.maxPosition}, layers=${cache.nLayers}) ` +
          `does not fit this layer (nkv=${nKvHeads}, hs=${headSize}, blockSize=${blockSize}, layer=${this.layer})`,
        {
          expected: [maxBatchSize, nKvHeads, blockSize, headSize],
          actual: [
            cache.maxBatchSize ?? -1,
            cache.nKvHeads,
            cache.maxPosition ?? -1,
            cache.headSize,
          ],
        },
      );
    }
    if (this.#ownsCache) this.#cache?.dispose();
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
   * positions `[startPos, startPos + T)` and they attend over the positions the cache's
   * strategy keeps (all of `[0, startPos + T)` for the static and dynamic caches). A startPos
   * below the cached length first crops the cache back to it (the seed's rewind), which a
   * windowed cache refuses once it has evicted what the shorter sequence needs. Every argument
   * is checked before anything changes: a rejected call leaves the cache exactly as it was.
   */
  forward(x: tf.Tensor, options: ForwardOptions = {}): tf.Tensor3D {
    const { useKvCache = false, startPos = 0 } = options;
    this.#checkInput(x, useKvCache, startPos);
    const [B, T] = x.shape as [number, number, number];
    const spans =
      options.attentionMask === undefined ? null : paddingSpans(options.attentionMask, B, T);
    const starts =
      typeof startPos === 'number' ? new Array<number>(B).fill(startPos) : [...startPos];
    const cache = useKvCache ? (this.#cache ?? this.#newCache()) : null;
    let beforeWrite = () => {};
    if (cache) {
      let end: number; // the furthest position + 1 a row reaches
      try {
        end = this.#checkCachedCall(cache, B, T, startPos, spans);
      } catch (error) {
        if (cache !== this.#cache) cache.dispose();
        throw error;
      }
      if (!this.#cache) {
        // Adopted only now that the call is accepted: a rejected first call leaves kvCache null.
        this.#cache = cache;
        this.#ownsCache = true;
      }
      // Called once the chunk is staged and known to be finite, before the cache first changes:
      // memory first (if it cannot grow, nothing has changed), then the seed's rewind: rows that
      // have seen more than their startPos are cropped to it.
      beforeWrite = () => {
        cache.reserve(this.layer, B, end);
        for (let b = 0; b < B; b++) {
          if (cache.seqLength(this.layer, b) > starts[b]!)
            cache.crop(starts[b]!, { layer: this.layer, rows: [b] });
        }
      };
    }
    const dropoutActive = this.#training && (this.dims.attnPdrop > 0 || this.dims.residPdrop > 0);
    // Padding columns enter as zeros, so whatever they hold (NaN included) cannot reach a real
    // row through `att @ v` of the chunk's own keys (the no-cache reference path).
    const input = spans ? zeroPadding(x, spans, false) : x;
    // One literal for both paths (an object spread per step costs V8 ~1 KB and old-space churn).
    const args = {
      x: input,
      dims: this.dims,
      cAttn: this.cAttn,
      cProj: this.cProj,
      heap: cache?.heap ?? this.heap,
      cache,
      layer: this.layer,
      startPos: starts,
      spans,
      training: this.#training,
      beforeWrite,
    };
    let y: tf.Tensor3D | null = null;
    try {
      if (this.implementation === 'kernel' && !dropoutActive) y = forwardKernel(args);
      y ??= forwardReference(args);
    } finally {
      if (input !== x) input.dispose();
    }
    return spans ? zeroPadding(y, spans) : y;
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

  /** The module's own cache, of its strategy, sized from dims. */
  #newCache(): KVCache {
    const { maxBatchSize, nKvHeads, headSize, blockSize } = this.dims;
    return createCache(this.cacheSpec, {
      nLayers: this.layer + 1,
      maxBatchSize,
      nKvHeads,
      headSize,
      blockSize,
      heap: this.heap,
    });
  }

  /**
   * The cache's own checks (startPos, batch, gaps, capacity, the crop a rewind needs), then the
   * module's position limit; returns the furthest position + 1 a row reaches. blockSize bounds
   * how far back a query looks, so it limits positions only for caches that keep everything; a
   * windowed cache decodes for ever.
   */
  #checkCachedCall(
    cache: KVCache,
    B: number,
    T: number,
    startPos: number | readonly number[],
    spans: RowSpans | null,
  ): number {
    const { blockSize } = this.dims;
    const limit =
      cache.visibility.window === null
        ? Math.min(blockSize, cache.maxPosition ?? blockSize)
        : (cache.maxPosition ?? Number.POSITIVE_INFINITY);
    const options = spans ? { crop: true, inPieces: true, spans } : CACHED_CALL;
    cache.checkUpdate(this.layer, B, startPos, T, options); // checks startPos itself first
    const ends = Array.from(
      { length: B },
      (_, b) =>
        (typeof startPos === 'number' ? startPos : startPos[b]!) + (spans ? spans.count[b]! : T),
    );
    const end = Math.max(...ends);
    if (end > limit) {
      const b = ends.indexOf(end);
      const s = end - (spans ? spans.count[b]! : T);
      throw new CacheCapacityError(
        `startPos + T = ${s} + ${end - s} = ${end} exceeds the capacity (blockSize) ${limit}${B > 1 ? ` (batch row ${b})` : ''}`,
        { capacity: limit, requested: end },
      );
    }
    return end;
  }

  #checkInput(x: tf.Tensor, useKvCache: boolean, startPos: number | readonly number[]): void {
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
        { expected: `[B, T, ${nEmbd}]`, actual: x.shape },
      );
    }
    const [B, T] = x.shape as [number, number];
    if (B === 0 || T === 0) {
      throw new ShapeError(`forward: x must have B >= 1 and T >= 1, got [${x.shape.join(', ')}]`, {
        expected: '[B >= 1, T >= 1, C]',
        actual: x.shape,
      });
    }
    if (!useKvCache) {
      if (startPos !== 0) {
        // An array too: without a cache every row starts at 0.
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
  }

  #alive(): void {
    if (this.#disposed) throw new DisposedError('CausalSelfAttention');
  }
}

import { type CacheSpec, checkCacheSpec, createCache, type KVCache } from '@kvkit/kv-cache';
import {
  DisposedError,
  type Generator,
  getDefaultGenerator,
  ValueError,
} from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { Block, blockValues } from './block.ts';
import type { ForwardOptions } from './causal-self-attention.ts';
import {
  defaultGPTConfig,
  type GPTConfig,
  type GPTDimensions,
  gptDims,
  MODEL_TYPES,
} from './config.ts';
import { dropout } from './dropout.ts';
import { Embedding } from './embedding.ts';
import {
  type GenerateOptions,
  type GenerateResult,
  generate,
  type PromptIds,
  streamTokens,
  type TokenStep,
} from './generate.ts';
import {
  checkModelCache,
  checkPositions,
  decodesPastBlockSize,
  embeddingPosition,
} from './gpt-checks.ts';
import { checkIdx } from './idx.ts';
import { gptInitValues, gptParameterShapes } from './init.ts';
import { LayerNorm } from './layer-norm.ts';
import { Linear } from './linear.ts';
import { readStateDict, type StateDict } from './state-dict.ts';

/** Options of the {@link GPT} constructor. */
export interface GPTOptions {
  /** Attention's implementation in every block: `kernel` (default) or `reference`. */
  implementation?: 'kernel' | 'reference';
  /** Generator for the initial weights; the default generator (see `setSeed`) if omitted. */
  generator?: Generator;
  /**
   * Initial parameters under minGPT's names (as `loadStateDict` takes them, checked the same
   * way) instead of drawing them.
   */
  weights?: StateDict;
  /**
   * The cache the model builds on its first cached forward, shared by all blocks: `'static'`
   * (default, the seed's), `'dynamic'`, `{ strategy: 'sliding-window', window }`,
   * `{ strategy: 'sink', window, sinkTokens }` or a function (see `createCache`). Positions stay
   * below blockSize whatever the strategy: the position embeddings end there.
   */
  cache?: CacheSpec;
}

/** Options of {@link GPT.forward}. */
export interface GPTForwardOptions extends Pick<ForwardOptions, 'useKvCache'> {
  /**
   * Absolute position of the first token, the same for every batch row (ragged batches with a
   * start position per row and padding masks are `CausalSelfAttention`'s for now).
   */
  startPos?: number;
  /** Compute the logits of the last position only, `(B, 1, vocab)`: what generation needs. */
  lastPositionOnly?: boolean;
}

/**
 * minGPT's GPT language model, with one key-value cache shared by all its blocks: the names and
 * layout of minGPT (`transformer.wte`, `transformer.wpe`, `transformer.h.{i}` with `ln_1`, `attn`,
 * `ln_2`, `mlp.c_fc`, `mlp.c_proj` and NewGELU, `transformer.ln_f`, `lm_head` without bias), so
 * PyTorch state dicts load as they are. A chunk run at `startPos` s gets position embeddings
 * s .. s+T-1 (not 0 .. T-1, the bug of the fork's notebook commit), so cached decoding equals the
 * no-cache forward.
 *
 * The initial weights follow minGPT's init distribution (N(0, 0.02), scaled `c_proj`), drawn
 * from kvkit's generator (not torch's values: load PyTorch's weights for those). Building the
 * attention layers also draws `nn.Linear`'s default init from the default generator first.
 *
 * @example
 * const gpt = new GPT({ ...GPT.getDefaultConfig(), modelType: 'gpt-nano', vocabSize: 65, blockSize: 64 }).eval();
 * const logits = gpt.forward(tf.tensor2d([[1, 2, 3]], [1, 3], 'int32')); // (1, 3, 65)
 * const { tokens } = await gpt.generate([[1, 2, 3]], { maxNewTokens: 20, doSample: true, seed: 0 });
 */
export class GPT {
  /**
   * A fresh copy of the fork's defaults (`GPT.get_default_config()`).
   *
   * @example
   * const config = { ...GPT.getDefaultConfig(), nHead: 1, nEmbd: 6, blockSize: 8 };
   */
  static getDefaultConfig(): GPTConfig {
    return defaultGPTConfig();
  }

  /** minGPT's `model_type` table: nLayer, nHead and nEmbd by name. */
  static readonly modelTypes = MODEL_TYPES;

  /** The resolved, checked sizes (model types expanded, nKvHeads and headSize derived), as `CausalSelfAttention.dims`. */
  readonly dims: Readonly<GPTDimensions>;
  readonly implementation: 'kernel' | 'reference';
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly h: readonly Block[];
  readonly lnF: LayerNorm;
  readonly lmHead: Linear<false>;
  #training = true; // torch modules start in training mode
  #cache: KVCache | null = null;
  #ownsCache = false;
  readonly #cacheSpec: CacheSpec;
  #disposed = false;

  constructor(config: Partial<GPTConfig>, options: GPTOptions = {}) {
    this.dims = Object.freeze(gptDims(config));
    this.implementation = options.implementation ?? 'kernel';
    if (this.implementation !== 'kernel' && this.implementation !== 'reference') {
      throw new ValueError(
        `implementation must be 'kernel' or 'reference', got '${String(this.implementation)}'`,
        { argument: 'implementation', value: this.implementation },
      );
    }
    this.#cacheSpec = options.cache ?? 'static';
    checkCacheSpec(this.#cacheSpec); // a bad spec fails here, before any weight exists
    const { nEmbd: C, vocabSize, blockSize, nLayer } = this.dims;
    const values = options.weights
      ? new Map(
          Object.entries(readStateDict(options.weights, gptParameterShapes(this.dims), 'GPT')),
        )
      : gptInitValues(this.dims, options.generator ?? getDefaultGenerator());
    const made: { dispose(): void }[] = [];
    const track = <M extends { dispose(): void }>(m: M): M => {
      made.push(m);
      return m;
    };
    try {
      this.wte = track(new Embedding(vocabSize, C, values.get('transformer.wte.weight')!));
      this.wpe = track(new Embedding(blockSize, C, values.get('transformer.wpe.weight')!));
      const blocks: Block[] = [];
      for (let i = 0; i < nLayer; i++) {
        const block = new Block(this.dims, i, blockValues(values, i), this.implementation);
        blocks.push(track(block));
      }
      this.h = Object.freeze(blocks);
      this.lnF = track(new LayerNorm(C));
      this.lnF.load(values.get('transformer.ln_f.weight')!, values.get('transformer.ln_f.bias')!);
      this.lmHead = new Linear(C, vocabSize, {
        bias: false,
        values: { weight: values.get('lm_head.weight')!, bias: null },
      });
    } catch (e) {
      for (const m of made) m.dispose();
      throw e;
    }
  }

  get training(): boolean {
    return this.#training;
  }

  /** Dropout off in every module (as `module.eval()`); returns this. */
  eval(): this {
    return this.train(false);
  }

  /** Dropout on (as `module.train()`); returns this. */
  train(mode = true): this {
    this.#training = mode;
    for (const block of this.h) block.attn.train(mode);
    return this;
  }

  get isDisposed(): boolean {
    return this.#disposed;
  }

  /**
   * Whether cached decoding may go past blockSize: with a sliding-window or sink cache whose
   * sinks and window fit in blockSize. Positions past it take blockSize - 1's embedding (see
   * `embeddingPosition` and docs/guide/generation.md: an approximation of minGPT's
   * crop-and-recompute, not the same tokens).
   */
  get decodesPastBlockSize(): boolean {
    if (this.#cache) return decodesPastBlockSize(this.#cache, this.dims.blockSize);
    const spec = this.#cacheSpec;
    if (typeof spec !== 'object') return false; // a name (static, dynamic) or a factory: not known
    const window = 'window' in spec ? spec.window : null;
    const sinks = spec.strategy === 'sink' ? (spec.sinkTokens ?? 4) : 0;
    return decodesPastBlockSize({ visibility: { window, sinks } }, this.dims.blockSize);
  }

  /** The cache all blocks share, or null before the first cached forward (created lazily). */
  get kvCache(): KVCache | null {
    return this.#cache;
  }

  /**
   * Uses `cache` (any `KVCache` strategy with at least nLayer layers, holding the model's
   * key/value heads and head size) in every block from now on.
   * The model does not own it: `dispose()` leaves it alone. A cache the model created is freed.
   */
  useCache(cache: KVCache): this {
    this.#alive();
    this.#checkCache(cache);
    for (const block of this.h) block.attn.useCache(cache);
    if (this.#ownsCache && this.#cache !== cache) this.#cache?.dispose();
    this.#cache = cache;
    this.#ownsCache = false;
    return this;
  }

  /** Forgets every cached position, in all layers (the allocation stays). */
  resetCache(): void {
    this.#alive();
    this.#cache?.reset();
  }

  /**
   * Logits `(B, T, vocab)` for token ids `idx` `(B, T)` (int32), or `(B, 1, vocab)` with
   * `lastPositionOnly`. Without the cache, the T tokens are positions 0..T-1. With `useKvCache`,
   * they are positions `startPos .. startPos+T-1`, their keys and values are written to the
   * cache in every layer, and they attend over everything cached before them; a startPos below
   * the cached length rewinds. Everything is checked (ids in range, sizes, every layer's cache
   * write) before anything changes.
   */
  forward(idx: tf.Tensor, options: GPTForwardOptions = {}): tf.Tensor3D {
    this.#alive();
    const { useKvCache = false, startPos = 0, lastPositionOnly = false } = options;
    const [B, T] = checkIdx(idx, this.dims.vocabSize, 'GPT.forward');
    const { blockSize, nEmbd: C, vocabSize } = this.dims;
    checkPositions(
      useKvCache,
      startPos,
      [B, T],
      blockSize,
      useKvCache && this.decodesPastBlockSize,
    );
    if (useKvCache) {
      this.#prepareCache(B, startPos, T);
    }
    const training = this.#training;
    return tf.tidy(() => {
      const positions = tf.tensor1d(
        Int32Array.from({ length: T }, (_, i) => embeddingPosition(startPos + i, blockSize)),
        'int32',
      );
      let x = tf.add(this.wte.apply(idx), this.wpe.apply(positions)) as tf.Tensor3D; // (B, T, C)
      if (training) x = dropout(x, this.dims.embdPdrop, getDefaultGenerator()) as tf.Tensor3D;
      for (const block of this.h) x = block.forward(x, { useKvCache, startPos }, training);
      const t = lastPositionOnly ? 1 : T;
      if (lastPositionOnly) x = tf.slice(x, [0, T - 1, 0], [B, 1, C]); // (B, 1, C)
      const y = this.lnF.apply(tf.reshape(x, [B * t, C]) as tf.Tensor2D); // (B*t, C)
      return tf.reshape(this.lmHead.apply(y), [B, t, vocabSize]) as tf.Tensor3D; // (B, t, vocab)
    });
  }

  /**
   * minGPT's `generate`: `maxNewTokens` tokens per row, greedy or sampled (temperature, top-k,
   * seeded like `torch.manual_seed` before the call), with the cache or without it, stop tokens,
   * an AbortSignal and a per-token callback. See {@link generate}.
   */
  generate(idx: PromptIds, options: GenerateOptions): Promise<GenerateResult> {
    return generate(this, idx, options);
  }

  /** The same generation as an async iterator of steps (one token per row each). See {@link streamTokens}. */
  stream(idx: PromptIds, options: GenerateOptions): AsyncGenerator<TokenStep, GenerateResult> {
    return streamTokens(this, idx, options);
  }

  /** Parameters under minGPT's names, in `named_parameters()` order, as new tensors the caller owns. */
  stateDict(): Record<string, tf.Tensor> {
    this.#alive();
    const out: Record<string, tf.Tensor> = {};
    out['transformer.wte.weight'] = this.wte.state();
    out['transformer.wpe.weight'] = this.wpe.state();
    this.h.forEach((block, i) => {
      for (const [name, t] of block.stateDict()) out[`transformer.h.${i}.${name}`] = t;
    });
    const lnF = this.lnF.state();
    out['transformer.ln_f.weight'] = lnF.weight;
    out['transformer.ln_f.bias'] = lnF.bias;
    out['lm_head.weight'] = this.lmHead.state().weight;
    return out;
  }

  /** Each parameter's shape under minGPT's names, in `named_parameters()` order. */
  parameterShapes(): Record<string, readonly number[]> {
    return { ...gptParameterShapes(this.dims) };
  }

  /** The number of parameters (as minGPT counts them, lm_head included). */
  numParameters(): number {
    return Object.values(gptParameterShapes(this.dims)).reduce(
      (sum, shape) => sum + shape.reduce((a, b) => a * b, 1),
      0,
    );
  }

  /**
   * Loads minGPT/PyTorch-named parameters (`transformer.h.0.attn.c_attn.weight` as `(out, in)`,
   * ...), given as tensors or `{ shape, data }` objects. Strict: every name, no others, exact
   * shapes, numeric float32 data, all checked before any weight changes. (For Hugging Face
   * names and files, see `loadGPT` and `gptStateDictFromTensors`.)
   */
  loadStateDict(dict: StateDict): this {
    this.#alive();
    const values = new Map(
      Object.entries(readStateDict(dict, gptParameterShapes(this.dims), 'GPT')),
    );
    const get = (name: string) => values.get(name)!;
    this.wte.load(get('transformer.wte.weight'));
    this.wpe.load(get('transformer.wpe.weight'));
    this.h.forEach((block, i) => {
      block.load(blockValues(values, i));
    });
    this.lnF.load(get('transformer.ln_f.weight'), get('transformer.ln_f.bias'));
    this.lmHead.load(get('lm_head.weight'), null);
    return this;
  }

  /** Frees every parameter and the cache the model created (not one given to `useCache`). Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.wte.dispose();
    this.wpe.dispose();
    for (const block of this.h) block.dispose();
    this.lnF.dispose();
    this.lmHead.dispose();
    if (this.#ownsCache) this.#cache?.dispose();
    this.#cache = null;
    this.#disposed = true;
  }

  /**
   * The cache for a write of T positions at startPos for B rows, checked in every layer (the
   * rewind's crop included) and its memory reserved before anything is written: a rejected
   * call changes nothing cached. The first call builds the cache `options.cache` names,
   * adopted only once the call is accepted.
   */
  #prepareCache(B: number, startPos: number, T: number): void {
    const { nLayer, maxBatchSize, nKvHeads, headSize, blockSize } = this.dims;
    const cache =
      this.#cache ??
      createCache(this.#cacheSpec, {
        nLayers: nLayer,
        maxBatchSize,
        nKvHeads,
        headSize,
        blockSize,
      });
    try {
      if (cache.isDisposed) throw new DisposedError('GPT: the cache given to useCache');
      if (cache !== this.#cache) this.#checkCache(cache); // a cache function's result must fit
      for (let layer = 0; layer < nLayer; layer++) {
        cache.checkUpdate(layer, B, startPos, T, { crop: true, inPieces: true });
      }
      for (let layer = 0; layer < nLayer; layer++) cache.reserve(layer, B, startPos + T);
    } catch (e) {
      if (cache !== this.#cache) cache.dispose();
      throw e;
    }
    if (cache !== this.#cache) {
      for (const block of this.h) block.attn.useCache(cache);
      this.#cache = cache;
      this.#ownsCache = true;
    }
  }

  #checkCache(cache: KVCache): void {
    checkModelCache(cache, this.dims, 'GPT.useCache');
  }

  #alive(): void {
    if (this.#disposed) throw new DisposedError('GPT');
  }
}

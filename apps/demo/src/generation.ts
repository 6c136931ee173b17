// Text generation with the shipped character model, apart from the page (so Node tests run it):
// loads the model once, gives each cached run a fresh cache of the chosen strategy
// (strategies.ts, plugged in with `model.useCache`), streams the tokens with `model.stream` and
// reports after every token what the panel shows live: the text so far, tokens per second and
// the cache's bytes. Stopping is the AbortSignal of `generate`.
import { type CharTokenizer, type GPT, loadCharModel, type WeightsSource } from '@kvkit/attention';
import { type KVCache, QuantizedKVCache } from '@kvkit/kv-cache';
import { strategyById } from './strategies.ts';

/** What a run is asked for: the panel's controls. */
export interface GenerationSettings {
  prompt: string;
  maxNewTokens: number;
  useKvCache: boolean;
  /** A `strategies.ts` id (used with the cache only). */
  strategy: string;
  doSample: boolean;
  temperature: number;
  topK: number | null;
  seed: number;
}

/** What the panel shows after every token. */
export interface GenerationProgress {
  /** Tokens generated so far. */
  steps: number;
  /** The new text so far (the prompt not included). */
  text: string;
  /** New tokens per second since the run started (the prompt's forward included). */
  tokensPerSecond: number;
  /** The cache's state (row 0, layer 0), or null without the cache. */
  cache: CacheState | null;
}

export interface CacheState {
  strategy: string;
  bytesUsed: number;
  bytesReserved: number;
  seqLength: number;
  slotsHeld: number;
  /** Positions held quantized (a quantized cache), else 0. */
  quantized: number;
}

export interface GenerationOutcome extends GenerationProgress {
  /** `length` (maxNewTokens reached), `stop` (a stop token) or `aborted` (the signal). */
  reason: 'length' | 'stop' | 'aborted';
  newTokens: number[];
}

/** The shipped model with its tokenizer, and the cache the current run uses. */
export class TextGenerator {
  readonly model: GPT;
  readonly tokenizer: CharTokenizer;
  #cache: KVCache | null = null;

  private constructor(model: GPT, tokenizer: CharTokenizer) {
    this.model = model;
    this.tokenizer = tokenizer;
  }

  /** Loads a character model (the shipped `genesis-char.safetensors`) from a URL or path. */
  static async load(source: WeightsSource): Promise<TextGenerator> {
    const { model, tokenizer } = await loadCharModel(source);
    return new TextGenerator(model, tokenizer);
  }

  /** The model's context: the positions its embeddings cover (see the panel's note). */
  get blockSize(): number {
    return this.model.dims.blockSize;
  }

  /**
   * Generates with these settings, calling `onProgress` after every token. Resolves with the
   * outcome, also when `signal` aborts it (`reason: 'aborted'`). Rejects, before anything runs,
   * with the library's typed error for a bad prompt (a character outside the vocabulary) or bad
   * options (a temperature of 0, a cached run past blockSize, ...).
   */
  async run(
    settings: GenerationSettings,
    options: { signal?: AbortSignal; onProgress?: (p: GenerationProgress) => void } = {},
  ): Promise<GenerationOutcome> {
    const { model, tokenizer } = this;
    const prompt = tokenizer.encode(settings.prompt); // ValueError for a foreign character
    const generateOptions = {
      maxNewTokens: settings.maxNewTokens,
      useKvCache: settings.useKvCache,
      doSample: settings.doSample,
      temperature: settings.temperature,
      topK: settings.topK,
      seed: settings.seed,
      ...(options.signal ? { signal: options.signal } : {}),
    };
    // A fresh cache first: whether the run may go past blockSize depends on it (a sliding-window
    // or sink cache that fits in blockSize decodes past it).
    if (settings.useKvCache) this.#useFreshCache(settings.strategy);
    const stream = model.stream([prompt], generateOptions); // checks every option, runs nothing
    const newTokens: number[] = [];
    const start = performance.now();
    const progress = (): GenerationProgress => {
      const seconds = (performance.now() - start) / 1000;
      return {
        steps: newTokens.length,
        text: tokenizer.decode(newTokens),
        tokensPerSecond: seconds > 0 ? newTokens.length / seconds : 0,
        cache: settings.useKvCache ? this.cacheState() : null,
      };
    };
    try {
      for (;;) {
        const next = await stream.next();
        if (next.done) {
          return { ...progress(), reason: next.value.finishReasons[0]!, newTokens };
        }
        newTokens.push(next.value.tokens[0]!);
        options.onProgress?.(progress());
      }
    } catch (error) {
      if (options.signal?.aborted) return { ...progress(), reason: 'aborted', newTokens };
      throw error;
    }
  }

  /**
   * Gives the model a fresh, empty cache of this strategy (what the next run starts from) and
   * says whether it lets a cached run go past blockSize (`GPT.decodesPastBlockSize`: a
   * sliding-window or sink cache that fits in it). Not while a run is going on.
   *
   * @example
   * generator.select('sliding-window'); // { decodesPastBlockSize: true }
   */
  select(strategy: string): { decodesPastBlockSize: boolean } {
    this.#useFreshCache(strategy);
    return { decodesPastBlockSize: this.model.decodesPastBlockSize };
  }

  /** The model's cache as the panel shows it (row 0, layer 0), or null before any cached run. */
  cacheState(): CacheState | null {
    const cache = this.#cache;
    if (!cache) return null;
    return {
      strategy: cache.strategy,
      bytesUsed: cache.bytesUsed(),
      bytesReserved: cache.bytesReserved(),
      seqLength: cache.seqLength(0, 0),
      slotsHeld: cache.slotsHeld(0, 0),
      quantized: cache instanceof QuantizedKVCache ? cache.quantizedLength(0, 0) : 0,
    };
  }

  /** Frees the model and the cache. */
  dispose(): void {
    this.model.dispose();
    this.#cache?.dispose();
    this.#cache = null;
  }

  /** A new, empty cache of the strategy for the model, replacing (and freeing) the last one. */
  #useFreshCache(strategy: string): void {
    const { nLayer, nKvHeads, headSize, maxBatchSize, blockSize } = this.model.dims;
    const cache = strategyById(strategy).create({
      nLayers: nLayer,
      nKvHeads,
      headSize,
      maxBatchSize,
      blockSize,
    });
    try {
      this.model.useCache(cache);
    } catch (e) {
      cache.dispose();
      throw e;
    }
    this.#cache?.dispose();
    this.#cache = cache;
  }
}

import { ValueError } from '@kvkit/tensor-utils';

/**
 * The minGPT fork's config (`GPT.get_default_config()`), in camelCase. Numbers left null must
 * be set before a module is built from it, exactly as in the notebook.
 */
export interface GPTConfig {
  modelType: string | null;
  nLayer: number | null;
  /** Query heads (nh). */
  nHead: number | null;
  /** Key/value heads (nkv): null = nHead (MHA); 1 < nkv < nh = GQA; 1 = MQA. */
  nKvHeads: number | null;
  /** Model width C. */
  nEmbd: number | null;
  vocabSize: number | null;
  /** Longest sequence (Tmax): the capacity of the static cache. */
  blockSize: number | null;
  embdPdrop: number;
  residPdrop: number;
  attnPdrop: number;
  /** Batch rows the static cache preallocates. */
  maxBatchSize: number;
}

/**
 * A fresh copy of the fork's defaults (`GPT.get_default_config()`): the sizes are null and must be
 * set (or come from `modelType`) before a model is built; `GPT.getDefaultConfig()` returns this.
 *
 * @example
 * const config = { ...defaultGPTConfig(), nHead: 1, nEmbd: 6, blockSize: 8 };
 */
export function defaultGPTConfig(): GPTConfig {
  return {
    modelType: 'gpt',
    nLayer: null,
    nHead: null,
    nKvHeads: null, // null = as many key/value heads as query heads
    nEmbd: null,
    vocabSize: null,
    blockSize: null,
    embdPdrop: 0.1,
    residPdrop: 0.1,
    attnPdrop: 0.1,
    maxBatchSize: 64, // rows the static cache preallocates
  };
}

/** The names in minGPT's `model_type` table. */
export type ModelType =
  | 'openai-gpt'
  | 'gpt2'
  | 'gpt2-medium'
  | 'gpt2-large'
  | 'gpt2-xl'
  | 'gopher-44m'
  | 'gpt-mini'
  | 'gpt-micro'
  | 'gpt-nano';

/**
 * minGPT's `model_type` table: each name sets nLayer, nHead and nEmbd (vocabSize and blockSize
 * still come from the config: GPT-2's are 50257 and 1024).
 *
 * @example
 * MODEL_TYPES['gpt-nano']; // { nLayer: 3, nHead: 3, nEmbd: 48 }
 */
export const MODEL_TYPES: Readonly<
  Record<ModelType, Readonly<{ nLayer: number; nHead: number; nEmbd: number }>>
> = Object.freeze({
  // names follow Hugging Face's
  'openai-gpt': Object.freeze({ nLayer: 12, nHead: 12, nEmbd: 768 }), // 117M params
  gpt2: Object.freeze({ nLayer: 12, nHead: 12, nEmbd: 768 }), // 124M params
  'gpt2-medium': Object.freeze({ nLayer: 24, nHead: 16, nEmbd: 1024 }), // 350M params
  'gpt2-large': Object.freeze({ nLayer: 36, nHead: 20, nEmbd: 1280 }), // 774M params
  'gpt2-xl': Object.freeze({ nLayer: 48, nHead: 25, nEmbd: 1600 }), // 1558M params
  'gopher-44m': Object.freeze({ nLayer: 8, nHead: 16, nEmbd: 512 }),
  // minGPT's own tiny models
  'gpt-mini': Object.freeze({ nLayer: 6, nHead: 6, nEmbd: 192 }),
  'gpt-micro': Object.freeze({ nLayer: 4, nHead: 4, nEmbd: 128 }),
  'gpt-nano': Object.freeze({ nLayer: 3, nHead: 3, nEmbd: 48 }),
});

/** The numbers an attention layer needs, checked and derived once. */
export interface AttentionDims {
  nEmbd: number;
  nHead: number;
  nKvHeads: number;
  headSize: number;
  blockSize: number;
  maxBatchSize: number;
  attnPdrop: number;
  residPdrop: number;
}

export function attentionDims(config: Partial<GPTConfig>): AttentionDims {
  const need = (argument: 'nEmbd' | 'nHead' | 'blockSize' | 'maxBatchSize'): number => {
    const value = config[argument];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      throw new ValueError(`config.${argument} must be a positive integer, got ${String(value)}`, {
        argument,
        value,
      });
    }
    return value;
  };
  const nEmbd = need('nEmbd');
  const nHead = need('nHead');
  const blockSize = need('blockSize');
  const maxBatchSize = need('maxBatchSize');
  const nKvHeads = config.nKvHeads ?? nHead;
  if (!Number.isInteger(nKvHeads) || nKvHeads < 1 || nHead % nKvHeads !== 0) {
    throw new ValueError(
      `config.nKvHeads must be a positive integer dividing nHead ${nHead}, got ${nKvHeads}`,
      {
        argument: 'nKvHeads',
        value: nKvHeads,
      },
    );
  }
  if (nEmbd % nHead !== 0) {
    throw new ValueError(`config.nEmbd ${nEmbd} must be divisible by nHead ${nHead}`, {
      argument: 'nEmbd',
      value: nEmbd,
    });
  }
  const rate = (argument: 'attnPdrop' | 'residPdrop'): number => {
    const value = config[argument] ?? 0;
    if (!(value >= 0 && value < 1)) {
      throw new ValueError(`config.${argument} must be in [0, 1), got ${value}`, {
        argument,
        value,
      });
    }
    return value;
  };
  return {
    nEmbd,
    nHead,
    nKvHeads,
    headSize: nEmbd / nHead,
    blockSize,
    maxBatchSize,
    attnPdrop: rate('attnPdrop'),
    residPdrop: rate('residPdrop'),
  };
}

/** The numbers a whole GPT needs, checked and derived once (the attention ones included). */
export interface GPTDimensions extends AttentionDims {
  /** The config's model type (`gpt` or null for explicit sizes). */
  modelType: string | null;
  nLayer: number;
  vocabSize: number;
  embdPdrop: number;
}

/** Largest element count of one parameter tensor (2^29 floats = 2 GiB): a bigger one cannot fit the wasm heap. */
const MAX_TENSOR_ELEMENTS = 2 ** 29;

/**
 * Resolves a GPT config as minGPT does: a known `modelType` sets nLayer, nHead and nEmbd
 * (explicit values must then agree with the table); `gpt` or null means explicit sizes. Throws a
 * ValueError naming the first bad field.
 *
 * @example
 * gptDims({ ...defaultGPTConfig(), modelType: 'gpt-nano', vocabSize: 65, blockSize: 64 }).headSize; // 16
 */
export function gptDims(config: Partial<GPTConfig>): GPTDimensions {
  if (config === null || typeof config !== 'object') {
    throw new ValueError(`config must be an object, got ${String(config)}`, {
      argument: 'config',
      value: config,
    });
  }
  const modelType = config.modelType ?? null;
  const sizes: Partial<GPTConfig> = {};
  if (modelType !== null && modelType !== 'gpt') {
    if (typeof modelType !== 'string' || !Object.hasOwn(MODEL_TYPES, modelType)) {
      throw new ValueError(
        `config.modelType '${String(modelType)}' is not one of gpt, ${Object.keys(MODEL_TYPES).join(', ')}`,
        { argument: 'modelType', value: modelType },
      );
    }
    const table = MODEL_TYPES[modelType as ModelType];
    for (const key of ['nLayer', 'nHead', 'nEmbd'] as const) {
      const given = config[key];
      if (given !== null && given !== undefined && given !== table[key]) {
        throw new ValueError(
          `config.${key} = ${String(given)} disagrees with modelType '${modelType}' (${table[key]}); give one or the other`,
          { argument: key, value: given },
        );
      }
      sizes[key] = table[key];
    }
  }
  const merged = { ...config, ...sizes };
  const positive = (argument: 'nLayer' | 'vocabSize'): number => {
    const value = merged[argument];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      throw new ValueError(`config.${argument} must be a positive integer, got ${String(value)}`, {
        argument,
        value,
      });
    }
    return value;
  };
  const nLayer = positive('nLayer');
  const vocabSize = positive('vocabSize');
  const attention = attentionDims(merged);
  const embdPdrop = merged.embdPdrop ?? 0;
  if (!(embdPdrop >= 0 && embdPdrop < 1)) {
    throw new ValueError(`config.embdPdrop must be in [0, 1), got ${embdPdrop}`, {
      argument: 'embdPdrop',
      value: embdPdrop,
    });
  }
  const { nEmbd: C, blockSize } = attention;
  const largest: [string, number][] = [
    ['vocabSize * nEmbd', vocabSize * C],
    ['blockSize * nEmbd', blockSize * C],
    ['4 * nEmbd * nEmbd', 4 * C * C],
  ];
  for (const [what, size] of largest) {
    if (size > MAX_TENSOR_ELEMENTS) {
      throw new ValueError(
        `config: ${what} = ${size} elements in one parameter exceeds ${MAX_TENSOR_ELEMENTS}`,
        { argument: what.split(' ')[0]!, value: size },
      );
    }
  }
  return { ...attention, modelType, nLayer, vocabSize, embdPdrop };
}

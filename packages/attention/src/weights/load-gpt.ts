import type { CacheSpec } from '@kvkit/kv-cache';
import { ValueError } from '@kvkit/tensor-utils';
import type { GPTConfig } from '../config.ts';
import { GPT } from '../gpt.ts';
import { CharTokenizer } from '../tokenizers/char-tokenizer.ts';
import { type GPTWeights, gptWeightsFromTensors } from './gpt-weights.ts';
import { readSafetensors } from './safetensors-read.ts';
import { readWeightsBytes, type WeightsSource } from './source.ts';

/** The safetensors metadata key under which kvkit records a model's config (JSON). */
export const CONFIG_METADATA_KEY = 'kvkit.gpt.config';
/** The metadata key of a model's tokenizer (JSON: `{ "type": "char", "chars": ... }`). */
export const TOKENIZER_METADATA_KEY = 'kvkit.tokenizer';

/** Options of {@link loadGPT}. */
export interface LoadGPTOptions {
  /**
   * Config values the file cannot give: nHead (or a modelType), and maxBatchSize, dropout rates.
   * Sizes the weights give (nLayer, nEmbd, vocabSize, blockSize, nKvHeads) are read from them;
   * values given here must agree. A file written by kvkit carries its config in its metadata.
   */
  config?: Partial<GPTConfig>;
  /** Attention's implementation (default `kernel`). */
  implementation?: 'kernel' | 'reference';
  /** The cache strategy the model builds on its first cached forward (default `'static'`). */
  cache?: CacheSpec;
  /** Aborts a fetch. */
  signal?: AbortSignal;
}

function metadataConfig(metadata: Record<string, string>): Partial<GPTConfig> {
  const text = metadata[CONFIG_METADATA_KEY];
  if (text === undefined) return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
      return parsed as Partial<GPTConfig>;
  } catch {
    // reported below
  }
  throw new ValueError(`loadGPT: metadata '${CONFIG_METADATA_KEY}' is not a JSON object`, {
    argument: 'metadata',
    value: text,
  });
}

/**
 * The config for weights: sizes from the shapes, the rest from the file's metadata and then
 * `given` (which wins; a disagreement with the shapes fails in `loadStateDict`).
 */
function configFor(
  weights: GPTWeights,
  fromFile: Partial<GPTConfig>,
  given: Partial<GPTConfig>,
): Partial<GPTConfig> {
  const { nLayer, nEmbd, vocabSize, blockSize, qkvWidth } = weights.sizes;
  const config: Partial<GPTConfig> = {
    ...GPT.getDefaultConfig(),
    modelType: null,
    nLayer,
    nEmbd,
    vocabSize,
    blockSize,
    ...fromFile,
    ...given,
  };
  const table = GPT.modelTypes as Record<string, { nHead: number } | undefined>;
  const modelType = config.modelType;
  const nHead =
    config.nHead ??
    (typeof modelType === 'string' && Object.hasOwn(table, modelType)
      ? table[modelType]!.nHead
      : null);
  if (!nHead) {
    throw new ValueError(
      'loadGPT: the weights do not tell the number of heads: pass config: { nHead } or a modelType',
      { argument: 'nHead', value: nHead },
    );
  }
  const hs = nEmbd / nHead;
  config.nKvHeads ??= (qkvWidth - nEmbd) / (2 * hs); // c_attn is C + 2 * nkv * hs wide
  return config;
}

/**
 * Builds a GPT from a safetensors file (a path in Node, a URL, or an ArrayBuffer): minGPT/PyTorch
 * names, or either Hugging Face GPT-2 layout (see `gptWeightsFromTensors`). The file is checked
 * completely (format, names, shapes, dtypes) before the model is built; nothing is half-loaded.
 * The model is returned in eval mode.
 *
 * @throws {FormatError} for a damaged or hostile file; {@link ValueError}, {@link ShapeError} or
 *   {@link DTypeError} for weights that do not make a GPT.
 * @example
 * const gpt = await loadGPT('gpt2/model.safetensors', { config: { modelType: 'gpt2', maxBatchSize: 1 } });
 */
export async function loadGPT(source: WeightsSource, options: LoadGPTOptions = {}): Promise<GPT> {
  return (await loadWithMetadata(source, options)).model;
}

async function loadWithMetadata(
  source: WeightsSource,
  options: LoadGPTOptions,
): Promise<{ model: GPT; metadata: Record<string, string> }> {
  const bytes = await readWeightsBytes(source, options.signal ? { signal: options.signal } : {});
  const file = readSafetensors(bytes);
  const weights = gptWeightsFromTensors(file.tensors);
  const config = configFor(weights, metadataConfig(file.metadata), options.config ?? {});
  const model = new GPT(config, {
    ...(options.implementation ? { implementation: options.implementation } : {}),
    ...(options.cache ? { cache: options.cache } : {}),
    weights: weights.stateDict,
  });
  return { model: model.eval(), metadata: file.metadata };
}

/**
 * A character-level model saved by kvkit (such as the shipped `models/genesis-char.safetensors`)
 * with its tokenizer, read from the file's metadata.
 *
 * @throws {ValueError} when the file carries no character tokenizer (and frees the model).
 * @example
 * const { model, tokenizer } = await loadCharModel(import.meta.resolve('@kvkit/attention/models/genesis-char.safetensors'));
 */
export async function loadCharModel(
  source: WeightsSource,
  options: LoadGPTOptions = {},
): Promise<{ model: GPT; tokenizer: CharTokenizer }> {
  const { model, metadata } = await loadWithMetadata(source, options);
  try {
    const saved = JSON.parse(metadata[TOKENIZER_METADATA_KEY] ?? 'null') as {
      type?: string;
      chars?: string;
    } | null;
    if (saved?.type !== 'char' || typeof saved.chars !== 'string') {
      throw new ValueError(
        `loadCharModel: the file's metadata has no '${TOKENIZER_METADATA_KEY}' of type char`,
        {
          argument: 'source',
          value: metadata[TOKENIZER_METADATA_KEY],
        },
      );
    }
    const tokenizer = new CharTokenizer(saved.chars);
    if (tokenizer.vocabSize !== model.dims.vocabSize) {
      throw new ValueError(
        `loadCharModel: the tokenizer has ${tokenizer.vocabSize} characters, the model ${model.dims.vocabSize} ids`,
        { argument: 'source', value: tokenizer.vocabSize },
      );
    }
    return { model, tokenizer };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

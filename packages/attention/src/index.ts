// Public API of @kvkit/attention.
export { Block, type BlockValues } from './block.ts';
export {
  type AttentionOptions,
  CausalSelfAttention,
  type ForwardOptions,
} from './causal-self-attention.ts';
export {
  type AttentionDims,
  defaultGPTConfig,
  type GPTConfig,
  type GPTDimensions,
  gptDims,
  MODEL_TYPES,
  type ModelType,
} from './config.ts';
export { Embedding } from './embedding.ts';
export { newGelu } from './gelu.ts';
export {
  type GenerateOptions,
  type GenerateResult,
  type GenerateTiming,
  generate,
  streamTokens,
  type TokenStep,
} from './generate.ts';
export { GPT, type GPTForwardOptions, type GPTOptions } from './gpt.ts';
export type { PromptIds } from './idx.ts';
export { LayerNorm, layerNorm } from './layer-norm.ts';
export { Linear, type LinearOptions } from './linear.ts';
export { MLP } from './mlp.ts';
export { type NextTokenOptions, nextTokenProbabilities, nextTokens } from './next-token.ts';
export type { AttentionMask } from './padding.ts';
export type { StateDict, StateDictEntry } from './state-dict.ts';
export { CharTokenizer } from './tokenizers/char-tokenizer.ts';
export { GPT2_END_OF_TEXT, Gpt2Tokenizer, loadGpt2Tokenizer } from './tokenizers/gpt2-tokenizer.ts';
export type { Tokenizer } from './tokenizers/tokenizer.ts';
export {
  type GPTWeights,
  gptWeightsFromTensors,
  type WeightsLayout,
} from './weights/gpt-weights.ts';
export {
  CONFIG_METADATA_KEY,
  type LoadGPTOptions,
  loadCharModel,
  loadGPT,
  TOKENIZER_METADATA_KEY,
} from './weights/load-gpt.ts';
export {
  MAX_HEADER_BYTES,
  readSafetensors,
  type SafetensorsDType,
  type SafetensorsFile,
  type SafetensorsTensor,
} from './weights/safetensors-read.ts';
export { type TensorToWrite, writeSafetensors } from './weights/safetensors-write.ts';
export { readWeightsBytes, type WeightsSource } from './weights/source.ts';

// Public API of @kvkit/attention.
export {
  type AttentionOptions,
  CausalSelfAttention,
  type ForwardOptions,
} from './causal-self-attention.ts';
export { type AttentionDims, GPT, type GPTConfig } from './config.ts';
export { Linear } from './linear.ts';
export type { AttentionMask } from './padding.ts';
export type { StateDict, StateDictEntry } from './state-dict.ts';

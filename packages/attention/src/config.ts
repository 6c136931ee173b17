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
 * GPT. In this release it carries the fork's configuration; the full model with KV-cached
 * generation builds on `CausalSelfAttention` in a later release.
 */
// biome-ignore lint/complexity/noStaticOnlyClass: the name mirrors minGPT's `GPT.get_default_config()`.
export class GPT {
  /**
   * A fresh copy of the fork's defaults.
   *
   * @example
   * const config = { ...GPT.getDefaultConfig(), nHead: 1, nEmbd: 6, blockSize: 8 };
   */
  static getDefaultConfig(): GPTConfig {
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
}

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

import { DTypeError, ShapeError, ValueError } from '@kvkit/tensor-utils';
import type { SafetensorsTensor } from './safetensors-read.ts';

/** Which naming and weight layout a file used. */
export type WeightsLayout = 'mingpt' | 'hf-gpt2' | 'hf-gpt2-legacy';

/** A GPT state dict under minGPT's names, `(out, in)` weights, ready for `GPT.loadStateDict`. */
export interface GPTWeights {
  layout: WeightsLayout;
  stateDict: Record<string, { shape: number[]; data: Float32Array }>;
  /** Sizes read from the shapes (nHead cannot be: it is not in the weights). */
  sizes: { nLayer: number; nEmbd: number; vocabSize: number; blockSize: number; qkvWidth: number };
  /** Buffers in the file that are not parameters (causal masks), skipped by name. */
  ignored: string[];
  /** Whether lm_head.weight was absent and tied to transformer.wte.weight, as GPT-2 does. */
  tiedLmHead: boolean;
}

/** Block parameter names (after `h.{i}.`), minGPT's and GPT-2's alike. */
const BLOCK_NAMES = [
  'ln_1.weight',
  'ln_1.bias',
  'attn.c_attn.weight',
  'attn.c_attn.bias',
  'attn.c_proj.weight',
  'attn.c_proj.bias',
  'ln_2.weight',
  'ln_2.bias',
  'mlp.c_fc.weight',
  'mlp.c_fc.bias',
  'mlp.c_proj.weight',
  'mlp.c_proj.bias',
] as const;
const TOP_NAMES = ['wte.weight', 'wpe.weight', 'ln_f.weight', 'ln_f.bias'] as const;
/** GPT-2's Conv1D layers store their weight (in, out), the transpose of nn.Linear's. */
const CONV1D = new Set([
  'attn.c_attn.weight',
  'attn.c_proj.weight',
  'mlp.c_fc.weight',
  'mlp.c_proj.weight',
]);
/** Causal-mask buffers (the fork's and older transformers'): whole names, never `attn.c_attn.bias`. */
const BUFFER = /^h\.\d+\.attn\.(bias|masked_bias)$/;
const BLOCK = /^h\.(0|[1-9]\d*)\.(.+)$/;

function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return out;
}

/**
 * Maps tensors read from a file to a minGPT state dict. Three layouts are recognised:
 * - minGPT / PyTorch `state_dict()` names (`transformer.h.0.attn.c_attn.weight` as `(out, in)`,
 *   `lm_head.weight`), with the fork's `attn.bias` mask buffers skipped;
 * - Hugging Face `GPT2LMHeadModel.save_pretrained`: the same `transformer.` names, Conv1D
 *   weights stored `(in, out)` (transposed here), no `lm_head.weight` (tied to `wte`);
 * - the older Hub layout: no `transformer.` prefix, and `h.{i}.attn.bias` /
 *   `h.{i}.attn.masked_bias` buffers, skipped by their whole name (`h.{i}.attn.c_attn.bias` is
 *   a parameter).
 * The orientation is read from `c_attn.weight`, which is never square. Every name is checked:
 * unknown, missing, non-float or prototype-named tensors are typed errors, before anything is
 * returned.
 *
 * @example
 * const { stateDict, sizes } = gptWeightsFromTensors(readSafetensors(bytes).tensors);
 */
export function gptWeightsFromTensors(tensors: ReadonlyMap<string, SafetensorsTensor>): GPTWeights {
  const names = [...tensors.keys()];
  const prototypeNamed = names.filter((n) => n in Object.prototype);
  if (prototypeNamed.length > 0) {
    throw new ValueError(`GPT weights: names [${prototypeNamed.join(', ')}] are not parameters`, {
      argument: 'tensors',
      value: prototypeNamed,
    });
  }
  const prefixed = names.some((n) => n.startsWith('transformer.'));
  const body = new Map<string, SafetensorsTensor>(); // names without `transformer.`
  const ignored: string[] = [];
  const unknown: string[] = [];
  let lmHead: SafetensorsTensor | undefined;
  for (const [name, t] of tensors) {
    if (name === 'lm_head.weight') {
      lmHead = t;
      continue;
    }
    if (prefixed !== name.startsWith('transformer.')) {
      unknown.push(name); // a mix of prefixed and bare names is not any layout
      continue;
    }
    const bare = prefixed ? name.slice('transformer.'.length) : name;
    if (BUFFER.test(bare)) ignored.push(name);
    else if ((TOP_NAMES as readonly string[]).includes(bare)) body.set(bare, t);
    else {
      const m = BLOCK.exec(bare);
      if (m && (BLOCK_NAMES as readonly string[]).includes(m[2]!)) body.set(bare, t);
      else unknown.push(name);
    }
  }
  if (unknown.length > 0) {
    throw new ValueError(`GPT weights: unexpected tensors [${unknown.join(', ')}]`, {
      argument: 'tensors',
      value: unknown,
    });
  }
  let nLayer = 0;
  for (const bare of body.keys()) {
    const m = BLOCK.exec(bare);
    if (m) nLayer = Math.max(nLayer, Number(m[1]) + 1);
  }
  const expected = [
    ...TOP_NAMES,
    ...Array.from({ length: nLayer }, (_, i) => BLOCK_NAMES.map((n) => `h.${i}.${n}`)).flat(),
  ];
  const missing = expected.filter((n) => !body.has(n));
  if (missing.length > 0 || nLayer === 0) {
    throw new ValueError(
      `GPT weights: missing tensors [${missing.map((n) => (prefixed ? `transformer.${n}` : n)).join(', ')}]${nLayer === 0 ? ' (no blocks h.{i})' : ''}`,
      { argument: 'tensors', value: missing },
    );
  }
  for (const [bare, t] of [...body, ...(lmHead ? [['lm_head.weight', lmHead] as const] : [])]) {
    if (!t.data) {
      throw new DTypeError(
        `GPT weights: '${bare}' has dtype ${t.dtype}; parameters must be floats (F32, F64, F16 or BF16)`,
        {
          expected: ['F32', 'F64', 'F16', 'BF16'],
          actual: t.dtype,
        },
      );
    }
  }
  const wte = body.get('wte.weight')!;
  const wpe = body.get('wpe.weight')!;
  const cAttn = body.get('h.0.attn.c_attn.weight')!;
  if (wte.shape.length !== 2 || wpe.shape.length !== 2 || cAttn.shape.length !== 2) {
    throw new ShapeError('GPT weights: wte, wpe and c_attn weights must be 2-D', {
      expected: '[rows, cols]',
      actual: [wte.shape.length, wpe.shape.length, cAttn.shape.length],
    });
  }
  const [vocabSize, nEmbd] = wte.shape as [number, number];
  const blockSize = wpe.shape[0]!;
  // c_attn maps C to C + 2*nkv*hs > C: (in, out) = [C, W] is Conv1D, (out, in) = [W, C] is Linear.
  const conv1d = cAttn.shape[0] === nEmbd && cAttn.shape[1]! > nEmbd;
  const qkvWidth = conv1d ? cAttn.shape[1]! : cAttn.shape[0]!;
  const stateDict: GPTWeights['stateDict'] = Object.create(null);
  for (const [bare, t] of body) {
    const m = BLOCK.exec(bare);
    let { shape, data } = { shape: t.shape, data: t.data! };
    if (conv1d && m && CONV1D.has(m[2]!)) {
      if (shape.length !== 2) {
        throw new ShapeError(`GPT weights: Conv1D weight '${bare}' must be 2-D`, {
          expected: '[in, out]',
          actual: shape,
        });
      }
      data = transpose(data, shape[0]!, shape[1]!);
      shape = [shape[1]!, shape[0]!];
    }
    stateDict[`transformer.${bare}`] = { shape: [...shape], data };
  }
  const head = lmHead ?? wte;
  stateDict['lm_head.weight'] = { shape: [...head.shape], data: head.data! };
  const layout: WeightsLayout = !conv1d ? 'mingpt' : prefixed ? 'hf-gpt2' : 'hf-gpt2-legacy';
  return {
    layout,
    stateDict,
    sizes: { nLayer, nEmbd, vocabSize, blockSize, qkvWidth },
    ignored,
    tiedLmHead: lmHead === undefined,
  };
}

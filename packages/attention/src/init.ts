import type { Generator } from '@kvkit/tensor-utils';
import type { GPTDimensions } from './config.ts';

/**
 * `n` normal samples N(0, std^2) by the Box-Muller transform, two per pair of 32-bit outputs of
 * `generator`. This is minGPT's init *distribution* drawn from kvkit's generator: the values are
 * repeatable with `setSeed`, but they are not torch's (`normal_` takes a vectorised path that is
 * not reproduced here), so load PyTorch's weights to get PyTorch's model.
 *
 * @example
 * const w = normalValues(16, 0.02, new Generator(0));
 */
export function normalValues(n: number, std: number, generator: Generator): Float32Array {
  const out = new Float32Array(n);
  const words = generator.fill(new Uint32Array(2 * Math.ceil(n / 2)));
  for (let i = 0; i < n; i += 2) {
    const u1 = (words[i]! + 1) / 2 ** 32; // (0, 1]: the log stays finite
    const u2 = words[i + 1]! / 2 ** 32;
    const r = std * Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/**
 * A GPT's initial parameters under minGPT's names, in `named_parameters()` order, with minGPT's
 * init: Linear weights and embeddings ~ N(0, 0.02), biases 0, LayerNorm weight 1 and bias 0,
 * then every `c_proj.weight` ~ N(0, 0.02 / sqrt(2 * nLayer)) (GPT-2's scaled residual init).
 */
export function gptInitValues(
  dims: GPTDimensions,
  generator: Generator,
): Map<string, Float32Array> {
  const projStd = 0.02 / Math.sqrt(2 * dims.nLayer);
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of Object.entries(gptParameterShapes(dims))) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (/ln_(1|2|f)\.weight$/.test(name)) out.set(name, new Float32Array(n).fill(1));
    else if (name.endsWith('.bias')) out.set(name, new Float32Array(n));
    else out.set(name, normalValues(n, name.endsWith('c_proj.weight') ? projStd : 0.02, generator));
  }
  return out;
}

/** Every parameter's shape under minGPT's names, in `named_parameters()` order. */
export function gptParameterShapes(dims: GPTDimensions): Record<string, readonly number[]> {
  const { nEmbd: C, nKvHeads, headSize, nLayer, vocabSize, blockSize } = dims;
  const qkv = C + 2 * nKvHeads * headSize;
  const shapes: Record<string, readonly number[]> = Object.create(null);
  shapes['transformer.wte.weight'] = [vocabSize, C];
  shapes['transformer.wpe.weight'] = [blockSize, C];
  for (let i = 0; i < nLayer; i++) {
    const p = `transformer.h.${i}.`;
    shapes[`${p}ln_1.weight`] = [C];
    shapes[`${p}ln_1.bias`] = [C];
    shapes[`${p}attn.c_attn.weight`] = [qkv, C];
    shapes[`${p}attn.c_attn.bias`] = [qkv];
    shapes[`${p}attn.c_proj.weight`] = [C, C];
    shapes[`${p}attn.c_proj.bias`] = [C];
    shapes[`${p}ln_2.weight`] = [C];
    shapes[`${p}ln_2.bias`] = [C];
    shapes[`${p}mlp.c_fc.weight`] = [4 * C, C];
    shapes[`${p}mlp.c_fc.bias`] = [4 * C];
    shapes[`${p}mlp.c_proj.weight`] = [C, 4 * C];
    shapes[`${p}mlp.c_proj.bias`] = [C];
  }
  shapes['transformer.ln_f.weight'] = [C];
  shapes['transformer.ln_f.bias'] = [C];
  shapes['lm_head.weight'] = [vocabSize, C];
  return shapes;
}

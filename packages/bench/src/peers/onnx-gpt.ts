/**
 * A whole minGPT/GPT-2 model as one ONNX graph, built around `attentionLayer` with the same
 * builder, the way the decoder exports transformers.js runs are laid out: `input_ids` (B, T)
 * int64 and `past_key_values.{i}.key|value` (B, nkv, P, hs) in, `logits` and
 * `present.{i}.key|value` (B, nkv, P + T, hs) out. The positions are P .. P + T - 1, P the
 * past's length. The nodes: the token and position embeddings (Gather), per block
 * LayerNormalization, attention, a residual Add, LayerNormalization, the MLP (MatMul + bias,
 * GELU in its tanh form as minGPT's NewGELU writes it, MatMul + bias) and a residual Add, then
 * the final LayerNormalization and lm_head (MatMul, no bias).
 *
 * The logits are the last position's only, `(B, 1, vocab)`, as kvkit's `lastPositionOnly`
 * computes them: an export computing every position's logits would spend the no-cache
 * forward of a 513-token prefix mostly on a lm_head that generation throws away.
 */
import { ValueError } from '@kvkit/tensor-utils';
import {
  type AttentionLayerWeights,
  attentionLayer,
  onnxNames,
  transposed,
} from './onnx-attention.ts';
import { OnnxGraph } from './onnx-graph.ts';

/** The sizes a GPT graph needs. */
export interface GptGraphSizes {
  nLayer: number;
  nHead: number;
  /** Key/value heads; nHead when omitted. */
  nKvHeads?: number;
  C: number;
  vocabSize: number;
  blockSize: number;
}

/**
 * The graph's own value names (the pasts and presents are `onnxNames`').
 *
 * @example
 * const out = await session.run({ [gptOnnxNames.inputIds]: ids, ...pasts });
 * const logits = out[gptOnnxNames.logits]; // (B, 1, vocab)
 */
export const gptOnnxNames = { inputIds: 'input_ids', logits: 'logits' } as const;

/** The parameters under minGPT's names, torch layouts (Linear weights `(out, in)`). */
export type GptGraphTensors = ReadonlyMap<string, { data: Float32Array }>;

/** minGPT's and GPT-2's layer-norm epsilon. */
const eps = 1e-5;

/**
 * The GPT as a serialized ONNX model.
 *
 * @example
 * const bytes = gptModel(gptSizes.quick, gptWeights(gptSizes.quick));
 * const session = await engine.createSession(bytes);
 */
export function gptModel(s: GptGraphSizes, tensors: GptGraphTensors): Uint8Array {
  const { C, nHead, vocabSize: V, blockSize } = s;
  const nKvHeads = s.nKvHeads ?? nHead;
  const get = (name: string): Float32Array => {
    const t = tensors.get(name);
    if (!t) throw new ValueError(`gptModel: no tensor '${name}'`, { argument: name, value: null });
    return t.data;
  };
  const g = new OnnxGraph('kvkit_gpt');
  const i64 = (v: number[]) => g.constant(v, [v.length], true);
  const scalar = (n: number) => g.constant([n], [], true);
  const param = (name: string, shape: number[]) => g.initializer(name, shape, get(name));
  const linear = (x: string, name: string, out: number, inp: number, bias = true) => {
    const w = g.initializer(
      `${name}.weight_t`,
      [inp, out],
      transposed(get(`${name}.weight`), out, inp),
    );
    const y = g.node('MatMul', [x, w])[0]!;
    return bias ? g.node('Add', [y, param(`${name}.bias`, [out])])[0]! : y;
  };
  const norm = (x: string, name: string) =>
    g.node('LayerNormalization', [x, param(`${name}.weight`, [C]), param(`${name}.bias`, [C])], {
      axis: { int: -1 },
      epsilon: { float: eps },
    })[0]!;
  const f32 = (v: number) => g.constant([v], []);
  const gelu = (x: string) => {
    // 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3))), in NewGELU's order of operations.
    const cube = g.node('Pow', [x, f32(3)])[0]!;
    const inner = g.node('Add', [x, g.node('Mul', [cube, f32(0.044715)])[0]!])[0]!;
    const t = g.node('Tanh', [g.node('Mul', [inner, f32(Math.sqrt(2 / Math.PI))])[0]!])[0]!;
    const half = g.node('Mul', [x, f32(0.5)])[0]!;
    return g.node('Mul', [half, g.node('Add', [t, f32(1)])[0]!])[0]!;
  };

  const ids = g.input(gptOnnxNames.inputIds, ['B', 'T'], true);
  // Positions P .. P + T - 1, P the cached length (the first layer's past; every layer's is the same).
  const shapeAt = (value: string, axis: number) =>
    g.node('Gather', [g.node('Shape', [value])[0]!, scalar(axis)], { axis: { int: 0 } })[0]!;
  const P = shapeAt(onnxNames.pastKey(0), 2);
  const end = g.node('Add', [P, shapeAt(ids, 1)])[0]!;
  const positions = g.node('Range', [P, end, scalar(1)])[0]!; // (T)
  const tok = g.node('Gather', [param('transformer.wte.weight', [V, C]), ids], {
    axis: { int: 0 },
  })[0]!; // (B, T, C)
  const pos = g.node('Gather', [param('transformer.wpe.weight', [blockSize, C]), positions], {
    axis: { int: 0 },
  })[0]!; // (T, C)
  let x = g.node('Add', [tok, pos])[0]!; // (B, T, C)

  for (let i = 0; i < s.nLayer; i++) {
    const p = `transformer.h.${i}.`;
    const weights: AttentionLayerWeights = {
      C,
      nHead,
      nKvHeads,
      cAttnWeight: get(`${p}attn.c_attn.weight`),
      cAttnBias: get(`${p}attn.c_attn.bias`),
      cProjWeight: get(`${p}attn.c_proj.weight`),
      cProjBias: get(`${p}attn.c_proj.bias`),
    };
    x = g.node('Add', [x, attentionLayer(g, norm(x, `${p}ln_1`), weights, i)])[0]!;
    const hidden = gelu(linear(norm(x, `${p}ln_2`), `${p}mlp.c_fc`, 4 * C, C)); // (B, T, 4C)
    x = g.node('Add', [x, linear(hidden, `${p}mlp.c_proj`, C, 4 * C)])[0]!;
  }
  const last = g.node('Slice', [x, i64([-1]), i64([Number.MAX_SAFE_INTEGER]), i64([1])])[0]!; // (B, 1, C)
  const logits = linear(norm(last, 'transformer.ln_f'), 'lm_head', V, C, false); // (B, 1, V)
  g.output(logits, gptOnnxNames.logits, ['B', 1, V]);
  return g.toBytes();
}

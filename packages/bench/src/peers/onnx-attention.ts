/**
 * kvkit's attention layers as an ONNX graph with past/present key-values, the layout the ONNX
 * exports that transformers.js runs use: inputs `input` and `past_key_values.{i}.key|value`
 * (B, nkv, P, hs), outputs `output` and `present.{i}.key|value` (B, nkv, P + T, hs). The caller
 * feeds each call's presents back as the next call's pasts; the first call gets empty pasts
 * (P = 0). One graph serves prefill (T > 1, causal mask) and decode (T = 1).
 *
 * `attentionModel` stacks layers (the output of layer i is the input of layer i + 1). A full
 * model (embeddings, norms, MLPs) adds its own nodes around `attentionLayer` with the same
 * builder and the same past/present names.
 */

import { ValueError } from '@kvkit/tensor-utils';
import { OnnxGraph } from './onnx-graph.ts';

/** One layer's sizes and parameters under torch's names and layouts (`weight` is (out, in)). */
export interface AttentionLayerWeights {
  C: number;
  nHead: number;
  nKvHeads: number;
  /** (C + 2 * nKvHeads * hs, C), row-major. */
  cAttnWeight: Float32Array;
  cAttnBias: Float32Array;
  /** (C, C), row-major. */
  cProjWeight: Float32Array;
  cProjBias: Float32Array;
}

/**
 * The graph's value names, as transformers.js names them for decoder models.
 *
 * @example
 * feeds[onnxNames.pastKey(0)] = previous[onnxNames.presentKey(0)];
 */
export const onnxNames = {
  input: 'input',
  output: 'output',
  pastKey: (i: number) => `past_key_values.${i}.key`,
  pastValue: (i: number) => `past_key_values.${i}.value`,
  presentKey: (i: number) => `present.${i}.key`,
  presentValue: (i: number) => `present.${i}.value`,
};

/**
 * (out, in) row-major -> (in, out) row-major: MatMul(x, W^T) without a Transpose node.
 *
 * @example
 * transposed(Float32Array.of(1, 2, 3, 4, 5, 6), 2, 3); // [1, 4, 2, 5, 3, 6]
 */
export function transposed(w: Float32Array, out: number, inp: number): Float32Array {
  const t = new Float32Array(w.length);
  // In 64 x 64 tiles: both sides stay in the CPU caches (GPT-2's lm_head is 154 MB).
  const tile = 64;
  for (let o0 = 0; o0 < out; o0 += tile) {
    const oEnd = Math.min(out, o0 + tile);
    for (let i0 = 0; i0 < inp; i0 += tile) {
      const iEnd = Math.min(inp, i0 + tile);
      for (let o = o0; o < oEnd; o++)
        for (let i = i0, from = o * inp + i0; i < iEnd; i++, from++) t[i * out + o] = w[from]!;
    }
  }
  return t;
}

/**
 * Appends one attention layer (index `i`) to `g`: x (B, T, C) in, (B, T, C) out; declares the
 * layer's past inputs and present outputs. Returns the output value.
 *
 * @example
 * const g = new OnnxGraph('block');
 * const y = attentionLayer(g, g.input('input', ['B', 'T', 768]), layerWeights(mha), 0);
 */
export function attentionLayer(
  g: OnnxGraph,
  x: string,
  w: AttentionLayerWeights,
  i: number,
): string {
  const { C, nHead: nh, nKvHeads: nkv } = w;
  const hs = C / nh;
  const kvWidth = nkv * hs;
  const qkvWidth = C + 2 * kvWidth;
  const past = { k: g.input(onnxNames.pastKey(i), ['B', nkv, 'P', hs]), v: '' };
  past.v = g.input(onnxNames.pastValue(i), ['B', nkv, 'P', hs]);
  const i64 = (v: number[], shape = [v.length]) => g.constant(v, shape, true);

  const attnW = g.initializer(
    `h${i}.c_attn.weight_t`,
    [C, qkvWidth],
    transposed(w.cAttnWeight, qkvWidth, C),
  );
  const attnB = g.initializer(`h${i}.c_attn.bias`, [qkvWidth], w.cAttnBias);
  const qkv = g.node('Add', [g.node('MatMul', [x, attnW])[0]!, attnB])[0]!; // (B, T, C + 2 kvWidth)
  const [q0, k0, v0] = g.node('Split', [qkv, i64([C, kvWidth, kvWidth])], { axis: { int: 2 } }, 3);
  const heads = (t: string, n: number) => {
    const r = g.node('Reshape', [t, i64([0, 0, n, hs])])[0]!; // (B, T, n, hs)
    return g.node('Transpose', [r], { perm: { ints: [0, 2, 1, 3] } })[0]!; // (B, n, T, hs)
  };
  const q = heads(q0!, nh);
  const k = g.node('Concat', [past.k, heads(k0!, nkv)], { axis: { int: 2 } }, [
    onnxNames.presentKey(i),
  ])[0]!; // (B, nkv, P + T, hs)
  const v = g.node('Concat', [past.v, heads(v0!, nkv)], { axis: { int: 2 } }, [
    onnxNames.presentValue(i),
  ])[0]!;
  g.output(k, k, ['B', nkv, 'L', hs]);
  g.output(v, v, ['B', nkv, 'L', hs]);

  // GQA/MQA: each key/value head serves nh / nkv query heads.
  const expand = (t: string) => {
    if (nkv === nh) return t;
    const u = g.node('Unsqueeze', [t, i64([2])])[0]!; // (B, nkv, 1, L, hs)
    const e = g.node('Expand', [u, i64([1, 1, nh / nkv, 1, 1])])[0]!; // (B, nkv, group, L, hs)
    return g.node('Reshape', [e, i64([0, nh, -1, hs])])[0]!; // (B, nh, L, hs)
  };
  const kT = g.node('Transpose', [expand(k)], { perm: { ints: [0, 1, 3, 2] } })[0]!; // (B, nh, hs, L)
  const scale = g.constant([1 / Math.sqrt(hs)], []);
  const att = g.node('Mul', [g.node('MatMul', [q, kT])[0]!, scale])[0]!; // (B, nh, T, L)

  // Causal mask over absolute positions: query row r sits at P + r and sees keys 0 .. P + r.
  const scalar = (n: number) => g.constant([n], [], true);
  const L = g.node('Gather', [g.node('Shape', [k])[0]!, scalar(2)], { axis: { int: 0 } })[0]!;
  const T = g.node('Gather', [g.node('Shape', [q])[0]!, scalar(2)], { axis: { int: 0 } })[0]!;
  const P = g.node('Sub', [L, T])[0]!;
  const rows = g.node('Range', [P, L, scalar(1)])[0]!; // (T)
  const cols = g.node('Range', [scalar(0), L, scalar(1)])[0]!; // (L)
  const mask = g.node('LessOrEqual', [
    g.node('Unsqueeze', [cols, i64([0])])[0]!, // (1, L)
    g.node('Unsqueeze', [rows, i64([1])])[0]!, // (T, 1)
  ])[0]!; // (T, L)
  const masked = g.node('Where', [mask, att, g.constant([Number.NEGATIVE_INFINITY], [])])[0]!;
  const p = g.node('Softmax', [masked], { axis: { int: -1 } })[0]!;

  const y = g.node('MatMul', [p, expand(v)])[0]!; // (B, nh, T, hs)
  const yt = g.node('Transpose', [y], { perm: { ints: [0, 2, 1, 3] } })[0]!; // (B, T, nh, hs)
  const y2 = g.node('Reshape', [yt, i64([0, 0, C])])[0]!; // (B, T, C)
  const projW = g.initializer(`h${i}.c_proj.weight_t`, [C, C], transposed(w.cProjWeight, C, C));
  const projB = g.initializer(`h${i}.c_proj.bias`, [C], w.cProjBias);
  return g.node('Add', [g.node('MatMul', [y2, projW])[0]!, projB])[0]!;
}

/**
 * A model of attention layers in sequence, serialized: `input` (B, T, C) -> `output`.
 *
 * @example
 * const bytes = attentionModel([weightsOf(mha)]);
 * const session = await ort.InferenceSession.create(bytes);
 */
export function attentionModel(layers: readonly AttentionLayerWeights[]): Uint8Array {
  if (layers.length === 0)
    throw new ValueError('attentionModel: no layers', { argument: 'layers', value: layers });
  const C = layers[0]!.C;
  const g = new OnnxGraph('kvkit_attention');
  let x = g.input(onnxNames.input, ['B', 'T', C]);
  layers.forEach((w, i) => {
    x = attentionLayer(g, x, w, i);
  });
  g.output(x, onnxNames.output, ['B', 'T', C]);
  return g.toBytes();
}

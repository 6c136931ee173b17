/**
 * kvkit's side of each peer comparison: the weights and inputs the peers get, and kvkit's own
 * outputs on them, which every peer must reproduce (within 1e-5) before its timings count.
 * The seed is built exactly as seed-workload.ts builds it (setSeed(42), the input, then
 * setSeed(42) and the module); the context layer is layer-workload.ts's own layer.
 */
import { CausalSelfAttention, GPT } from '@kvkit/attention';
import { rand, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { layerWorkload } from '../scenarios/layer-workload.ts';
import type { SeedSizes } from '../scenarios/seed-workload.ts';
import type { AttentionLayerWeights } from './onnx-attention.ts';
import { layerWeights } from './weights.ts';

/** What a peer gets, and what it must give back. */
export interface PeerReference {
  weights: AttentionLayerWeights;
  /** The input, row-major (B, T, C). */
  input: Float32Array;
  dims: { B: number; T: number; C: number; nHead: number };
  /** kvkit's output of the cached loop's last call, (B, 1, C). */
  cachedLast: Float32Array;
  /** kvkit's output of the last uncached forward, its last row: (B, 1, C). */
  uncachedLast: Float32Array;
}

const lastRow = (y: tf.Tensor): Float32Array =>
  tf.tidy(() => {
    const [B, T, C] = y.shape as [number, number, number];
    return tf.slice(y, [0, T - 1, 0], [B, 1, C]).dataSync() as Float32Array;
  });

/** The seed's module and input, and kvkit's outputs of its cached and uncached loops. */
export function seedReference(
  s: SeedSizes,
): PeerReference & { loopOnly: () => void; dispose: () => void } {
  setSeed(42);
  const x = rand([s.B, s.T, s.C]);
  setSeed(42);
  const mha = new CausalSelfAttention({
    ...GPT.getDefaultConfig(),
    nHead: s.nHead,
    nEmbd: s.C,
    blockSize: s.T,
  }).eval();
  const chunks = [
    tf.slice(x, [0, 0, 0], [s.B, s.prefill, s.C]),
    ...Array.from({ length: s.T - s.prefill }, (_, i) =>
      tf.slice(x, [0, s.prefill + i, 0], [s.B, 1, s.C]),
    ),
  ];
  /** The cached loop on the module built once: what an ONNX Runtime session is timed on. */
  const loopOnly = (): void => {
    mha.resetCache();
    let pos = 0;
    for (const c of chunks) {
      mha.forward(c, { useKvCache: true, startPos: pos }).dispose();
      pos += c.shape[1]!;
    }
  };
  let pos = 0;
  let cachedLast = new Float32Array(0);
  mha.resetCache();
  for (const c of chunks) {
    const y = mha.forward(c, { useKvCache: true, startPos: pos });
    pos += c.shape[1]!;
    cachedLast = Float32Array.from(y.dataSync());
    y.dispose();
  }
  const full = mha.forward(x);
  const uncachedLast = Float32Array.from(lastRow(full));
  full.dispose();
  return {
    weights: layerWeights(mha),
    input: Float32Array.from(x.dataSync()),
    dims: { B: s.B, T: s.T, C: s.C, nHead: s.nHead },
    cachedLast,
    uncachedLast,
    loopOnly,
    dispose: () => {
      tf.dispose([x, ...chunks]);
      mha.dispose();
    },
  };
}

/**
 * The context scenario's layer (B=1) and input up to maxT + 1 tokens, with kvkit's outputs of
 * the decode step at maxT (input token 0 at position maxT, as the context scenario times it)
 * and of the uncached forward of the maxT + 1 token prefix.
 */
export function layerReference(dims: { C: number; nHead: number }, maxT: number): PeerReference {
  const w = layerWorkload({ ...dims, B: 1, blockSize: maxT + 1 });
  try {
    const prefix = w.prefix(maxT); // (1, maxT + 1, C)
    const token = w.prefix(0); // (1, 1, C)
    w.fill(maxT);
    const step = w.mha.forward(token, { useKvCache: true, startPos: maxT });
    const full = w.mha.forward(prefix);
    const ref: PeerReference = {
      weights: layerWeights(w.mha),
      input: Float32Array.from(prefix.dataSync()),
      dims: { B: 1, T: maxT + 1, C: dims.C, nHead: dims.nHead },
      cachedLast: Float32Array.from(step.dataSync()),
      uncachedLast: Float32Array.from(lastRow(full)),
    };
    tf.dispose([prefix, token, step, full]);
    return ref;
  } finally {
    w.dispose();
  }
}

import { initBackend } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import type { CausalSelfAttention } from '../src/index.ts';

/** Tests run on the backend kvkit is tuned for; KVKIT_TEST_BACKEND=cpu runs them on cpu. */
export async function setupBackend(): Promise<void> {
  await initBackend((process.env.KVKIT_TEST_BACKEND as 'wasm' | 'cpu' | undefined) ?? 'wasm');
}

/** A fixture tensor `{ shape, data }` (row-major, float32 decimals) as a tf tensor. */
export function fromFixture(t: { shape: number[]; data: number[] }): tf.Tensor {
  return tf.tensor(Float32Array.from(t.data), t.shape, 'float32');
}

/** The bytes of a tensor's values, to compare caches bit for bit. */
export function bits(t: tf.Tensor | null): Uint32Array | null {
  return t ? new Uint32Array((t.dataSync() as Float32Array).slice().buffer) : null;
}

/**
 * Float64 re-computation of the seed's attention straight from its definition (naive loops,
 * no tfjs): `scores = q k^T / sqrt(hs)`, causal for absolute positions, softmax, times v,
 * `c_proj`. Query head h reads key/value head floor(h / (nh / nkv)). The independent
 * expectation for configurations the PyTorch reference files do not cover (GQA, MQA), and, with
 * a visibility rule, for windowed caches: the query at t sees j <= t with t - j < window unless
 * j < sinks.
 */
export function attentionFloat64(
  x: Float32Array,
  [B, T, C]: [number, number, number],
  nh: number,
  nkv: number,
  w: { cAttnW: Float32Array; cAttnB: Float32Array; cProjW: Float32Array; cProjB: Float32Array },
  visibility: { window: number | null; sinks: number } = { window: null, sinks: 0 },
): Float64Array {
  const sees = (t: number, j: number) =>
    visibility.window === null || j < visibility.sinks || t - j < visibility.window;
  const hs = C / nh;
  const qkvW = C + 2 * nkv * hs;
  const out = new Float64Array(B * T * C);
  const qkv = new Float64Array(T * qkvW);
  const y = new Float64Array(T * C);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let o = 0; o < qkvW; o++) {
        let s = w.cAttnB[o]!;
        for (let i = 0; i < C; i++) s += x[(b * T + t) * C + i]! * w.cAttnW[o * C + i]!;
        qkv[t * qkvW + o] = s;
      }
    }
    for (let h = 0; h < nh; h++) {
      const kvh = Math.floor(h / (nh / nkv));
      const qOff = h * hs;
      const kOff = C + kvh * hs;
      const vOff = C + nkv * hs + kvh * hs;
      for (let t = 0; t < T; t++) {
        const scores = new Float64Array(t + 1);
        let max = Number.NEGATIVE_INFINITY;
        for (let j = 0; j <= t; j++) {
          if (!sees(t, j)) {
            scores[j] = Number.NEGATIVE_INFINITY;
            continue;
          }
          let s = 0;
          for (let d = 0; d < hs; d++) s += qkv[t * qkvW + qOff + d]! * qkv[j * qkvW + kOff + d]!;
          scores[j] = s / Math.sqrt(hs);
          max = Math.max(max, scores[j]!);
        }
        let sum = 0;
        for (let j = 0; j <= t; j++) {
          scores[j] = Math.exp(scores[j]! - max);
          sum += scores[j]!;
        }
        for (let d = 0; d < hs; d++) {
          let s = 0;
          for (let j = 0; j <= t; j++) s += (scores[j]! / sum) * qkv[j * qkvW + vOff + d]!;
          y[t * C + h * hs + d] = s;
        }
      }
    }
    for (let t = 0; t < T; t++) {
      for (let o = 0; o < C; o++) {
        let s = w.cProjB[o]!;
        for (let i = 0; i < C; i++) s += y[t * C + i]! * w.cProjW[o * C + i]!;
        out[(b * T + t) * C + o] = s;
      }
    }
  }
  return out;
}

/** A module's parameters as host arrays, the shape `attentionFloat64` takes them in. */
export function weightsOf(mha: CausalSelfAttention) {
  const s = mha.stateDict();
  const w = {
    cAttnW: s['c_attn.weight'].dataSync() as Float32Array,
    cAttnB: s['c_attn.bias'].dataSync() as Float32Array,
    cProjW: s['c_proj.weight'].dataSync() as Float32Array,
    cProjB: s['c_proj.bias'].dataSync() as Float32Array,
  };
  tf.dispose(Object.values(s));
  return w;
}

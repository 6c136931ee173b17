import type { Visibility } from '../src/index.ts';

/**
 * Float64 attention straight from the definition, over the full history of one batch row (no
 * eviction): the independent expectation for every strategy. `keys[p]` / `values[p]` are the
 * (nkv * hs) vectors written at position p; a query at position P of head h reads kv head
 * floor(h / (nh / nkv)) at every p <= P with P - p < window unless p < sinks.
 */
export function attentionFloat64(
  q: Float32Array, // (nh * hs) one query row
  P: number,
  keys: readonly Float32Array[],
  values: readonly Float32Array[],
  d: { nh: number; nkv: number; hs: number; visibility: Visibility; scale?: number },
): Float64Array {
  const { nh, nkv, hs, visibility } = d;
  const scale = d.scale ?? Math.fround(1 / Math.sqrt(hs));
  const out = new Float64Array(nh * hs);
  const seen: number[] = [];
  for (let p = 0; p <= P && p < keys.length; p++) {
    if (visibility.window === null || p < visibility.sinks || P - p < visibility.window)
      seen.push(p);
  }
  for (let h = 0; h < nh; h++) {
    const j = Math.floor(h / (nh / nkv));
    const s = seen.map((p) => {
      let dot = 0;
      for (let e = 0; e < hs; e++) dot += q[h * hs + e]! * keys[p]![j * hs + e]!;
      return dot * scale;
    });
    const m = Math.max(...s);
    const w = s.map((x) => Math.exp(x - m));
    const sum = w.reduce((a, b) => a + b, 0);
    for (let e = 0; e < hs; e++) {
      let acc = 0;
      seen.forEach((p, i) => {
        acc += (w[i]! / sum) * values[p]![j * hs + e]!;
      });
      out[h * hs + e] = acc;
    }
  }
  return out;
}

/** A small deterministic generator of floats in [-2, 2) (an LCG; tests only). */
export function randomFloats(n: number, seed: number): Float32Array {
  let x = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return (x / 2 ** 32) * 4 - 2;
  });
}

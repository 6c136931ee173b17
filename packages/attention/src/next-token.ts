import { type Generator, multinomialValues } from '@kvkit/tensor-utils';

/** How one generation step picks the next token from the last position's logits. */
export interface NextTokenOptions {
  /** Logits are divided by it (float32, as torch divides a float32 tensor). > 0. */
  temperature: number;
  /** Keep the k largest logits per row (ties with the k-th kept too), or null for all. */
  topK: number | null;
  /** Sample (`torch.multinomial(probs, 1)`) or take the most likely token. */
  doSample: boolean;
  /** The generator sampling draws from. */
  generator: Generator;
}

/**
 * minGPT's per-step probabilities for `B` rows of `V` logits (row-major): `logits / temperature`,
 * top-k masking (`logits < kth largest` set to -inf), softmax. float32 values, computed through
 * binary64 (within a few ulps of torch's float32 softmax).
 *
 * @example
 * nextTokenProbabilities(Float32Array.of(1, 2, 3), 1, 3, 1, 2); // [0, 0.2689, 0.7311]
 */
export function nextTokenProbabilities(
  logits: Float32Array,
  B: number,
  V: number,
  temperature: number,
  topK: number | null,
): Float32Array {
  const probs = new Float32Array(B * V);
  const t = Math.fround(temperature); // torch casts the Python float to the tensor's dtype
  const row = new Float32Array(V);
  const exps = new Float64Array(V);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < V; j++) row[j] = logits[b * V + j]! / t; // float32 store rounds once
    let threshold = Number.NEGATIVE_INFINITY;
    if (topK !== null && topK < V) threshold = row.slice().sort()[V - topK]!; // the k-th largest
    let max = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < V; j++) if (row[j]! >= threshold && row[j]! > max) max = row[j]!;
    let sum = 0;
    for (let j = 0; j < V; j++) {
      exps[j] = row[j]! < threshold ? 0 : Math.exp(row[j]! - max);
      sum += exps[j]!;
    }
    for (let j = 0; j < V; j++) probs[b * V + j] = exps[j]! / sum; // one rounding to float32
  }
  return probs;
}

/** The first index of each row's largest value (torch's topk(probs, 1) for distinct values). */
function argmaxRows(probs: Float32Array, B: number, V: number): Int32Array {
  const out = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    let best = 0;
    for (let j = 1; j < V; j++) if (probs[b * V + j]! > probs[b * V + best]!) best = j;
    out[b] = best;
  }
  return out;
}

/**
 * The next token of each of `B` rows from the last position's logits `(B, V)`, as minGPT's
 * `generate` picks it: probabilities as in {@link nextTokenProbabilities}, then
 * `multinomial(probs, 1)` (PyTorch's draws from the same generator state) or the most likely
 * token.
 *
 * @example
 * nextTokens(logits, 2, 65, { temperature: 0.9, topK: 5, doSample: true, generator: new Generator(7) });
 */
export function nextTokens(
  logits: Float32Array,
  B: number,
  V: number,
  options: NextTokenOptions,
): Int32Array {
  const probs = nextTokenProbabilities(logits, B, V, options.temperature, options.topK);
  return options.doSample
    ? multinomialValues(probs, B, V, { generator: options.generator })
    : argmaxRows(probs, B, V);
}

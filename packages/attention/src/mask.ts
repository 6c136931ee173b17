import * as tf from '@tensorflow/tfjs-core';

/**
 * The additive causal mask for a chunk: the query at absolute position `startPos + i` may see
 * a key at absolute position p only when `p <= startPos + i`. Rows repeat for the `groups`
 * query heads that share a key/value head (GQA), matching the `(g*T, t)` score layout.
 *
 * Returns null when no key is hidden from any query (a single-token decode step), so the
 * common path adds nothing. minGPT's `bias[:T, :T]` mask is right only for startPos = 0;
 * this one is right for any chunk at any startPos.
 */
export function causalMask(
  startPos: number,
  newPositions: number,
  keyPositions: Int32Array,
  groups: number,
): tf.Tensor2D | null {
  const t = keyPositions.length;
  let maxKey = -1;
  for (let j = 0; j < t; j++) maxKey = Math.max(maxKey, keyPositions[j]!);
  if (maxKey <= startPos) return null;
  const rows = groups * newPositions;
  const bias = new Float32Array(rows * t);
  for (let r = 0; r < rows; r++) {
    const queryPos = startPos + (r % newPositions);
    for (let j = 0; j < t; j++)
      if (keyPositions[j]! > queryPos) bias[r * t + j] = Number.NEGATIVE_INFINITY;
  }
  return tf.tensor2d(bias, [rows, t]); // (g*T, t)
}

import type { Visibility } from '@kvkit/kv-cache';
import * as tf from '@tensorflow/tfjs-core';

/**
 * Which keys each query sees, as a boolean `(B, 1, g*T, t)` tensor for `tf.where`: the query at
 * absolute position P = startPos + i sees the key at position p when p >= 0 (not padding),
 * p <= P, and, with a window, P - p < window unless p < sinks. Rows repeat for the g query
 * heads that share a key/value head (GQA), matching the `(B, nkv, g*T, t)` score layout.
 *
 * Masked scores are replaced (PyTorch's `masked_fill(-inf)`), not added to, so a NaN score of a
 * hidden key stays hidden. Returns null when every query sees every key (a decode step over a
 * full cache), so the common path does no work. minGPT's `bias[:T, :T]` mask is right only for
 * startPos = 0; this one is right for any chunk at any position.
 */
export function visibilityMask(
  startPos: number,
  T: number,
  positions: Int32Array,
  B: number,
  groups: number,
  visibility: Visibility,
): tf.Tensor4D | null {
  const t = positions.length / B;
  const { window, sinks } = visibility;
  const rows = groups * T;
  const seen = new Uint8Array(B * rows * t);
  let hidden = false;
  for (let b = 0; b < B; b++) {
    for (let r = 0; r < rows; r++) {
      const P = startPos + (r % T);
      for (let j = 0; j < t; j++) {
        const p = positions[b * t + j]!;
        const visible = p >= 0 && p <= P && (window === null || p < sinks || P - p < window);
        seen[(b * rows + r) * t + j] = visible ? 1 : 0;
        hidden ||= !visible;
      }
    }
  }
  return hidden ? tf.tensor4d(seen, [B, 1, rows, t], 'bool') : null; // (B, 1, g*T, t)
}

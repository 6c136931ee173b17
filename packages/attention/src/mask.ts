import type { RowSpans, Visibility } from '@kvkit/kv-cache';
import * as tf from '@tensorflow/tfjs-core';

/**
 * Which keys each query sees, as a boolean `(B, 1, g*T, t)` tensor for `tf.where`: the query at
 * absolute position P = `queryPositions[b * T + i]` sees the key at position p when p >= 0 (not
 * padding), p <= P, and, with a window, P - p < window unless p < sinks. A padding query
 * (P = -1) is given every key, so its softmax stays finite; its output is zeroed by the caller.
 * Rows repeat for the g query heads that share a key/value head (GQA), matching the
 * `(B, nkv, g*T, t)` score layout.
 *
 * Masked scores are replaced (PyTorch's `masked_fill(-inf)`), not added to, so a NaN score of a
 * hidden key stays hidden. Returns null when every query sees every key (a decode step over a
 * full cache), so the common path does no work. minGPT's `bias[:T, :T]` mask is right only for
 * startPos = 0; this one is right for any chunk at any position.
 */
export function visibilityMask(
  queryPositions: Int32Array,
  positions: Int32Array,
  B: number,
  groups: number,
  visibility: Visibility,
): tf.Tensor4D | null {
  const T = queryPositions.length / B;
  const t = positions.length / B;
  const { window, sinks } = visibility;
  const rows = groups * T;
  const seen = new Uint8Array(B * rows * t);
  let hidden = false;
  for (let b = 0; b < B; b++) {
    for (let r = 0; r < rows; r++) {
      const P = queryPositions[b * T + (r % T)]!;
      for (let j = 0; j < t; j++) {
        const p = positions[b * t + j]!;
        const visible =
          P < 0 || (p >= 0 && p <= P && (window === null || p < sinks || P - p < window));
        seen[(b * rows + r) * t + j] = visible ? 1 : 0;
        hidden ||= !visible;
      }
    }
  }
  return hidden ? tf.tensor4d(seen, [B, 1, rows, t], 'bool') : null; // (B, 1, g*T, t)
}

/**
 * Absolute positions of a chunk's T columns per batch row, row-major `(B, T)`: row b's real
 * columns `[first[b], first[b] + count[b])` are `startPos[b], startPos[b] + 1, ...`; padding
 * columns are -1. Without spans every column is real.
 *
 * @example
 * chunkPositions([0, 5], 3, { first: [1, 0], count: [2, 3] }); // [-1, 0, 1, 5, 6, 7]
 */
export function chunkPositions(
  startPos: readonly number[],
  T: number,
  spans: RowSpans | null,
): Int32Array {
  const B = startPos.length;
  const out = new Int32Array(B * T).fill(-1);
  for (let b = 0; b < B; b++) {
    const [first, count] = spans ? [spans.first[b]!, spans.count[b]!] : [0, T];
    for (let i = 0; i < count; i++) out[b * T + first + i] = startPos[b]! + i;
  }
  return out;
}

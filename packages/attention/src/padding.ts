import type { RowSpans } from '@kvkit/kv-cache';
import { DisposedError, ShapeError, ValueError } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';

/**
 * A padding mask, as Hugging Face's `attention_mask`: for each batch row, 1 where the column is
 * a real token and 0 where it is padding, as a `(B, T)` tensor (any dtype) or nested arrays.
 */
export type AttentionMask = tf.Tensor | readonly (readonly (number | boolean)[])[];

/**
 * Where each batch row's real tokens are in a `(B, T)` padding mask: one contiguous run per row
 * (left padding `0 0 1 1`, right padding `1 1 0 0`, or none); null when nothing is padding.
 * Throws, reading nothing else, on a mask of the wrong shape (ShapeError), a value other than
 * 0/1, or padding between two real tokens (ValueError), or a disposed tensor (DisposedError).
 *
 * @example
 * paddingSpans([[0, 0, 1, 1], [1, 1, 1, 0]], 2, 4); // { first: [2, 0], count: [2, 3] }
 */
export function paddingSpans(mask: AttentionMask, B: number, T: number): RowSpans | null {
  const values = readMask(mask, B, T);
  const first: number[] = [];
  const count: number[] = [];
  let padded = false;
  for (let b = 0; b < B; b++) {
    const row = values.subarray(b * T, (b + 1) * T);
    const start = row.indexOf(1);
    const end = start < 0 ? 0 : row.lastIndexOf(1) + 1;
    const n = start < 0 ? 0 : end - start;
    for (let i = start; start >= 0 && i < end; i++) {
      if (row[i] !== 1) {
        throw new ValueError(
          `attentionMask row ${b} has padding at column ${i}, between real tokens at columns ${start} and ${end - 1}: padding must come before (left) or after (right) a row's tokens`,
          { argument: 'attentionMask', value: Array.from(row) },
        );
      }
    }
    first.push(Math.max(start, 0));
    count.push(n);
    padded ||= n !== T;
  }
  return padded ? { first, count } : null;
}

/** The mask's values as 0/1 bytes, row-major `(B, T)`, after checking shape and values. */
function readMask(mask: AttentionMask, B: number, T: number): Uint8Array {
  let shape: number[];
  let flat: ArrayLike<unknown>;
  if (mask instanceof tf.Tensor) {
    if (mask.isDisposed) throw new DisposedError('forward: attentionMask tensor');
    shape = mask.shape;
    flat = mask.dataSync();
  } else if (Array.isArray(mask)) {
    const rows = mask as readonly unknown[];
    const widths = rows.map((r) => (Array.isArray(r) ? r.length : -1));
    if (widths.some((w) => w !== widths[0] || w < 0)) {
      throw new ShapeError(
        `forward: attentionMask must be B=${B} rows of T=${T} numbers, got rows of lengths [${widths.join(', ')}]`,
        { expected: [B, T], actual: widths },
      );
    }
    shape = [rows.length, widths[0] ?? 0];
    flat = (rows as readonly (readonly unknown[])[]).flat();
  } else {
    throw new ValueError(
      `forward: attentionMask must be a (B, T) tensor or an array of rows, got ${String(mask)}`,
      { argument: 'attentionMask', value: mask },
    );
  }
  if (shape.length !== 2 || shape[0] !== B || shape[1] !== T) {
    throw new ShapeError(
      `forward: attentionMask must have shape (B=${B}, T=${T}), got [${shape.join(', ')}]`,
      { expected: [B, T], actual: shape },
    );
  }
  const out = new Uint8Array(B * T);
  for (let i = 0; i < out.length; i++) {
    const v = flat[i];
    if (v === 1 || v === true) out[i] = 1;
    else if (v !== 0 && v !== false) {
      throw new ValueError(
        `forward: attentionMask holds ${String(v)} at row ${Math.floor(i / T)}, column ${i % T}: it must be 1 (token) or 0 (padding)`,
        { argument: 'attentionMask', value: v },
      );
    }
  }
  return out;
}

/**
 * `y` `(B, T, C)` with the rows of padding columns set to 0, as a new tensor; `y` is disposed
 * unless `disposeInput` is false.
 */
export function zeroPadding(y: tf.Tensor, spans: RowSpans, disposeInput = true): tf.Tensor3D {
  const [B, T] = y.shape as [number, number, number];
  const real = new Uint8Array(B * T);
  for (let b = 0; b < B; b++) {
    real.fill(1, b * T + spans.first[b]!, b * T + spans.first[b]! + spans.count[b]!);
  }
  try {
    return tf.tidy(
      () => tf.where(tf.tensor3d(real, [B, T, 1], 'bool'), y, tf.zerosLike(y)) as tf.Tensor3D,
    ); // (B, T, C)
  } finally {
    if (disposeInput) y.dispose();
  }
}

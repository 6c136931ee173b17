import type { Tensor } from '@tensorflow/tfjs-core';
import { ShapeError, ValueError } from './errors.ts';

/**
 * torch-style comparisons, computed on the host in float64 from the tensors' exact values.
 * They read the tensors with `dataSync()` and create no tensors, so they cannot leak.
 */

export interface CloseOptions {
  /** Relative tolerance, torch's default 1e-5. */
  rtol?: number;
  /** Absolute tolerance, torch's default 1e-8. */
  atol?: number;
  /** Whether NaN equals NaN, torch's default false. */
  equalNan?: boolean;
}

/**
 * `torch.equal`: true when both tensors have the same shape and identical values (NaN never
 * equals NaN; +0 equals -0). Tensors of different shapes are simply not equal, as in torch.
 *
 * @example
 * equal(tf.tensor([1, 2]), tf.tensor([1, 2])); // true
 */
export function equal(a: Tensor, b: Tensor): boolean {
  if (!sameShape(a.shape, b.shape)) return false;
  const x = a.dataSync();
  const y = b.dataSync();
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/**
 * `torch.isclose`: elementwise `|a - b| <= atol + rtol * |b|` (note: asymmetric in b, as torch),
 * with infinities close only to themselves. Broadcasts like torch; shapes that do not
 * broadcast throw a ShapeError. Returns the flat booleans and the broadcast shape.
 *
 * @example
 * isclose(tf.tensor([1, 2]), tf.tensor([1, 2.1])).values; // [true, false]
 */
export function isclose(
  a: Tensor,
  b: Tensor,
  options: CloseOptions = {},
): { shape: number[]; values: boolean[] } {
  const { rtol, atol, equalNan } = closeOptions(options);
  const shape = broadcastShapes(a.shape, b.shape, 'isclose');
  const x = broadcastValues(a, shape);
  const y = broadcastValues(b, shape);
  const values = new Array<boolean>(x.length);
  for (let i = 0; i < x.length; i++) values[i] = closeScalar(x[i]!, y[i]!, rtol, atol, equalNan);
  return { shape, values };
}

/**
 * `torch.allclose`: true when every element is `isclose`. Defaults rtol 1e-5, atol 1e-8.
 *
 * @example
 * allclose(cachedOutput, fullOutput, { atol: 1e-5 }); // true
 */
export function allclose(a: Tensor, b: Tensor, options: CloseOptions = {}): boolean {
  return isclose(a, b, options).values.every(Boolean);
}

/**
 * The largest `|a - b|` over all elements (after broadcasting); NaN if either side has a NaN
 * where the other does not have the same value. Shapes must broadcast.
 *
 * @example
 * maxAbsDiff(tf.tensor([1, 2]), tf.tensor([1, 2.5])); // 0.5
 */
export function maxAbsDiff(a: Tensor, b: Tensor): number {
  const shape = broadcastShapes(a.shape, b.shape, 'maxAbsDiff');
  const x = broadcastValues(a, shape);
  const y = broadcastValues(b, shape);
  let max = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i]! - y[i]!);
    if (Number.isNaN(d)) {
      if (x[i] === y[i]) continue; // equal infinities
      return Number.NaN;
    }
    if (d > max) max = d;
  }
  return max;
}

function closeScalar(x: number, y: number, rtol: number, atol: number, equalNan: boolean): boolean {
  if (Number.isNaN(x) || Number.isNaN(y)) return equalNan && Number.isNaN(x) && Number.isNaN(y);
  if (x === y) return true; // also covers equal infinities
  if (!Number.isFinite(x) || !Number.isFinite(y)) return false;
  return Math.abs(x - y) <= atol + rtol * Math.abs(y);
}

function closeOptions(options: CloseOptions): Required<CloseOptions> {
  const { rtol = 1e-5, atol = 1e-8, equalNan = false } = options;
  for (const [argument, value] of [
    ['rtol', rtol],
    ['atol', atol],
  ] as const) {
    if (!(value >= 0)) {
      throw new ValueError(`${argument} must be a non-negative number, got ${value}`, {
        argument,
        value,
      });
    }
  }
  return { rtol, atol, equalNan };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** numpy/torch broadcasting: align trailing dims; each pair equal or one of them 1. */
export function broadcastShapes(a: readonly number[], b: readonly number[], op: string): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(
        `${op}: shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`,
        {
          expected: [...a],
          actual: [...b],
        },
      );
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

function broadcastValues(t: Tensor, shape: readonly number[]): ArrayLike<number> {
  const data = t.dataSync() as ArrayLike<number>;
  if (sameShape(t.shape, shape)) return data;
  const size = shape.reduce((p, d) => p * d, 1);
  const out = new Float64Array(size);
  const rank = shape.length;
  const src = [...new Array<number>(rank - t.shape.length).fill(1), ...t.shape];
  // Source strides, zero along broadcast dims.
  const strides = new Array<number>(rank).fill(0);
  let s = 1;
  for (let d = rank - 1; d >= 0; d--) {
    strides[d] = src[d] === 1 ? 0 : s;
    s *= src[d]!;
  }
  const idx = new Array<number>(rank).fill(0);
  for (let i = 0; i < size; i++) {
    let off = 0;
    for (let d = 0; d < rank; d++) off += idx[d]! * strides[d]!;
    out[i] = data[off]!;
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]!++;
      if (idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

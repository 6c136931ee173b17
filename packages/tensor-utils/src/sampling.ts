/**
 * torch 1.13 CPU's `exponential_()` and `multinomial(probs, 1)` on the MT19937 stream, so that
 * seeded sampling gives PyTorch's tokens. The algorithm (ATen `exponential_kernel`,
 * `multinomial_out`'s fast path) is described in the reference notes of the GPT fixtures:
 *
 * - each exponential element takes two 32-bit outputs a, b: `u = ((a & 0x1fffff) * 2^32 + b) / 2^53`
 *   (the low 53 bits of `(a << 32) | b`), then `e = -1 * log(1 - u)` in binary64; a float32
 *   tensor holds `fl32(e)`;
 * - `multinomial(probs, 1)` (no replacement) draws `q = exponential_()` over the whole probs
 *   tensor in row-major order and takes `argmax(probs / q)` per row in float32 (first index on
 *   ties), drawing nothing else: 2 * numel(probs) outputs per call.
 */
import * as tf from '@tensorflow/tfjs-core';
import { DTypeError, ShapeError, ValueError } from './errors.ts';
import { type Generator, getDefaultGenerator } from './generator.ts';

/**
 * Options for {@link exponentialValues}.
 *
 * @example
 * const opts: ExponentialOptions = { generator: new Generator(0), dtype: 'float64' };
 */
export interface ExponentialOptions {
  /** Generator to draw from; defaults to {@link getDefaultGenerator}. */
  generator?: Generator;
  /**
   * `'float32'` (default): torch's float32 tensor, bit for bit. `'float64'`: the binary64 values;
   * V8's `Math.log` may differ from glibc's `log` in the last bit (about 7% of values), so these
   * can be 1 ulp away from torch's float64 tensor.
   */
  dtype?: 'float32' | 'float64';
}

/** 2^32, to assemble the low 53 bits of `(a << 32) | b` exactly in a double. */
const TWO_POW_32 = 2 ** 32;
/** 2^-53 scales them exactly into [0, 1). */
const TWO_POW_M53 = 2 ** -53;

function generatorOf(generator: Generator | undefined, where: string): Generator {
  const g = generator ?? getDefaultGenerator();
  // Duck-typed, so a Generator from a second copy of this package works.
  if (typeof (g as Partial<Generator> | null)?.fill !== 'function') {
    throw new ValueError(`${where}: generator is not a Generator`, {
      argument: 'generator',
      value: generator,
    });
  }
  return g;
}

/** Fills `out` with the next `out.length` exponential(1) values of `generator`'s stream. */
function fillExponential(out: Float32Array | Float64Array, generator: Generator): void {
  const words = generator.fill(new Uint32Array(2 * out.length));
  for (let i = 0; i < out.length; i++) {
    const a = words[2 * i]!; // the high word of random64()
    const b = words[2 * i + 1]!;
    const u = ((a & 0x1fffff) * TWO_POW_32 + b) * TWO_POW_M53; // exact: 53 bits
    out[i] = -1.0 * Math.log(1.0 - u); // 1 - u is exact; u = 0 gives -0, as in torch
  }
}

/**
 * `n` values of torch's `exponential_()` (rate 1) on a CPU tensor of that many elements, in
 * row-major order, drawn from `generator` (two 32-bit outputs each). float32 values are torch's
 * bit for bit.
 *
 * @throws {ValueError} for a bad count, dtype or generator.
 * @example
 * exponentialValues(1, { generator: new Generator(0) }); // Float32Array [3.5083263] (torch: 3.5083)
 */
export function exponentialValues(
  n: number,
  opts: ExponentialOptions & { dtype: 'float64' },
): Float64Array;
export function exponentialValues(n: number, opts?: ExponentialOptions): Float32Array;
export function exponentialValues(
  n: number,
  opts: ExponentialOptions = {},
): Float32Array | Float64Array {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n > 2 ** 31) {
    throw new ValueError(`exponentialValues: n = ${String(n)} is not an integer in [0, 2^31]`, {
      argument: 'n',
      value: n,
    });
  }
  const dtype = opts.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'float64') {
    throw new ValueError(`exponentialValues: dtype ${String(dtype)} is not float32 or float64`, {
      argument: 'dtype',
      value: dtype,
    });
  }
  const generator = generatorOf(opts.generator, 'exponentialValues');
  const out = dtype === 'float32' ? new Float32Array(n) : new Float64Array(n);
  fillExponential(out, generator);
  return out;
}

/**
 * Options for {@link multinomial} and {@link multinomialValues}.
 *
 * @example
 * const opts: MultinomialOptions = { generator: new Generator(7) };
 */
export interface MultinomialOptions {
  /** Generator to draw from; defaults to {@link getDefaultGenerator}. */
  generator?: Generator;
}

/**
 * Checks what torch's `multinomial` checks before drawing (so a rejected call draws nothing):
 * every weight finite and non-negative, every row's sum above zero.
 */
function checkWeights(probs: Float32Array, rows: number, cols: number, where: string): void {
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i]!;
    if (!(p >= 0 && p < Number.POSITIVE_INFINITY)) {
      throw new ValueError(
        `${where}: probability tensor contains either inf, nan or element < 0 (element ${i} = ${p})`,
        { argument: 'probs', value: p },
      );
    }
  }
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let j = 0; j < cols; j++) sum += probs[r * cols + j]!;
    if (!(sum > 0)) {
      throw new ValueError(
        `${where}: invalid multinomial distribution (sum of probabilities <= 0) in row ${r}`,
        { argument: 'probs', value: r },
      );
    }
  }
}

/**
 * One sample per row of `probs` (`rows * cols` float32 weights, row-major, need not sum to 1),
 * exactly as torch 1.13 CPU's `torch.multinomial(probs, 1)` draws it from the same generator
 * state: `argmax(probs / q)` with `q = exponential_()`. Advances the generator by
 * `2 * rows * cols` outputs; a rejected call advances it by nothing.
 *
 * @throws {ValueError} for a negative, NaN or infinite weight, a row summing to 0, or bad sizes.
 * @example
 * const g = new Generator(0);
 * multinomialValues(Float32Array.of(0.1, 0.9, 0, 0.5, 0.5, 0), 2, 3, { generator: g }); // Int32Array [row 0, row 1]
 */
export function multinomialValues(
  probs: ArrayLike<number>,
  rows: number,
  cols: number,
  opts: MultinomialOptions = {},
): Int32Array {
  for (const [argument, value] of [
    ['rows', rows],
    ['cols', cols],
  ] as const) {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      throw new ValueError(`multinomialValues: ${argument} = ${String(value)} must be >= 1`, {
        argument,
        value,
      });
    }
  }
  if (probs?.length !== rows * cols) {
    throw new ShapeError(
      `multinomialValues: ${probs?.length} weights for rows x cols = ${rows} x ${cols}`,
      { expected: [rows, cols], actual: [probs?.length ?? 0] },
    );
  }
  // torch divides in probs' dtype: hold float32 values, as a float32 tensor would.
  const p = probs instanceof Float32Array ? probs : Float32Array.from(probs);
  checkWeights(p, rows, cols, 'multinomialValues');
  const generator = generatorOf(opts.generator, 'multinomialValues');
  const q = new Float32Array(p.length);
  fillExponential(q, generator);
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    let bestValue = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < cols; j++) {
      // A float32 quotient of float32 values: the binary64 quotient rounded once is exact.
      const v = Math.fround(p[r * cols + j]! / q[r * cols + j]!);
      if (Number.isNaN(v)) {
        // 0 / -0 (u = 0, probability 2^-53): torch's argmax takes the first NaN as the maximum.
        best = j;
        break;
      }
      if (v > bestValue) {
        bestValue = v;
        best = j;
      }
    }
    out[r] = best;
  }
  return out;
}

/**
 * `torch.multinomial(probs, 1)` for a float32 tensor of weights `(cols)` or `(rows, cols)`: an
 * int32 tensor `(1)` or `(rows, 1)` of sampled column indices, drawn exactly as torch 1.13 CPU
 * draws them from the same generator state (see {@link multinomialValues}). Only
 * `numSamples = 1` (where replacement does not matter) is supported.
 *
 * @throws {ValueError} for bad weights or `numSamples`; {@link ShapeError} / {@link DTypeError} for
 *   a tensor that is not 1-D or 2-D float32.
 * @example
 * setSeed(0);
 * const next = multinomial(tf.tensor2d([[0.2, 0.8], [0.5, 0.5]])); // (2, 1) int32
 */
export function multinomial(
  probs: tf.Tensor,
  numSamples = 1,
  opts: MultinomialOptions = {},
): tf.Tensor {
  if (!(probs instanceof tf.Tensor)) {
    throw new ValueError('multinomial: probs must be a tf.Tensor', {
      argument: 'probs',
      value: probs,
    });
  }
  if (numSamples !== 1) {
    throw new ValueError(
      `multinomial: numSamples = ${String(numSamples)} is not supported (only 1, one draw per row)`,
      { argument: 'numSamples', value: numSamples },
    );
  }
  if (probs.dtype !== 'float32') {
    throw new DTypeError(`multinomial: probs must be float32, got ${probs.dtype}`, {
      expected: 'float32',
      actual: probs.dtype,
    });
  }
  if (probs.rank !== 1 && probs.rank !== 2) {
    throw new ShapeError(`multinomial: probs must be 1-D or 2-D, got [${probs.shape.join(', ')}]`, {
      expected: '[cols] or [rows, cols]',
      actual: probs.shape,
    });
  }
  const [rows, cols] = probs.rank === 1 ? [1, probs.shape[0]!] : (probs.shape as [number, number]);
  const samples = multinomialValues(probs.dataSync() as Float32Array, rows, cols, opts);
  return tf.tensor(samples, probs.rank === 1 ? [1] : [rows, 1], 'int32');
}

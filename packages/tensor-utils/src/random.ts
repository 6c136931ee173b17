/**
 * torch's float32 `uniform_` fill and `torch.rand`, bit for bit (`/spec/torch-rng.md` §2–§4): one
 * 32-bit generator output per element, in row-major order, whose low 24 bits give x in [0, 1).
 */
import { type Tensor, tensor } from '@tensorflow/tfjs-core';
import { ValueError } from './errors.ts';
import { type Generator, getDefaultGenerator } from './generator.ts';

/**
 * How `from + x * span` is rounded to float32.
 * - `'fused'`: one rounding, `fl32(x * span + from)`. This is what torch's AVX2 / AVX512 CPU kernels
 *   do (the compiler contracts the multiply-add into an FMA); it matches a typical x86-64 install.
 * - `'two-roundings'`: `fl32(fl32(x * span) + from)`, torch's baseline kernel
 *   (`ATEN_CPU_CAPABILITY=default`, reported as "NO AVX").
 *
 * Both agree when `span` is a power of two, e.g. `nn.Linear` with fan_in a power of 4.
 *
 * @example
 * const mode: RoundingMode = 'two-roundings';
 * uniformValues(4, -1, 1, { rounding: mode });
 */
export type RoundingMode = 'fused' | 'two-roundings';

/**
 * Options shared by the uniform fills.
 *
 * @example
 * const opts: UniformOptions = { generator: new Generator(7), rounding: 'fused' };
 */
export interface UniformOptions {
  /** Generator to draw from; defaults to {@link getDefaultGenerator}. */
  generator?: Generator;
  /** Rounding of `from + x * span`; defaults to `'fused'`. */
  rounding?: RoundingMode;
}

/** 2^-24: scales the low 24 bits of an output exactly into [0, 1). */
const TWO_POW_M24 = 2 ** -24;
const FLOAT32_MAX = 3.4028234663852886e38;
/** Binary64 values at or beyond this magnitude round to ±Infinity in float32. */
const OVERFLOW_BOUNDARY = 2 ** 128 - 2 ** 103;

// Scratch views for reading and stepping float32 bit patterns.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * The smallest positive step between float32 values near `v` (its ulp, or the subnormal step);
 * every float32 of that magnitude is an integer multiple of it.
 */
function float32Quantum(v: number): number {
  f32[0] = v;
  const biasedExponent = (u32[0]! >>> 23) & 0xff;
  return 2 ** (Math.max(biasedExponent, 1) - 150);
}

/** The float32 next to `v` (a float32 value) towards +Infinity (`up`) or -Infinity. */
function nextFloat32(v: number, up: boolean): number {
  if (v === 0) return up ? 2 ** -149 : -(2 ** -149);
  f32[0] = v;
  // For positive values a larger bit pattern is a larger value; for negative ones it is smaller.
  u32[0] = u32[0]! + (v > 0 === up ? 1 : -1);
  return f32[0]!;
}

/**
 * `fl32(x * y + z)` with a single rounding (an exact float32 FMA) for float32 inputs `x` (a multiple
 * of 2^-24 in [0, 1)), `y` and `z`. `x * y` is exact in binary64; the sum may not be, so a TwoSum
 * error term detects the one case where rounding twice would differ: the binary64 sum lands exactly
 * on a float32 midpoint while the true sum lies to one side of it.
 *
 * @internal Exported for tests.
 * @example
 * fusedMultiplyAdd32(0.5, 3, 1e-30); // Math.fround(1.5 + 1e-30)
 */
export function fusedMultiplyAdd32(x: number, y: number, z: number): number {
  const p = x * y;
  const s = p + z;
  const bv = s - p;
  const err = p - (s - bv) + (z - bv);
  const r = Math.fround(s);
  if (err === 0 || r === s) return r;
  // r is the float32 nearest to s; the other candidate sits on s's other side. Stepping the bit
  // pattern also works from ±Infinity (to ±FLOAT32_MAX).
  const lower = r < s ? r : nextFloat32(r, false);
  const upper = r < s ? nextFloat32(r, true) : r;
  // Past FLOAT32_MAX the rounding boundary is where 2^128 would be the next float32. Halving each
  // term first keeps the midpoint exact otherwise.
  const mid =
    upper === Number.POSITIVE_INFINITY
      ? OVERFLOW_BOUNDARY
      : lower === Number.NEGATIVE_INFINITY
        ? -OVERFLOW_BOUNDARY
        : lower / 2 + upper / 2;
  if (s !== mid) return r;
  return err > 0 ? upper : lower;
}

function validateCount(n: number, where: string): void {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new ValueError(`${where}: element count ${String(n)} is not a non-negative integer`, {
      argument: 'n',
      value: n,
    });
  }
}

/**
 * Fills `out` like torch's float32 `uniform_(from, to)`: one output per element, in order.
 * Validation is the caller's job.
 */
function fillUniform(
  out: Float32Array,
  from: number,
  to: number,
  generator: Generator,
  rounding: RoundingMode,
): void {
  // torch casts both bounds to the tensor's dtype before the kernel runs.
  const lo = Math.fround(from);
  const span = Math.fround(Math.fround(to) - lo);
  // Draw all outputs into the output's own buffer first (one bulk generator call, no extra
  // allocation), then convert each word in place: index i is read before it is overwritten.
  const words = generator.fill(new Uint32Array(out.buffer, out.byteOffset, out.length));
  const n = out.length;
  if (rounding === 'two-roundings') {
    for (let i = 0; i < n; i++) {
      const x = (words[i]! & 0xffffff) * TWO_POW_M24;
      // Storing into a Float32Array performs the second rounding; a binary64 sum of two float32
      // values rounds to the same float32 as a direct float32 addition would.
      out[i] = Math.fround(x * span) + lo;
    }
    return;
  }
  // x * span + lo is a multiple of `grain` with magnitude below |span| + |lo|; when that needs at
  // most 53 bits the binary64 sum is exact and one store rounding equals the FMA. This covers the
  // symmetric bounds of nn.Linear; other bounds take the exact path per element.
  const grain = Math.min(
    float32Quantum(span) * TWO_POW_M24,
    lo === 0 ? Number.POSITIVE_INFINITY : float32Quantum(lo),
  );
  if (span === 0 || Math.abs(span) + Math.abs(lo) <= grain * 2 ** 53) {
    for (let i = 0; i < n; i++) {
      out[i] = (words[i]! & 0xffffff) * TWO_POW_M24 * span + lo;
    }
    return;
  }
  for (let i = 0; i < n; i++) {
    out[i] = fusedMultiplyAdd32((words[i]! & 0xffffff) * TWO_POW_M24, span, lo);
  }
}

/**
 * `n` float32 samples of torch's `uniform_(from, to)` on a float32 tensor, in row-major order:
 * `torch.empty(n).uniform_(from, to)` after the same seed gives the same bits.
 *
 * @param n Number of elements (each consumes one 32-bit output).
 * @param from Lower bound (rounded to float32 first, as torch does).
 * @param to Upper bound (rounded to float32 first); must be `>= from`.
 * @throws {ValueError} for a bad count or bounds.
 * @example
 * const g = new Generator(42);
 * uniformValues(3, -0.5, 0.5, { generator: g }); // torch.manual_seed(42); torch.empty(3).uniform_(-0.5, 0.5)
 */
export function uniformValues(
  n: number,
  from: number,
  to: number,
  opts: UniformOptions = {},
): Float32Array {
  validateCount(n, 'uniformValues');
  for (const [argument, value] of [
    ['from', from],
    ['to', to],
  ] as const) {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new ValueError(`uniformValues: ${argument} = ${String(value)} is not a finite number`, {
        argument,
        value,
      });
    }
  }
  // The same two checks torch's uniform_ makes, in binary64 before casting.
  if (from > to) {
    throw new ValueError(
      `uniformValues: expects a [from, to) range, but found from = ${from} > to = ${to}`,
      { argument: 'from', value: from },
    );
  }
  if (to - from > FLOAT32_MAX) {
    throw new ValueError(
      `uniformValues: to - from = ${to - from} exceeds the float32 maximum ${FLOAT32_MAX}`,
      { argument: 'to', value: to },
    );
  }
  const rounding = opts.rounding ?? 'fused';
  if (rounding !== 'fused' && rounding !== 'two-roundings') {
    throw new ValueError(
      `uniformValues: rounding ${String(rounding)} is not 'fused' or 'two-roundings'`,
      { argument: 'rounding', value: rounding },
    );
  }
  const generator = opts.generator ?? getDefaultGenerator();
  // Duck-typed rather than instanceof, so a Generator from a second copy of this package works.
  if (typeof (generator as Partial<Generator> | null)?.fill !== 'function') {
    throw new ValueError('uniformValues: generator is not a Generator', {
      argument: 'generator',
      value: generator,
    });
  }
  const out = new Float32Array(n);
  fillUniform(out, from, to, generator, rounding);
  return out;
}

/**
 * Checks a shape (non-negative integer dimensions) and returns its element count.
 *
 * @internal Shared with linear-init.ts.
 */
export function shapeSize(shape: readonly number[], where: string): number {
  if (!Array.isArray(shape)) {
    throw new ValueError(`${where}: shape ${String(shape)} is not an array`, {
      argument: 'shape',
      value: shape,
    });
  }
  let size = 1;
  for (const d of shape) {
    const text = `[${shape.join(', ')}]`;
    if (typeof d !== 'number' || !Number.isInteger(d)) {
      throw new ValueError(`${where}: shape ${text} has a non-integer dimension ${String(d)}`, {
        argument: 'shape',
        value: shape,
      });
    }
    if (d < 0) {
      throw new ValueError(`${where}: shape ${text} has a negative dimension ${d}`, {
        argument: 'shape',
        value: shape,
      });
    }
    size *= d;
  }
  if (!Number.isSafeInteger(size)) {
    throw new ValueError(`${where}: shape [${shape.join(', ')}] has too many elements`, {
      argument: 'shape',
      value: shape,
    });
  }
  return size;
}

/**
 * A float32 tensor of uniform [0, 1) samples, bit-identical to `torch.rand(*shape)` drawn from the
 * same generator state. Elements are drawn in row-major order; later calls continue the stream.
 *
 * @throws {ValueError} if a dimension is negative or not an integer.
 * @example
 * setSeed(42);
 * const x = rand([2, 8, 6]); // == torch.manual_seed(42); torch.rand(2, 8, 6)
 */
export function rand(shape: readonly number[], opts: { generator?: Generator } = {}): Tensor {
  const size = shapeSize(shape, 'rand');
  // With from = 0 and to = 1 the sample is x itself, so the rounding mode does not matter.
  const values = uniformValues(size, 0, 1, { generator: opts.generator, rounding: 'fused' });
  return tensor(values, [...shape], 'float32');
}

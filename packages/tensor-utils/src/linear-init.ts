/**
 * `torch.nn.Linear`'s default parameter initialisation (`reset_parameters`), bit for bit: the
 * weight from `kaiming_uniform_(a=sqrt(5))`, then the bias from uniform(-1/sqrt(fan_in), ...).
 * See `/spec/torch-rng.md` §4.
 */
import { type Tensor, tensor } from '@tensorflow/tfjs-core';
import { ValueError } from './errors.ts';
import type { Generator } from './generator.ts';
import { type RoundingMode, uniformValues } from './random.ts';

/**
 * Options for {@link linearInit} and {@link linearInitValues}.
 *
 * @example
 * const opts: LinearInitOptions = { generator: new Generator(42), bias: false };
 */
export interface LinearInitOptions {
  /** Generator to draw from; defaults to the default generator (see `setSeed`). */
  generator?: Generator;
  /** Rounding of the uniform fill; defaults to `'fused'` (torch on AVX2 / AVX512 CPUs). */
  rounding?: RoundingMode;
  /** Whether to make (and draw) a bias, like `nn.Linear(..., bias=True)`; defaults to true. */
  bias?: boolean;
}

function validateFeatures(name: string, value: number, where: string): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ValueError(`${where}: ${name} = ${String(value)} is not a non-negative integer`, {
      argument: name,
      value,
    });
  }
}

/**
 * The uniform bound `kaiming_uniform_(w, a=sqrt(5))` uses for `fan_in`, computed in binary64 with
 * torch's exact sequence of operations: `a ** 2` is 5.000000000000001, not 5, so shortcuts such as
 * `1 / sqrt(fan_in)` can differ in the last bit before rounding to float32.
 *
 * @internal Exported for tests.
 * @example
 * kaimingUniformBound(6); // 0.40824829046386296
 */
export function kaimingUniformBound(fanIn: number): number {
  const a = Math.sqrt(5);
  // calculate_gain('leaky_relu', a) = sqrt(2 / (1 + a ** 2)); Python's a ** 2 is correctly rounded.
  const gain = Math.sqrt(2 / (1 + a * a));
  const std = gain / Math.sqrt(fanIn);
  return Math.sqrt(3) * std;
}

/**
 * The bias bound of `nn.Linear.reset_parameters`: `1 / sqrt(fan_in)`, or 0 when fan_in is 0.
 *
 * @internal Exported for tests.
 * @example
 * linearBiasBound(6); // 0.4082482904638631
 */
export function linearBiasBound(fanIn: number): number {
  return fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
}

/**
 * The pure core of {@link linearInit}: `nn.Linear(inFeatures, outFeatures)`'s initial parameters as
 * plain arrays, without touching tfjs. The weight (`[out, in]`, row-major) is drawn first, then the
 * bias, consuming `out * in + out` generator outputs.
 *
 * @throws {ValueError} if a feature count is not a non-negative integer.
 * @example
 * setSeed(42);
 * const { weight, bias } = linearInitValues(6, 18); // == torch.manual_seed(42); nn.Linear(6, 18)
 * weight.length; // 108
 */
export function linearInitValues(
  inFeatures: number,
  outFeatures: number,
  opts: LinearInitOptions = {},
): { weight: Float32Array; bias: Float32Array | null } {
  validateFeatures('inFeatures', inFeatures, 'linearInit');
  validateFeatures('outFeatures', outFeatures, 'linearInit');
  const uniformOpts = { generator: opts.generator, rounding: opts.rounding ?? 'fused' };
  const fanIn = inFeatures;
  const count = outFeatures * inFeatures;
  // kaiming_uniform_ returns early (no draws, a warning in torch) for zero-element tensors.
  let weight: Float32Array;
  if (count === 0) {
    weight = new Float32Array(0);
  } else {
    const bound = kaimingUniformBound(fanIn);
    weight = uniformValues(count, -bound, bound, uniformOpts);
  }
  let bias: Float32Array | null = null;
  if (opts.bias ?? true) {
    // No zero-size shortcut here: torch's init.uniform_ draws even when the bound is 0 (fan_in 0).
    const bound = linearBiasBound(fanIn);
    bias = uniformValues(outFeatures, -bound, bound, uniformOpts);
  }
  return { weight, bias };
}

/**
 * `nn.Linear(inFeatures, outFeatures)`'s default initial parameters as float32 tfjs tensors, bit for
 * bit: `weight` is `[out, in]` (torch's layout, `y = x W^T + b`), `bias` is `[out]` or null. Default
 * rounding is `'fused'`, matching torch on AVX2 / AVX512 x86-64 CPUs.
 *
 * @throws {ValueError} if a feature count is not a non-negative integer.
 * @example
 * setSeed(7);
 * const cAttn = linearInit(32, 96); // c_attn = nn.Linear(32, 96) after torch.manual_seed(7)
 * const cProj = linearInit(32, 32); // then c_proj = nn.Linear(32, 32)
 */
export function linearInit(
  inFeatures: number,
  outFeatures: number,
  opts: LinearInitOptions = {},
): { weight: Tensor; bias: Tensor | null } {
  const values = linearInitValues(inFeatures, outFeatures, opts);
  return {
    weight: tensor(values.weight, [outFeatures, inFeatures], 'float32'),
    bias: values.bias === null ? null : tensor(values.bias, [outFeatures], 'float32'),
  };
}

import * as tf from '@tensorflow/tfjs-core';
import { parameter } from './parameter.ts';

/**
 * Layer normalisation over the last dimension, as `torch.nn.functional.layer_norm`: the biased
 * variance, `(x - mean) / sqrt(var + eps) * weight + bias`. Differentiable (plain tfjs ops).
 *
 * @example
 * const y = layerNorm(x, weight, bias); // x (B, T, C), weight and bias (C)
 */
export function layerNorm<T extends tf.Tensor>(
  x: T,
  weight: tf.Tensor1D,
  bias: tf.Tensor1D,
  eps = 1e-5,
): T {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true); // (..., 1)
    const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
    return tf.add(tf.mul(normed, weight), bias) as T;
  });
}

/**
 * `nn.LayerNorm(C)` for inference: weight 1 and bias 0 until loaded, eps 1e-5 (minGPT's and
 * GPT-2's). Its parameters survive `tf.tidy`; `dispose()` frees them.
 *
 * @example
 * const ln = new LayerNorm(16);
 * const y = ln.apply(x); // x (B, T, 16)
 */
export class LayerNorm {
  readonly size: number;
  readonly eps: number;
  #weight: tf.Tensor1D;
  #bias: tf.Tensor1D;

  constructor(size: number, eps = 1e-5) {
    this.size = size;
    this.eps = eps;
    this.#weight = parameter(new Float32Array(size).fill(1), [size]);
    this.#bias = parameter(new Float32Array(size), [size]);
  }

  apply<T extends tf.Tensor>(x: T): T {
    return layerNorm(x, this.#weight, this.#bias, this.eps);
  }

  /** `weight` and `bias` `(C)`, as new tensors the caller owns. */
  state(): { weight: tf.Tensor1D; bias: tf.Tensor1D } {
    return { weight: this.#weight.clone(), bias: this.#bias.clone() };
  }

  /** Replaces the parameters with copies of already-validated `(C)` data. */
  load(weight: Float32Array, bias: Float32Array): void {
    const w = parameter<tf.Rank.R1>(weight, [this.size]);
    let b: tf.Tensor1D;
    try {
      b = parameter(bias, [this.size]);
    } catch (e) {
      w.dispose();
      throw e;
    }
    this.dispose();
    this.#weight = w;
    this.#bias = b;
  }

  dispose(): void {
    this.#weight.dispose();
    this.#bias.dispose();
  }
}

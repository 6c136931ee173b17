import * as tf from '@tensorflow/tfjs-core';

/** sqrt(2 / pi), in binary64; tfjs rounds it to float32 when it multiplies. */
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/**
 * minGPT's `NewGELU` (also GPT-2's `gelu_new`), the tanh approximation:
 * `0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))`. Differentiable (plain tfjs ops).
 *
 * @example
 * newGelu(tf.tensor1d([-1, 0, 1])); // [-0.1588, 0, 0.8412]
 */
export function newGelu<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => {
    const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), SQRT_2_OVER_PI);
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1)) as T;
  });
}

import * as tf from '@tensorflow/tfjs-core';

/**
 * A float32 parameter tensor that survives `tf.tidy`: made with `tf.keep`, so a module built or
 * loaded inside a tidy scope keeps its weights after the scope ends. The module that owns it
 * frees it in `dispose()`.
 *
 * @example
 * const weight = parameter(new Float32Array(16).fill(1), [16]); // LayerNorm's weight
 */
export function parameter<R extends tf.Rank>(
  values: Float32Array,
  shape: readonly number[],
): tf.Tensor<R> {
  return tf.keep(tf.tensor(values, [...shape], 'float32')) as unknown as tf.Tensor<R>;
}

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

/**
 * Makes every tensor `build` returns with {@link parameter}-like lifetime, or none of them: if a
 * later one fails (out of memory), the earlier ones are freed before the error is rethrown.
 * Loaders use it to build all new weights before freeing any old one.
 *
 * @example
 * const [w, b] = allOrNothing([() => parameter(w0, [4]), () => parameter(b0, [4])]);
 */
export function allOrNothing(build: (() => tf.Tensor)[]): tf.Tensor[] {
  const made: tf.Tensor[] = [];
  try {
    for (const make of build) made.push(make());
    return made;
  } catch (e) {
    tf.dispose(made);
    throw e;
  }
}

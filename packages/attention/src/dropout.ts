import { type Generator, uniformValues } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';

/**
 * Inverted dropout drawn from a kvkit Generator, so `setSeed` makes training-mode forwards
 * repeatable. (It does not reproduce torch's bernoulli stream: torch draws dropout masks
 * through a different path.) Keeps an element when its uniform draw is >= p.
 */
export function dropout(x: tf.Tensor, p: number, generator: Generator): tf.Tensor {
  if (p === 0) return x;
  return tf.tidy(() => {
    const u = uniformValues(x.size, 0, 1, { generator });
    const keep = new Float32Array(u.length);
    const scale = 1 / (1 - p);
    for (let i = 0; i < u.length; i++) keep[i] = u[i]! >= p ? scale : 0;
    return tf.mul(x, tf.tensor(keep, x.shape, 'float32'));
  });
}

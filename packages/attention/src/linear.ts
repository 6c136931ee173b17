import { type Generator, linearInit } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';

/**
 * `nn.Linear` for inference. The weight is kept transposed, `(in, out)`, because the wasm
 * backend runs a plain 2-D matMul with an untransposed right side through XNNPACK and every
 * other form through a slow loop; `weight` (torch's `(out, in)`) is produced on demand.
 */
export class Linear {
  readonly inFeatures: number;
  readonly outFeatures: number;
  #weightT: tf.Tensor2D; // (in, out)
  #bias: tf.Tensor1D; // (out)

  constructor(inFeatures: number, outFeatures: number, generator?: Generator) {
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    const { weight, bias } = linearInit(inFeatures, outFeatures, generator ? { generator } : {});
    this.#weightT = tf.tidy(() => tf.transpose(weight) as tf.Tensor2D);
    this.#bias = bias as tf.Tensor1D;
    weight.dispose();
  }

  /**
   * y = x W^T + b for x `(N, in)`; returns `(N, out)`. A plain matMul then an add: on tfjs-wasm
   * 4.22 that is faster than the fused matMul-with-bias kernel (measured: 41 + 5 us against
   * 67 us for (8, 128) x (128, 384)).
   */
  apply(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => tf.add(tf.matMul(x, this.#weightT), this.#bias));
  }

  /** torch's `weight` `(out, in)` and `bias`, as new tensors the caller owns. */
  state(): { weight: tf.Tensor2D; bias: tf.Tensor1D } {
    return { weight: tf.tidy(() => tf.transpose(this.#weightT)), bias: this.#bias.clone() };
  }

  /** Replaces the parameters with copies of already-validated `(out, in)` and `(out)` data. */
  load(weight: Float32Array, bias: Float32Array): void {
    const weightT = tf.tidy(
      () => tf.transpose(tf.tensor2d(weight, [this.outFeatures, this.inFeatures])) as tf.Tensor2D,
    );
    const b = tf.tensor1d(bias);
    this.dispose();
    this.#weightT = weightT;
    this.#bias = b;
  }

  dispose(): void {
    this.#weightT.dispose();
    this.#bias.dispose();
  }
}

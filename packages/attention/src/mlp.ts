import * as tf from '@tensorflow/tfjs-core';
import { newGelu } from './gelu.ts';
import { Linear } from './linear.ts';

/**
 * minGPT's block MLP: `c_fc` (C -> 4C), NewGELU, `c_proj` (4C -> C). (The residual dropout after
 * it is the block's.) Parameters as given (`values`) or drawn by `nn.Linear`'s default init.
 *
 * @example
 * const mlp = new MLP(48);
 * const y = mlp.apply(x); // x (N, 48) -> (N, 48)
 */
export class MLP {
  readonly cFc: Linear;
  readonly cProj: Linear;

  constructor(
    nEmbd: number,
    values?: {
      cFc: { weight: Float32Array; bias: Float32Array };
      cProj: { weight: Float32Array; bias: Float32Array };
    },
  ) {
    this.cFc = new Linear(nEmbd, 4 * nEmbd, values ? { values: values.cFc } : {});
    try {
      this.cProj = new Linear(4 * nEmbd, nEmbd, values ? { values: values.cProj } : {});
    } catch (e) {
      this.cFc.dispose();
      throw e;
    }
  }

  /** x `(N, C)` -> `(N, C)`. */
  apply(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => this.cProj.apply(newGelu(this.cFc.apply(x)))); // (N, 4C) inside
  }

  dispose(): void {
    this.cFc.dispose();
    this.cProj.dispose();
  }
}

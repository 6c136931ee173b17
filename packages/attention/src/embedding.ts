import * as tf from '@tensorflow/tfjs-core';
import { parameter } from './parameter.ts';

/**
 * `nn.Embedding(num, dim)` for inference: a `(num, dim)` table whose row i is the vector for id
 * (or position) i. Ids are not range-checked here (the model checks them before any lookup).
 * Its table survives `tf.tidy`; `dispose()` frees it.
 *
 * @example
 * const wte = new Embedding(65, 48, values); // values: 65 * 48 floats, row-major
 * const x = wte.apply(tf.tensor2d([[1, 2, 3]], [1, 3], 'int32')); // (1, 3, 48)
 */
export class Embedding {
  readonly num: number;
  readonly dim: number;
  #weight: tf.Tensor2D; // (num, dim)

  constructor(num: number, dim: number, values: Float32Array) {
    this.num = num;
    this.dim = dim;
    this.#weight = parameter(values, [num, dim]);
  }

  /** Rows for `ids` of any shape S (int32): a `(...S, dim)` tensor. */
  apply(ids: tf.Tensor): tf.Tensor {
    return tf.gather(this.#weight, ids);
  }

  /** The table `(num, dim)`, as a new tensor the caller owns. */
  state(): tf.Tensor2D {
    return this.#weight.clone();
  }

  /** Replaces the table with a copy of already-validated `(num, dim)` data. */
  load(values: Float32Array): void {
    const w = parameter<tf.Rank.R2>(values, [this.num, this.dim]);
    this.#weight.dispose();
    this.#weight = w;
  }

  dispose(): void {
    this.#weight.dispose();
  }
}

import { type Generator, linearInit } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { linearKernelReady, linearRow } from './kernel/linear-kernel.ts';

/**
 * Options of {@link Linear}.
 *
 * @example
 * const head = new Linear(48, 65, { bias: false }); // minGPT's lm_head
 */
export interface LinearOptions<HasBias extends boolean = true> {
  /** Generator for the default init (`nn.Linear`'s); the default generator if omitted. */
  generator?: Generator;
  /** Whether the layer has a bias, as `nn.Linear(..., bias=...)`. Default true. */
  bias?: HasBias;
  /**
   * Initial parameters (`weight` row-major `(out, in)`, `bias` `(out)`) instead of drawing
   * them: nothing is drawn from any generator. They are copied and not validated.
   */
  values?: { weight: Float32Array; bias: HasBias extends true ? Float32Array : null };
}

/** The bias type of a Linear: a tensor, or null for a layer without one. */
type BiasOf<HasBias extends boolean> = HasBias extends true ? tf.Tensor1D : null;

function isGenerator(value: unknown): value is Generator {
  return typeof (value as Partial<Generator> | null)?.fill === 'function';
}

/**
 * `nn.Linear` for inference. The weight is kept transposed, `(in, out)`, because the wasm
 * backend runs a plain 2-D matMul with an untransposed right side through XNNPACK and every
 * other form through a slow loop; `weight` (torch's `(out, in)`) is produced on demand.
 *
 * The parameters are kept with `tf.keep`, so a layer built or loaded inside `tf.tidy` keeps
 * them when the tidy scope ends; `dispose()` frees them.
 *
 * @example
 * const proj = new Linear(6, 18, new Generator(42)); // nn.Linear(6, 18) after torch.manual_seed(42)
 * const y = proj.apply(tf.ones([4, 6])); // (4, 18)
 */
export class Linear<HasBias extends boolean = true> {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly hasBias: HasBias;
  #weightT: tf.Tensor2D; // (in, out)
  #bias: BiasOf<HasBias>; // (out) or null

  constructor(
    inFeatures: number,
    outFeatures: number,
    options: Generator | LinearOptions<HasBias> = {},
  ) {
    const opts: LinearOptions<HasBias> = isGenerator(options) ? { generator: options } : options;
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    this.hasBias = (opts.bias ?? true) as HasBias;
    if (opts.values) {
      [this.#weightT, this.#bias] = this.#build(opts.values.weight, opts.values.bias);
      return;
    }
    const { weight, bias } = linearInit(inFeatures, outFeatures, {
      ...(opts.generator ? { generator: opts.generator } : {}),
      bias: this.hasBias,
    });
    this.#weightT = tf.keep(tf.tidy(() => tf.transpose(weight) as tf.Tensor2D));
    weight.dispose();
    this.#bias = (bias ? tf.keep(bias as tf.Tensor1D) : null) as BiasOf<HasBias>;
  }

  /**
   * y = x W^T + b for x `(N, in)`; returns `(N, out)`. A single row (a decode step at B=1) goes
   * through kvkit's matrix-vector kernel, which streams the weight once at the memory's read
   * bandwidth, bias included (see kernel/linear.wat); more rows through a plain matMul then an
   * add (XNNPACK; on tfjs-wasm 4.22 that is faster than the fused matMul-with-bias kernel:
   * 41 + 5 us against 67 us for (8, 128) x (128, 384)).
   */
  apply(x: tf.Tensor2D): tf.Tensor2D {
    if (x.shape[0] === 1 && x.dtype === 'float32' && linearKernelReady()) {
      return linearRow(x, this.#weightT, this.#bias);
    }
    return tf.tidy(() => {
      const y = tf.matMul(x, this.#weightT);
      return (this.#bias ? tf.add(y, this.#bias) : y) as tf.Tensor2D;
    });
  }

  /** torch's `weight` `(out, in)` and `bias` (null without one), as new tensors the caller owns. */
  state(): { weight: tf.Tensor2D; bias: BiasOf<HasBias> } {
    return {
      weight: tf.tidy(() => tf.transpose(this.#weightT)),
      bias: (this.#bias ? this.#bias.clone() : null) as BiasOf<HasBias>,
    };
  }

  /**
   * Replaces the parameters with copies of already-validated `(out, in)` and `(out)` data (null
   * for a layer without bias). The new tensors are made before the old ones are freed.
   */
  load(weight: Float32Array, bias: HasBias extends true ? Float32Array : null): void {
    const [weightT, b] = this.#build(weight, bias);
    this.dispose();
    this.#weightT = weightT;
    this.#bias = b;
  }

  dispose(): void {
    this.#weightT.dispose();
    this.#bias?.dispose();
  }

  #build(weight: Float32Array, bias: Float32Array | null): [tf.Tensor2D, BiasOf<HasBias>] {
    const weightT = tf.keep(
      tf.tidy(
        () => tf.transpose(tf.tensor2d(weight, [this.outFeatures, this.inFeatures])) as tf.Tensor2D,
      ),
    );
    if (!this.hasBias) return [weightT, null as BiasOf<HasBias>];
    try {
      return [weightT, tf.keep(tf.tensor1d(bias!)) as BiasOf<HasBias>];
    } catch (e) {
      weightT.dispose();
      throw e;
    }
  }
}

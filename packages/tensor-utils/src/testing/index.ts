/** @module testing */
import * as tf from '@tensorflow/tfjs-core';
import { KvkitError } from '../errors.ts';

/** Thrown by `expectNoLeak` when a function leaves tensors behind. */
export class TensorLeakError extends KvkitError {
  override name = 'TensorLeakError';
  readonly leaked: number;
  readonly before: number;
  readonly after: number;
  constructor(data: {
    leaked: number;
    before: number;
    after: number;
    allowed: number;
    label?: string;
  }) {
    super(
      `${data.label ? `${data.label}: ` : ''}${data.leaked} tensor(s) leaked ` +
        `(tf.memory().numTensors went from ${data.before} to ${data.after}; ${data.allowed} allowed)`,
    );
    this.leaked = data.leaked;
    this.before = data.before;
    this.after = data.after;
  }
}

export interface NoLeakOptions {
  /** Tensors the function is documented to return or keep (they are not leaks). Default 0. */
  allowed?: number;
  /** Prefix for the error message. */
  label?: string;
}

/**
 * Runs `fn` (sync or async) and throws a TensorLeakError naming how many tensors it left
 * behind beyond `allowed`. Returns what `fn` returned.
 *
 * @example
 * import { expectNoLeak } from '@kvkit/tensor-utils/testing';
 * const out = await expectNoLeak(() => layer.forward(x), { allowed: 1 }); // the output itself
 * out.dispose();
 */
export async function expectNoLeak<T>(
  fn: () => T | Promise<T>,
  options: NoLeakOptions = {},
): Promise<T> {
  const allowed = options.allowed ?? 0;
  const before = tf.memory().numTensors;
  const result = await fn();
  const after = tf.memory().numTensors;
  const leaked = after - before - allowed;
  if (leaked > 0) {
    throw new TensorLeakError({
      leaked,
      before,
      after,
      allowed,
      ...(options.label ? { label: options.label } : {}),
    });
  }
  return result;
}

/** Counts tensors created and not disposed while `fn` runs, without throwing. */
export async function countNewTensors(fn: () => unknown): Promise<number> {
  const before = tf.memory().numTensors;
  await fn();
  return tf.memory().numTensors - before;
}

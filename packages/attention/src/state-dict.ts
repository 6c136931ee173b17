import { DisposedError, DTypeError, ShapeError, ValueError } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';

/** A parameter as a tensor or as `{ shape, data }` (row-major), the reference files' format. */
export type StateDictEntry = tf.Tensor | { shape: readonly number[]; data: ArrayLike<number> };
export type StateDict = Record<string, StateDictEntry>;

/**
 * Checks a state dict against the expected names and shapes (strict, like torch's
 * `load_state_dict`): every name present as an own key, no unknown names (a key that names an
 * `Object.prototype` member, such as `constructor` or `__proto__`, is always rejected), every
 * shape exact, every tensor float32 and alive, every value a number (NaN and Infinity load, as in
 * torch; strings, bigints and other non-numbers do not). Returns the values as float32 copies, or
 * throws naming the first problem. Reads nothing it does not return and changes nothing.
 */
export function readStateDict(
  dict: StateDict,
  expected: Record<string, readonly number[]>,
  owner: string,
): Record<string, Float32Array> {
  if (dict === null || typeof dict !== 'object') {
    throw new ValueError(
      `${owner}.loadStateDict: expected an object of parameters, got ${String(dict)}`,
      {
        argument: 'dict',
        value: dict,
      },
    );
  }
  const names = Object.keys(expected);
  const prototypeNamed = Object.keys(dict).filter((n) => n in Object.prototype);
  if (prototypeNamed.length > 0) {
    throw new ValueError(
      `${owner}.loadStateDict: keys [${prototypeNamed.join(', ')}] name Object.prototype members, not parameters`,
      { argument: 'dict', value: prototypeNamed },
    );
  }
  const missing = names.filter((n) => !Object.hasOwn(dict, n));
  const unexpected = Object.keys(dict).filter((n) => !Object.hasOwn(expected, n));
  if (missing.length > 0 || unexpected.length > 0) {
    throw new ValueError(
      `${owner}.loadStateDict: missing keys [${missing.join(', ')}], unexpected keys [${unexpected.join(', ')}]`,
      { argument: 'dict', value: { missing, unexpected } },
    );
  }
  const out: Record<string, Float32Array> = {};
  for (const name of names) {
    const entry = dict[name]!;
    const want = expected[name]!;
    const shape = entry instanceof tf.Tensor ? entry.shape : entry?.shape;
    if (
      !Array.isArray(shape) ||
      shape.length !== want.length ||
      shape.some((d, i) => d !== want[i])
    ) {
      throw new ShapeError(
        `${owner}.loadStateDict: '${name}' must have shape [${want.join(', ')}], got [${Array.isArray(shape) ? shape.join(', ') : String(shape)}]`,
        { expected: want, actual: Array.isArray(shape) ? shape : [] },
      );
    }
    const size = want.reduce((p, d) => p * d, 1);
    if (entry instanceof tf.Tensor) {
      if (entry.isDisposed) throw new DisposedError(`${owner}.loadStateDict: tensor '${name}'`);
      if (entry.dtype !== 'float32') {
        throw new DTypeError(
          `${owner}.loadStateDict: '${name}' must be float32, got ${entry.dtype}`,
          { expected: 'float32', actual: entry.dtype },
        );
      }
    }
    const data = entry instanceof tf.Tensor ? entry.dataSync() : entry.data;
    if (data?.length !== size) {
      throw new ShapeError(
        `${owner}.loadStateDict: '${name}' has ${data?.length} values for shape [${want.join(', ')}] (${size})`,
        {
          expected: want,
          actual: [data?.length ?? 0],
        },
      );
    }
    if (!(data instanceof Float32Array || data instanceof Float64Array)) {
      for (let i = 0; i < size; i++) {
        if (typeof (data as ArrayLike<unknown>)[i] !== 'number') {
          const bad = (data as ArrayLike<unknown>)[i];
          throw new ValueError(
            `${owner}.loadStateDict: '${name}'[${i}] is ${typeof bad} ${String(bad)}, not a number`,
            { argument: name, value: bad },
          );
        }
      }
    }
    out[name] = Float32Array.from(data as ArrayLike<number>);
  }
  return out;
}

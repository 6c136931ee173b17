import { DisposedError, DTypeError, ShapeError, ValueError } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';

/** Token ids as the model takes them: an int32 tensor `(B, T)`, or rows of integers. */
export type PromptIds = tf.Tensor | readonly (readonly number[])[];

/** The first id outside [0, vocabSize), or -1. */
function firstBadId(ids: ArrayLike<number>, vocabSize: number): number {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!(Number.isInteger(id) && id >= 0 && id < vocabSize)) return i;
  }
  return -1;
}

/**
 * Checks token ids `(B, T)` for a model with `vocabSize` tokens: an int32 tensor, alive, rank 2,
 * B and T >= 1, every id in [0, vocabSize). Returns [B, T]. (The ids are read once: an id out
 * of range would make `gather` read outside the embedding table.)
 */
export function checkIdx(idx: tf.Tensor, vocabSize: number, where: string): [number, number] {
  if (!(idx instanceof tf.Tensor)) {
    throw new ValueError(`${where}: idx must be a tf.Tensor of token ids, got ${typeof idx}`, {
      argument: 'idx',
      value: idx,
    });
  }
  if (idx.isDisposed) throw new DisposedError(`${where}: idx`);
  if (idx.dtype !== 'int32') {
    throw new DTypeError(`${where}: idx must be int32 token ids, got ${idx.dtype}`, {
      expected: 'int32',
      actual: idx.dtype,
    });
  }
  if (idx.rank !== 2 || idx.shape[0] === 0 || idx.shape[1] === 0) {
    throw new ShapeError(`${where}: idx must be (B >= 1, T >= 1), got [${idx.shape.join(', ')}]`, {
      expected: '[B, T]',
      actual: idx.shape,
    });
  }
  const [B, T] = idx.shape as [number, number];
  const ids = idx.dataSync();
  const bad = firstBadId(ids, vocabSize);
  if (bad >= 0) {
    const where2 = `idx[${Math.floor(bad / T)}][${bad % T}]`;
    throw new ValueError(
      `${where}: ${where2} = ${ids[bad]} is outside [0, vocabSize = ${vocabSize})`,
      {
        argument: 'idx',
        value: ids[bad],
      },
    );
  }
  return [B, T];
}

/**
 * Prompt rows as plain arrays, checked like {@link checkIdx}: rectangular, non-empty, integer
 * ids in [0, vocabSize).
 */
export function promptRows(idx: PromptIds, vocabSize: number, where: string): number[][] {
  if (idx instanceof tf.Tensor) {
    const [B, T] = checkIdx(idx, vocabSize, where);
    const ids = idx.dataSync();
    return Array.from({ length: B }, (_, b) => Array.from(ids.subarray(b * T, (b + 1) * T)));
  }
  if (!Array.isArray(idx) || idx.length === 0) {
    throw new ValueError(`${where}: idx must be a non-empty array of rows or an int32 tensor`, {
      argument: 'idx',
      value: idx,
    });
  }
  const T = (idx[0] as unknown[] | undefined)?.length;
  idx.forEach((row, b) => {
    if (!Array.isArray(row) || row.length !== T || T === 0) {
      throw new ShapeError(
        `${where}: idx must be rectangular with T >= 1; row ${b} has ${Array.isArray(row) ? row.length : typeof row} ids, row 0 has ${T}`,
        { expected: [idx.length, T ?? 0], actual: [b, Array.isArray(row) ? row.length : 0] },
      );
    }
    const bad = firstBadId(row, vocabSize);
    if (bad >= 0) {
      throw new ValueError(
        `${where}: idx[${b}][${bad}] = ${String(row[bad])} is not an integer in [0, vocabSize = ${vocabSize})`,
        { argument: 'idx', value: row[bad] },
      );
    }
  });
  return idx.map((row) => [...row]);
}

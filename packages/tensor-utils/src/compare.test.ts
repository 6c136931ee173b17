import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, test } from 'vitest';
import { allclose, equal, isclose, maxAbsDiff } from './compare.ts';
import { ShapeError, ValueError } from './errors.ts';

// Expected values are what Debian's PyTorch 1.13 printed for the same calls (quoted beside each).

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const t = (values: number[], shape?: number[]) =>
  tf.tensor(values, shape ?? [values.length], 'float32');

describe('equal (torch.equal)', () => {
  test('same shape and identical values', () => {
    expect(equal(t([1, 2, 3]), t([1, 2, 3]))).toBe(true);
    expect(equal(t([1, 2, 3]), t([1, 2, 3.0000002]))).toBe(false);
  });
  test('0 equals -0, NaN never equals NaN, different shapes are not equal', () => {
    // torch.equal(tensor([0.]), tensor([-0.])) -> True; NaN -> False; [2] vs [1, 2] -> False
    expect(equal(t([0]), t([-0]))).toBe(true);
    expect(equal(t([Number.NaN]), t([Number.NaN]))).toBe(false);
    expect(equal(t([1, 2]), t([1, 2], [1, 2]))).toBe(false);
  });
});

describe('isclose / allclose (|a - b| <= atol + rtol * |b|)', () => {
  const a = t([1, 1, Number.POSITIVE_INFINITY, Number.NaN, 1e-9, 100]);
  const b = t([1 + 1e-5, 1 + 2e-5, Number.POSITIVE_INFINITY, Number.NaN, 0, 100.001]);
  test('torch defaults rtol 1e-5, atol 1e-8', () => {
    // torch.isclose(a, b) -> [False, False, True, False, True, True]
    expect(isclose(a, b).values).toEqual([false, false, true, false, true, true]);
    expect(isclose(b, a).values).toEqual([false, false, true, false, true, true]);
  });
  test('equalNan', () => {
    // torch.isclose(a, b, equal_nan=True) -> [False, False, True, True, True, True]
    expect(isclose(a, b, { equalNan: true }).values).toEqual([
      false,
      false,
      true,
      true,
      true,
      true,
    ]);
  });
  test('broadcasts like torch', () => {
    // torch.isclose([[1,2],[3,4]], [1, 2.00001]) -> [[True, True], [False, False]]
    const r = isclose(t([1, 2, 3, 4], [2, 2]), t([1, 2.00001]));
    expect(r.shape).toEqual([2, 2]);
    expect(r.values).toEqual([true, true, false, false]);
    // torch.allclose(zeros(2, 3), zeros(3)) -> True
    expect(allclose(tf.zeros([2, 3]), tf.zeros([3]))).toBe(true);
  });
  test('allclose with atol', () => {
    // allclose([1, 2], [1, 2.1], atol=0.1) -> True; atol=0.09 -> False
    expect(allclose(t([1, 2]), t([1, 2.1]), { atol: 0.1 })).toBe(true);
    expect(allclose(t([1, 2]), t([1, 2.1]), { atol: 0.09 })).toBe(false);
  });
  test('shapes that do not broadcast are a ShapeError naming both shapes', () => {
    // torch: "The size of tensor a (3) must match the size of tensor b (2) at non-singleton dimension 1"
    expect(() => isclose(tf.zeros([2, 3]), tf.zeros([2, 2]))).toThrow(ShapeError);
    expect(() => allclose(tf.zeros([2, 3]), tf.zeros([2, 2]))).toThrow(
      /\[2, 3\] and \[2, 2\] do not broadcast/,
    );
  });
  test('negative tolerances are a ValueError', () => {
    expect(() => allclose(t([1]), t([1]), { rtol: -1 })).toThrow(ValueError);
  });
});

describe('maxAbsDiff', () => {
  test('largest absolute difference, broadcasting, NaN where values are not comparable', () => {
    expect(maxAbsDiff(t([1, 2, 3]), t([1, 2.5, 2]))).toBe(1);
    expect(maxAbsDiff(t([1, 2, 3, 4], [2, 2]), t([1, 2]))).toBe(2);
    expect(maxAbsDiff(t([Number.POSITIVE_INFINITY]), t([Number.POSITIVE_INFINITY]))).toBe(0);
    expect(maxAbsDiff(t([Number.NaN]), t([1]))).toBeNaN();
    expect(() => maxAbsDiff(tf.zeros([2]), tf.zeros([3]))).toThrow(ShapeError);
  });
  test('creates no tensors', () => {
    const x = t([1, 2]);
    const before = tf.memory().numTensors;
    maxAbsDiff(x, x);
    allclose(x, x);
    equal(x, x);
    expect(tf.memory().numTensors).toBe(before);
  });
});

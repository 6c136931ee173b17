import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, expect, test } from 'vitest';
import { expectNoLeak, TensorLeakError } from './index.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

test('passes when nothing leaks and returns the result', async () => {
  const out = await expectNoLeak(() => tf.tidy(() => tf.add(tf.ones([2]), 1)), { allowed: 1 });
  expect(Array.from(out.dataSync())).toEqual([2, 2]);
  out.dispose();
});

test('fails with the number of tensors leaked', async () => {
  let kept: tf.Tensor[] = [];
  const leaky = () => {
    kept = [tf.ones([1]), tf.ones([1]), tf.ones([1])];
  };
  await expect(expectNoLeak(leaky, { allowed: 1, label: 'decode' })).rejects.toThrow(
    TensorLeakError,
  );
  tf.dispose(kept);
  await expect(expectNoLeak(leaky, { allowed: 1, label: 'decode' })).rejects.toThrow(
    /^decode: 2 tensor\(s\) leaked/,
  );
  tf.dispose(kept);
});

import { initBackend } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, test, vi } from 'vitest';
import { readInto } from './tensor-io.ts';

afterAll(async () => {
  await initBackend('wasm');
});

describe.each(['wasm', 'cpu'] as const)('readInto on %s', (backend) => {
  test('copies exactly what dataSync returns, at an offset, for fresh, reshaped and computed tensors', async () => {
    await initBackend(backend);
    const a = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = tf.reshape(a, [3, 2]); // shares a's data
    const c = tf.matMul(a, tf.transpose(a)); // computed by a kernel
    for (const t of [a, b, c]) {
      const dst = new Float32Array(t.size + 3).fill(-1);
      readInto(t, dst, 2);
      expect(Array.from(dst.subarray(2, 2 + t.size))).toEqual(Array.from(t.dataSync()));
      expect([dst[0], dst[1], dst[t.size + 2]]).toEqual([-1, -1, -1]);
    }
    // On wasm the values come from the tfjs heap in place (the layout this relies on), never
    // through dataSync's fresh copy; elsewhere through dataSync.
    const spy = vi.spyOn(c, 'dataSync');
    readInto(c, new Float32Array(c.size));
    expect(spy).toHaveBeenCalledTimes(backend === 'wasm' ? 0 : 1);
    spy.mockRestore();
    const i = tf.tensor1d([1, 2], 'int32');
    expect(() => readInto(i, new Float32Array(2))).toThrow(/must be float32, got int32/);
    tf.dispose([a, b, c, i]);
  });
});

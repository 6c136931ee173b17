import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { initBackend } from './backend.ts';
import { BackendError } from './errors.ts';

describe('initBackend', () => {
  test('wasm in Node: the SIMD binary (tfjs never uses threads in Node)', async () => {
    expect(await initBackend()).toEqual({ backend: 'wasm', wasmBinary: 'simd' });
    expect(tf.getBackend()).toBe('wasm');
    const y = tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]]));
    expect(Array.from(y.dataSync())).toEqual([11]);
  });

  test('cpu as the fallback, and back to wasm', async () => {
    expect(await initBackend('cpu')).toEqual({ backend: 'cpu', wasmBinary: null });
    expect(tf.getBackend()).toBe('cpu');
    expect((await initBackend('wasm')).backend).toBe('wasm');
  });

  test('an unknown backend is a BackendError naming it', async () => {
    await expect(initBackend('webgpu' as never)).rejects.toThrow(BackendError);
    await expect(initBackend('webgpu' as never)).rejects.toThrow(/unknown backend 'webgpu'/);
  });
});

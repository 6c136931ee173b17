import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { initBackend } from './backend.ts';
import { BackendError, ValueError } from './errors.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('initBackend', () => {
  test('wasm in Node: the SIMD binary (tfjs never uses threads in Node)', async () => {
    expect(await initBackend()).toEqual({
      backend: 'wasm',
      wasmBinary: 'simd',
      fallbackReason: null,
    });
    expect(tf.getBackend()).toBe('wasm');
    const y = tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]]));
    expect(Array.from(y.dataSync())).toEqual([11]);
  });

  test('cpu as the fallback, and back to wasm', async () => {
    expect(await initBackend('cpu')).toEqual({
      backend: 'cpu',
      wasmBinary: null,
      fallbackReason: null,
    });
    expect(tf.getBackend()).toBe('cpu');
    expect((await initBackend('wasm')).backend).toBe('wasm');
  });

  test('an unknown backend is a BackendError naming it', async () => {
    await expect(initBackend('webgpu' as never)).rejects.toThrow(BackendError);
    await expect(initBackend('webgpu' as never)).rejects.toThrow(/unknown backend 'webgpu'/);
  });

  test.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY, '100' as unknown as number])(
    'timeoutMs %s is a ValueError, and the backend stays as it was',
    async (timeoutMs) => {
      const before = tf.getBackend();
      const error = await initBackend('cpu', { timeoutMs }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValueError);
      expect((error as ValueError).argument).toBe('timeoutMs');
      expect((error as Error).message).toContain(String(timeoutMs));
      expect(tf.getBackend()).toBe(before);
    },
  );

  test('an unknown threads mode is a ValueError naming it', async () => {
    const error = await initBackend('wasm', { threads: 'some' as 'on' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValueError);
    expect((error as Error).message).toMatch(/threads must be 'auto', 'on' or 'off', got "some"/);
  });

  test('a backend that never starts is a BackendError after timeoutMs, not a hang', async () => {
    vi.spyOn(tf.engine(), 'setBackend').mockReturnValue(new Promise<boolean>(() => {}));
    const started = performance.now();
    const error = await initBackend('cpu', { timeoutMs: 50 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as BackendError).backend).toBe('cpu');
    expect((error as Error).message).toBe(
      "initBackend: the 'cpu' backend did not start within 50 ms",
    );
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
  });

  test('a backend whose start throws is a BackendError carrying the cause', async () => {
    const cause = { message: 'failed to load wasm binary file' }; // what tfjs-wasm rejects with
    vi.spyOn(tf.engine(), 'setBackend').mockRejectedValue(cause);
    const error = await initBackend('wasm').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as Error).message).toBe(
      "initBackend: the 'wasm' backend failed to initialise: failed to load wasm binary file",
    );
    expect((error as Error).cause).toBe(cause);
  });

  test('a backend that reports failure is a BackendError', async () => {
    vi.spyOn(tf.engine(), 'setBackend').mockResolvedValue(false);
    await expect(initBackend('cpu')).rejects.toThrow(
      /^initBackend: the 'cpu' backend failed to initialise$/,
    );
  });
});

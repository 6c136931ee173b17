// The threads decision, in a file of its own: tfjs starts its wasm backend once per process,
// so this file's first initBackend('wasm') is the one that decides.
import * as tf from '@tensorflow/tfjs-core';
import { expect, test, vi } from 'vitest';
import { initBackend } from './backend.ts';

test('where the threaded build would be picked but its worker may not start, the SIMD build runs and says why', async () => {
  await import('@tensorflow/tfjs-backend-wasm'); // registers the WASM_* flags
  // What a cross-origin-isolated browser page reports, without the kvkitWasm() plugin's mark.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
  const info = await initBackend('wasm');
  expect(info.wasmBinary).toBe('simd');
  expect(info.fallbackReason).toMatch(
    /^using the single-threaded SIMD wasm build: the page is cross-origin isolated/,
  );
  expect(warn).toHaveBeenCalledExactlyOnceWith(`kvkit initBackend: ${info.fallbackReason}`);
  expect(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')).toBe(false);
  const y = tf.add(tf.tensor1d([1, 2]), tf.tensor1d([3, 4]));
  expect(Array.from(y.dataSync())).toEqual([4, 6]);

  // Later calls say the same, without deciding (or warning) again.
  expect(await initBackend('cpu')).toMatchObject({ backend: 'cpu', fallbackReason: null });
  expect(await initBackend('wasm')).toEqual(info);
  expect(warn).toHaveBeenCalledTimes(1);
});

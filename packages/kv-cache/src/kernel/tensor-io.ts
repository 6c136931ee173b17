import { DTypeError } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';

interface WasmBackendInternals {
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  wasm: { HEAPF32: Float32Array };
}

/**
 * Copies a float32 tensor's values into `dst` at `offset`, without allocating.
 *
 * `dataSync()` returns a fresh copy: for the (B*T, 3C) rows a forward pass reads back every
 * call, that allocation (and the garbage collections it drives) cost more than the copy. On the
 * wasm backend this reads the tensor where tfjs keeps it (tfjs-backend-wasm 4.22's
 * `dataIdMap[...].memoryOffset` in `wasm.HEAPF32`; tensor-io.test.ts pins that layout), and
 * falls back to `dataSync()` on any other backend.
 */
export function readInto(t: tf.Tensor, dst: Float32Array, offset = 0): void {
  if (t.dtype !== 'float32') {
    throw new DTypeError(`readInto: the tensor must be float32, got ${t.dtype}`, {
      expected: 'float32',
      actual: t.dtype,
    });
  }
  const backend =
    tf.engine().backendName === 'wasm' ? (tf.backend() as unknown as WasmBackendInternals) : null;
  const info = backend?.dataIdMap?.get(t.dataId);
  if (backend && info && typeof info.memoryOffset === 'number') {
    const start = info.memoryOffset / 4;
    dst.set(backend.wasm.HEAPF32.subarray(start, start + t.size), offset);
    return;
  }
  dst.set(t.dataSync() as Float32Array, offset);
}

import { tfjsWasmMemory } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { linearWasmBase64 } from './linear-wasm.ts';

/** The tfjs kernel `Linear` runs a single row through: `y = x W + b` in kvkit's own SIMD loop. */
export const LINEAR_KERNEL = 'KvkitLinear';

interface WasmBackendInternals {
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
}

interface Exports {
  gemv(x: number, w: number, b: number, y: number, K: number, N: number): void;
}

let state: 'unknown' | 'ready' | 'unavailable' = 'unknown';
let registeredFor: WebAssembly.Memory | null = null;

/**
 * Whether `Linear` can run a single row through kvkit's matrix-vector kernel: the wasm backend
 * is the active one and `initBackend` saw it start, so the kernel can be instantiated over
 * tfjs-wasm's own memory and read the layer's weight tensor in place. Registers the tfjs kernel
 * on first use. Anything else (the cpu backend, a backend started without `initBackend`, the
 * threaded build's shared memory) keeps the plain tfjs matMul, with the same results to float32
 * rounding.
 */
export function linearKernelReady(): boolean {
  if (tf.getBackend() !== 'wasm') return false;
  const memory = tfjsWasmMemory();
  if (!memory) return false;
  if (state === 'ready' && registeredFor === memory) return true;
  if (state === 'unavailable') return false;
  try {
    register(memory);
    state = 'ready';
    registeredFor = memory;
  } catch {
    state = 'unavailable';
  }
  return state === 'ready';
}

function register(memory: WebAssembly.Memory): void {
  const bytes = Uint8Array.from(atob(linearWasmBase64), (c) => c.charCodeAt(0));
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  const exports = instance.exports as unknown as Exports;
  if (tf.getKernel(LINEAR_KERNEL, 'wasm')) tf.unregisterKernel(LINEAR_KERNEL, 'wasm');
  tf.registerKernel({
    kernelName: LINEAR_KERNEL,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const be = backend as unknown as WasmBackendInternals;
      const { x, w, b } = inputs as { x: tf.TensorInfo; w: tf.TensorInfo; b?: tf.TensorInfo };
      const [K, N] = w.shape as [number, number];
      const out = be.makeOutput([1, N], 'float32');
      const at = (t: tf.TensorInfo) => be.dataIdMap.get(t.dataId)!.memoryOffset;
      exports.gemv(at(x), at(w), b ? at(b) : -1, at(out), K, N);
      return out;
    },
  });
}

/** `x W + b` for one row `x` `(1, in)` with `W` `(in, out)`: call only when linearKernelReady(). */
export function linearRow(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D | null): tf.Tensor2D {
  const inputs: tf.NamedTensorMap = b ? { x, w, b } : { x, w };
  return tf.engine().runKernel(LINEAR_KERNEL, inputs, {}) as tf.Tensor2D;
}

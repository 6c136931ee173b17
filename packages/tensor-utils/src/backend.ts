import * as tf from '@tensorflow/tfjs-core';
import { BackendError } from './errors.ts';

/** Backends kvkit sets up. `wasm` is the one it is tuned for; `cpu` is the portable fallback. */
export type BackendName = 'wasm' | 'cpu';

/** Which WebAssembly binary the wasm backend loaded (null on other backends). */
export type WasmBinary = 'threaded-simd' | 'simd' | 'plain';

export interface BackendInfo {
  backend: BackendName;
  wasmBinary: WasmBinary | null;
}

export interface InitBackendOptions {
  /**
   * Where the browser fetches the `.wasm` binaries from: a folder URL ending in `/`, or a map
   * from file name to URL, as tfjs' `setWasmPaths`. Node needs none. In a Vite app the
   * `kvkitWasm()` plugin from `@kvkit/tensor-utils/vite` serves the binaries and sets this.
   */
  wasmPaths?:
    | string
    | Partial<Record<`tfjs-backend-wasm${'' | '-simd' | '-threaded-simd'}.wasm`, string>>;
}

const backendNames: readonly BackendName[] = ['wasm', 'cpu'];

/** The global a bundler plugin may set to tell initBackend where the binaries are served. */
const wasmPathsGlobal = '__KVKIT_WASM_PATHS__';

/**
 * Registers and selects a tfjs backend, in Node and in the browser, and says which wasm binary
 * it loaded. Calling it again with the same name is cheap and returns the same answer.
 *
 * @example
 * import { initBackend } from '@kvkit/tensor-utils';
 * const { backend, wasmBinary } = await initBackend(); // { backend: 'wasm', wasmBinary: 'simd' } in Node
 */
export async function initBackend(
  name: BackendName = 'wasm',
  options: InitBackendOptions = {},
): Promise<BackendInfo> {
  if (!backendNames.includes(name)) {
    throw new BackendError(
      `initBackend: unknown backend '${String(name)}' (expected one of ${backendNames.join(', ')})`,
      {
        backend: String(name),
      },
    );
  }
  if (name === 'cpu') {
    await import('@tensorflow/tfjs-backend-cpu');
  } else {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const paths = options.wasmPaths ?? (globalThis as Record<string, unknown>)[wasmPathsGlobal];
    if (paths !== undefined && tf.getBackend() !== 'wasm') {
      wasm.setWasmPaths(paths as Parameters<typeof wasm.setWasmPaths>[0]);
    }
  }
  let ok: boolean;
  try {
    ok = await tf.setBackend(name);
  } catch (cause) {
    throw new BackendError(
      `initBackend: the '${name}' backend failed to initialise`,
      { backend: name },
      { cause },
    );
  }
  if (!ok) {
    throw new BackendError(
      `initBackend: the '${name}' backend failed to initialise` +
        (name === 'wasm'
          ? ' (in a browser, check that the .wasm binaries are served: see wasmPaths)'
          : ''),
      { backend: name },
    );
  }
  await tf.ready();
  return { backend: name, wasmBinary: name === 'wasm' ? await wasmBinaryInUse() : null };
}

/** Mirrors the choice tfjs-backend-wasm makes in its `init()`, from the same two flags. */
async function wasmBinaryInUse(): Promise<WasmBinary> {
  const [simd, threads] = await Promise.all([
    tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'),
    tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'),
  ]);
  if (simd && threads) return 'threaded-simd';
  return simd ? 'simd' : 'plain';
}

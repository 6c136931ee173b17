/**
 * The two ONNX Runtime peers, each optional: `onnxruntime-web` (its WebAssembly build, SIMD,
 * one thread: what transformers.js runs in browsers, here in Node) and `onnxruntime-node`
 * (native, one intra-op thread). When a package is missing, the bench says why and how to
 * install it instead of failing.
 */

/** The parts of an ONNX Runtime tensor the bench uses. */
export interface OrtTensor {
  readonly data: unknown;
  readonly dims: readonly number[];
}

/** The parts of an `InferenceSession` the bench uses. */
export interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

export type OrtEngineName = 'ort-web' | 'ort-node';

/** A loaded engine: how to make sessions and tensors, and what it is. */
export interface OrtEngine {
  id: OrtEngineName;
  /** `onnxruntime-node 1.30.0 (native CPU, 1 intra-op thread)`. */
  label: string;
  version: string;
  createSession(model: Uint8Array): Promise<OrtSession>;
  tensor(data: Float32Array, dims: readonly number[]): OrtTensor;
  /** An int64 tensor (token ids, as transformers.js feeds `input_ids`). */
  int64(data: ArrayLike<number>, dims: readonly number[]): OrtTensor;
}

/** Why an engine is not available, and the command that installs it. */
export interface OrtSkip {
  skipped: string;
}

/** The versions the bench is tested with (its devDependencies). */
const installs: Record<OrtEngineName, string> = {
  'ort-web': 'npm install onnxruntime-web@1.30.0',
  // Its install script downloads extra files from a host many networks cannot reach; the npm
  // package already holds the CPU library.
  'ort-node': 'ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node@1.30.0',
};

interface OrtModule {
  InferenceSession: { create(model: Uint8Array, options: object): Promise<OrtSession> };
  Tensor: new (
    type: 'float32' | 'int64',
    data: Float32Array | BigInt64Array,
    dims: readonly number[],
  ) => OrtTensor;
  env: { versions?: Record<string, string>; wasm?: Record<string, unknown> };
}

async function importEngine(name: string): Promise<OrtModule | string> {
  try {
    return (await import(name)) as OrtModule;
  } catch (error) {
    const code = (error as { code?: string }).code;
    return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND'
      ? `${name} not installed`
      : `${name} failed to load: ${(error as Error).message.split('\n')[0]}`;
  }
}

/**
 * Loads one engine, configured for one thread, or says why it cannot.
 *
 * @example
 * const engine = await loadOrtEngine('ort-node');
 * if ('skipped' in engine) console.log(engine.skipped);
 */
export async function loadOrtEngine(id: OrtEngineName): Promise<OrtEngine | OrtSkip> {
  const name = id === 'ort-web' ? 'onnxruntime-web' : 'onnxruntime-node';
  const ort = await importEngine(name);
  if (typeof ort === 'string') return { skipped: `${ort} (install: ${installs[id]})` };
  const version = ort.env.versions?.[id === 'ort-web' ? 'web' : 'node'] ?? 'unknown';
  let options: object;
  let label: string;
  if (id === 'ort-web') {
    // One thread (no worker threads), SIMD, no proxy worker: transformers.js's wasm defaults
    // on a page without cross-origin isolation.
    Object.assign(ort.env.wasm ?? {}, { numThreads: 1, simd: true, proxy: false });
    options = { executionProviders: ['wasm'], graphOptimizationLevel: 'all' };
    label = `onnxruntime-web ${version} (wasm, SIMD, 1 thread)`;
  } else {
    options = {
      executionProviders: ['cpu'],
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    };
    label = `onnxruntime-node ${version} (native CPU, 1 intra-op thread)`;
  }
  return {
    id,
    label,
    version,
    createSession: (model) => ort.InferenceSession.create(model, options),
    tensor: (data, dims) => new ort.Tensor('float32', data, dims),
    int64: (data, dims) =>
      new ort.Tensor(
        'int64',
        BigInt64Array.from(data, (v) => BigInt(v)),
        dims,
      ),
  };
}

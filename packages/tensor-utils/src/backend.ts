import * as tf from '@tensorflow/tfjs-core';
import { BackendError, ValueError } from './errors.ts';

/** Backends kvkit sets up. `wasm` is the one it is tuned for; `cpu` is the portable fallback. */
export type BackendName = 'wasm' | 'cpu';

/** Which WebAssembly binary the wasm backend loaded (null on other backends). */
export type WasmBinary = 'threaded-simd' | 'simd' | 'plain';

export interface BackendInfo {
  backend: BackendName;
  wasmBinary: WasmBinary | null;
  /**
   * Why the wasm backend runs the single-threaded build although the browser could run the
   * threaded one (also logged with `console.warn`); null when it did not fall back.
   */
  fallbackReason: string | null;
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
  /**
   * Whether the wasm backend may use its threaded build, which browsers allow only in a
   * cross-origin-isolated page (COOP/COEP headers). `'auto'` (the default) uses it only when
   * kvkit knows its worker starts: in a Vite app with the `kvkitWasm()` plugin, which makes
   * the build work when minified; otherwise it falls back to the single-threaded SIMD build and
   * says why. `'on'` uses it whenever the browser can; `'off'` never. Node never uses threads.
   */
  threads?: 'auto' | 'on' | 'off';
  /**
   * How long the backend may take to start before initBackend gives up with a BackendError,
   * in milliseconds. Default 30000 (the binaries are ~0.4 MB each; a slow connection needs a
   * few seconds, a hang never ends). tfjs cannot cancel a start: one that finishes after the
   * timeout still selects its backend, so after a timeout pick a backend explicitly again.
   */
  timeoutMs?: number;
}

const backendNames: readonly BackendName[] = ['wasm', 'cpu'];

/** The global a bundler plugin may set to tell initBackend where the binaries are served. */
const wasmPathsGlobal = '__KVKIT_WASM_PATHS__';

/**
 * The global the kvkitWasm() plugin sets (true) when the threaded build's worker will start:
 * in `vite build` it patches tfjs so the worker gets the factory's original source; `vite dev`
 * does not minify, so there the source is intact anyway.
 */
const wasmThreadsGlobal = '__KVKIT_WASM_THREADS__';

const defaultTimeoutMs = 30_000;

/** What the wasm backend said the first time it started (tfjs starts a backend only once). */
let lastWasmInfo: BackendInfo | null = null;

/**
 * Registers and selects a tfjs backend, in Node and in the browser, and says which wasm binary
 * it loaded. Calling it again with the same name is cheap and returns the same answer. It
 * never hangs: a backend that has not started within `timeoutMs` is a BackendError.
 *
 * @example
 * import { initBackend } from '@kvkit/tensor-utils';
 * const { backend, wasmBinary } = await initBackend(); // 'wasm', 'simd' in Node
 */
export async function initBackend(
  name: BackendName = 'wasm',
  options: InitBackendOptions = {},
): Promise<BackendInfo> {
  if (!backendNames.includes(name)) {
    throw new BackendError(
      `initBackend: unknown backend '${String(name)}' (expected one of ${backendNames.join(', ')})`,
      { backend: String(name) },
    );
  }
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0) || !Number.isFinite(timeoutMs)) {
    throw new ValueError(
      `initBackend: timeoutMs must be a positive finite number of milliseconds, got ${String(timeoutMs)}`,
      { argument: 'timeoutMs', value: timeoutMs },
    );
  }
  const threads = options.threads ?? 'auto';
  if (threads !== 'auto' && threads !== 'on' && threads !== 'off') {
    throw new ValueError(
      `initBackend: threads must be 'auto', 'on' or 'off', got ${JSON.stringify(threads)}`,
      { argument: 'threads', value: threads },
    );
  }
  let fallbackReason: string | null = null;
  if (name === 'cpu') {
    await import('@tensorflow/tfjs-backend-cpu');
  } else {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    if (lastWasmInfo) {
      // tfjs starts a backend once: the binary, and the reason for it, stay what they were.
      fallbackReason = lastWasmInfo.fallbackReason;
    } else {
      const globals = globalThis as Record<string, unknown>;
      const paths = options.wasmPaths ?? globals[wasmPathsGlobal];
      if (paths !== undefined) {
        wasm.setWasmPaths(paths as Parameters<typeof wasm.setWasmPaths>[0]);
      }
      fallbackReason = await chooseThreads(threads, globals[wasmThreadsGlobal] === true);
      if (fallbackReason) console.warn(`kvkit initBackend: ${fallbackReason}`);
    }
  }
  let ok: boolean;
  try {
    ok = await withTimeout(
      (async () => {
        if (!(await tf.setBackend(name))) return false;
        await tf.ready();
        return true;
      })(),
      timeoutMs,
      () => new BackendError(notStartedMessage(name, timeoutMs), { backend: name }),
    );
  } catch (cause) {
    if (cause instanceof BackendError) throw cause;
    throw new BackendError(
      `initBackend: the '${name}' backend failed to initialise: ${messageOf(cause)}`,
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
  if (name === 'cpu') return { backend: 'cpu', wasmBinary: null, fallbackReason: null };
  lastWasmInfo ??= { backend: 'wasm', wasmBinary: await wasmBinaryInUse(), fallbackReason };
  return { ...lastWasmInfo };
}

/**
 * Before the wasm backend first starts: turns tfjs' threads flag off when the threaded build
 * must not be used, and returns why (null when nothing changed). tfjs-backend-wasm 4.22 builds
 * the threaded worker's script from `factory.toString()`; a minified bundle renames the
 * variables that source reads from its enclosing scope, so the worker throws `e is not
 * defined` and the backend never starts.
 */
async function chooseThreads(
  threads: 'auto' | 'on' | 'off',
  workerSourceIntact: boolean,
): Promise<string | null> {
  const [simd, multithread] = await Promise.all([
    tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'),
    tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'),
  ]);
  if (!simd || !multithread || threads === 'on') return null;
  const reason =
    threads === 'off'
      ? "threads: 'off' was asked for"
      : "the page is cross-origin isolated, so tfjs would pick its threaded build, whose worker does not start from a minified bundle unless the kvkitWasm() Vite plugin built it (pass threads: 'on' to use it anyway)";
  if (threads === 'auto' && workerSourceIntact) return null;
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  return `using the single-threaded SIMD wasm build: ${reason}`;
}

function notStartedMessage(name: BackendName, timeoutMs: number): string {
  const hint =
    name === 'wasm'
      ? " (check that the .wasm binaries are served, see wasmPaths; in a cross-origin-isolated page, threads: 'off' rules out the threaded build's worker)"
      : '';
  return `initBackend: the '${name}' backend did not start within ${timeoutMs} ms${hint}`;
}

function messageOf(cause: unknown): string {
  if (cause instanceof Error) return cause.message;
  if (cause && typeof cause === 'object' && 'message' in cause) return String(cause.message);
  return String(cause);
}

/** `promise`, or a rejection with `timeoutError()` after `ms` milliseconds. */
function withTimeout<T>(promise: Promise<T>, ms: number, timeoutError: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeoutError()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
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

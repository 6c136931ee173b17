// Makes tfjs-backend-wasm's threaded build start from a minified bundle (used by kvkitWasm()).
//
// tfjs-backend-wasm 4.22 hands each pthread worker a script built at run time from
// `wasmFactoryThreadedSimd.toString()`: the Emscripten factory's own source text. That function
// reads a variable of the module around it (`_scriptDir`, behind a `typeof` guard). A minifier
// renames that variable and drops the guard, so the text the worker evaluates refers to a name
// that does not exist there: the worker throws `e is not defined` and the backend never starts.
// The fix: give the worker the factory's source as it is in the package, as a string literal
// (which no minifier changes), read from the same package folder the bundle uses.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The module of tfjs-backend-wasm that builds the worker script, by its file path. */
const backendModuleRe = /[\\/]@tensorflow[\\/]tfjs-backend-wasm[\\/]dist[\\/]backend_wasm\.js$/;

/** The expression in that module whose value the worker evaluates. */
const toStringCall = 'wasmFactoryThreadedSimd.toString()';

const declaration = 'var WasmBackendModuleThreadedSimd = ';

/** The global initBackend reads to know the threaded build's worker will start. */
export const wasmThreadsGlobal = '__KVKIT_WASM_THREADS__';

/** Whether `id` (a module id from a bundler, maybe with a query) is the module to patch. */
export function isBackendWasmModule(id: string): boolean {
  return backendModuleRe.test(id.split('?')[0] ?? '');
}

/**
 * The factory expression of `wasm-out/tfjs-backend-wasm-threaded-simd.js` (what the package
 * assigns to `WasmBackendModuleThreadedSimd`), or null if the file is not laid out as in 4.22.
 */
export function threadedFactorySource(fileText: string): string | null {
  const start = fileText.indexOf(declaration);
  const end = fileText.indexOf('\nif (typeof exports', start);
  if (start < 0 || end < 0) return null;
  const expression = fileText
    .slice(start + declaration.length, end)
    .trim()
    .replace(/;$/, '');
  return expression.startsWith('(') && expression.endsWith(')') ? expression : null;
}

/**
 * `backend_wasm.js` with the worker's script taken from the factory's original source, and a
 * line telling initBackend the threaded build is safe; null when the code or the factory file
 * is not what this patch knows (then nothing is patched, and initBackend keeps threads off).
 * Only one call changes, on its own line, and a line is appended: earlier positions stay put.
 */
export function patchBackendWasm(code: string, id: string): string | null {
  const count = code.split(toStringCall).length - 1;
  if (count !== 1) return null;
  const factoryFile = join(
    dirname(dirname(id.split('?')[0]!)),
    'wasm-out',
    'tfjs-backend-wasm-threaded-simd.js',
  );
  let factory: string | null;
  try {
    factory = threadedFactorySource(readFileSync(factoryFile, 'utf8'));
  } catch {
    return null;
  }
  if (factory === null) return null;
  return (
    code.replace(toStringCall, '__kvkitThreadedSimdFactorySource') +
    `\nconst __kvkitThreadedSimdFactorySource = ${JSON.stringify(factory)};` +
    `\nglobalThis.${wasmThreadsGlobal} = true;\n`
  );
}

import { readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { kvkitWasm, viteVersionWarning } from './vite.ts';
import { isBackendWasmModule, patchBackendWasm, threadedFactorySource } from './vite-threads.ts';

// The real tfjs-backend-wasm 4.22 files, by the path a bundler gives them (pnpm's real path).
const pkgDir = realpathSync(
  dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json')),
);
const backendId = join(pkgDir, 'dist', 'backend_wasm.js');
const backendCode = readFileSync(backendId, 'utf8');
const factoryFile = readFileSync(
  join(pkgDir, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.js'),
  'utf8',
);

/** The string the patched module puts where `wasmFactoryThreadedSimd.toString()` was. */
function embeddedFactory(patched: string): string {
  const m = /\nconst __kvkitThreadedSimdFactorySource = (".*");\n/.exec(patched);
  if (!m) throw new Error('no embedded factory source');
  return JSON.parse(m[1]!) as string;
}

describe('the threaded build patch', () => {
  it('recognises backend_wasm.js by path, with or without a query, on any OS', () => {
    expect(isBackendWasmModule(backendId)).toBe(true);
    expect(isBackendWasmModule(`${backendId}?v=1`)).toBe(true);
    expect(
      isBackendWasmModule(
        'C:\\app\\node_modules\\@tensorflow\\tfjs-backend-wasm\\dist\\backend_wasm.js',
      ),
    ).toBe(true);
    expect(isBackendWasmModule(join(pkgDir, 'dist', 'index.js'))).toBe(false);
    expect(isBackendWasmModule('/app/src/backend_wasm.js')).toBe(false);
  });

  it('replaces the one toString() call and marks the build safe, appending after the code', () => {
    const patched = patchBackendWasm(backendCode, backendId)!;
    expect(patched).not.toBeNull();
    expect(patched).not.toContain('wasmFactoryThreadedSimd.toString()');
    expect(patched).toContain(
      '`var WasmBackendModuleThreadedSimd = ` +\n                    __kvkitThreadedSimdFactorySource]',
    );
    expect(patched).toContain('\nglobalThis.__KVKIT_WASM_THREADS__ = true;\n');
    // Every line before the patched one is unchanged, so positions there stay valid.
    const cut = backendCode.indexOf('wasmFactoryThreadedSimd.toString()');
    expect(patched.slice(0, cut)).toBe(backendCode.slice(0, cut));
    expect(patched.split('\n').length).toBe(backendCode.split('\n').length + 3);
  });

  it("gives the worker a script that defines the factory without the module's scope", () => {
    // What the worker evaluates: the declaration + the embedded source, with nothing around it.
    const script = `var WasmBackendModuleThreadedSimd = ${embeddedFactory(patchBackendWasm(backendCode, backendId)!)}`;
    const factory = new Function(`${script}; return WasmBackendModuleThreadedSimd;`)();
    expect(typeof factory).toBe('function');
    expect(factory.length).toBe(1); // function(WasmBackendModuleThreadedSimd) { ... }
    expect(String(factory)).toContain('GROWABLE_HEAP_I8');
  });

  it('takes the factory expression from the package file, not the whole file', () => {
    const expression = threadedFactorySource(factoryFile)!;
    expect(expression.startsWith('(() => {')).toBe(true);
    expect(expression.endsWith('})()')).toBe(true);
    expect(expression).not.toContain('module.exports');
    expect(threadedFactorySource('module.exports = 1;')).toBeNull();
  });

  it('leaves code it does not know alone, and the plugin warns', () => {
    expect(patchBackendWasm('export const x = 1;', backendId)).toBeNull();
    const twice = `${backendCode}\nwasmFactoryThreadedSimd.toString();`;
    expect(patchBackendWasm(twice, backendId)).toBeNull();
    expect(patchBackendWasm(backendCode, '/nowhere/dist/backend_wasm.js')).toBeNull();

    const warn = vi.fn();
    const plugin = kvkitWasm();
    expect(plugin.transform.call({ warn }, 'export {};', backendId)).toBeNull();
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('threaded wasm build stays off'));
    expect(plugin.transform.call({ warn }, 'export {};', '/app/src/main.ts')).toBeNull();
    expect(plugin.transform.call({ warn }, backendCode, backendId)?.code).toContain(
      '__KVKIT_WASM_THREADS__',
    );
  });

  it('marks threads safe in the dev server page only (vite build patches the module instead)', () => {
    const dev = kvkitWasm();
    dev.configResolved({ base: '/', command: 'serve' });
    expect(dev.transformIndexHtml('')[0]!.children).toBe(
      'globalThis.__KVKIT_WASM_PATHS__ = "/tfjs-wasm/"; globalThis.__KVKIT_WASM_THREADS__ = true',
    );
    const build = kvkitWasm();
    build.configResolved({ base: '/', command: 'build' });
    expect(build.transformIndexHtml('')[0]!.children).not.toContain('THREADS');
  });
});

describe('the Vite versions the plugin supports', () => {
  it('is quiet on Vite 7 and 8', () => {
    expect(viteVersionWarning('7.3.8')).toBeNull();
    expect(viteVersionWarning('8.3.8', ['chrome107'])).toBeNull();
  });

  it('warns on an untested major', () => {
    expect(viteVersionWarning('9.0.0')).toMatch(/tested with Vite 7 and 8, not with Vite 9\.0\.0/);
    expect(viteVersionWarning('6.0.0')).toMatch(/not with Vite 6\.0\.0/);
  });

  it('warns on Vite 6 or older only when the target rejects top-level await', () => {
    const modules = ['es2020', 'edge88', 'firefox78', 'chrome87', 'safari14'];
    expect(viteVersionWarning(undefined, modules)).toMatch(
      /builds for es2020, edge88, firefox78, chrome87, safari14.*'es2022'/,
    );
    expect(viteVersionWarning(undefined, 'es2022')).toBeNull();
    expect(viteVersionWarning(undefined, ['esnext'])).toBeNull();
    expect(viteVersionWarning(undefined, undefined)).toBeNull();
  });

  it('reads the version Vite 7+ gives its config hook, and warns through the logger', () => {
    const warn = vi.fn();
    const plugin = kvkitWasm();
    plugin.config.call({ meta: { viteVersion: '9.1.0' } });
    plugin.configResolved({ base: '/', command: 'build', logger: { warn } });
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('not with Vite 9.1.0'));

    const quiet = vi.fn();
    const current = kvkitWasm();
    current.config.call({ meta: { viteVersion: '8.3.8' } });
    current.configResolved({ base: '/', command: 'build', logger: { warn: quiet } });
    expect(quiet).not.toHaveBeenCalled();
  });
});

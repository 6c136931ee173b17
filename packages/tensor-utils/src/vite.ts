/** @module vite */
// A Vite plugin that serves (dev) and emits (build) the tfjs wasm binaries, tells
// initBackend('wasm') where they are, and makes tfjs' threaded build start from a minified
// bundle. Runs in the Vite config, in Node. Vite is not a dependency of this package (an
// optional peer): the shapes of the few Vite objects used are declared below.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { isBackendWasmModule, patchBackendWasm, wasmThreadsGlobal } from './vite-threads.ts';

/** The Vite major versions this plugin is tested with (a fresh app of each, in the test command). */
export const supportedViteMajors = [7, 8] as const;

/** The three binaries tfjs-backend-wasm chooses from (plain, SIMD, threads + SIMD). */
export const wasmFileNames = [
  'tfjs-backend-wasm.wasm',
  'tfjs-backend-wasm-simd.wasm',
  'tfjs-backend-wasm-threaded-simd.wasm',
] as const;

export type WasmFileName = (typeof wasmFileNames)[number];

export interface KvkitWasmOptions {
  /** Sub-folder of the app's `base` the binaries are served from. Default `'tfjs-wasm/'`. */
  base?: string;
}

/** The global initBackend reads (see backend.ts). */
const wasmPathsGlobal = '__KVKIT_WASM_PATHS__';

// Minimal structural views of Vite's objects: a real ResolvedConfig, ViteDevServer and
// plugin context are assignable to them, and tests can pass plain objects.

interface ConfigLike {
  base: string;
  command?: 'build' | 'serve';
  build?: { target?: string | false | readonly string[] };
  logger?: { warn(message: string): void };
}

/** `this` in the `config` hook: Vite 7 and later say which Vite runs the plugin. */
interface ConfigContextLike {
  meta?: { viteVersion?: string };
}

interface TransformContextLike {
  warn(message: string): void;
}

interface RequestLike {
  url?: string | undefined;
  method?: string | undefined;
}

interface ResponseLike {
  statusCode: number;
  setHeader(name: string, value: string | number): unknown;
  end(body?: Uint8Array): unknown;
}

type Middleware = (req: RequestLike, res: ResponseLike, next: (err?: unknown) => void) => void;

interface DevServerLike {
  config: ConfigLike;
  middlewares: { use(fn: Middleware): unknown };
}

interface EmitContextLike {
  emitFile(file: { type: 'asset'; fileName: string; source: Uint8Array }): string;
}

interface HtmlTagLike {
  tag: string;
  children: string;
  injectTo: 'head-prepend';
}

/** The plugin object, typed structurally so it fits in Vite's `plugins` array. */
export interface KvkitWasmPlugin {
  name: 'kvkit-wasm';
  config(this: ConfigContextLike | undefined): void;
  configResolved(config: ConfigLike): void;
  transform(
    this: TransformContextLike,
    code: string,
    id: string,
  ): { code: string; map: null } | null;
  configureServer(server: DevServerLike): void;
  generateBundle(this: EmitContextLike, options: unknown, bundle: unknown): void;
  transformIndexHtml(html: string): HtmlTagLike[];
}

/**
 * Serves the tfjs wasm binaries under `<base>tfjs-wasm/` in dev, emits them there in the build,
 * and injects a script setting the global `initBackend('wasm')` passes to `setWasmPaths`.
 * In a cross-origin-isolated page (COOP/COEP headers) the browser allows tfjs' threaded build;
 * the plugin patches tfjs so that build's worker starts from a minified bundle too, and tells
 * initBackend it may use it. Tested with Vite 7 and 8 (and VitePress 1.6's Vite 5); under
 * another Vite it warns (Vite 6 rejects top-level `await` in app code unless `build.target`
 * is es2022 or later; kvkit's own code has none).
 *
 * @example
 * // vite.config.ts
 * import { defineConfig } from 'vite';
 * import { kvkitWasm } from '@kvkit/tensor-utils/vite';
 *
 * export default defineConfig({
 *   plugins: [kvkitWasm()],
 * });
 *
 * // src/main.ts
 * import { initBackend } from '@kvkit/tensor-utils';
 * await initBackend('wasm'); // { backend: 'wasm', wasmBinary: 'simd' }
 */
export function kvkitWasm(options: KvkitWasmOptions = {}): KvkitWasmPlugin {
  const folder = normaliseFolder(options.base ?? 'tfjs-wasm/');
  const files = locateBinaries();
  const bytes = new Map<string, Uint8Array>();
  const read = (name: WasmFileName): Uint8Array => {
    let data = bytes.get(name);
    if (data === undefined) {
      data = readFileSync(files[name]);
      bytes.set(name, data);
    }
    return data;
  };
  let base = '/';
  let command: 'build' | 'serve' = 'build';
  let viteVersion: string | undefined;

  return {
    name: 'kvkit-wasm',

    config() {
      viteVersion = this?.meta?.viteVersion;
    },

    configResolved(config) {
      base = config.base;
      command = config.command ?? 'build';
      const warning = viteVersionWarning(
        viteVersion,
        command === 'build' ? config.build?.target : undefined,
      );
      if (warning) (config.logger ?? console).warn(warning);
    },

    transform(code, id) {
      if (!isBackendWasmModule(id)) return null;
      const patched = patchBackendWasm(code, id);
      if (patched === null) {
        this.warn(
          `${id} is not the tfjs-backend-wasm 4.22 code this plugin knows: the threaded wasm build stays off`,
        );
        return null;
      }
      return { code: patched, map: null };
    },

    configureServer(server) {
      // Added before Vite's own middlewares, so the URL still starts with the app's base.
      server.middlewares.use((req, res, next) => {
        const path = (req.url ?? '').split(/[?#]/)[0] ?? '';
        const prefix = `${server.config.base}${folder}`;
        const name = path.startsWith(prefix) ? path.slice(prefix.length) : '';
        if (!isWasmFileName(name) || (req.method !== 'GET' && req.method !== 'HEAD')) {
          next();
          return;
        }
        const data = read(name);
        res.statusCode = 200;
        res.setHeader('Content-Type', 'application/wasm');
        res.setHeader('Content-Length', data.byteLength);
        res.setHeader('Cache-Control', 'no-cache');
        res.end(req.method === 'HEAD' ? undefined : data);
      });
    },

    generateBundle() {
      for (const name of wasmFileNames) {
        this.emitFile({ type: 'asset', fileName: `${folder}${name}`, source: read(name) });
      }
    },

    transformIndexHtml() {
      // `<` is escaped so a base can never close the script element.
      const value = JSON.stringify(`${base}${folder}`).replaceAll('<', '\\u003c');
      // `vite dev` does not minify, so there the threaded worker's source is intact.
      const threads = command === 'serve' ? `; globalThis.${wasmThreadsGlobal} = true` : '';
      return [
        {
          tag: 'script',
          children: `globalThis.${wasmPathsGlobal} = ${value}${threads}`,
          injectTo: 'head-prepend',
        },
      ];
    },
  };
}

/**
 * Warns when the plugin runs under a Vite it is not tested with: a major after the last tested
 * one, or Vite 6 or older (which has no `this.meta.viteVersion`) building for a target without
 * top-level await. kvkit's published code has none, but the examples in its docs use it, and
 * Vite 6 rejects it unless `build.target` is es2022 or later. Returns the warning, or null.
 */
export function viteVersionWarning(
  version: string | undefined,
  target?: string | false | readonly string[],
): string | null {
  const supported = supportedViteMajors.join(' and ');
  if (version === undefined) {
    const targets = target === undefined || target === false ? [] : [target].flat();
    const old = targets.filter((t) =>
      /^(es20(1\d|20|21)|es[56]|chrome8\d|safari1[0-4]|firefox7\d|edge8\d)$/.test(t),
    );
    return old.length > 0
      ? `kvkitWasm: tested with Vite ${supported}; this Vite (6 or older) builds for ${old.join(', ')}, ` +
          "where top-level await in your code fails to build: set build.target to 'es2022' or later, or upgrade Vite."
      : null;
  }
  const major = Number.parseInt(version, 10);
  return supportedViteMajors.includes(major as 7 | 8)
    ? null
    : `kvkitWasm: tested with Vite ${supported}, not with Vite ${version}`;
}

function isWasmFileName(name: string): name is WasmFileName {
  return (wasmFileNames as readonly string[]).includes(name);
}

/** `'/tfjs-wasm'` -> `'tfjs-wasm/'`; `''` stays `''` (the binaries sit at the app's base). */
function normaliseFolder(folder: string): string {
  const trimmed = folder.replace(/^\/+|\/+$/g, '');
  if (trimmed.split('/').some((part) => part === '..' || part === '.')) {
    throw new Error(`kvkitWasm: base must be a plain sub-folder, got '${folder}'`);
  }
  return trimmed === '' ? '' : `${trimmed}/`;
}

/** Paths of the three binaries in the installed @tensorflow/tfjs-backend-wasm. */
function locateBinaries(): Record<WasmFileName, string> {
  let pkgJson: string;
  try {
    pkgJson = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json');
  } catch (cause) {
    throw new Error(
      'kvkitWasm: cannot find @tensorflow/tfjs-backend-wasm; install it next to @kvkit/tensor-utils',
      { cause },
    );
  }
  const dist = join(dirname(pkgJson), 'dist');
  const paths = Object.fromEntries(wasmFileNames.map((name) => [name, join(dist, name)]));
  const missing = wasmFileNames.filter((name) => !existsSync(paths[name]!));
  if (missing.length > 0) {
    throw new Error(`kvkitWasm: ${missing.join(', ')} not found in ${dist}`);
  }
  return paths as Record<WasmFileName, string>;
}

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kvkitWasm, wasmFileNames } from './vite.ts';

const wasmDist = join(
  dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json')),
  'dist',
);
const wasmMagic = [0x00, 0x61, 0x73, 0x6d]; // "\0asm"

/** Installs the plugin's middleware on a fake dev server and returns a fake `fetch` for it. */
function fakeServer(plugin: ReturnType<typeof kvkitWasm>, base = '/') {
  const middlewares: Parameters<
    Parameters<typeof plugin.configureServer>[0]['middlewares']['use']
  >[0][] = [];
  plugin.configureServer({ config: { base }, middlewares: { use: (fn) => middlewares.push(fn) } });
  expect(middlewares).toHaveLength(1);
  return (url: string, method = 'GET') => {
    const res = {
      statusCode: 0,
      headers: {} as Record<string, string | number>,
      body: undefined as Uint8Array | undefined,
      ended: false,
      passedOn: false,
      setHeader(name: string, value: string | number) {
        this.headers[name.toLowerCase()] = value;
      },
      end(body?: Uint8Array) {
        this.body = body;
        this.ended = true;
      },
    };
    middlewares[0]!({ url, method }, res, () => {
      res.passedOn = true;
    });
    return res;
  };
}

describe('kvkitWasm', () => {
  it('serves the three binaries under <base>tfjs-wasm/ in dev, as application/wasm', () => {
    const get = fakeServer(kvkitWasm());
    for (const name of wasmFileNames) {
      const res = get(`/tfjs-wasm/${name}?v=1`);
      expect(res.passedOn).toBe(false);
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('application/wasm');
      expect(Buffer.from(res.body!).equals(readFileSync(join(wasmDist, name)))).toBe(true);
      expect([...res.body!.subarray(0, 4)]).toEqual(wasmMagic);
      expect(res.headers['content-length']).toBe(res.body!.byteLength);
    }
  });

  it('passes every other request on to the next middleware', () => {
    const get = fakeServer(kvkitWasm());
    for (const url of [
      '/',
      '/index.html',
      '/tfjs-wasm/',
      '/tfjs-wasm/other.wasm',
      '/tfjs-backend-wasm.wasm',
    ]) {
      const res = get(url);
      expect(res.passedOn, url).toBe(true);
      expect(res.ended, url).toBe(false);
    }
    expect(get('/tfjs-wasm/tfjs-backend-wasm.wasm', 'POST').passedOn).toBe(true);
  });

  it('answers HEAD without a body', () => {
    const res = fakeServer(kvkitWasm())('/tfjs-wasm/tfjs-backend-wasm-simd.wasm', 'HEAD');
    expect(res.statusCode).toBe(200);
    expect(res.ended).toBe(true);
    expect(res.body).toBeUndefined();
  });

  it("honours Vite's base and the sub-folder option", () => {
    const get = fakeServer(kvkitWasm({ base: '/wasm' }), '/app/');
    expect(get('/app/wasm/tfjs-backend-wasm.wasm').statusCode).toBe(200);
    expect(get('/wasm/tfjs-backend-wasm.wasm').passedOn).toBe(true);
    expect(get('/app/tfjs-wasm/tfjs-backend-wasm.wasm').passedOn).toBe(true);
  });

  it('emits the three binaries as assets at <sub-folder><name> in the build', () => {
    const emitted: { type: string; fileName: string; source: Uint8Array }[] = [];
    const plugin = kvkitWasm();
    plugin.configResolved({ base: '/' });
    plugin.generateBundle.call(
      {
        emitFile: (file) => {
          emitted.push(file);
          return file.fileName;
        },
      },
      {},
      {},
    );
    expect(emitted.map((f) => f.fileName)).toEqual([
      'tfjs-wasm/tfjs-backend-wasm.wasm',
      'tfjs-wasm/tfjs-backend-wasm-simd.wasm',
      'tfjs-wasm/tfjs-backend-wasm-threaded-simd.wasm',
    ]);
    for (const file of emitted) {
      expect(file.type).toBe('asset');
      const name = file.fileName.slice('tfjs-wasm/'.length);
      expect(Buffer.from(file.source).equals(readFileSync(join(wasmDist, name)))).toBe(true);
    }
  });

  it('injects the script that tells initBackend where the binaries are', () => {
    const plugin = kvkitWasm();
    plugin.configResolved({ base: '/' });
    expect(plugin.transformIndexHtml('<html></html>')).toEqual([
      {
        tag: 'script',
        children: 'globalThis.__KVKIT_WASM_PATHS__ = "/tfjs-wasm/"',
        injectTo: 'head-prepend',
      },
    ]);

    const relative = kvkitWasm({ base: 'bin/wasm/' });
    relative.configResolved({ base: './' });
    expect(relative.transformIndexHtml('')[0]!.children).toBe(
      'globalThis.__KVKIT_WASM_PATHS__ = "./bin/wasm/"',
    );

    const odd = kvkitWasm();
    odd.configResolved({ base: '/</script>/' });
    expect(odd.transformIndexHtml('')[0]!.children).not.toContain('</script>');
  });

  it('rejects a sub-folder that leaves the base', () => {
    expect(() => kvkitWasm({ base: '../up' })).toThrow(/plain sub-folder/);
  });
});

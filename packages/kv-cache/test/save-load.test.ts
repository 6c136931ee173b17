import { CacheCapacityError, FormatError, initBackend } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import {
  attend,
  DynamicKVCache,
  inspectCacheFile,
  KernelHeap,
  type KVCache,
  loadCache,
  PagedKVCache,
  SinkKVCache,
  SlidingWindowKVCache,
  StaticKVCache,
} from '../src/index.ts';
import { crc32Bitwise, parseFile, rewrite, writeFile } from './cache-file-reader.ts';
import { randomFloats } from './reference.ts';
import { state } from './support.ts';

// save() -> bytes -> load: the file is what the format page says (read here by an independent
// reader), a loaded cache decodes on bit for bit as the saved one, and every damaged, truncated,
// wrong-version, wrong-strategy or wrong-config file is refused with a FormatError naming the
// failed check, having allocated nothing and changed nothing.

// The corrupted-file table is built from a saved file when the tests are collected.
await initBackend('wasm');

const B = 3;
const dims = { nLayers: 2, nKvHeads: 2, headSize: 3 };
type Make = (heap: KernelHeap) => KVCache;
const strategies: [string, Make][] = [
  ['static', (heap) => new StaticKVCache({ ...dims, maxBatchSize: 4, capacity: 40, heap })],
  ['dynamic', (heap) => new DynamicKVCache({ ...dims, initialSlots: 2, heap })],
  ['sliding-window', (heap) => new SlidingWindowKVCache({ ...dims, window: 5, heap })],
  ['sink', (heap) => new SinkKVCache({ ...dims, sinkTokens: 2, window: 3, heap })],
  ['paged', (heap) => new PagedKVCache({ ...dims, blockSize: 4, numBlocks: 64, heap })],
];

/** Random chunks into every row of every layer (rows of different lengths, rings wrapped). */
function feed(cache: KVCache, steps: number, seed: number): void {
  let salt = seed;
  for (let step = 0; step < steps; step++) {
    const rows = 1 + (step % B);
    for (let layer = 0; layer < cache.nLayers; layer++) {
      const starts = Array.from({ length: rows }, (_, b) => cache.seqLength(layer, b));
      const T = Math.min(1 + (step % 3), cache.maxUpdateLength(layer, starts, rows));
      const shape: [number, number, number, number] = [rows, dims.nKvHeads, T, dims.headSize];
      const n = shape.reduce((a, b) => a * b);
      const keys = tf.tensor4d(randomFloats(n, ++salt), shape);
      const values = tf.tensor4d(randomFloats(n, ++salt), shape);
      cache.update(layer, { keys, values }, starts);
      tf.dispose([keys, values]);
    }
  }
}

/** Kernel output for one random query per row over the cache's current view (its bits). */
function attendBits(cache: KVCache, layer: number, seed: number): Uint32Array {
  const view = cache.view(layer, B);
  const nh = 2 * dims.nKvHeads;
  const rowFloats = nh * dims.headSize;
  const heap = cache.heap;
  const q = heap.alloc(B * rowFloats * 4);
  const o = heap.alloc(B * rowFloats * 4);
  heap.f32().set(randomFloats(B * rowFloats, seed), q / 4);
  const startPos = Array.from({ length: B }, (_, b) => Math.max(0, cache.seqLength(layer, b) - 1));
  const rows = { batchStride: rowFloats * 4, rowStride: rowFloats * 4 };
  attend(view, { ptr: q, ...rows, T: 1, nHead: nh, startPos }, { ptr: o, ...rows });
  const out = new Uint32Array(heap.u8().slice(o, o + B * rowFloats * 4).buffer);
  heap.free(q);
  heap.free(o);
  return out;
}

/** What a cache holds (per layer: lengths and the bits of read()). */
function contents(cache: KVCache) {
  return Array.from({ length: cache.nLayers }, (_, l) => {
    const r = cache.read(l, B);
    const out = {
      lengths: Array.from({ length: B }, (_, b) => cache.seqLength(l, b)),
      keys: Array.from(new Uint32Array((r.keys.dataSync() as Float32Array).slice().buffer)),
      values: Array.from(new Uint32Array((r.values.dataSync() as Float32Array).slice().buffer)),
      positions: Array.from(r.positions),
    };
    tf.dispose([r.keys, r.values]);
    return out;
  });
}

describe.each(strategies)('%s: save and load', (name, make) => {
  test('the file is what the format page says: an independent reader finds the rows read() returns', () => {
    const heap = new KernelHeap();
    const cache = make(heap);
    feed(cache, 9, 1);
    cache.crop(Math.max(0, cache.seqLength(0, 2) - 1), { layer: 1, rows: [2] });
    const bytes = cache.save();
    const f = parseFile(bytes);
    expect(f.magic).toEqual([0x89, 0x4b, 0x56, 0x4b, 0x49, 0x54, 0x0d, 0x0a]);
    expect(f.version).toBe(1);
    expect(f.sections.body % 8).toBe(0);
    expect(f.sections.end).toBe(bytes.length);
    expect(f.headerChecksum.stored).toBe(f.headerChecksum.computed);
    expect(f.bodyChecksum.stored).toBe(f.bodyChecksum.computed);
    expect(f.header.strategy).toBe(name);
    expect(f.header.dtype).toBe('float32');
    expect(f.header.config).toEqual(cache.config());
    expect(f.header.rows).toBe(B);
    for (let l = 0; l < dims.nLayers; l++) {
      const r = cache.read(l, B);
      const t = r.keys.shape[2]!;
      const k = r.keys.dataSync() as Float32Array;
      const v = r.values.dataSync() as Float32Array;
      tf.dispose([r.keys, r.values]);
      for (let b = 0; b < B; b++) {
        const slots = cache.slotsHeld(l, b);
        expect(f.header.lengths[l]![b]).toBe(cache.seqLength(l, b));
        expect(f.header.slots[l]![b]).toBe(slots);
        for (let j = 0; j < dims.nKvHeads; j++) {
          const from = (b * dims.nKvHeads + j) * t * dims.headSize;
          const saved = (x: Float32Array) =>
            x.subarray(j * slots * dims.headSize, (j + 1) * slots * dims.headSize);
          expect(saved(f.rows[l]![b]!.keys)).toEqual(
            k.subarray(from, from + slots * dims.headSize),
          );
          expect(saved(f.rows[l]![b]!.values)).toEqual(
            v.subarray(from, from + slots * dims.headSize),
          );
        }
      }
    }
    expect(inspectCacheFile(bytes)).toMatchObject({
      version: 1,
      strategy: name,
      lengths: f.header.lengths,
    });
    cache.dispose();
  });

  test('save -> load -> continue equals continuing in memory, bit for bit', () => {
    const heap = new KernelHeap();
    const cache = make(heap);
    feed(cache, 7, 2);
    const loaded = loadCache(cache.save(), { heap });
    expect(loaded.strategy).toBe(name);
    expect(loaded.config()).toEqual(cache.config());
    expect(contents(loaded)).toEqual(contents(cache));
    for (let round = 0; round < 6; round++) {
      feed(cache, 1, 100 + round);
      feed(loaded, 1, 100 + round);
      for (let l = 0; l < dims.nLayers; l++) {
        expect(attendBits(loaded, l, round)).toEqual(attendBits(cache, l, round));
      }
    }
    expect(contents(loaded)).toEqual(contents(cache));
    // load into an existing cache of the same config replaces what it held
    const other = make(heap);
    feed(other, 4, 3);
    other.load(cache.save());
    expect(contents(other)).toEqual(contents(cache));
    for (const c of [cache, loaded, other]) c.dispose();
    expect(heap.bytesAllocated()).toBe(0);
  });

  test('a file too big for the budget changes nothing', () => {
    const heap = new KernelHeap();
    const cache = make(heap);
    feed(cache, 6, 4);
    const bytes = cache.save();
    const small = new KernelHeap({ initialBytes: 65536, maximumBytes: 65536 });
    const tiny = loadCache(make(small).save(), { heap: small, maxBytes: 64 });
    const before = { state: state(tiny, B), live: small.bytesAllocated() };
    expect(() => tiny.load(bytes)).toThrow(CacheCapacityError);
    expect(() => tiny.load(bytes)).toThrow(/over its budget maxBytes = 64/);
    expect({ state: state(tiny, B), live: small.bytesAllocated() }).toEqual(before);
    expect(() => loadCache(bytes, { heap: small, maxBytes: 64 })).toThrow(CacheCapacityError);
    expect(small.bytesAllocated()).toBe(before.live);
    for (const c of [cache, tiny]) c.dispose();
  });
});

describe('corrupted files', () => {
  const heap = new KernelHeap();
  const make = strategies[3]![1]; // sink: 2 layers, rows of different lengths, wrapped rings
  const source = make(heap);
  feed(source, 8, 5);
  const good = source.save();
  const f = parseFile(good);
  const { header: hAt, headerChecksum: hcAt, body: bodyAt, bodyChecksum: bcAt, end } = f.sections;
  const H = f.headerBytes;
  const flip = (at: number, mask = 0x01) => {
    const out = good.slice();
    out[at]! ^= mask;
    return out;
  };
  const setU32 = (at: number, value: number) => {
    const out = good.slice();
    new DataView(out.buffer).setUint32(at, value, true);
    return out;
  };
  const body = good.slice(bodyAt, bcAt);
  const other = (m: () => KVCache) => {
    const c = m();
    feed(c, 3, 6);
    return c;
  };

  // [what, bytes, reason, message, the cache it is loaded into (default: one like the source)]
  const variants: [string, Uint8Array, string, RegExp, (() => KVCache)?][] = [
    [
      'a flipped first magic byte',
      flip(0),
      'magic',
      /not a kvkit cache file: it starts with 88 4b/,
    ],
    ['a flipped last magic byte', flip(7), 'magic', /not a kvkit cache file/],
    [
      'a PNG file',
      Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...good.subarray(8)]),
      'magic',
      /starts with 89 50 4e 47/,
    ],
    [
      'format version 2',
      setU32(8, 2),
      'version',
      /format version 2: this release reads version 1 only/,
    ],
    ['format version 0', setU32(8, 0), 'version', /format version 0/],
    ['a flipped high version byte', flip(11, 0x80), 'version', /format version 2147483649/],
    [
      'a header length one too long',
      setU32(12, H + 1),
      'truncated',
      /ends inside the body checksum/,
    ],
    [
      'a header length four too short',
      setU32(12, H - 4),
      'trailing-bytes',
      /the file is \d+ bytes but its preamble says \d+/,
    ],
    ['a huge header length', flip(15, 0x01), 'header', /header length \d+ exceeds 16777216 bytes/],
    [
      'a body length one too long',
      setU32(16, f.bodyBytes + 1),
      'truncated',
      /ends inside the body checksum/,
    ],
    ['a body length 8 too short', setU32(16, f.bodyBytes - 8), 'trailing-bytes', /preamble says/],
    ['a flipped high body-length byte', flip(23, 0x40), 'truncated', /its preamble says \d+/],
    ['a flipped first header byte', flip(hAt), 'header-checksum', /the header is damaged/],
    [
      'a flipped byte mid-header',
      flip(hAt + Math.floor(H / 2)),
      'header-checksum',
      /the header is damaged/,
    ],
    ['a flipped padding byte', flip(hcAt - 1), 'header-checksum', /the header is damaged/],
    ['a flipped header checksum byte', flip(hcAt), 'header-checksum', /the header is damaged/],
    [
      'a flipped last header checksum byte',
      flip(hcAt + 3, 0x80),
      'header-checksum',
      /the header is damaged/,
    ],
    ['a flipped first body byte', flip(bodyAt), 'body-checksum', /the rows are damaged/],
    [
      'a flipped sign bit mid-body',
      flip(bodyAt + 4 * Math.floor((bcAt - bodyAt) / 8) + 3, 0x80),
      'body-checksum',
      /the rows are damaged/,
    ],
    ['a flipped last body byte', flip(bcAt - 1), 'body-checksum', /the rows are damaged/],
    ['a flipped body checksum byte', flip(bcAt), 'body-checksum', /the rows are damaged/],
    ['a flipped last byte', flip(end - 1, 0x80), 'body-checksum', /the rows are damaged/],
    [
      'no bytes at all',
      good.slice(0, 0),
      'truncated',
      /the file is 0 bytes, shorter than its 24-byte preamble/,
    ],
    ['truncated after the magic', good.slice(0, 8), 'truncated', /the file is 8 bytes/],
    ['truncated after the version', good.slice(0, 12), 'truncated', /the file is 12 bytes/],
    ['truncated after the header length', good.slice(0, 16), 'truncated', /the file is 16 bytes/],
    ['truncated after the preamble', good.slice(0, hAt), 'truncated', /ends inside the header$/],
    ['truncated mid-header', good.slice(0, hAt + 10), 'truncated', /ends inside the header$/],
    [
      'truncated after the header',
      good.slice(0, hcAt),
      'truncated',
      /ends inside the header checksum/,
    ],
    [
      'truncated after the header checksum',
      good.slice(0, bodyAt),
      'truncated',
      /ends inside the body$/,
    ],
    [
      'truncated mid-body',
      good.slice(0, Math.floor((bodyAt + bcAt) / 2)),
      'truncated',
      /ends inside the body$/,
    ],
    ['truncated after the body', good.slice(0, bcAt), 'truncated', /ends inside the body checksum/],
    ['one byte short', good.slice(0, end - 1), 'truncated', /ends inside the body checksum/],
    ['one byte too many', Uint8Array.from([...good, 0]), 'trailing-bytes', /preamble says/],
    [
      'a header that is not JSON',
      writeFile({ raw: '{ not json' }, body),
      'header',
      /the header is not UTF-8 JSON \(SyntaxError/,
    ],
    [
      'a header that is a JSON string',
      rewrite(good, () => 'sink'),
      'header',
      /the header is not a JSON object/,
    ],
    [
      'a header that is not UTF-8',
      writeFile({ raw: Uint8Array.from([0x7b, 0x22, 0xff, 0x22, 0x7d]) }, body),
      'header',
      /not UTF-8 JSON \(TypeError/,
    ],
    [
      'a header without a strategy',
      rewrite(good, (h) => {
        delete h.strategy;
      }),
      'header',
      /strategy must be a name, got undefined/,
    ],
    [
      'an unknown strategy',
      rewrite(good, (h) => {
        h.strategy = 'quantized';
      }),
      'strategy',
      /holds a 'quantized' cache; this release loads static, dynamic, sliding-window, sink, paged|holds a quantized cache; this is a sink cache/,
    ],
    [
      'a sink file loaded into a static cache',
      good,
      'strategy',
      /holds a sink cache; this is a static cache/,
      () => other(() => strategies[0]![1](heap)),
    ],
    [
      'a sink file loaded into a sliding-window cache',
      good,
      'strategy',
      /this is a sliding-window cache/,
      () => other(() => strategies[2]![1](heap)),
    ],
    [
      'int8 rows',
      rewrite(good, (h) => {
        h.dtype = 'int8';
      }),
      'dtype',
      /rows of dtype 'int8': this release reads float32 rows/,
    ],
    [
      'another window',
      good,
      'config',
      /window 3 \(file\) vs 4 \(cache\)/,
      () => new SinkKVCache({ ...dims, sinkTokens: 2, window: 4, heap }),
    ],
    [
      'other head sizes',
      good,
      'config',
      /nKvHeads 2 \(file\) vs 1 \(cache\), headSize 3 \(file\) vs 6 \(cache\)/,
      () => new SinkKVCache({ ...dims, nKvHeads: 1, headSize: 6, sinkTokens: 2, window: 3, heap }),
    ],
    [
      'a window of 0 in the file',
      rewrite(good, (h) => {
        (h.config as Record<string, number>).window = 0;
      }),
      'config',
      /no sink cache has the file's config: KV cache window must be a positive integer|window 0 \(file\) vs 3 \(cache\)/,
    ],
    [
      'a fractional head size',
      rewrite(good, (h) => {
        (h.config as Record<string, number>).headSize = 2.5;
      }),
      'config',
      /config.headSize must be an integer or null, got 2.5/,
    ],
    [
      'a missing maxBatchSize',
      rewrite(good, (h) => {
        delete (h.config as Record<string, number>).maxBatchSize;
      }),
      'config',
      /config.maxBatchSize is missing/,
    ],
    [
      'lengths for one layer of two',
      rewrite(good, (h) => {
        (h.lengths as number[][]).pop();
      }),
      'lengths',
      /lengths must list 2 layer\(s\)/,
    ],
    [
      'slots the strategy would not hold',
      rewrite(
        good,
        (h) => {
          const s = h.slots as number[][];
          s[0]![0]! -= 1;
        },
        body.slice(0, body.length - 2 * 2 * 3 * 4),
      ),
      'lengths',
      /so a sink cache holds 5 slots, not 4/,
    ],
    [
      'more slots than positions',
      rewrite(good, (h) => {
        (h.lengths as number[][])[1]![2] = 0;
      }),
      'lengths',
      /row 2 of layer 1 holds \d+ slots but has seen 0 positions/,
    ],
    [
      'a body shorter than the slots need',
      rewrite(good, () => undefined, body.slice(0, body.length - 4)),
      'lengths',
      /the body is \d+ bytes but the held slots need \d+/,
    ],
  ];

  test('at least 30 variants, and the independent CRC-32 is the standard one', () => {
    expect(variants.length).toBeGreaterThanOrEqual(30);
    expect(crc32Bitwise(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });

  const table = variants.map(([what, bytes, reason, message, target]) => ({
    what,
    bytes,
    reason,
    message,
    target,
  }));
  test.each(table)(
    '$what: refused ($reason), nothing allocated, nothing changed',
    ({ bytes, reason, message, target }) => {
      const live = heap.bytesAllocated();
      const refused = (call: () => unknown) => {
        let error: unknown;
        try {
          call();
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(FormatError);
        expect(error).toMatchObject({ format: 'kvkit-kv-cache', reason });
        expect((error as Error).message).toMatch(message);
      };
      const cache = (target ?? (() => other(() => make(heap))))();
      const before = { state: state(cache, B), live: heap.bytesAllocated() };
      refused(() => cache.load(bytes));
      expect({ state: state(cache, B), live: heap.bytesAllocated() }).toEqual(before);
      cache.dispose();
      expect(heap.bytesAllocated()).toBe(live);
      if (target === undefined) {
        refused(() => loadCache(bytes, { heap }));
        expect(heap.bytesAllocated()).toBe(live);
      }
    },
  );
});

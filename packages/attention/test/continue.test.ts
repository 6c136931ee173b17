import {
  type CacheShape,
  type CacheSpec,
  DynamicKVCache,
  type KVCache,
  loadCache,
} from '@kvkit/kv-cache';
import { CacheCapacityError, rand, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { CausalSelfAttention, GPT } from '../src/index.ts';
import { bits, setupBackend } from './support.ts';

// A cache saved to bytes and loaded again, cloned, or forked (one row into a cache of its own)
// decodes on exactly as the original does: the same outputs, bit for bit.

beforeAll(setupBackend);

const C = 16;
const specs: [string, CacheSpec][] = [
  ['static', 'static'],
  ['dynamic', 'dynamic'],
  ['sliding-window', { strategy: 'sliding-window', window: 6 }],
  ['sink', { strategy: 'sink', window: 5, sinkTokens: 2 }],
];
const config = {
  ...GPT.getDefaultConfig(),
  nEmbd: C,
  nHead: 4,
  nKvHeads: 2,
  blockSize: 32,
  maxBatchSize: 2,
};

function build(cache: CacheSpec, implementation: 'kernel' | 'reference') {
  setSeed(41);
  return new CausalSelfAttention(config, { cache, implementation }).eval();
}

/** Decodes x[:, from:to) one token at a time; returns the outputs' bits. */
function decode(mha: CausalSelfAttention, x: tf.Tensor, from: number, to: number, rows?: number) {
  const B = rows ?? x.shape[0]!;
  const out: (Uint32Array | null)[] = [];
  for (let p = from; p < to; p++) {
    const t = tf.slice(x, [0, p, 0], [B, 1, C]);
    const y = mha.forward(t, { useKvCache: true, startPos: p });
    out.push(bits(y));
    tf.dispose([t, y]);
  }
  return out;
}

describe.each(specs)('%s cache', (_, spec) => {
  test.each(['kernel', 'reference'] as const)(
    '%s path: save -> load and clone decode on bit for bit; a fork holds its row bit for bit and decodes on alone',
    (impl) => {
      setSeed(12);
      const x = rand([2, 20, C]);
      const a = build(spec, impl);
      const prompt = tf.slice(x, [0, 0, 0], [2, 7, C]);
      a.forward(prompt, { useKvCache: true }).dispose();
      decode(a, x, 7, 10); // rings have wrapped by now
      const copies: [string, KVCache][] = [
        ['loaded', loadCache(a.kvCache!.save())],
        ['cloned', a.kvCache!.clone()],
      ];
      const forked = a.kvCache!.fork(1); // row 1 alone
      const copyOf = build(spec, impl).useCache(a.kvCache!.clone()); // to run the batch on later
      // The fork holds row 1's keys and values bit for bit...
      const held = (cache: KVCache, row: number) => {
        const r = cache.read(0, row + 1);
        const t = r.keys.shape[2]!;
        const per = (r.keys.shape[1]! * t * C) / 4; // nkv * t * hs floats per row
        const out = [r.keys, r.values].map((v) =>
          Array.from(v.dataSync().subarray(row * per, (row + 1) * per)),
        );
        tf.dispose([r.keys, r.values]);
        return out;
      };
      expect(held(forked, 0)).toEqual(held(a.kvCache!, 1));
      const want = decode(a, x, 10, 20);
      for (const [, cache] of copies) {
        const b = build(spec, impl).useCache(cache);
        expect(decode(b, x, 10, 20)).toEqual(want);
        b.dispose();
        cache.dispose();
      }
      // ...and row 1 alone goes on as row 1 of the batch does: to float32 rounding, since the
      // projections of one row run through the matrix-vector kernel and a batch's through
      // XNNPACK (the bits of a row need not be the same alone and in a batch).
      const row1 = tf.slice(x, [1, 0, 0], [1, 20, C]);
      const c = build(spec, impl).useCache(forked);
      let worst = 0;
      for (let p = 10; p < 20; p++) {
        const [one, both] = [
          tf.slice(row1, [0, p, 0], [1, 1, C]),
          tf.slice(x, [0, p, 0], [2, 1, C]),
        ];
        const [y1, y2] = [
          c.forward(one, { useKvCache: true, startPos: p }),
          copyOf.forward(both, { useKvCache: true, startPos: p }),
        ];
        const d = tf.tidy(
          () => tf.max(tf.abs(tf.sub(y1, tf.slice(y2, [1, 0, 0], [1, 1, C])))).dataSync()[0]!,
        );
        worst = Math.max(worst, d);
        tf.dispose([one, both, y1, y2]);
      }
      expect(worst).toBeLessThanOrEqual(1e-6);
      tf.dispose([x, prompt, row1]);
      for (const m of [a, c, copyOf]) m.dispose();
      forked.dispose();
    },
  );
});

test('a budget the next step would pass: forward throws CacheCapacityError and changes nothing', () => {
  // 2 rows x 2 kv heads x 4 floats: 64 bytes of keys per slot, so 4096 bytes hold ~31 slots.
  const spec = (shape: CacheShape) =>
    new DynamicKVCache({ ...shape, initialSlots: 4, maxBytes: 4096 });
  const mha = build(spec, 'kernel');
  setSeed(13);
  const x = rand([2, 40, C]);
  let refused: unknown = null;
  let seen = 0;
  for (let p = 0; p < 40 && refused === null; p++) {
    const t = tf.slice(x, [0, p, 0], [2, 1, C]);
    const before = {
      length: mha.kvCache?.seqLength() ?? 0,
      reserved: mha.kvCache?.bytesReserved() ?? 0,
      tensors: tf.memory().numTensors,
    };
    try {
      mha.forward(t, { useKvCache: true, startPos: p }).dispose();
      seen = p + 1;
    } catch (error) {
      refused = error;
      expect({
        length: mha.kvCache!.seqLength(),
        reserved: mha.kvCache!.bytesReserved(),
        tensors: tf.memory().numTensors,
      }).toEqual(before);
    }
    t.dispose();
  }
  expect(refused).toBeInstanceOf(CacheCapacityError);
  expect((refused as Error).message).toMatch(/over its budget maxBytes/);
  expect(mha.kvCache!.bytesReserved()).toBeLessThanOrEqual(mha.kvCache!.maxBytes!);
  expect(seen).toBe(31); // 2 x 64 x 31 + 48 = 4016 <= 4096 < 2 x 64 x 32 + 48: as far as the budget allows
  x.dispose();
  mha.dispose();
});

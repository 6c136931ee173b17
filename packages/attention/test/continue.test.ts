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
    '%s path: save -> load, clone and fork decode on bit for bit',
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
      const want = decode(a, x, 10, 20);
      for (const [, cache] of copies) {
        const b = build(spec, impl).useCache(cache);
        expect(decode(b, x, 10, 20)).toEqual(want);
        b.dispose();
        cache.dispose();
      }
      // the fork: row 1 alone goes on as row 1 of the batch did
      const row1 = tf.slice(x, [1, 0, 0], [1, 20, C]);
      const c = build(spec, impl).useCache(forked);
      const got = decode(c, row1, 10, 20);
      const ref = build(spec, impl);
      const prompt1 = tf.slice(row1, [0, 0, 0], [1, 7, C]);
      ref.forward(prompt1, { useKvCache: true }).dispose();
      decode(ref, row1, 7, 10);
      expect(got).toEqual(decode(ref, row1, 10, 20));
      tf.dispose([x, prompt, row1, prompt1]);
      for (const m of [a, c, ref]) m.dispose();
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

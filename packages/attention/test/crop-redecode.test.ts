import type { CacheSpec } from '@kvkit/kv-cache';
import { CacheOperationError, maxAbsDiff, rand, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { CausalSelfAttention, GPT } from '../src/index.ts';
import { bits, setupBackend } from './support.ts';

// "Regenerate" and speculative decoding drop the last tokens: crop(k), then decode on. That
// must equal a fresh run that only ever saw the kept prefix (same chunks), bit for bit.

beforeAll(setupBackend);

const C = 16;
const PROMPT = 6;
const SEEN = 20;
const KEEP = 10;
const specs: [string, CacheSpec][] = [
  ['static', 'static'],
  ['dynamic', 'dynamic'],
  ['sliding-window', { strategy: 'sliding-window', window: 24 }],
  ['sink', { strategy: 'sink', window: 22, sinkTokens: 2 }],
];

function build(B: number, cache: CacheSpec, implementation: 'kernel' | 'reference') {
  setSeed(31);
  return new CausalSelfAttention(
    { ...GPT.getDefaultConfig(), nEmbd: C, nHead: 4, nKvHeads: 2, blockSize: 32, maxBatchSize: B },
    { cache, implementation },
  ).eval();
}

/** Prefills x[:, 0:PROMPT) then decodes x[:, PROMPT:end) one token at a time. */
function run(mha: CausalSelfAttention, x: tf.Tensor, end: number, from = 0): tf.Tensor[] {
  const [B] = x.shape as [number];
  const out: tf.Tensor[] = [];
  for (let p = from; p < end; p = p < PROMPT ? PROMPT : p + 1) {
    const n = p < PROMPT ? PROMPT - p : 1;
    const chunk = tf.slice(x, [0, p, 0], [B, n, C]);
    out.push(mha.forward(chunk, { useKvCache: true, startPos: p }));
    chunk.dispose();
  }
  return out;
}

/** The bits of everything the cache holds for rows [0, B). */
function held(mha: CausalSelfAttention, B: number) {
  const r = mha.kvCache!.read(0, B);
  const out = { k: bits(r.keys), v: bits(r.values), positions: Array.from(r.positions) };
  tf.dispose([r.keys, r.values]);
  return out;
}

describe.each(specs)('%s cache', (_, spec) => {
  test.each([
    ['kernel', 'crop()'],
    ['reference', 'crop()'],
    ['kernel', 'startPos below the length'],
    ['reference', 'startPos below the length'],
  ] as const)(
    '%s path, %s: crop then re-decode equals a fresh run on the kept prefix, bit for bit',
    (impl, how) => {
      setSeed(8);
      const x = rand([1, SEEN, C]);
      const redo = rand([1, 6, C]); // the regenerated tokens
      const cropped = build(1, spec, impl);
      tf.dispose(run(cropped, x, SEEN));
      if (how === 'crop()') cropped.kvCache!.crop(KEEP);
      const fresh = build(1, spec, impl);
      tf.dispose(run(fresh, x, KEEP));
      for (let i = 0; i < 6; i++) {
        const t = tf.slice(redo, [0, i, 0], [1, 1, C]);
        const a = cropped.forward(t, { useKvCache: true, startPos: KEEP + i });
        const b = fresh.forward(t, { useKvCache: true, startPos: KEEP + i });
        expect(bits(a)).toEqual(bits(b));
        tf.dispose([t, a, b]);
      }
      expect(held(cropped, 1)).toEqual(held(fresh, 1));
      tf.dispose([x, redo]);
      cropped.dispose();
      fresh.dispose();
    },
  );

  test('one row cropped in a batch of two: each row goes on as it would alone (1e-6)', () => {
    setSeed(9);
    const x = rand([2, SEEN, C]);
    const next = rand([2, 4, C]);
    const batch = build(2, spec, 'kernel');
    tf.dispose(run(batch, x, SEEN));
    batch.kvCache!.crop(KEEP, { rows: [1] });
    const outs: tf.Tensor[] = [];
    for (let i = 0; i < 4; i++) {
      const t = tf.slice(next, [0, i, 0], [2, 1, C]);
      outs.push(batch.forward(t, { useKvCache: true, startPos: [SEEN + i, KEEP + i] }));
      t.dispose();
    }
    let worst = 0;
    for (const [row, length] of [
      [0, SEEN],
      [1, KEEP],
    ] as const) {
      const alone = build(1, spec, 'kernel');
      const xr = tf.slice(x, [row, 0, 0], [1, SEEN, C]);
      tf.dispose(run(alone, xr, length));
      for (let i = 0; i < 4; i++) {
        const t = tf.slice(next, [row, i, 0], [1, 1, C]);
        const want = alone.forward(t, { useKvCache: true, startPos: length + i });
        const got = tf.slice(outs[i]!, [row, 0, 0], [1, 1, C]);
        worst = Math.max(worst, maxAbsDiff(got, want));
        tf.dispose([t, want, got]);
      }
      xr.dispose();
      alone.dispose();
    }
    expect(worst).toBeLessThanOrEqual(1e-6);
    tf.dispose([x, next, ...outs]);
    batch.dispose();
  });
});

test('a ring that has evicted what the shorter sequence needs refuses the crop and changes nothing', () => {
  const mha = build(1, { strategy: 'sliding-window', window: 8 }, 'kernel');
  setSeed(10);
  const x = rand([1, SEEN, C]);
  tf.dispose(run(mha, x, SEEN));
  const before = held(mha, 1);
  expect(() => mha.kvCache!.crop(KEEP)).toThrow(CacheOperationError);
  const t = tf.slice(x, [0, 0, 0], [1, 1, C]);
  expect(() => mha.forward(t, { useKvCache: true, startPos: KEEP })).toThrow(
    /cannot crop batch row 0 from 20 to 10 positions: it has evicted positions \[0, 12\)/,
  );
  expect(held(mha, 1)).toEqual(before);
  tf.dispose([x, t]);
  mha.dispose();
});

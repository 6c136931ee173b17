import { type CacheSpec, PagedKVCache, type Visibility } from '@kvkit/kv-cache';
import { maxAbsDiff, rand, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { beforeAll, describe, expect, test } from 'vitest';
import { CausalSelfAttention, GPT } from '../src/index.ts';
import { attentionFloat64, setupBackend, weightsOf } from './support.ts';

// Every cache strategy through the module: any chunk schedule (chunks longer than the window
// included) equals a float64 no-cache re-computation under the strategy's visibility rule, and
// the kernel path equals the reference path within 1e-6.

beforeAll(setupBackend);

const specs: [
  name: string,
  spec: (w: number, s: number) => CacheSpec,
  rule: (w: number, s: number) => Visibility,
][] = [
  ['static', () => 'static', () => ({ window: null, sinks: 0 })],
  ['dynamic', () => 'dynamic', () => ({ window: null, sinks: 0 })],
  [
    'sliding-window',
    (w) => ({ strategy: 'sliding-window', window: w }),
    (w) => ({ window: w, sinks: 0 }),
  ],
  [
    'sink',
    (w, s) => ({ strategy: 'sink', window: w, sinkTokens: s }),
    (w, s) => ({ window: w, sinks: s }),
  ],
  [
    'paged',
    (w) => (s) => new PagedKVCache({ ...s, blockSize: w, numBlocks: 2 * s.blockSize }),
    () => ({ window: null, sinks: 0 }),
  ],
];

function build(
  cfg: { B: number; nKvHeads: number; groups: number; hs: number; blockSize: number },
  cache: CacheSpec,
  implementation: 'kernel' | 'reference',
  seed: number,
) {
  setSeed(seed);
  const nHead = cfg.nKvHeads * cfg.groups;
  return new CausalSelfAttention(
    {
      ...GPT.getDefaultConfig(),
      nEmbd: nHead * cfg.hs,
      nHead,
      nKvHeads: cfg.nKvHeads,
      blockSize: cfg.blockSize,
      maxBatchSize: cfg.B,
    },
    { implementation, cache },
  ).eval();
}

function runChunks(mha: CausalSelfAttention, x: tf.Tensor, sizes: number[]): tf.Tensor {
  const [B, , C] = x.shape as [number, number, number];
  const outs: tf.Tensor[] = [];
  let start = 0;
  for (const n of sizes) {
    const chunk = tf.slice(x, [0, start, 0], [B, n, C]);
    outs.push(mha.forward(chunk, { useKvCache: true, startPos: start }));
    chunk.dispose();
    start += n;
  }
  const y = tf.concat(outs, 1);
  tf.dispose(outs);
  return y;
}

describe.each(specs)('%s cache through CausalSelfAttention', (_, spec, rule) => {
  test('random schedules equal the float64 no-cache forward under the same rule (1e-5); kernel = reference (1e-6)', () => {
    let worst = 0;
    let worstImpl = 0;
    fc.assert(
      fc.property(
        fc.record({
          B: fc.integer({ min: 1, max: 2 }),
          nKvHeads: fc.integer({ min: 1, max: 2 }),
          groups: fc.constantFrom(1, 2),
          hs: fc.constantFrom(3, 4, 8),
          window: fc.integer({ min: 1, max: 6 }),
          sinks: fc.integer({ min: 0, max: 2 }),
        }),
        fc.array(fc.integer({ min: 1, max: 11 }), { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 0, max: 1000 }),
        (cfg, sizes, seed) => {
          const T = sizes.reduce((a, b) => a + b, 0);
          const shape = { ...cfg, blockSize: T };
          const kernel = build(shape, spec(cfg.window, cfg.sinks), 'kernel', seed);
          const reference = build(shape, spec(cfg.window, cfg.sinks), 'reference', seed);
          const C = kernel.dims.nEmbd;
          setSeed(seed + 1);
          const x = rand([cfg.B, T, C]);
          const want = attentionFloat64(
            x.dataSync() as Float32Array,
            [cfg.B, T, C],
            kernel.dims.nHead,
            cfg.nKvHeads,
            weightsOf(kernel),
            rule(cfg.window, cfg.sinks),
          );
          const yk = runChunks(kernel, x, sizes);
          const yr = runChunks(reference, x, sizes);
          const expected = tf.tensor(Float32Array.from(want), yk.shape);
          worst = Math.max(worst, maxAbsDiff(yk, expected), maxAbsDiff(yr, expected));
          worstImpl = Math.max(worstImpl, maxAbsDiff(yk, yr));
          tf.dispose([x, yk, yr, expected]);
          kernel.dispose();
          reference.dispose();
          expect(worst).toBeLessThanOrEqual(1e-5);
          expect(worstImpl).toBeLessThanOrEqual(1e-6);
        },
      ),
      { numRuns: 80, seed: 20261202 },
    );
  });
});

describe('windowed caches past blockSize', () => {
  test.each([
    ['sliding-window', { strategy: 'sliding-window', window: 4 } as const, { window: 4, sinks: 0 }],
    ['sink', { strategy: 'sink', window: 3, sinkTokens: 2 } as const, { window: 3, sinks: 2 }],
  ])(
    '%s: a 10-token prompt (longer than the window) then decoding past blockSize',
    (_, spec, rule) => {
      const cfg = { B: 2, nKvHeads: 1, groups: 2, hs: 4, blockSize: 8 };
      const mha = build(cfg, spec, 'kernel', 4);
      const T = 30;
      setSeed(5);
      const x = rand([2, T, mha.dims.nEmbd]);
      const y = runChunks(mha, x, [10, ...new Array(T - 10).fill(1)]);
      const want = attentionFloat64(
        x.dataSync() as Float32Array,
        [2, T, mha.dims.nEmbd],
        2,
        1,
        weightsOf(mha),
        rule,
      );
      const expected = tf.tensor(Float32Array.from(want), y.shape);
      expect(maxAbsDiff(y, expected)).toBeLessThanOrEqual(1e-5);
      expect(mha.kvCache!.slotsHeld(0, 1)).toBe(mha.kvCache!.maxSlots);
      tf.dispose([x, y, expected]);
      mha.dispose();
    },
  );

  test('a cache that keeps everything is still bounded by blockSize', () => {
    const mha = build(
      { B: 1, nKvHeads: 1, groups: 1, hs: 4, blockSize: 4 },
      'dynamic',
      'kernel',
      1,
    );
    const x = rand([1, 5, 4]);
    expect(() => runChunks(mha, x, [5])).toThrow(/exceeds the capacity \(blockSize\) 4/);
    x.dispose();
    mha.dispose();
  });
});

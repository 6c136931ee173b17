import type { CacheSpec } from '@kvkit/kv-cache';
import { CacheOperationError, rand, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { CausalSelfAttention, GPT } from '../src/index.ts';
import caseA from './fixtures/a_seed_notebook.json' with { type: 'json' };
import caseB from './fixtures/b_mha_b3_t16_c32_h4.json' with { type: 'json' };
import { fromFixture, setupBackend } from './support.ts';

// The quantized cache on the PyTorch reference cases (fixtures/README.md): every step output of
// every chunk schedule against PyTorch's float32 outputs, with groups of 4 and no float32 window
// so that nearly every cached position is quantized (the cases have 8 and 16 positions). Bounds:
// int8 max 1e-2, mean 1e-3 (the issue's); int4 max 0.1, mean 1e-2 (docs/concepts/quantized-cache.md).

beforeAll(setupBackend);

const cases = [caseA, caseB] as const;
type Case = (typeof cases)[number];

const settings = [
  ['int8', 8, 1e-2, 1e-3],
  ['int4', 4, 0.1, 1e-2],
] as const;

function build(c: Case, cache: CacheSpec, implementation: 'kernel' | 'reference') {
  const cfg = c.config;
  const mha = new CausalSelfAttention(
    {
      ...GPT.getDefaultConfig(),
      nEmbd: cfg.n_embd,
      nHead: cfg.n_head,
      nKvHeads: cfg.n_kv_heads,
      blockSize: cfg.block_size,
      maxBatchSize: cfg.max_batch_size,
    },
    { implementation, cache },
  );
  return mha.eval().loadStateDict(c.weights);
}

/** Every step's output of one schedule, flattened, and how many positions ended quantized. */
function outputs(
  c: Case,
  s: Case['schedules'][number],
  cache: CacheSpec,
  impl: 'kernel' | 'reference',
) {
  const mha = build(c, cache, impl);
  const x = fromFixture(c.x);
  const [B, , C] = c.x.shape as [number, number, number];
  const out: number[] = [];
  for (const step of s.steps) {
    const chunk = tf.slice(x, [0, step.start_pos, 0], [B, step.T, C]);
    const y = mha.forward(chunk, { useKvCache: true, startPos: step.start_pos });
    out.push(...(y.dataSync() as Float32Array));
    tf.dispose([chunk, y]);
  }
  const quantized = (
    mha.kvCache as { quantizedLength?: (l: number, b: number) => number }
  ).quantizedLength?.(0, 0);
  x.dispose();
  mha.dispose();
  return { out, quantized };
}

function stats(a: number[], b: number[]): { max: number; mean: number } {
  let max = 0;
  let sum = 0;
  a.forEach((x, i) => {
    const d = Math.abs(x - b[i]!);
    max = Math.max(max, d);
    sum += d;
  });
  return { max, mean: sum / a.length };
}

describe.each(cases.map((c) => [c.case, c] as const))(
  'quantized cache on PyTorch reference %s',
  (_, c) => {
    describe.each(c.schedules.map((s) => [s.name, s] as const))('schedule %s', (_, s) => {
      test.each(settings)(
        '%s: every step output within the documented bounds of PyTorch float32',
        (name, bits, max, mean) => {
          const spec: CacheSpec = { strategy: 'quantized', bits, groupSize: 4, residual: 0 };
          const want = s.steps.flatMap((step) => step.output.data);
          const kernel = outputs(c, s, spec, 'kernel');
          const reference = outputs(c, s, spec, 'reference');
          const total = s.chunks.reduce((a, b) => a + b, 0);
          expect(kernel.quantized).toBe(total - (total % 4)); // the cache really quantized
          const k = stats(kernel.out, want);
          const r = stats(reference.out, want);
          console.info(
            `${c.case} ${s.name} ${name}: kernel max ${k.max.toExponential(2)} mean ${k.mean.toExponential(2)}, reference path max ${r.max.toExponential(2)} mean ${r.mean.toExponential(2)}`,
          );
          expect(k.max).toBeLessThanOrEqual(max);
          expect(k.mean).toBeLessThanOrEqual(mean);
          expect(r.max).toBeLessThanOrEqual(max);
          expect(r.mean).toBeLessThanOrEqual(mean);
          expect(k.max).toBeGreaterThan(1e-5); // lossy, as it should be: not the float path
          // The kernel and the reference path read the same quantized rows.
          expect(stats(kernel.out, reference.out).max).toBeLessThanOrEqual(1e-4);
        },
      );
    });
  },
);

describe("quantized cache: the seed's rewind (forward at a startPos below the length)", () => {
  test.each(['kernel', 'reference'] as const)(
    '%s: the last position decodes again bit for bit, the history stays quantized, a rewind into a group is refused',
    (implementation) => {
      setSeed(3);
      const config = {
        ...GPT.getDefaultConfig(),
        nEmbd: 32,
        nHead: 4,
        blockSize: 64,
        maxBatchSize: 2,
      };
      const cache: CacheSpec = { strategy: 'quantized', bits: 8, groupSize: 4, residual: 4 };
      const mha = new CausalSelfAttention(config, { cache, implementation }).eval();
      const x = rand([2, 24, 32]);
      const step = (t: number) => {
        const token = tf.slice(x, [0, t, 0], [2, 1, 32]);
        const y = mha.forward(token, { useKvCache: true, startPos: t });
        const out = Array.from(y.dataSync());
        tf.dispose([token, y]);
        return out;
      };
      const first = Array.from({ length: 24 }, (_, t) => step(t));
      const q = mha.kvCache as unknown as { quantizedLength(l: number, b: number): number };
      expect(q.quantizedLength(0, 0)).toBe(20); // 4 * floor((24 - 4) / 4)
      // Re-decoding the last position rebuilds the very state of its first decode: bit for bit.
      expect(step(23)).toEqual(first[23]);
      // One further back, the rows [16, 20) the first decode of 22 read in float32 stay quantized
      // (a crop keeps the history): close, not identical.
      const again = step(22);
      expect(again).not.toEqual(first[22]);
      expect(Math.max(...again.map((v, i) => Math.abs(v - first[22]![i]!)))).toBeLessThanOrEqual(
        1e-2,
      );
      const before = mha.kvCache!.seqLength(0, 0);
      expect(() => step(18)).toThrow(CacheOperationError); // inside group [16, 20)
      expect(mha.kvCache!.seqLength(0, 0)).toBe(before);
      expect(step(16).length).toBe(2 * 32); // a group boundary: allowed
      expect(q.quantizedLength(0, 0)).toBe(16);
      x.dispose();
      mha.dispose();
    },
  );
});

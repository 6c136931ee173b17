import { maxAbsDiff, rand, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { beforeAll, describe, expect, test } from 'vitest';
import { CausalSelfAttention, GPT } from '../src/index.ts';
import { attentionFloat64, setupBackend, weightsOf } from './support.ts';

// The no-cache forward is the reference: it is checked against a float64 re-computation from
// the definition (covering GQA and MQA, which the PyTorch cases do not), and every cached
// chunk schedule is checked against it.
const TOL = 1e-5;

beforeAll(setupBackend);

interface Cfg {
  B: number;
  T: number;
  nKvHeads: number;
  groups: number;
  hs: number;
}

function make(
  { B, T, nKvHeads, groups, hs }: Cfg,
  seed: number,
  implementation: 'kernel' | 'reference' = 'kernel',
) {
  const nHead = nKvHeads * groups;
  const C = nHead * hs;
  setSeed(seed);
  const x = rand([B, T, C]);
  const mha = new CausalSelfAttention(
    {
      ...GPT.getDefaultConfig(),
      nEmbd: C,
      nHead,
      nKvHeads,
      blockSize: T + 3,
      maxBatchSize: B + 1,
    },
    { implementation },
  );
  mha.eval();
  expect(mha.implementation).toBe(implementation);
  return { x, mha, C, nHead };
}

const impls = ['kernel', 'reference'] as const;

describe.each(impls)('%s: no-cache forward against a float64 re-computation', (impl) => {
  test.each([
    ['MHA', { B: 2, T: 7, nKvHeads: 4, groups: 1, hs: 8 }],
    ['GQA', { B: 2, T: 7, nKvHeads: 2, groups: 3, hs: 4 }],
    ['MQA', { B: 3, T: 5, nKvHeads: 1, groups: 4, hs: 5 }],
  ] as const)('%s', (_, cfg) => {
    const { x, mha, C, nHead } = make(cfg, 11, impl);
    const w = weightsOf(mha);
    const expected = attentionFloat64(
      x.dataSync() as Float32Array,
      [cfg.B, cfg.T, C],
      nHead,
      cfg.nKvHeads,
      w,
    );
    const y = mha.forward(x);
    const ref = tf.tensor(Float32Array.from(expected), y.shape);
    expect(maxAbsDiff(y, ref)).toBeLessThanOrEqual(TOL);
    tf.dispose([x, y, ref]);
    mha.dispose();
  });
});

/** Splits T into chunk sizes from fast-check's draws. */
function chunksOf(T: number, cuts: number[]): number[] {
  const points = [...new Set(cuts.map((c) => 1 + (c % (T - 1 || 1))).filter((c) => c < T))].sort(
    (a, b) => a - b,
  );
  const sizes: number[] = [];
  let prev = 0;
  for (const p of [...points, T]) {
    sizes.push(p - prev);
    prev = p;
  }
  return sizes;
}

describe.each(impls)(
  '%s: property: any chunk schedule of the cached forward equals the full no-cache forward',
  (impl) => {
    test('random MHA/GQA/MQA configs and random schedules', () => {
      fc.assert(
        fc.property(
          fc.record({
            B: fc.integer({ min: 1, max: 3 }),
            T: fc.integer({ min: 1, max: 12 }),
            nKvHeads: fc.integer({ min: 1, max: 3 }),
            groups: fc.constantFrom(1, 2, 4),
            hs: fc.integer({ min: 1, max: 6 }),
          }),
          fc.array(fc.nat(), { maxLength: 8 }),
          fc.integer({ min: 0, max: 1000 }),
          (cfg, cuts, seed) => {
            const { x, mha, C } = make(cfg, seed, impl);
            const full = mha.forward(x);
            const outputs: tf.Tensor[] = [];
            let start = 0;
            for (const size of chunksOf(cfg.T, cuts)) {
              const chunk = tf.slice(x, [0, start, 0], [cfg.B, size, C]);
              outputs.push(mha.forward(chunk, { useKvCache: true, startPos: start }));
              chunk.dispose();
              start += size;
            }
            const cached = tf.concat(outputs, 1);
            const diff = maxAbsDiff(cached, full);
            tf.dispose([x, full, cached, ...outputs]);
            mha.dispose();
            expect(diff).toBeLessThanOrEqual(TOL);
          },
        ),
        { numRuns: 60, seed: 20261126 },
      );
    });

    test('rollback: rewinding startPos and writing other tokens equals the no-cache forward of the edited sequence', () => {
      const cfg = { B: 2, T: 9, nKvHeads: 2, groups: 2, hs: 3 };
      const { x, mha, C } = make(cfg, 5, impl);
      for (let p = 0; p < 7; p++) {
        const step = tf.slice(x, [0, p, 0], [2, 1, C]);
        mha.forward(step, { useKvCache: true, startPos: p }).dispose();
        step.dispose();
      }
      setSeed(99);
      const other = rand([2, 3, C]); // replaces positions 4..6
      const y = mha.forward(other, { useKvCache: true, startPos: 4 });
      expect(mha.kvCache?.seqLength()).toBe(7);
      const edited = tf.concat([tf.slice(x, [0, 0, 0], [2, 4, C]), other], 1);
      const full = mha.forward(edited);
      const tail = tf.slice(full, [0, 4, 0], [2, 3, C]);
      expect(maxAbsDiff(y, tail)).toBeLessThanOrEqual(TOL);
      tf.dispose([x, other, y, edited, full, tail]);
      mha.dispose();
    });
  },
);

describe('training mode', () => {
  test('dropout is active in train(), seeded by setSeed, and off in eval()', () => {
    const cfg = { B: 1, T: 4, nKvHeads: 2, groups: 1, hs: 4 };
    const { x, mha } = make(cfg, 3);
    const run = () => {
      setSeed(1);
      return mha.forward(x);
    };
    mha.train();
    const a = run();
    const b = run();
    mha.eval();
    const c = run();
    expect(maxAbsDiff(a, b)).toBe(0); // same seed, same masks
    // Dropout (p = 0.1, outputs scaled by 1/0.9) moves outputs by far more than the ~1e-7
    // between the kernel (eval) and reference (train) paths.
    expect(maxAbsDiff(a, c)).toBeGreaterThan(1e-3);
    tf.dispose([x, a, b, c]);
    mha.dispose();
  });
});

describe('the kernel path against the reference path', () => {
  test('same outputs (within 1e-6) for a GQA prefill and 20 decode steps', () => {
    const cfg = { B: 2, T: 24, nKvHeads: 2, groups: 3, hs: 8 };
    const a = make(cfg, 21, 'kernel');
    const b = make(cfg, 21, 'reference');
    let worst = 0;
    const run = (m: typeof a, start: number, size: number) => {
      const chunk = tf.slice(m.x, [0, start, 0], [cfg.B, size, m.C]);
      const y = m.mha.forward(chunk, { useKvCache: true, startPos: start });
      chunk.dispose();
      return y;
    };
    for (const [start, size] of [[0, 4], ...Array.from({ length: 20 }, (_, i) => [4 + i, 1])] as [
      number,
      number,
    ][]) {
      const ya = run(a, start, size);
      const yb = run(b, start, size);
      worst = Math.max(worst, maxAbsDiff(ya, yb));
      tf.dispose([ya, yb]);
    }
    expect(worst).toBeLessThanOrEqual(1e-6);
    for (const m of [a, b]) {
      m.x.dispose();
      m.mha.dispose();
    }
  });
});

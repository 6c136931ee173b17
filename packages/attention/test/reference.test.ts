import { equal, maxAbsDiff, rand, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { CausalSelfAttention, GPT } from '../src/index.ts';
import caseA from './fixtures/a_seed_notebook.json' with { type: 'json' };
import caseB from './fixtures/b_mha_b3_t16_c32_h4.json' with { type: 'json' };
import { fromFixture, setupBackend } from './support.ts';

// The PyTorch reference cases (see fixtures/README.md): weights loaded through loadStateDict,
// every step of every chunk schedule and the final caches compared within 1e-5.
const TOL = 1e-5;
const cases = [caseA, caseB] as const;

beforeAll(setupBackend);

type Case = (typeof cases)[number];

function build(c: Case, implementation: 'kernel' | 'reference'): CausalSelfAttention {
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
    { implementation },
  );
  mha.eval();
  return mha.loadStateDict(c.weights);
}

const impls = ['kernel', 'reference'] as const;

describe.each(cases.map((c) => [c.case, c] as const))('PyTorch reference %s', (_, c) => {
  test('setSeed(seed) reproduces x and every weight bit for bit', () => {
    setSeed(c.seeds.seed);
    const x = rand(c.x.shape);
    const expectedX = fromFixture(c.x);
    expect(equal(x, expectedX)).toBe(true);
    setSeed(c.seeds.seed);
    const mha = new CausalSelfAttention({
      ...GPT.getDefaultConfig(),
      nEmbd: c.config.n_embd,
      nHead: c.config.n_head,
      nKvHeads: c.config.n_kv_heads,
      blockSize: c.config.block_size,
    });
    const state = mha.stateDict();
    for (const [name, t] of Object.entries(state)) {
      const expected = fromFixture(c.weights[name as keyof typeof c.weights]);
      expect(equal(t, expected), name).toBe(true);
      expected.dispose();
      t.dispose();
    }
    tf.dispose([x, expectedX]);
    mha.dispose();
  });

  test.each(impls)(`%s: full forward without cache matches within ${TOL}`, (impl) => {
    const mha = build(c, impl);
    const x = fromFixture(c.x);
    const y = mha.forward(x);
    const expected = fromFixture(c.full_output);
    const diff = maxAbsDiff(y, expected);
    console.info(`${c.case} ${impl} full forward: max |diff| = ${diff.toExponential(2)}`);
    expect(diff).toBeLessThanOrEqual(TOL);
    tf.dispose([x, y, expected]);
    mha.dispose();
  });

  describe.each(c.schedules.map((s) => [s.name, s] as const))('schedule %s', (_, schedule) => {
    test.each(impls)(`%s: every step output and the final caches match within ${TOL}`, (impl) => {
      const mha = build(c, impl);
      const x = fromFixture(c.x);
      const [B, , C] = c.x.shape as [number, number, number];
      let worst = 0;
      for (const step of schedule.steps) {
        const chunk = tf.slice(x, [0, step.start_pos, 0], [B, step.T, C]);
        const y = mha.forward(chunk, { useKvCache: true, startPos: step.start_pos });
        const expected = fromFixture(step.output);
        const diff = maxAbsDiff(y, expected);
        worst = Math.max(worst, diff);
        expect(diff, `step at startPos ${step.start_pos}`).toBeLessThanOrEqual(TOL);
        tf.dispose([chunk, y, expected]);
      }
      const total = schedule.chunks.reduce((a, b) => a + b, 0);
      expect(mha.kvCache?.seqLength()).toBe(total);
      const fullK = mha.cacheK!;
      const fullV = mha.cacheV!;
      expect(fullK.shape).toEqual(schedule.cache_shape);
      for (const [name, full, ref] of [
        ['cache_k', fullK, schedule.final_cache_k],
        ['cache_v', fullV, schedule.final_cache_v],
      ] as const) {
        const [, kv, , hs] = full.shape;
        const ours = tf.slice(full, [0, 0, 0, 0], [B, kv, total, hs]);
        const expected = fromFixture(ref);
        const diff = maxAbsDiff(ours, expected);
        worst = Math.max(worst, diff);
        expect(diff, name).toBeLessThanOrEqual(TOL);
        // Rows beyond what was written stay zero, as in the seed's zero-filled allocation.
        const rest = full.shape[2] - total;
        if (rest > 0) {
          const tail = tf.slice(full, [0, 0, total, 0], [B, kv, rest, hs]);
          expect(tf.max(tf.abs(tail)).dataSync()[0]).toBe(0);
          tail.dispose();
        }
        tf.dispose([ours, expected]);
      }
      console.info(
        `${c.case} ${impl} schedule ${schedule.name}: max |diff| over steps and caches = ${worst.toExponential(2)}`,
      );
      tf.dispose([x, fullK, fullV]);
      mha.dispose();
    });
  });
});

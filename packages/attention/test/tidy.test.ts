import { Generator, rand, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { CausalSelfAttention, GPT, Linear, loadGPT, writeSafetensors } from '../src/index.ts';
import caseA from './fixtures/a_seed_notebook.json' with { type: 'json' };
import { ids, maxDiff, tiny, tinyConfig } from './gpt-support.ts';
import { setupBackend } from './support.ts';

// Modules built or loaded inside tf.tidy keep their weights when the scope ends (before, a
// CausalSelfAttention built there failed later with "Cannot read properties of undefined
// (reading 'backend')"). Each one then computes exactly what the same module built outside does.

beforeAll(setupBackend);

/** Runs fn inside a tf.tidy scope (tidy's own typing only lets tensors out). */
function insideTidy<T>(fn: () => T): T {
  let out: T | undefined;
  tf.tidy(() => {
    out = fn();
  });
  return out as T;
}

const attentionConfig = {
  ...GPT.getDefaultConfig(),
  nHead: caseA.config.n_head,
  nEmbd: caseA.config.n_embd,
  blockSize: caseA.config.block_size,
};

describe('Linear', () => {
  test('built inside tf.tidy', () => {
    const inside = insideTidy(() => new Linear(6, 18, new Generator(42)));
    const outside = new Linear(6, 18, new Generator(42));
    const x = tf.ones([2, 6]) as tf.Tensor2D;
    const a = inside.apply(x);
    const b = outside.apply(x);
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    tf.dispose([x, a, b]);
    inside.dispose();
    outside.dispose();
  });

  test('loaded inside tf.tidy, and a bias-free layer', () => {
    const layer = new Linear(2, 3, { bias: false });
    insideTidy(() => layer.load(Float32Array.of(1, 2, 3, 4, 5, 6), null));
    const y = layer.apply(tf.tensor2d([[1, 1]]));
    expect(Array.from(y.dataSync())).toEqual([3, 7, 11]);
    expect(layer.state().bias).toBeNull();
    y.dispose();
    layer.dispose();
  });
});

describe('CausalSelfAttention', () => {
  test("built inside tf.tidy (its drawn weights are the notebook's)", () => {
    setSeed(caseA.seeds.seed);
    const x = rand([2, 8, 6]);
    setSeed(caseA.seeds.seed);
    const mha = insideTidy(() => new CausalSelfAttention(attentionConfig).eval());
    const y = mha.forward(x);
    expect(maxDiff(y, caseA.full_output)).toBeLessThan(1e-5);
    tf.dispose([x, y]);
    mha.dispose();
  });

  test('built and loaded inside tf.tidy', () => {
    setSeed(caseA.seeds.seed);
    const x = rand([2, 8, 6]);
    const mha = insideTidy(() =>
      new CausalSelfAttention(attentionConfig).eval().loadStateDict(caseA.weights),
    );
    const y = mha.forward(x);
    expect(maxDiff(y, caseA.full_output)).toBeLessThan(1e-5);
    tf.dispose([x, y]);
    mha.dispose();
  });

  test('loaded inside tf.tidy after being built outside', () => {
    const mha = new CausalSelfAttention(attentionConfig).eval();
    insideTidy(() => mha.loadStateDict(caseA.weights));
    setSeed(caseA.seeds.seed);
    const x = rand([2, 8, 6]);
    const y = mha.forward(x);
    expect(maxDiff(y, caseA.full_output)).toBeLessThan(1e-5);
    tf.dispose([x, y]);
    mha.dispose();
  });
});

describe('GPT', () => {
  test('built inside tf.tidy computes what the same seeded model built outside does', () => {
    const before = tf.memory().numTensors;
    setSeed(3);
    const inside = insideTidy(() => new GPT(tinyConfig()).eval());
    setSeed(3);
    const outside = new GPT(tinyConfig()).eval();
    const idx = ids(tiny.full_forward.idx);
    const a = inside.forward(idx);
    const b = outside.forward(idx);
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    tf.dispose([idx, a, b]);
    inside.dispose();
    outside.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  test.each(['loaded', 'built and loaded'])('%s inside tf.tidy gives PyTorch logits', (what) => {
    const before = tf.memory().numTensors;
    const gpt = insideTidy(() => {
      const g = new GPT(tinyConfig()).eval();
      if (what !== 'loaded') g.loadStateDict(tiny.state_dict);
      return g;
    });
    if (what === 'loaded') insideTidy(() => gpt.loadStateDict(tiny.state_dict));
    const idx = ids(tiny.full_forward.idx);
    const logits = gpt.forward(idx);
    expect(maxDiff(logits, tiny.full_forward.logits)).toBeLessThan(1e-5);
    tf.dispose([idx, logits]);
    gpt.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  test('loadGPT awaited inside an async function, then used inside tf.tidy', async () => {
    const sd = tiny.state_dict as Record<string, { shape: number[]; data: number[] }>;
    const file = writeSafetensors(
      Object.fromEntries(
        Object.entries(sd).map(([n, t]) => [
          n,
          { shape: t.shape, data: Float32Array.from(t.data) },
        ]),
      ),
    );
    const gpt = await loadGPT(file, { config: { nHead: 2 } });
    const d = tf.tidy(() => {
      const idx = ids(tiny.full_forward.idx);
      return maxDiff(gpt.forward(idx), tiny.full_forward.logits);
    });
    expect(d).toBeLessThan(1e-5);
    gpt.dispose();
  });
});

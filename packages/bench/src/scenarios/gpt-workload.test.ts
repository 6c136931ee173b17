// The gpt workload: the weights every engine gets have the names and shapes kvkit's GPT
// expects (GPT.parameterShapes, from @kvkit/attention), the spread they claim, and are the same
// on every call; the prompt is in range; kvkit's model on them decodes prompt token t at
// position t, so its step at t equals its no-cache forward of the first t + 1 tokens.
import { GPT } from '@kvkit/attention';
import { initBackend } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { gptReference, runGptSchedule } from '../peers/gpt-reference.ts';
import { maxAbsDiff } from '../peers/verify.ts';
import { gptScenario } from './gpt.ts';
import {
  gptConfig,
  gptPrompt,
  gptSizes,
  gptUnavailable,
  gptWeights,
  gptWorkload,
} from './gpt-workload.ts';

const s = gptSizes.quick;
beforeAll(async () => {
  await initBackend('wasm');
});

describe('gptWeights', () => {
  test("names and shapes are kvkit GPT's, in its order", () => {
    const gpt = new GPT(gptConfig(s));
    const expected = Object.entries(gpt.parameterShapes()).map(([n, sh]) => [n, [...sh]]);
    gpt.dispose();
    const w = gptWeights(s);
    expect([...w].map(([n, t]) => [n, t.shape])).toEqual(expected);
    for (const t of w.values()) expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1));
  });

  test('the same values on every call, and the spreads the doc gives', () => {
    const a = gptWeights(s);
    const b = gptWeights(s);
    for (const [name, t] of a) expect(maxAbsDiff(t.data, b.get(name)!.data), name).toBe(0);
    const stats = (x: Float32Array) => {
      const mean = x.reduce((p, v) => p + v, 0) / x.length;
      const std = Math.sqrt(x.reduce((p, v) => p + (v - mean) ** 2, 0) / x.length);
      return { mean, std, min: Math.min(...x), max: Math.max(...x) };
    };
    const wte = stats(a.get('transformer.wte.weight')!.data); // 32,768 values
    expect(Math.abs(wte.mean)).toBeLessThan(0.001);
    expect(wte.std).toBeGreaterThan(0.0196);
    expect(wte.std).toBeLessThan(0.0204);
    expect(wte.max).toBeLessThanOrEqual(0.02 * Math.sqrt(3));
    const proj = stats(a.get('transformer.h.1.mlp.c_proj.weight')!.data);
    expect(proj.std / (0.02 / Math.sqrt(2 * s.nLayer))).toBeCloseTo(1, 1);
    const ln = stats(a.get('transformer.h.0.ln_2.weight')!.data);
    expect(ln.min).toBeGreaterThanOrEqual(0.9);
    expect(ln.max).toBeLessThan(1.1);
    expect(stats(a.get('transformer.h.0.attn.c_attn.bias')!.data).std).toBeGreaterThan(0.015);
  });

  test('the prompt: blockSize ids in [0, vocab), the same on every call', () => {
    const ids = gptPrompt(s);
    expect(ids.length).toBe(s.blockSize);
    expect(ids.every((id) => id >= 0 && id < s.vocabSize)).toBe(true);
    expect(new Set(ids).size).toBeGreaterThan(s.blockSize / 2);
    expect(gptPrompt(s)).toEqual(ids);
  });
});

describe('runGptSchedule', () => {
  test("kvkit's step at t equals its no-cache forward of t + 1 tokens; nothing leaks", () => {
    const w = gptWorkload(s);
    const before = tf.memory().numTensors;
    const seen: number[] = [];
    const ref = runGptSchedule(w, s, { step: (t) => seen.push(t) });
    expect(seen).toEqual([...s.contexts].reverse()); // longest first
    expect(maxAbsDiff(ref.steps.get(s.uncachedT)!, ref.uncached)).toBeLessThan(1e-5);
    // Re-decoding a shorter t after a longer one crops back: the same logits as a fresh fill.
    w.fill(s.contexts[0]!);
    const y = w.step(s.contexts[0]!);
    expect(maxAbsDiff(y.dataSync(), ref.steps.get(s.contexts[0]!)!)).toBeLessThan(1e-6);
    y.dispose();
    expect(tf.memory().numTensors).toBe(before);
    w.dispose();
    expect(gptReference(s)).toBe(ref); // remembered for this run's peers
  });
});

test('a full run on the cpu backend skips the GPT and says why; quick runs run it anywhere', async () => {
  const ctx = {
    quick: false,
    backend: 'cpu' as const,
    timing: {},
    progress: () => {},
    results: new Map(),
  };
  const r = await gptScenario.run(ctx);
  expect(r.skipped).toMatch(/^GPT-2 small on the cpu backend would take many minutes/);
  expect(r.measurements).toEqual([]);
  expect(gptUnavailable({ backend: 'cpu', quick: true })).toBeNull();
  expect(gptUnavailable({ backend: 'wasm', quick: false })).toBeNull();
});

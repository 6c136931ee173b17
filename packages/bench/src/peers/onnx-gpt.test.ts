// The ONNX GPT computes what kvkit's GPT computes: the graph built from the bench's GPT weights,
// run on onnxruntime-web and onnxruntime-node with past/present key-values fed back, gives
// kvkit's logits for a prefill then single-token steps, for the no-cache forward of a whole
// prefix, and for a step after the pasts were cut back to a shorter context. Both engines are
// devDependencies of this package, so these run here.
import { initBackend } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  type GptSizes,
  type GptTensor,
  gptSizes,
  gptWeights,
  gptWorkload,
} from '../scenarios/gpt-workload.ts';
import { gptModel, gptOnnxNames } from './onnx-gpt.ts';
import type { OrtEngine, OrtEngineName } from './ort-engines.ts';
import { PastPresentRunner, values } from './ort-runner.ts';
import { loadInstalledEngines } from './test-support/installed-engines.ts';
import { gptTolerance, maxAbsDiff } from './verify.ts';

// Three layers and three heads: more than one block, and a head count that is not a power of two.
const sizes: GptSizes = { ...gptSizes.quick, nLayer: 3, nHead: 3, C: 48, vocabSize: 97 };
const weights = gptWeights(sizes);
let engines: Record<OrtEngineName, OrtEngine>;
let w: ReturnType<typeof gptWorkload>;

beforeAll(async () => {
  await initBackend('wasm');
  engines = await loadInstalledEngines();
  w = gptWorkload(sizes, weights);
});
afterAll(() => w.dispose());

async function runner(id: OrtEngineName, model = gptModel(sizes, weights)) {
  const engine = engines[id]!;
  return new PastPresentRunner(engine, await engine.createSession(model), {
    B: 1,
    nKvHeads: sizes.nHead,
    headSize: sizes.C / sizes.nHead,
    layers: sizes.nLayer,
    inputName: gptOnnxNames.inputIds,
    outputName: gptOnnxNames.logits,
  });
}

const ids = (engine: OrtEngine, from: number, to: number) =>
  engine.int64(w.ids.subarray(from, to), [1, to - from]);

const kvkitStep = (t: number) => {
  const y = w.step(t);
  const out = Float32Array.from(y.dataSync());
  y.dispose();
  return out;
};

describe.each(['ort-web', 'ort-node'] as const)('%s', (id) => {
  test('a prefill of 5 then single-token steps give kvkit cached logits, step by step', async () => {
    const r = await runner(id);
    const engine = engines[id]!;
    let { output, pasts } = await r.run(ids(engine, 0, 5), r.emptyPasts());
    w.fill(5);
    let worst = 0;
    for (let t = 5; t < 20; t++) {
      ({ output, pasts } = await r.run(ids(engine, t, t + 1), pasts));
      expect(output.dims).toEqual([1, 1, sizes.vocabSize]);
      worst = Math.max(worst, maxAbsDiff(kvkitStep(t), values(output)));
    }
    expect(pasts['past_key_values.2.value']!.dims).toEqual([1, sizes.nHead, 20, 16]);
    expect(worst).toBeLessThanOrEqual(gptTolerance);
    await r.release();
  });

  test("the no-cache forward of a prefix gives the last position's logits, with positions from 0", async () => {
    const r = await runner(id);
    const T = sizes.uncachedT + 1;
    const { output } = await r.run(ids(engines[id]!, 0, T), r.emptyPasts());
    const prefix = w.prefix(sizes.uncachedT);
    const ours = w.uncached(prefix);
    expect(output.dims).toEqual([1, 1, sizes.vocabSize]);
    expect(maxAbsDiff(ours.dataSync(), values(output))).toBeLessThanOrEqual(gptTolerance);
    tf.dispose([prefix, ours]);
    await r.release();
  });

  test('pasts truncated to a shorter context decode as a cache cropped back to it', async () => {
    const r = await runner(id);
    const engine = engines[id]!;
    const { pasts } = await r.feed([ids(engine, 0, 40)]);
    w.fill(40);
    for (const t of [40, 17, 3]) {
      const { output } = await r.run(ids(engine, t, t + 1), r.truncate(pasts, t));
      expect(maxAbsDiff(kvkitStep(t), values(output))).toBeLessThanOrEqual(gptTolerance);
    }
    expect(() => r.truncate(pasts, 41)).toThrow(/length 41 outside \[0, 40\]/);
    await r.release();
  });
});

// The check can fail: a peer that drops one bias, or swaps a block's two layer norms, is caught.
describe.each([
  [
    'drops mlp.c_proj.bias of block 1',
    (m: Map<string, GptTensor>) => {
      const b = m.get('transformer.h.1.mlp.c_proj.bias')!;
      m.set('transformer.h.1.mlp.c_proj.bias', { ...b, data: new Float32Array(b.data.length) });
    },
  ],
  [
    'swaps ln_1 and ln_2 of block 0',
    (m: Map<string, GptTensor>) => {
      const ln1 = m.get('transformer.h.0.ln_1.weight')!;
      m.set('transformer.h.0.ln_1.weight', m.get('transformer.h.0.ln_2.weight')!);
      m.set('transformer.h.0.ln_2.weight', ln1);
    },
  ],
] as const)('a graph that %s', (_, change) => {
  test("gives logits beyond the tolerance of kvkit's", async () => {
    const other = new Map(weights);
    change(other);
    const r = await runner('ort-node', gptModel(sizes, other));
    const { output } = await r.run(ids(engines['ort-node']!, 0, 20), r.emptyPasts());
    const prefix = w.prefix(19);
    const ours = w.uncached(prefix);
    expect(maxAbsDiff(ours.dataSync(), values(output))).toBeGreaterThan(10 * gptTolerance);
    tf.dispose([prefix, ours]);
    await r.release();
  });
});

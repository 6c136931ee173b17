// The ONNX peers compute what kvkit computes: the graphs built from a kvkit module's weights,
// run on onnxruntime-web and onnxruntime-node with past/present key-values fed back, give
// kvkit's outputs (its cached decode and its no-cache forward) within 1e-5, for multi-head and
// grouped-query layers. Both engines are devDependencies of this package, so these run here.
import { CausalSelfAttention, GPT } from '@kvkit/attention';
import { initBackend, rand, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { attentionModel } from './onnx-attention.ts';
import type { OrtEngine, OrtEngineName } from './ort-engines.ts';
import { PastPresentRunner, sliceTokens, values } from './ort-runner.ts';
import { loadInstalledEngines } from './test-support/installed-engines.ts';
import { maxAbsDiff, peerTolerance } from './verify.ts';
import { layerWeights } from './weights.ts';

let engines: Record<OrtEngineName, OrtEngine>;
beforeAll(async () => {
  await initBackend('wasm');
  engines = await loadInstalledEngines();
});

const B = 2;
const T = 12;
const C = 32;
const nHead = 4;

function kvkitLayer(nKvHeads: number | null) {
  setSeed(7);
  const mha = new CausalSelfAttention({
    ...GPT.getDefaultConfig(),
    nEmbd: C,
    nHead,
    nKvHeads,
    blockSize: T,
    maxBatchSize: B,
  }).eval();
  const x = rand([B, T, C]);
  return { mha, x, data: x.dataSync() as Float32Array };
}

/** A session of the graph built from `weights` (default: the module's own). */
async function runnerFor(
  id: 'ort-web' | 'ort-node',
  mha: CausalSelfAttention,
  weights = layerWeights(mha),
) {
  const engine = engines[id]!;
  return new PastPresentRunner(engine, await engine.createSession(attentionModel([weights])), {
    B,
    nKvHeads: mha.dims.nKvHeads,
    headSize: mha.dims.headSize,
    layers: 1,
  });
}

describe.each([
  ['ort-web', null],
  ['ort-node', null],
  ['ort-web', 2],
  ['ort-node', 1],
] as const)('%s, nKvHeads=%s', (id, nKvHeads) => {
  test('prefill 3 then single-token steps equal kvkit cached decoding, step by step', async () => {
    const { mha, x, data } = kvkitLayer(nKvHeads);
    const runner = await runnerFor(id, mha);
    let pasts = runner.emptyPasts();
    let worst = 0;
    const chunks: [number, number][] = [
      [0, 3],
      ...Array.from({ length: T - 3 }, (_, i): [number, number] => [3 + i, 4 + i]),
    ];
    for (const [from, to] of chunks) {
      const step = await runner.run(
        runner.input(sliceTokens(data, { B, T, C }, from, to), to - from, C),
        pasts,
      );
      pasts = step.pasts;
      const chunk = tf.slice(x, [0, from, 0], [B, to - from, C]);
      const ours = mha.forward(chunk, { useKvCache: true, startPos: from });
      worst = Math.max(worst, maxAbsDiff(ours.dataSync(), values(step.output)));
      expect(step.output.dims).toEqual([B, to - from, C]);
      expect(pasts['past_key_values.0.key']!.dims).toEqual([
        B,
        mha.dims.nKvHeads,
        to,
        mha.dims.headSize,
      ]);
      tf.dispose([chunk, ours]);
    }
    expect(worst).toBeLessThanOrEqual(peerTolerance);
    await runner.release();
    mha.dispose();
    x.dispose();
  });

  test('a whole prefix with empty pasts equals kvkit no-cache forward (causal mask)', async () => {
    const { mha, x, data } = kvkitLayer(nKvHeads);
    const runner = await runnerFor(id, mha);
    const { output } = await runner.run(runner.input(data, T, C), runner.emptyPasts());
    const ours = mha.forward(x);
    expect(maxAbsDiff(ours.dataSync(), values(output))).toBeLessThanOrEqual(peerTolerance);
    // Not a mask-free graph: changing the last token must not change the first rows.
    const changed = Float32Array.from(data);
    for (let b = 0; b < B; b++) changed.fill(0.5, (b * T + T - 1) * C, (b * T + T) * C);
    const other = await runner.run(runner.input(changed, T, C), runner.emptyPasts());
    const a = values(output);
    const c = values(other.output);
    expect(maxAbsDiff(a.subarray(0, (T - 1) * C), c.subarray(0, (T - 1) * C))).toBe(0);
    expect(maxAbsDiff(a, c)).toBeGreaterThan(1e-3);
    tf.dispose([ours, x]);
    await runner.release();
    mha.dispose();
  });
});

test('a graph from other weights does not pass for kvkit (the check can fail)', async () => {
  const { mha, x, data } = kvkitLayer(null);
  const w = layerWeights(mha);
  w.cProjBias[0]! += 1e-3;
  const runner = await runnerFor('ort-node', mha, w);
  const { output } = await runner.run(runner.input(data, T, C), runner.emptyPasts());
  const ours = mha.forward(x);
  expect(maxAbsDiff(ours.dataSync(), values(output))).toBeGreaterThan(peerTolerance);
  tf.dispose([ours, x]);
  await runner.release();
  mha.dispose();
});

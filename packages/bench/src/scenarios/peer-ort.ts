import { layerReference, type PeerReference, seedReference } from '../peers/kvkit-reference.ts';
import { attentionModel } from '../peers/onnx-attention.ts';
import {
  loadOrtEngine,
  type OrtEngine,
  type OrtEngineName,
  type OrtTensor,
} from '../peers/ort-engines.ts';
import { PastPresentRunner, sliceTokens, values } from '../peers/ort-runner.ts';
import { mismatch } from '../peers/verify.ts';
import type { Measurement, Scenario } from '../report/schema.ts';
import type { ScenarioContext, ScenarioDefinition } from '../scenario.ts';
import { timeitAsync } from '../timeit.ts';
import { ortGptPart } from './peer-ort-gpt.ts';
import { peerSizes, ratiosToKvkit } from './peer-shared.ts';
import { gptDims, layerDims, seedDims } from './titles.ts';

function runnerFor(
  engine: OrtEngine,
  ref: PeerReference,
  session: Awaited<ReturnType<OrtEngine['createSession']>>,
) {
  const { C, nHead, nKvHeads } = ref.weights;
  return new PastPresentRunner(engine, session, {
    B: ref.dims.B,
    nKvHeads,
    headSize: C / nHead,
    layers: 1,
  });
}

/** The seed loops on ONNX Runtime: prefill then single tokens fed back, and every prefix. */
async function seedPart(ctx: ScenarioContext, engine: OrtEngine, label: string) {
  const s = peerSizes(ctx.quick).seed;
  const ref = seedReference(s);
  ref.dispose();
  const runner = runnerFor(engine, ref, await engine.createSession(attentionModel([ref.weights])));
  try {
    const dims = { B: s.B, T: s.T, C: s.C };
    const input = (from: number, to: number) =>
      runner.input(sliceTokens(ref.input, dims, from, to), to - from, s.C);
    const steps: OrtTensor[] = [input(0, s.prefill)];
    for (let i = s.prefill; i < s.T; i++) steps.push(input(i, i + 1));
    const prefixes = Array.from({ length: s.T - s.prefill + 1 }, (_, i) => input(0, s.prefill + i));
    const cached = async () => (await runner.feed(steps)).output;
    const uncached = async () => {
      let out: OrtTensor | null = null;
      for (const p of prefixes) out = (await runner.run(p, runner.emptyPasts())).output;
      return out!;
    };
    const last = values(await uncached());
    const problem = mismatch({
      'seed cached loop, last step': [ref.cachedLast, values(await cached())],
      'seed uncached loop, last row': [ref.uncachedLast, sliceTokens(last, dims, s.T - 1, s.T)],
    });
    if (problem) return { problem, measurements: [] };
    const options = { budgetMs: 30_000, ...ctx.timing };
    ctx.progress(`${label}: seed cached loop`);
    const c = await timeitAsync(async () => void (await cached()), options);
    ctx.progress(`${label}: seed uncached loop`);
    const u = await timeitAsync(async () => void (await uncached()), options);
    const labels = { engine: engine.id, workload: 'seed' };
    return {
      problem: null,
      measurements: [
        { key: 'seed/cached', labels: { ...labels, variant: 'cached' }, timing: c },
        { key: 'seed/uncached', labels: { ...labels, variant: 'uncached' }, timing: u },
      ] as Measurement[],
    };
  } finally {
    await runner.release();
  }
}

/** The context layer: one decode step at t with t past positions fed back, and the t + 1 prefix. */
async function layerPart(ctx: ScenarioContext, engine: OrtEngine, label: string) {
  const { layer, contexts } = peerSizes(ctx.quick);
  const maxT = contexts[contexts.length - 1]!;
  const ref = layerReference(layer, maxT);
  const runner = runnerFor(engine, ref, await engine.createSession(attentionModel([ref.weights])));
  const dims = { B: 1, T: maxT + 1, C: layer.C };
  const input = (from: number, to: number) =>
    runner.input(sliceTokens(ref.input, dims, from, to), to - from, layer.C);
  const token = input(0, 1);
  const measurements: Measurement[] = [];
  try {
    for (const t of [...contexts].reverse()) {
      const chunks: OrtTensor[] = [];
      for (let start = 0; start < t; start += 256)
        chunks.push(input(start, Math.min(t, start + 256)));
      const { pasts } = await runner.feed(chunks);
      const prefix = input(0, t + 1);
      const step = async () => (await runner.run(token, pasts)).output;
      const full = async () => (await runner.run(prefix, runner.emptyPasts())).output;
      if (t === maxT) {
        const last = values(await full());
        const problem = mismatch({
          [`context step at t=${t}`]: [ref.cachedLast, values(await step())],
          [`context prefix of ${t + 1}, last row`]: [
            ref.uncachedLast,
            last.subarray(last.length - layer.C),
          ],
        });
        if (problem) return { problem, measurements: [] };
      }
      const labels = { engine: engine.id, workload: 'context', t };
      ctx.progress(`${label}: context cached step at t=${t}`);
      const c = await timeitAsync(async () => void (await step()), {
        budgetMs: 15_000,
        ...ctx.timing,
      });
      measurements.push({
        key: `context/cached/t=${t}`,
        labels: { ...labels, variant: 'cached' },
        timing: c,
      });
      ctx.progress(`${label}: context uncached forward of ${t + 1} tokens`);
      const u = await timeitAsync(async () => void (await full()), {
        budgetMs: 20_000,
        ...ctx.timing,
      });
      measurements.push({
        key: `context/uncached/t=${t}`,
        labels: { ...labels, variant: 'uncached' },
        timing: u,
      });
    }
    return { problem: null, measurements };
  } finally {
    await runner.release();
  }
}

function ortScenario(id: OrtEngineName, peer: string, what: string): ScenarioDefinition {
  const scenarioId = `peer-${id}`;
  return {
    id: scenarioId,
    title: `${what}: the seed, the context layer and the GPT model, past/present key-values fed back, in the same run`,
    async run(ctx) {
      const { seed, layer, contexts, gpt } = peerSizes(ctx.quick);
      const title = `${what}: the seed (${seedDims(seed)}), the context layer (${layerDims(layer)}, B=1) and the GPT (${gptDims(gpt)}), past/present key-values fed back`;
      const base = { id: scenarioId, title, measurements: [], derived: {} };
      const params = { seed, layer: { ...layer, B: 1, contexts }, gpt };
      const engine = await loadOrtEngine(id);
      if ('skipped' in engine) return { ...base, params, skipped: engine.skipped };
      const s = await seedPart(ctx, engine, scenarioId);
      const l = s.problem ? s : await layerPart(ctx, engine, scenarioId);
      if (s.problem || l.problem) {
        return {
          ...base,
          params,
          skipped: `${engine.label}: outputs differ from kvkit's (${s.problem ?? l.problem}); timings withheld`,
        };
      }
      // Last: its session is the largest (half a gigabyte of weights on GPT-2 small).
      const g = await ortGptPart(ctx, engine, scenarioId, gpt);
      const measurements = [...s.measurements, ...l.measurements, ...g.measurements];
      const result: Scenario = {
        ...base,
        params: { ...params, engine: engine.label },
        measurements,
        // Its session is made once, so its seed loop is set against kvkit's loop on a module
        // built once too, not against the notebook's construct-and-decode cell.
        derived: ratiosToKvkit(ctx, peer, measurements, 'cached-loop-only'),
        ...(g.skipped ? { partsSkipped: { gpt: g.skipped } } : {}),
      };
      return result;
    },
  };
}

/** onnxruntime-web: the wasm engine under transformers.js, 1 thread, SIMD, in Node. */
export const peerOrtWebScenario = ortScenario(
  'ort-web',
  'OrtWeb',
  'onnxruntime-web (wasm, SIMD, 1 thread)',
);
/** onnxruntime-node: native ONNX Runtime, 1 intra-op thread. */
export const peerOrtNodeScenario = ortScenario(
  'ort-node',
  'OrtNode',
  'onnxruntime-node (native, 1 thread)',
);

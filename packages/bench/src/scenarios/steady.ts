import { defaultHeap } from '@kvkit/kv-cache';
import * as tf from '@tensorflow/tfjs-core';
import type { Scenario, Timing } from '../report/schema.ts';
import type { ScenarioDefinition } from '../scenario.ts';
import { gpt2Small, layerWorkload, quickLayer } from './layer-workload.ts';
import { layerDims } from './titles.ts';

/** tfjs-wasm's heap size, when the backend is wasm (its Memory only grows). */
function tfjsWasmHeapBytes(): number {
  const backend = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return backend.wasm?.HEAPU8?.byteLength ?? 0;
}

/** 2,000 decode steps: no allocation may grow with t (tensors, tfjs heap, kvkit heap). */
export const steadyScenario: ScenarioDefinition = {
  id: 'steady',
  title: 'Steady state over 2,000 decode steps (GPT-2 small layer, B=1): tensors and wasm heaps',
  async run(ctx) {
    const dims = ctx.quick ? quickLayer : gpt2Small;
    const steps = ctx.quick ? 200 : 2000;
    const warm = 16;
    const w = layerWorkload({ ...dims, B: 1, blockSize: steps + warm + 1 });
    const heap = defaultHeap();
    try {
      w.fill(1);
      for (let p = 1; p < 1 + warm; p++) w.cachedStep(p); // first calls may allocate once
      const start = {
        tensors: tf.memory().numTensors,
        tfjsHeap: tfjsWasmHeapBytes(),
        kvkitHeap: heap.bytesTotal(),
        kvkitLive: heap.bytesAllocated(),
      };
      ctx.progress(`steady: ${steps} decode steps`);
      const begin = performance.now();
      for (let p = 1 + warm; p < 1 + warm + steps; p++) w.cachedStep(p);
      const ms = performance.now() - begin;
      const end = {
        tensors: tf.memory().numTensors,
        tfjsHeap: tfjsWasmHeapBytes(),
        kvkitHeap: heap.bytesTotal(),
        kvkitLive: heap.bytesAllocated(),
      };
      // One timed run of all the steps (not %timeit: each step writes a new position).
      const perStep = ms / steps;
      const timing: Timing = {
        meanMs: perStep,
        stdMs: 0,
        minMs: perStep,
        medianMs: perStep,
        loops: steps,
        repeats: 1,
        samplesMs: [perStep],
      };
      const result: Scenario = {
        id: 'steady',
        title: `Steady state over ${steps.toLocaleString('en-US')} decode steps (${layerDims(dims)}, B=1): tensors and wasm heaps`,
        params: { ...dims, B: 1, steps, warmupSteps: warm, backend: ctx.backend },
        measurements: [
          {
            key: 'decode-step',
            labels: { what: `mean of ${steps} steps` },
            timing,
            extra: { ...prefixed('start', start), ...prefixed('end', end) },
          },
        ],
        derived: {
          tensorGrowth: end.tensors - start.tensors,
          tfjsHeapGrowthBytes: end.tfjsHeap - start.tfjsHeap,
          kvkitHeapGrowthBytes: end.kvkitHeap - start.kvkitHeap,
          kvkitLiveGrowthBytes: end.kvkitLive - start.kvkitLive,
        },
      };
      return result;
    } finally {
      w.dispose();
    }
  },
};

function prefixed(prefix: string, o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(o).map(([k, v]) => [`${prefix}${k[0]!.toUpperCase()}${k.slice(1)}`, v]),
  );
}

import { rand, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import type { Measurement, Scenario } from '../report/schema.ts';
import type { ScenarioDefinition } from '../scenario.ts';
import { timeit } from '../timeit.ts';
import { gpt2Small, layerWorkload, quickLayer } from './layer-workload.ts';
import { layerDims } from './titles.ts';

/**
 * Useful FLOPs of one no-cache forward: the two projections, plus q.k and p.v over the causal
 * half (query i sees i + 1 keys) of every head.
 */
export function forwardFlops(T: number, C: number, nHead: number, nKvHeads: number): number {
  const hs = C / nHead;
  const projections = 2 * T * C * (C + 2 * nKvHeads * hs) + 2 * T * C * C;
  const attention = 2 * 2 * nHead * hs * ((T * (T + 1)) / 2);
  return projections + attention;
}

/** The no-cache forward of a long prompt, against XNNPACK's matMul speed in the same run. */
export const prefillScenario: ScenarioDefinition = {
  id: 'prefill',
  title:
    'Prefill: the no-cache forward of T=1024 tokens (C=768, 12 heads, B=1) vs XNNPACK matMul GFLOP/s',
  async run(ctx) {
    const dims = ctx.quick ? quickLayer : gpt2Small;
    const T = ctx.quick ? 128 : 1024;
    const w = layerWorkload({ ...dims, B: 1, blockSize: T });
    const measurements: Measurement[] = [];
    try {
      const x = w.prefix(T - 1); // (1, T, C)
      ctx.progress(`prefill: forward of ${T} tokens`);
      const forward = timeit(() => w.uncachedStep(x), { budgetMs: 30_000, ...ctx.timing });
      const flops = forwardFlops(T, dims.C, dims.nHead, dims.nHead);
      measurements.push({
        key: 'forward',
        labels: { what: `forward T=${T}` },
        timing: forward,
        extra: { gflops: flops / forward.meanMs / 1e6 },
      });
      // The forward's largest matMul (c_attn: (T, C) x (C, 3C)) through tfjs-wasm's XNNPACK path.
      setSeed(1);
      const a = rand([T, dims.C]) as tf.Tensor2D;
      const b = rand([dims.C, 3 * dims.C]) as tf.Tensor2D;
      ctx.progress('prefill: the largest matMul alone');
      const matmul = timeit(() => tf.matMul(a, b).dispose(), { budgetMs: 15_000, ...ctx.timing });
      const mmFlops = 2 * T * dims.C * 3 * dims.C;
      measurements.push({
        key: 'matmul',
        labels: { what: `matMul ${T}x${dims.C}x${3 * dims.C}` },
        timing: matmul,
        extra: { gflops: mmFlops / matmul.meanMs / 1e6 },
      });
      tf.dispose([x, a, b]);
    } finally {
      w.dispose();
    }
    const [forward, matmul] = measurements as [Measurement, Measurement];
    const result: Scenario = {
      id: 'prefill',
      title: `Prefill: the no-cache forward of T=${T} tokens (${layerDims(dims)}, B=1) vs XNNPACK matMul GFLOP/s`,
      params: { ...dims, B: 1, T, backend: ctx.backend },
      measurements,
      derived: {
        forwardGflops: forward.extra!.gflops!,
        matmulGflops: matmul.extra!.gflops!,
        // >= 0.5: the whole forward runs at over half the speed of its best matMul.
        forwardOverMatmulGflops: forward.extra!.gflops! / matmul.extra!.gflops!,
      },
    };
    return result;
  },
};

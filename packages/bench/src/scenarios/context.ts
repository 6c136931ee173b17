import { linearRegression } from 'simple-statistics';
import type { Measurement, Scenario } from '../report/schema.ts';
import type { ScenarioDefinition } from '../scenario.ts';
import { timeit } from '../timeit.ts';
import { gpt2Small, layerWorkload, quickLayer } from './layer-workload.ts';
import { layerDims } from './titles.ts';

/** Slope of log(time) against log(t): 1 = linear growth, 2 = quadratic. */
export function growthExponent(points: { t: number; ms: number }[]): number {
  return linearRegression(points.map((p) => [Math.log(p.t), Math.log(p.ms)])).m;
}

/** One decode step at growing context, cached vs uncached, and how each grows with t. */
export const contextScenario: ScenarioDefinition = {
  id: 'context',
  title: 'One decode step vs context length (GPT-2 small layer: C=768, 12 heads, B=1)',
  async run(ctx) {
    const dims = ctx.quick ? quickLayer : gpt2Small;
    const contexts = ctx.quick ? [16, 32, 64] : [64, 128, 256, 512, 1024, 2048];
    const maxT = contexts[contexts.length - 1]!;
    const w = layerWorkload({ ...dims, B: 1, blockSize: maxT + 1 });
    const measurements: Measurement[] = [];
    try {
      // Longest first: after one fill to maxT, each shorter step rewinds the cache to t + 1.
      w.fill(maxT);
      for (const t of [...contexts].reverse()) {
        ctx.progress(`context: cached step at t=${t}`);
        const timing = timeit(() => w.cachedStep(t), { budgetMs: 15_000, ...ctx.timing });
        measurements.push({ key: `cached/t=${t}`, labels: { variant: 'cached', t }, timing });
        // The attention part alone (the kernel over the t + 1 cached rows), and a plain copy of
        // the same bytes with Float32Array.prototype.set: the memory-bandwidth yardstick.
        ctx.progress(`context: attention part at t=${t}`);
        const part = w.attentionOnly(t);
        const attention = timeit(part.run, { budgetMs: 5_000, ...ctx.timing });
        part.dispose();
        measurements.push({
          key: `attention/t=${t}`,
          labels: { variant: 'attention', t },
          timing: attention,
          extra: { bytes: part.bytes },
        });
        if (t === maxT) {
          const src = new Float32Array(part.bytes / 4).fill(1);
          const dst = new Float32Array(part.bytes / 4);
          const copy = timeit(() => dst.set(src), { budgetMs: 5_000, ...ctx.timing });
          measurements.push({
            key: `copy/t=${t}`,
            labels: { variant: 'copy', t },
            timing: copy,
            extra: { bytes: part.bytes },
          });
        }
      }
      for (const t of contexts) {
        ctx.progress(`context: uncached forward of ${t + 1} tokens`);
        const prefix = w.prefix(t);
        const timing = timeit(() => w.uncachedStep(prefix), { budgetMs: 20_000, ...ctx.timing });
        prefix.dispose();
        measurements.push({ key: `uncached/t=${t}`, labels: { variant: 'uncached', t }, timing });
      }
    } finally {
      w.dispose();
    }
    // Growth fits and the bandwidth ratio use each measurement's fastest repeat, the one least
    // disturbed by other work on the machine (what Python's timeit docs recommend); the
    // speedup, like every table, uses means.
    const series = (variant: string) =>
      measurements
        .filter((m) => m.labels.variant === variant)
        .map((m) => ({ t: Number(m.labels.t), ms: m.timing.minMs }));
    const at = (variant: string, t: number, stat: 'meanMs' | 'minMs' = 'meanMs') =>
      measurements.find((m) => m.key === `${variant}/t=${t}`)!.timing[stat];
    const result: Scenario = {
      id: 'context',
      title: `One decode step vs context length (${layerDims(dims)}, B=1)`,
      params: { ...dims, B: 1, contexts, backend: ctx.backend },
      measurements,
      derived: {
        cachedExponent: growthExponent(series('cached')),
        attentionExponent: growthExponent(series('attention')),
        uncachedExponent: growthExponent(series('uncached')),
        [`speedupAtT${maxT}`]: at('uncached', maxT) / at('cached', maxT),
        // > 0.5: the attention part reads K and V at over half of memcpy bandwidth, both counted
        // as bytes per second of the same K and V bytes (memcpy's usual convention: bytes copied).
        [`attentionBandwidthOverCopyAtT${maxT}`]:
          at('copy', maxT, 'minMs') / at('attention', maxT, 'minMs'),
        [`attentionGBpsAtT${maxT}`]:
          measurements.find((m) => m.key === `attention/t=${maxT}`)!.extra!.bytes! /
          at('attention', maxT, 'minMs') /
          1e6,
      },
    };
    return result;
  },
};

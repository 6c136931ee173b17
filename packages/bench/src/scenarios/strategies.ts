import type { CacheSpec } from '@kvkit/kv-cache';
import type { Measurement, Scenario } from '../report/schema.ts';
import type { ScenarioDefinition } from '../scenario.ts';
import { timeit } from '../timeit.ts';
import { gpt2Small, layerWorkload, quickLayer } from './layer-workload.ts';
import { layerDims } from './titles.ts';

const sizes = {
  full: { contexts: [512, 2048, 8192], window: 512, sinks: 4 },
  quick: { contexts: [32, 64, 128], window: 32, sinks: 4 },
} as const;

/**
 * One decode step of a GPT-2-small layer (B=1) with each cache strategy at several contexts,
 * and each cache's bytes there. Static and dynamic steps re-decode position t (the module crops
 * back to t each call, O(1)); windowed caches refuse that crop once wrapped, so their timed
 * steps decode t, t+1, ...: past the window their cost does not depend on t, which is the claim.
 */
export const strategiesScenario: ScenarioDefinition = {
  id: 'strategies',
  title: 'Decode step and cache bytes per strategy (GPT-2 small layer, B=1)',
  async run(ctx) {
    const dims = ctx.quick ? quickLayer : gpt2Small;
    const { contexts, window, sinks } = ctx.quick ? sizes.quick : sizes.full;
    const maxT = contexts[contexts.length - 1]!;
    const strategies: [string, CacheSpec, boolean][] = [
      ['static', 'static', false],
      ['dynamic', 'dynamic', false],
      ['sliding-window', { strategy: 'sliding-window', window }, true],
      ['sink', { strategy: 'sink', window: window - sinks, sinkTokens: sinks }, true],
    ];
    const measurements: Measurement[] = [];
    for (const [name, cache, advances] of strategies) {
      for (const t of contexts) {
        const w = layerWorkload({ ...dims, B: 1, blockSize: maxT + 1, cache });
        try {
          w.fillDirect(t);
          ctx.progress(`strategies: ${name} step at t=${t}`);
          let p = t;
          const timing = timeit(
            () => {
              w.cachedStep(p);
              if (advances) p++;
            },
            { budgetMs: 8_000, ...ctx.timing },
          );
          const c = w.mha.kvCache!;
          measurements.push({
            key: `${name}/t=${t}`,
            labels: { strategy: name, t },
            timing,
            extra: {
              bytesUsed: c.bytesUsed(),
              bytesReserved: c.bytesReserved(),
              slotsHeld: c.slotsHeld(),
            },
          });
        } finally {
          w.dispose();
        }
      }
    }
    const mean = (key: string) => measurements.find((m) => m.key === key)!.timing.meanMs;
    const [lo, mid, hi] = contexts;
    const result: Scenario = {
      id: 'strategies',
      title: `Decode step and cache bytes per strategy (${layerDims(dims)}, B=1): t = ${contexts.join(', ')}, window ${window}`,
      params: { ...dims, B: 1, contexts: [...contexts], window, sinks, backend: ctx.backend },
      measurements,
      derived: {
        slidingFlatness: mean(`sliding-window/t=${hi}`) / mean(`sliding-window/t=${lo}`),
        sinkFlatness: mean(`sink/t=${hi}`) / mean(`sink/t=${lo}`),
        dynamicOverStatic: mean(`dynamic/t=${mid}`) / mean(`static/t=${mid}`),
        staticGrowth: mean(`static/t=${hi}`) / mean(`static/t=${lo}`),
      },
    };
    return result;
  },
};

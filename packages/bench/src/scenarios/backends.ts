import { initBackend } from '@kvkit/tensor-utils';
import type { Measurement, Scenario } from '../report/schema.ts';
import type { ScenarioDefinition } from '../scenario.ts';
import { measureSeed, seedSizes } from './seed-workload.ts';
import { seedDims } from './titles.ts';

/**
 * The seed scenario on the wasm backend and on tfjs's cpu backend, in one run. On cpu the
 * projections run in tfjs-cpu's JS matMul; attention still runs in kvkit's WebAssembly kernel.
 */
export const backendsScenario: ScenarioDefinition = {
  id: 'backends',
  title: 'The seed scenario on wasm and on cpu',
  async run(ctx) {
    const sizes = ctx.quick ? seedSizes.quick : seedSizes.full;
    const measurements: Measurement[] = [];
    const derived: Record<string, number> = {};
    try {
      for (const backend of ['wasm', 'cpu'] as const) {
        await initBackend(backend);
        // The cpu backend is ~10x slower: fewer repeats keep the run inside its budget.
        const { cached, uncached, speedup } = measureSeed(
          sizes,
          { budgetMs: 30_000, ...ctx.timing },
          (w) => ctx.progress(`backends: ${backend} ${w}`),
          false,
        );
        measurements.push(
          { key: `${backend}/cached`, labels: { backend, variant: 'cached' }, timing: cached },
          {
            key: `${backend}/uncached`,
            labels: { backend, variant: 'uncached' },
            timing: uncached,
          },
        );
        derived[`${backend}Speedup`] = speedup;
      }
    } finally {
      await initBackend(ctx.backend);
    }
    const mean = (key: string) => measurements.find((m) => m.key === key)!.timing.meanMs;
    derived.cachedCpuOverWasm = mean('cpu/cached') / mean('wasm/cached');
    const result: Scenario = {
      id: 'backends',
      title: `The seed scenario on wasm and on cpu (${seedDims(sizes)})`,
      params: sizes,
      measurements,
      derived,
    };
    return result;
  },
};

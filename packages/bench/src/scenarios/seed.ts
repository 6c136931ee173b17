import { seedReference } from '../peers/kvkit-reference.ts';
import type { SeedScenario } from '../report/schema.ts';
import type { ScenarioDefinition } from '../scenario.ts';
import { timeit } from '../timeit.ts';
import { measureSeed, seedSizes } from './seed-workload.ts';

/** The notebook's comparison (cells 19-20): cached vs uncached decoding of the whole sequence. */
export const seedScenario: ScenarioDefinition = {
  id: 'seed',
  title: 'The seed notebook: cached vs uncached decoding (B=8, T=64, C=128, 8 heads)',
  async run(ctx) {
    const sizes = ctx.quick ? seedSizes.quick : seedSizes.full;
    const { cached, uncached, projections, speedup } = measureSeed(
      sizes,
      { budgetMs: 60_000, ...ctx.timing },
      (w) => ctx.progress(`seed: ${w}`),
    );
    // The cached loop on a module built once (no construction in the timed code): what the
    // ONNX Runtime peers are set against, their sessions being made once.
    const ref = seedReference(sizes);
    ctx.progress('seed: the cached loop on a module built once');
    const loopOnly = timeit(ref.loopOnly, { budgetMs: 60_000, ...ctx.timing });
    ref.dispose();
    const result: SeedScenario = {
      id: 'seed',
      title: `The seed notebook: cached vs uncached decoding (B=${sizes.B}, T=${sizes.T}, C=${sizes.C}, ${sizes.nHead} heads)`,
      params: { ...sizes, backend: ctx.backend },
      measurements: [
        { key: 'cached', labels: { variant: 'cached' }, timing: cached },
        { key: 'uncached', labels: { variant: 'uncached' }, timing: uncached },
        {
          key: 'uncached-projections',
          labels: { variant: 'uncached: projection matMuls only' },
          timing: projections!,
        },
        {
          key: 'cached-loop-only',
          labels: { variant: 'cached, module built once' },
          timing: loopOnly,
        },
      ],
      derived: { speedup, uncachedProjectionShare: projections!.meanMs / uncached.meanMs },
      cached,
      uncached,
      speedup,
    };
    return result;
  },
};

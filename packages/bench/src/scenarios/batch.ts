import type { Measurement, Scenario } from '../report/schema.ts';
import type { ScenarioDefinition } from '../scenario.ts';
import { gpt2Small, quickLayer, timeDecodeStep } from './layer-workload.ts';
import { layerDims } from './titles.ts';

/** Decode throughput as the batch grows: B tokens per step. */
export const batchScenario: ScenarioDefinition = {
  id: 'batch',
  title: 'Decode tokens per second vs batch size (GPT-2 small layer, t=128)',
  async run(ctx) {
    const dims = ctx.quick ? quickLayer : gpt2Small;
    const t = ctx.quick ? 32 : 128;
    const measurements: Measurement[] = [];
    for (const B of [1, 8, 32]) {
      const { timing } = timeDecodeStep(ctx, { ...dims, B, blockSize: t + 1 }, t, `batch: B=${B}`);
      measurements.push({
        key: `B=${B}`,
        labels: { B },
        timing,
        extra: { tokensPerSecond: B / (timing.meanMs / 1000) },
      });
    }
    const tps = measurements.map((m) => m.extra!.tokensPerSecond!);
    const result: Scenario = {
      id: 'batch',
      title: `Decode tokens per second vs batch size (${layerDims(dims)}, t=${t})`,
      params: { ...dims, t, backend: ctx.backend },
      measurements,
      derived: { throughputGainB32overB1: tps[2]! / tps[0]! },
    };
    return result;
  },
};

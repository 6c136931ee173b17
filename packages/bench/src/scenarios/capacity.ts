import type { Measurement, Scenario } from '../report/schema.ts';
import type { ScenarioDefinition } from '../scenario.ts';
import { gpt2Small, quickLayer, timeDecodeStep } from './layer-workload.ts';
import { layerDims } from './titles.ts';

/** The same decode step at t=64 in a small and a large static cache: cost must not follow capacity. */
export const capacityScenario: ScenarioDefinition = {
  id: 'capacity',
  title: 'Decode step at t=64 with blockSize 128 vs 4096 (GPT-2 small layer, B=1)',
  async run(ctx) {
    const dims = ctx.quick ? quickLayer : gpt2Small;
    const t = 64;
    const measurements: Measurement[] = [];
    for (const blockSize of [128, 4096]) {
      const step = timeDecodeStep(
        ctx,
        { ...dims, B: 1, blockSize },
        t,
        `capacity: step at t=${t}, blockSize ${blockSize}`,
      );
      measurements.push({
        key: `blockSize=${blockSize}`,
        labels: { blockSize, t },
        timing: step.timing,
        extra: { cacheBytesReserved: step.bytesReserved },
      });
    }
    const [small, large] = measurements.map((m) => m.timing.meanMs) as [number, number];
    const result: Scenario = {
      id: 'capacity',
      title: `Decode step at t=${t} with blockSize 128 vs 4096 (${layerDims(dims)}, B=1)`,
      params: { ...dims, B: 1, t, backend: ctx.backend },
      measurements,
      derived: { ratio4096over128: large / small },
    };
    return result;
  },
};

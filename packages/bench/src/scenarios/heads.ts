import type { Measurement, Scenario } from '../report/schema.ts';
import type { ScenarioDefinition } from '../scenario.ts';
import { gpt2Small, quickLayer, timeDecodeStep } from './layer-workload.ts';

/** MHA, GQA and MQA at the same width: decode step time and the cache they need. */
export const headsScenario: ScenarioDefinition = {
  id: 'heads',
  title: 'MHA vs GQA vs MQA: decode step at t=512 and cache bytes (C=768, 12 query heads, B=1)',
  async run(ctx) {
    const dims = ctx.quick ? quickLayer : gpt2Small;
    const t = ctx.quick ? 32 : 512;
    const variants = ctx.quick ? [4, 2, 1] : [12, 4, 1];
    const measurements: Measurement[] = [];
    for (const nKvHeads of variants) {
      const kind = nKvHeads === dims.nHead ? 'MHA' : nKvHeads === 1 ? 'MQA' : 'GQA';
      const step = timeDecodeStep(
        ctx,
        { ...dims, nKvHeads, B: 1, blockSize: t + 1 },
        t,
        `heads: ${kind} (nKvHeads=${nKvHeads})`,
      );
      measurements.push({
        key: `nKvHeads=${nKvHeads}`,
        labels: { nKvHeads, kind },
        timing: step.timing,
        extra: { cacheBytes: step.bytesUsed },
      });
    }
    const mha = measurements[0]!;
    const mqa = measurements[measurements.length - 1]!;
    const result: Scenario = {
      id: 'heads',
      title: `MHA vs GQA vs MQA: decode step at t=${t} and cache bytes (C=${dims.C}, ${dims.nHead} query heads, B=1)`,
      params: { ...dims, B: 1, t, backend: ctx.backend },
      measurements,
      derived: {
        mqaSpeedup: mha.timing.meanMs / mqa.timing.meanMs,
        mqaCacheBytesRatio: mqa.extra!.cacheBytes! / mha.extra!.cacheBytes!,
      },
    };
    return result;
  },
};

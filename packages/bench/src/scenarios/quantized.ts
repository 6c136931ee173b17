import type { CacheSpec } from '@kvkit/kv-cache';
import { mean, median, min, standardDeviation } from 'simple-statistics';
import type { Measurement, Scenario, Timing } from '../report/schema.ts';
import type { ScenarioDefinition } from '../scenario.ts';
import { timeit } from '../timeit.ts';
import { gpt2Small, layerWorkload, quickLayer } from './layer-workload.ts';
import { layerDims } from './titles.ts';

const sizes = {
  full: { contexts: [512, 2048, 8192] },
  quick: { contexts: [32, 64, 128] },
} as const;

/** Steps per timed repeat: one key group, so every repeat quantizes exactly one group. */
const GROUP = 32;

const settings: [name: string, cache: CacheSpec][] = [
  ['float32', 'static'],
  ['int8', { strategy: 'quantized', bits: 8 }],
  ['int4', { strategy: 'quantized', bits: 4 }],
];

/** One Timing from single-repeat timings of the same measurement. */
function merged(parts: Timing[]): Timing {
  const samplesMs = parts.flatMap((p) => p.samplesMs);
  return {
    meanMs: mean(samplesMs),
    stdMs: standardDeviation(samplesMs),
    minMs: min(samplesMs),
    medianMs: median(samplesMs),
    loops: parts[0]!.loops,
    repeats: samplesMs.length,
    samplesMs,
  };
}

/**
 * CPU time this process has used, ms (Node; null elsewhere): the machine's other load left out,
 * V8's helper threads (garbage collection, compilation) counted in.
 */
function cpuMs(): number | null {
  const usage = (
    globalThis as { process?: { cpuUsage?: () => { user: number; system: number } } }
  ).process?.cpuUsage?.();
  return usage ? (usage.user + usage.system) / 1000 : null;
}

/**
 * One decode step of a GPT-2-small layer (B=1) with a float32 cache (static) and with quantized
 * int8 and int4 caches (groups of 32, a float32 window of the last 64 positions), at several
 * contexts, and each cache's bytes there. A timed repeat decodes the 32 positions after t from a
 * cache filled to t (refilled, untimed, before each repeat), so the mean step includes the one
 * group a quantized cache quantizes every 32 steps. The three caches take turns repeat by
 * repeat, so a change in the machine's load reaches all three alike, and the step-time ratios
 * are medians of each round's ratio (`wallOverFloat`). In Node each repeat's CPU time is
 * recorded too (`cpuMsPerStep`, `cpuOverFloat`: the process's, helper threads included), which
 * leaves out the time other processes took the CPU. 15 rounds unless `--repeats` says otherwise.
 */
export const quantizedScenario: ScenarioDefinition = {
  id: 'quantized',
  title: 'Decode step and cache bytes, float32 vs int8 vs int4 (GPT-2 small layer, B=1)',
  async run(ctx) {
    const dims = ctx.quick ? quickLayer : gpt2Small;
    const { contexts } = ctx.quick ? sizes.quick : sizes.full;
    const maxT = contexts[contexts.length - 1]!;
    // More rounds than the usual 7 (unless told): the ratios are medians over rounds.
    const repeats = ctx.timing.repeats ?? 15;
    const measurements: Measurement[] = [];
    for (const t of contexts) {
      const runs = settings.map(([name, cache]) => ({
        name,
        w: layerWorkload({ ...dims, B: 1, blockSize: maxT + 2 * GROUP, cache }),
        parts: [] as Timing[],
        /** CPU ms per step of each repeat (the repeat's 32 steps and timeit's one untimed call). */
        cpu: [] as number[],
        extra: {} as Record<string, number>,
      }));
      try {
        for (const r of runs) {
          r.w.fillDirect(t);
          const c = r.w.mha.kvCache!;
          r.extra = {
            bytesUsed: c.bytesUsed(),
            bytesReserved: c.bytesReserved(),
            bytesPerToken: c.bytesPerToken(),
          };
        }
        for (let rep = 0; rep < repeats; rep++) {
          for (const r of runs) {
            ctx.progress(`quantized: ${r.name} steps after t=${t} (${rep + 1}/${repeats})`);
            r.w.fillDirect(t);
            let p = t;
            const step = () => {
              r.w.cachedStep(p);
              p++;
            };
            const before = cpuMs();
            r.parts.push(timeit(step, { loops: GROUP, repeats: 1, minRepeats: 1, warmup: 0 }));
            const after = cpuMs();
            if (before !== null && after !== null) r.cpu.push((after - before) / (GROUP + 1));
          }
        }
        for (const r of runs) {
          // Each repeat is divided by float32's repeat of the same round (the load was alike for
          // both), and the ratios' median is reported: one disturbed round cannot move it.
          const float = runs[0]!.cpu;
          const wall = runs[0]!.parts.map((p) => p.samplesMs[0]!);
          const cpu: Record<string, number> =
            r.cpu.length === repeats
              ? {
                  cpuMsPerStep: median(r.cpu),
                  cpuOverFloat: median(r.cpu.map((c, i) => c / float[i]!)),
                }
              : {};
          cpu.wallOverFloat = median(r.parts.map((p, i) => p.samplesMs[0]! / wall[i]!));
          measurements.push({
            key: `${r.name}/t=${t}`,
            labels: { cache: r.name, t },
            timing: merged(r.parts),
            extra: { ...r.extra, ...cpu },
          });
        }
      } finally {
        for (const r of runs) r.w.dispose();
      }
    }
    const at = (name: string, t: number) => measurements.find((m) => m.key === `${name}/t=${t}`)!;
    const mid = contexts[1]!;
    const derived: Record<string, number> = {};
    for (const bits of ['int8', 'int4']) {
      for (const t of contexts) {
        derived[`${bits}StepOverFloatAtT${t}`] = at(bits, t).extra!.wallOverFloat!;
        const cpu = at(bits, t).extra!.cpuOverFloat;
        if (cpu !== undefined) derived[`${bits}CpuTimeOverFloatAtT${t}`] = cpu;
      }
      // What a position costs once quantized, against float32: the quantized part's ratio.
      derived[`${bits}QuantizedBytesRatio`] =
        at(bits, mid).extra!.bytesPerToken! / at('float32', mid).extra!.bytesPerToken!;
      derived[`${bits}BytesUsedRatioAtT${maxT}`] =
        at(bits, maxT).extra!.bytesUsed! / at('float32', maxT).extra!.bytesUsed!;
    }
    const result: Scenario = {
      id: 'quantized',
      title: `Decode step and cache bytes, float32 vs int8 vs int4 (${layerDims(dims)}, B=1): t = ${contexts.join(', ')}`,
      params: {
        ...dims,
        B: 1,
        contexts: [...contexts],
        groupSize: GROUP,
        residual: 64,
        backend: ctx.backend,
      },
      measurements,
      derived,
    };
    return result;
  },
};

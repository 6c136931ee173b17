/**
 * A small hand-made report for the report tests: every scenario the charts know about, a skipped
 * one, and the seed numbers from the notebook (19.6 ms ± 1.3 ms cached, 43.9 ms ± 3.06 ms
 * uncached). The numbers are made up but shaped like real runs (cached decode time grows ~linearly
 * with context, uncached ~quadratically).
 */
import type { Measurement, Report, Scenario, SeedScenario, Timing } from '../schema.ts';

/** A Timing with consistent fields; the samples are spread around the mean, not measured. */
export function timing(meanMs: number, stdMs: number, loops = 100, repeats = 7): Timing {
  const samplesMs = Array.from(
    { length: repeats },
    (_, i) => meanMs + stdMs * (repeats === 1 ? 0 : (2 * i) / (repeats - 1) - 1),
  );
  return {
    meanMs,
    stdMs,
    minMs: Math.min(...samplesMs),
    medianMs: meanMs,
    loops,
    repeats,
    samplesMs,
  };
}

function measurement(
  key: string,
  labels: Record<string, string | number>,
  t: Timing,
  extra?: Record<string, number>,
): Measurement {
  return extra ? { key, labels, timing: t, extra } : { key, labels, timing: t };
}

const contexts = [16, 32, 64, 128, 256, 512];

/** A fresh copy each call, so a test can change it without affecting the others. */
export function sampleReport(): Report {
  const seedCached = timing(19.6, 1.3);
  const seedUncached = timing(43.9, 3.06);
  const seed: SeedScenario = {
    id: 'seed',
    title: 'Seed notebook: cached vs uncached generation',
    params: { B: 3, T: 16, C: 32, nHead: 4, steps: 16 },
    measurements: [
      measurement('cached', { variant: 'cached' }, seedCached),
      measurement('uncached', { variant: 'uncached' }, seedUncached),
    ],
    derived: { speedup: 43.9 / 19.6 },
    cached: seedCached,
    uncached: seedUncached,
    speedup: 43.9 / 19.6,
  };

  const context: Scenario = {
    id: 'context',
    title: 'Decode step time vs context length',
    params: { B: 1, C: 64, nHead: 4 },
    measurements: contexts.flatMap((t) => [
      measurement(`cached/t=${t}`, { variant: 'cached', t }, timing(0.05 + 0.0012 * t, 0.004, 200)),
      measurement(
        `uncached/t=${t}`,
        { variant: 'uncached', t },
        timing(0.08 + 0.0009 * t + 0.00011 * t * t, 0.01, 20),
      ),
    ]),
    derived: { cachedExponent: 0.87, uncachedExponent: 1.71, maxSpeedup: 44.1 },
  };

  const capacity: Scenario = {
    id: 'capacity',
    title: 'Cache growth by block size',
    params: { steps: 512 },
    measurements: [16, 64, 256].map((blockSize, i) =>
      measurement(`blockSize=${blockSize}`, { blockSize }, timing(0.21 - 0.05 * i, 0.02, 50), {
        reallocations: 512 / blockSize,
      }),
    ),
    derived: {},
  };

  const heads: Scenario = {
    id: 'heads',
    title: 'Grouped-query attention: KV heads',
    params: { nHead: 8, C: 64, t: 256 },
    measurements: (
      [
        [1, 'MQA'],
        [2, 'GQA'],
        [4, 'GQA'],
        [8, 'MHA'],
      ] as const
    ).map(([nKvHeads, kind]) =>
      measurement(
        `nKvHeads=${nKvHeads}`,
        { nKvHeads, kind },
        timing(0.3 + 0.04 * nKvHeads, 0.02, 50),
        // 2 (K and V) * heads * head size 8 * 256 positions * 4 bytes
        { cacheBytes: 2 * nKvHeads * 8 * 256 * 4 },
      ),
    ),
    derived: { mqaVsMhaSpeedup: 0.62 / 0.34 },
  };

  const batch: Scenario = {
    id: 'batch',
    title: 'Batched decoding throughput',
    params: { t: 128 },
    measurements: [1, 2, 4, 8].map((B) => {
      const ms = 0.4 + 0.12 * B;
      return measurement(`B=${B}`, { B }, timing(ms, 0.03, 50), {
        tokensPerSecond: (B * 1e3) / ms,
      });
    }),
    derived: { batch8Speedup: (8 * 0.52) / 1.36 },
  };

  const torch: Scenario = {
    id: 'torch',
    title: 'PyTorch reference',
    skipped: 'PyTorch not found',
    params: {},
    measurements: [],
    derived: {},
  };

  return {
    schemaVersion: 2,
    noise: null,
    machine: null,
    environment: {
      node: 'v20.19.0',
      backend: 'wasm',
      wasmBinary: 'simd',
      tfjsVersion: '4.22.0',
      cpuModel: 'AMD EPYC 7B13',
      cpuCount: 8,
      platform: 'linux x64',
      gitCommit: '0123456789abcdef0123456789abcdef01234567',
      date: '2025-01-02T03:04:05.000Z',
      quick: true,
    },
    scenarios: [seed, context, capacity, heads, batch, torch],
  };
}

import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Scenario, SeedScenario, Timing } from '../report/schema.ts';
import type { ScenarioDefinition } from '../scenario.ts';
import { seedSizes } from './seed-workload.ts';
import { seedDims } from './titles.ts';

/** The Python script shipped with this package (python/peer_torch.py). */
export const peerTorchScript = fileURLToPath(
  new URL('../../python/peer_torch.py', import.meta.url),
);

/**
 * The first Python that can `import torch`: $KVKIT_PYTHON, then `python3` on PATH, then the
 * system's /usr/bin/python3 (where Debian's python3-torch installs), or null.
 */
export function findTorchPython(): string | null {
  const candidates = [process.env.KVKIT_PYTHON, 'python3', '/usr/bin/python3'].filter(
    (p): p is string => !!p,
  );
  for (const python of candidates) {
    try {
      execFileSync(python, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60_000 });
      return python;
    } catch {
      // not this one
    }
  }
  return null;
}

interface TorchResult {
  torch: string;
  threads: number;
  blas: string;
  cached: Timing;
  uncached: Timing;
}

/** The seed scenario in PyTorch eager (one thread, no autograd), side by side with ours. */
export const peerTorchScenario: ScenarioDefinition = {
  id: 'peer-torch',
  title: 'The seed scenario in PyTorch on the same machine, in the same run',
  async run(ctx) {
    const sizes = ctx.quick ? seedSizes.quick : seedSizes.full;
    const base = {
      id: 'peer-torch',
      title: `The seed scenario in PyTorch on the same machine, in the same run (${seedDims(sizes)})`,
      measurements: [],
      derived: {},
    };
    const python = findTorchPython();
    if (!python) {
      return {
        ...base,
        params: sizes,
        skipped:
          'PyTorch not found (python3 -c "import torch" failed; on Debian: apt-get install python3-torch libopenblas0-pthread)',
      };
    }
    ctx.progress('peer-torch: PyTorch cached and uncached loops');
    const args = [
      peerTorchScript,
      '--B',
      `${sizes.B}`,
      '--T',
      `${sizes.T}`,
      '--C',
      `${sizes.C}`,
      '--n-head',
      `${sizes.nHead}`,
    ];
    args.push('--prefill', `${sizes.prefill}`, '--repeats', `${ctx.timing.repeats ?? 7}`);
    if (ctx.timing.loops) args.push('--loops', `${ctx.timing.loops}`);
    const out = execFileSync(python, args, {
      encoding: 'utf8',
      timeout: 10 * 60_000,
      env: { ...process.env, OMP_NUM_THREADS: '1' },
    });
    const torch = JSON.parse(out.trim().split('\n').pop()!) as TorchResult;
    const derived: Record<string, number> = {
      torchSpeedup: torch.uncached.meanMs / torch.cached.meanMs,
    };
    const seed = ctx.results.get('seed') as SeedScenario | undefined;
    if (seed && !seed.skipped) {
      derived.oursOverTorchCached = seed.cached.meanMs / torch.cached.meanMs;
      derived.oursOverTorchUncached = seed.uncached.meanMs / torch.uncached.meanMs;
      // The matMuls an honest no-cache loop cannot skip, on tfjs-wasm, against torch's whole loop.
      const projections = seed.measurements.find((m) => m.key === 'uncached-projections');
      if (projections)
        derived.ourProjectionsOverTorchUncached = projections.timing.meanMs / torch.uncached.meanMs;
    }
    const result: Scenario = {
      ...base,
      params: { ...sizes, python, torch: torch.torch, threads: torch.threads, blas: torch.blas },
      measurements: [
        {
          key: 'torch/cached',
          labels: { engine: 'torch', variant: 'cached' },
          timing: torch.cached,
        },
        {
          key: 'torch/uncached',
          labels: { engine: 'torch', variant: 'uncached' },
          timing: torch.uncached,
        },
      ],
      derived,
    };
    return result;
  },
};

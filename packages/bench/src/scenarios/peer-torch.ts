import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { layerReference, seedReference } from '../peers/kvkit-reference.ts';
import { mismatch } from '../peers/verify.ts';
import { writeTensorFile } from '../peers/weights.ts';
import type { Measurement, Scenario, Timing } from '../report/schema.ts';
import type { ScenarioDefinition } from '../scenario.ts';
import { peerSizes, ratiosToKvkit } from './peer-shared.ts';
import { pythonRunner, torchGptPart } from './peer-torch-gpt.ts';
import { gptDims, layerDims, seedDims } from './titles.ts';

/** The Python script shipped with this package (python/peer_torch.py). */
export const peerTorchScript = fileURLToPath(
  new URL('../../python/peer_torch.py', import.meta.url),
);

/** The install line printed when PyTorch is missing. */
const install = 'on Debian: apt-get install -y python3-torch libopenblas0-pthread';

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

/** The two forms of the projections python/peer_torch.py times, and how reports name them. */
const forms = {
  linear: { key: 'torch', name: 'Torch', label: 'nn.Linear' },
  addmv: { key: 'torch-addmv', name: 'TorchAddmv', label: 'addmv on (in, out) weights' },
} as const;
type Form = keyof typeof forms;

type Checked<T> = Record<Form, T & { check: { cachedLast: number[]; uncachedLast: number[] } }>;

interface TorchOutput {
  torch: string;
  threads: number;
  blasThreads: string;
  blas: string;
  modes: {
    seed: Checked<{ cached: Timing; uncached: Timing }>;
    layer: Checked<{ timings: Record<string, Timing> }>;
  };
}

/** PyTorch eager, both forms, on the seed, the context layer and the GPT: verified, then reported. */
export const peerTorchScenario: ScenarioDefinition = {
  id: 'peer-torch',
  title:
    'PyTorch (nn.Linear and the addmv form) on the seed, the context layer and the GPT model, in the same run',
  async run(ctx) {
    const { seed, layer, contexts, gpt } = peerSizes(ctx.quick);
    const maxT = contexts[contexts.length - 1]!;
    const base = {
      id: 'peer-torch',
      title: `PyTorch, nn.Linear and addmv forms: the seed (${seedDims(seed)}), the context layer (${layerDims(layer)}, B=1) and the GPT (${gptDims(gpt)})`,
      measurements: [],
      derived: {},
    };
    const params = { seed, layer: { ...layer, B: 1, contexts }, gpt };
    const python = findTorchPython();
    if (!python)
      return {
        ...base,
        params,
        skipped: `PyTorch not found (python3 -c "import torch" failed; ${install})`,
      };

    const seedRef = seedReference(seed);
    seedRef.dispose();
    const layerRef = layerReference(layer, maxT);
    const file = writeTensorFile(
      {
        input: { shape: [1, maxT + 1, layer.C], data: layerRef.input },
        'c_attn.weight': { shape: [3 * layer.C, layer.C], data: layerRef.weights.cAttnWeight },
        'c_attn.bias': { shape: [3 * layer.C], data: layerRef.weights.cAttnBias },
        'c_proj.weight': { shape: [layer.C, layer.C], data: layerRef.weights.cProjWeight },
        'c_proj.bias': { shape: [layer.C], data: layerRef.weights.cProjBias },
      },
      { C: layer.C, nHead: layer.nHead, contexts },
    );
    ctx.progress('peer-torch: the seed loops and the context layer, both forms');
    const run = pythonRunner(python, peerTorchScript, ctx);
    let out: TorchOutput;
    try {
      out = run([
        '--mode',
        'seed,layer',
        '--tensors',
        file.manifest,
        '--B',
        `${seed.B}`,
        '--T',
        `${seed.T}`,
        '--C',
        `${seed.C}`,
        '--n-head',
        `${seed.nHead}`,
        '--prefill',
        `${seed.prefill}`,
      ]) as TorchOutput;
    } finally {
      file.remove();
    }
    const s = out.modes.seed;
    const l = out.modes.layer;

    const measurements: Measurement[] = [];
    for (const form of Object.keys(forms) as Form[]) {
      const problem = mismatch({
        [`seed cached loop, ${form}`]: [seedRef.cachedLast, s[form].check.cachedLast],
        [`seed uncached loop, ${form}`]: [seedRef.uncachedLast, s[form].check.uncachedLast],
        [`context step at t=${maxT}, ${form}`]: [layerRef.cachedLast, l[form].check.cachedLast],
        [`context prefix of ${maxT + 1}, ${form}`]: [
          layerRef.uncachedLast,
          l[form].check.uncachedLast,
        ],
      });
      if (problem)
        return {
          ...base,
          params,
          skipped: `PyTorch outputs differ from kvkit's (${problem}); timings withheld`,
        };
      const { key, label } = forms[form];
      const labels = { engine: 'torch', form: label };
      for (const variant of ['cached', 'uncached'] as const) {
        measurements.push({
          key: `${key}/${variant}`,
          labels: { ...labels, workload: 'seed', variant },
          timing: s[form][variant],
        });
      }
      for (const t of [...contexts].reverse()) {
        for (const variant of ['cached', 'uncached'] as const) {
          measurements.push({
            key: `${key}/context/${variant}/t=${t}`,
            labels: { ...labels, workload: 'context', variant, t },
            timing: l[form].timings[`${variant}/t=${t}`]!,
          });
        }
      }
    }
    const g = torchGptPart(ctx, gpt, run, forms);
    measurements.push(...g.measurements);
    const derived: Record<string, number> = {};
    for (const form of Object.keys(forms) as Form[]) {
      const mine = measurements.filter((m) => m.key.startsWith(`${forms[form].key}/`));
      Object.assign(derived, ratiosToKvkit(ctx, forms[form].name, mine));
    }
    const result: Scenario = {
      ...base,
      params: {
        ...params,
        python,
        torch: out.torch,
        threads: out.threads,
        openblasThreads: out.blasThreads,
        blas: out.blas,
      },
      measurements,
      derived,
      ...(g.skipped ? { partsSkipped: { gpt: g.skipped } } : {}),
    };
    return result;
  },
};

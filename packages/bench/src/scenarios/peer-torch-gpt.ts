/**
 * The GPT part of the PyTorch peer: the gpt scenario's weights written as raw float32 to a
 * temporary directory (a JSON manifest of names, shapes and offsets beside them; the prompt's
 * token ids in the manifest), python/peer_torch.py's `gpt` mode run on them in a process of its
 * own (so a failure there skips the GPT part only), and its logits checked against kvkit's
 * before any of its timings count.
 */
import { execFileSync } from 'node:child_process';
import { gptReference } from '../peers/gpt-reference.ts';
import { gptTolerance, maxAbsDiff } from '../peers/verify.ts';
import { writeTensorFile } from '../peers/weights.ts';
import type { Measurement, Timing } from '../report/schema.ts';
import type { ScenarioContext } from '../scenario.ts';
import {
  type GptSizes,
  gptPrompt,
  gptUnavailable,
  gptWeights,
  prefillChunk,
} from './gpt-workload.ts';

/** What the Python side returns for one form. */
interface GptFormOutput {
  timings: Record<string, Timing>;
  check: Record<string, number[]>;
}

/** How the two forms are named in keys and labels. */
export interface TorchForm {
  key: string;
  label: string;
}

/** Soft cap per PyTorch GPT step measurement, as timeit's budgetMs (the gpt scenario's). */
const stepBudgetMs = 3_000;

/**
 * Runs the GPT in PyTorch, both forms. Returns the measurements of every form whose logits
 * match kvkit's, or the reason there are none.
 *
 * @example
 * const g = torchGptPart(ctx, gptSizes.full, pythonRunner(python, peerTorchScript, ctx), forms);
 */
export function torchGptPart(
  ctx: ScenarioContext,
  s: GptSizes,
  run: (args: string[]) => unknown,
  forms: Record<string, TorchForm>,
): { measurements: Measurement[]; skipped: string | null } {
  const unavailable = gptUnavailable(ctx);
  if (unavailable) return { measurements: [], skipped: unavailable };
  const ref = gptReference(s);
  const weights = gptWeights(s);
  const file = writeTensorFile(Object.fromEntries(weights), {
    ...s,
    prefillChunk,
    stepBudgetMs,
    ids: Array.from(gptPrompt(s)),
  });
  weights.clear();
  ctx.progress('peer-torch: the GPT, both forms');
  let out: Record<string, GptFormOutput>;
  try {
    out = (run(['--mode', 'gpt', '--gpt-tensors', file.manifest]) as { modes: { gpt: typeof out } })
      .modes.gpt;
  } catch (error) {
    // The last line Python wrote to stderr says why (a traceback's last line), else the message.
    const e = error as Error & { stderr?: string };
    const why = e.stderr?.trim().split('\n').pop() || e.message.split('\n')[0];
    return { measurements: [], skipped: `PyTorch's GPT run failed (${why})` };
  } finally {
    file.remove();
  }
  const measurements: Measurement[] = [];
  const points = [
    ...[...ref.steps].map(([t, logits]) => [`cached/t=${t}`, logits] as const),
    [`uncached/t=${s.uncachedT}`, ref.uncached] as const,
  ];
  for (const [form, { key, label }] of Object.entries(forms)) {
    const o = out[form]!;
    for (const [at, ours] of points) {
      const d = maxAbsDiff(ours, o.check[at] ?? []);
      if (!(d <= gptTolerance))
        return {
          measurements: [],
          skipped: `PyTorch's GPT logits differ from kvkit's (${form}, ${at}: max |difference| ${d} > ${gptTolerance}); its GPT timings withheld`,
        };
      const [variant, t] = at.split('/t=') as [string, string];
      measurements.push({
        key: `${key}/gpt/${at}`,
        labels: { engine: 'torch', form: label, workload: 'gpt', variant, t: Number(t) },
        timing: o.timings[at]!,
        extra: { logitsMaxAbsDiff: d },
      });
    }
  }
  return { measurements, skipped: null };
}

/** Runs python/peer_torch.py with some arguments and returns its last line, parsed. */
export type PythonRun = (args: string[]) => unknown;

/**
 * Runs python/peer_torch.py with `args` (plus the run's repeats and calibration target), one
 * thread, and returns its last stdout line parsed as JSON; throws when Python fails, with its
 * stderr on the error.
 *
 * @example
 * const out = pythonRunner(python, peerTorchScript, ctx)(['--mode', 'seed']);
 */
export function pythonRunner(python: string, script: string, ctx: ScenarioContext): PythonRun {
  return (args) => {
    const repeats = [
      '--repeats',
      `${ctx.timing.repeats ?? 7}`,
      '--target-ms',
      `${ctx.timing.targetMs ?? 200}`,
      ...(ctx.timing.loops ? ['--loops', `${ctx.timing.loops}`] : []),
    ];
    const out = execFileSync(python, [script, ...args, ...repeats], {
      encoding: 'utf8',
      timeout: 10 * 60_000,
      maxBuffer: 256 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Debian's OpenBLAS ignores torch.set_num_threads: bind it before torch loads.
      env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' },
    });
    return JSON.parse(out.trim().split('\n').pop()!);
  };
}

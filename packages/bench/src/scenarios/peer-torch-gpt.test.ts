// The PyTorch peer's GPT part: python/peer_torch.py's GPT (both forms) on the bench's weights
// gives kvkit's logits at every point of the schedule; logits off by more than the tolerance,
// or a Python run that fails, skip the GPT part with the reason instead of reporting times.
// The real Python run needs a Python with torch; without one that test is reported skipped.
import { initBackend } from '@kvkit/tensor-utils';
import { beforeAll, describe, expect, test } from 'vitest';
import { gptReference } from '../peers/gpt-reference.ts';
import { gptTolerance } from '../peers/verify.ts';
import type { ScenarioContext } from '../scenario.ts';
import { gptSizes } from './gpt-workload.ts';
import { findTorchPython, peerTorchScript } from './peer-torch.ts';
import { pythonRunner, torchGptPart } from './peer-torch-gpt.ts';

const s = gptSizes.quick;
const forms = {
  linear: { key: 'torch', label: 'nn.Linear' },
  addmv: { key: 'torch-addmv', label: 'addmv on (in, out) weights' },
};
const ctx: ScenarioContext = {
  quick: true,
  backend: 'wasm',
  timing: { repeats: 3, targetMs: 5 },
  progress: () => {},
  results: new Map(),
};
const python = findTorchPython();

beforeAll(async () => {
  await initBackend('wasm');
});

/** What peer_torch.py prints for the gpt mode, with these logits for every point. */
function fakeOutput(logits: (at: string) => number[]) {
  const ref = gptReference(s);
  const ats = [...[...ref.steps.keys()].map((t) => `cached/t=${t}`), `uncached/t=${s.uncachedT}`];
  const timing = {
    meanMs: 1,
    stdMs: 0,
    minMs: 1,
    medianMs: 1,
    loops: 1,
    repeats: 3,
    samplesMs: [1, 1, 1],
  };
  const form = () => ({
    timings: Object.fromEntries(ats.map((at) => [at, timing])),
    check: Object.fromEntries(ats.map((at) => [at, logits(at)])),
  });
  return { modes: { gpt: { linear: form(), addmv: form() } } };
}

describe('torchGptPart', () => {
  test("logits a little off kvkit's withhold the GPT timings, naming the point", () => {
    const ref = gptReference(s);
    const out = fakeOutput((at) =>
      Array.from(
        at.startsWith('uncached') ? ref.uncached : ref.steps.get(Number(at.split('=')[1]))!,
        (v, i) => (at === 'cached/t=32' && i === 7 ? v + 3 * gptTolerance : v),
      ),
    );
    const r = torchGptPart(ctx, s, () => out, forms);
    expect(r.measurements).toEqual([]);
    expect(r.skipped).toMatch(
      /^PyTorch's GPT logits differ from kvkit's \(linear, cached\/t=32: max \|difference\| 0\.0000\d+ > 0\.00001\)/,
    );
  });

  test('a failed Python run skips the GPT part with its last stderr line', () => {
    const failing = () => {
      throw Object.assign(new Error('Command failed: python3 peer_torch.py'), {
        stderr: 'Traceback (most recent call last):\n  ...\nMemoryError: out of memory\n',
      });
    };
    expect(torchGptPart(ctx, s, failing, forms)).toEqual({
      measurements: [],
      skipped: "PyTorch's GPT run failed (MemoryError: out of memory)",
    });
  });

  test.skipIf(!python)(
    'python/peer_torch.py gives kvkit logits in both forms',
    () => {
      const r = torchGptPart(ctx, s, pythonRunner(python!, peerTorchScript, ctx), forms);
      expect(r.skipped).toBeNull();
      const keys = r.measurements.map((m) => m.key).sort();
      const ats = ['cached/t=16', 'cached/t=32', 'cached/t=63', 'uncached/t=32'];
      expect(keys).toEqual(
        [...ats.map((a) => `torch-addmv/gpt/${a}`), ...ats.map((a) => `torch/gpt/${a}`)].sort(),
      );
      for (const m of r.measurements) {
        expect(m.extra!.logitsMaxAbsDiff).toBeLessThanOrEqual(gptTolerance);
        expect(m.timing.repeats).toBe(3);
      }
    },
    120_000,
  );
});

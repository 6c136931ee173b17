// The gpt scenario through the report: its floors, the ratios added after the run (over
// PyTorch's addmv form, over the floor), its rows in the peer table beside each engine, a
// peer's skipped GPT part, and its series in the history chart. The report is made by hand;
// expected numbers are computed here from the made-up timings.
import { describe, expect, test } from 'vitest';
import { applyFloors, gptForwardWork } from './floors.ts';
import { addGptRatios } from './gpt-targets.ts';
import { historyPoints, historySeries } from './report/history.ts';
import { renderMarkdown } from './report/markdown.ts';
import { peerRows, peerSkips } from './report/peer-table.ts';
import type { Measurement, Report } from './report/schema.ts';
import { timing } from './report/test-support/sample-report.ts';

const sizes = { nLayer: 2, nHead: 2, C: 4, vocabSize: 10, blockSize: 16, uncachedT: 8 };
const m = (key: string, labels: Measurement['labels'], ms: number): Measurement => ({
  key,
  labels,
  timing: timing(ms, 0),
});

function report(): Report {
  const gpt = {
    id: 'gpt',
    title: 'gpt',
    params: { ...sizes, contexts: [4, 8, 15] },
    measurements: [
      m('cached/t=15', { variant: 'cached', t: 15 }, 2.4),
      m('cached/t=8', { variant: 'cached', t: 8 }, 2.2),
      m('part/lm_head', { variant: 'part', part: 'lm_head', t: 8 }, 0.5),
      m('cached/t=4', { variant: 'cached', t: 4 }, 2),
      m('uncached/t=8', { variant: 'uncached', t: 8 }, 40),
    ],
    derived: {},
  };
  const torch = (key: string, form: string, variant: string, t: number, ms: number) =>
    m(`${key}/gpt/${variant}/t=${t}`, { engine: 'torch', form, workload: 'gpt', variant, t }, ms);
  const peerTorch = {
    id: 'peer-torch',
    title: 'torch',
    params: { gpt: { ...sizes, contexts: [4, 8, 15] } },
    measurements: [
      torch('torch', 'nn.Linear', 'cached', 8, 4),
      torch('torch-addmv', 'addmv', 'cached', 8, 2.75),
      torch('torch-addmv', 'addmv', 'uncached', 8, 30),
    ],
    derived: {},
  };
  const ortNode = {
    id: 'peer-ort-node',
    title: 'ort-node',
    params: {},
    measurements: [],
    derived: {},
    partsSkipped: { gpt: 'onnxruntime-node could not load the GPT (out of memory)' },
  };
  return {
    schemaVersion: 2,
    environment: { quick: false } as Report['environment'],
    noise: null,
    machine: { readGBps: 10, matmulGflops: 40, measurements: [], noise: null },
    scenarios: [gpt, peerTorch, ortNode],
  };
}

describe('the gpt scenario in a report', () => {
  test('floors: a step reads the whole model and t + 1 key/value rows per layer', () => {
    const r = report();
    applyFloors(r);
    const step = r.scenarios[0]!.measurements.find((x) => x.key === 'cached/t=8')!;
    expect(step.floor!.amount).toBe(gptForwardWork(sizes, 1, 1, 9).bytes);
    expect(step.floor!.ms).toBeCloseTo(gptForwardWork(sizes, 1, 1, 9).bytes / 10 / 1e6, 15);
    const peer = r.scenarios[1]!.measurements[0]!;
    expect(peer.floor!.amount).toBe(step.floor!.amount); // the peer's row gets the same floor
  });

  test('addGptRatios: kvkit over PyTorch addmv and over the floor, at uncachedT', () => {
    const r = report();
    applyFloors(r);
    addGptRatios(r);
    const d = r.scenarios[0]!.derived;
    expect(d.overTorchAddmvAtT8).toBeCloseTo(2.2 / 2.75, 12);
    const floorMs = gptForwardWork(sizes, 1, 1, 9).bytes / 10 / 1e6;
    expect(d.overFloorAtT8).toBeCloseTo(2.2 / floorMs, 6);
  });

  test('addGptRatios leaves out what the run does not have', () => {
    const r = report();
    r.scenarios[1]!.skipped = 'PyTorch not found';
    addGptRatios(r); // no floors applied: no machine ratio either
    expect(r.scenarios[0]!.derived).toEqual({});
  });

  test('the peer table: the steps by t, then the no-cache forward, kvkit beside each engine', () => {
    const rows = peerRows(report()).filter((row) => row.workload === 'gpt');
    expect(rows.map((row) => row.label)).toEqual(['gpt step at t=8', 'gpt prefix at t=8']);
    // columns: kvkit, kvkit built once, PyTorch nn.Linear, PyTorch addmv, ort-web, ort-node
    expect(rows[0]!.means).toEqual([2.2, null, 4, 2.75, null, null]);
    expect(rows[1]!.means).toEqual([40, null, null, 30, null, null]);
  });

  test("a peer's skipped GPT part is listed with its reason", () => {
    expect(peerSkips(report())).toEqual([
      'peer-ort-node (gpt): onnxruntime-node could not load the GPT (out of memory)',
    ]);
    expect(renderMarkdown(report())).toContain(
      '- skipped: peer-ort-node (gpt): onnxruntime-node could not load the GPT (out of memory)',
    );
  });

  test('history: the gpt series read the ratios at uncachedT', () => {
    const r = report();
    applyFloors(r);
    addGptRatios(r);
    r.scenarios[0]!.derived.speedupAtT8 = 40 / 2.2;
    const points = historyPoints([{ name: 'run', report: r }]);
    const value = (id: string) =>
      points.find((p) => p.series === historySeries.find((s) => s.id === id)!.label)?.value;
    expect(value('gpt-torch-addmv')).toBeCloseTo(0.8, 12);
    expect(value('gpt-speedup')).toBeCloseTo(40 / 2.2, 12);
    expect(value('gpt-floor')).toBe(r.scenarios[0]!.derived.overFloorAtT8);
  });
});

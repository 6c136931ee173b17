import { describe, expect, test } from 'vitest';
import {
  applyFloors,
  floorOf,
  forwardWork,
  gptForwardWork,
  gptPartWork,
  seedCachedWork,
  seedUncachedWork,
} from './floors.ts';
import type { Report, Scenario } from './report/schema.ts';
import { timing } from './report/test-support/sample-report.ts';

// Expected values are counted by hand for a tiny layer: C = 4, 2 heads (hs = 2).
//   weights: c_attn 4x12 + 12, c_proj 4x4 + 4 = 48 + 12 + 16 + 4 = 80 floats = 320 bytes
//   per key position: K and V of 2 heads x hs 2 = 8 floats = 32 bytes (B = 1)
const tiny = { C: 4, nHead: 2 };

describe('forwardWork', () => {
  test('one decode step at t = 9 (10 keys): weights once, 10 key/value rows', () => {
    const w = forwardWork(tiny, 1, 1, 10);
    expect(w.bytes).toBe(320 + 10 * 32);
    // projections: 2*4*12 + 2*4*4 = 128; attention: 2 (q.k, p.v) * 2 flops * 2 heads * hs 2 * 10 keys = 160
    expect(w.flops).toBe(128 + 160);
  });

  test('a causal prefill of 3 rows sees 1 + 2 + 3 keys; B and MQA scale what they should', () => {
    expect(forwardWork(tiny, 1, 3, 3).flops).toBe(3 * 128 + 2 * 2 * 2 * 2 * 6);
    const mqa = forwardWork({ ...tiny, nKvHeads: 1 }, 2, 1, 10);
    // c_attn is 4 x (4 + 2 + 2) = 32 + 8 bias; c_proj 20: 60 floats; K,V of 1 head: 4 floats a row, 2 sequences
    expect(mqa.bytes).toBe(60 * 4 + 2 * 10 * 16);
  });

  test('the seed loops sum their calls', () => {
    const s = { ...tiny, B: 1, T: 5, prefill: 3 };
    const cached = seedCachedWork(s);
    expect(cached.bytes).toBe(3 * 320 + (3 + 4 + 5) * 32); // prefill (3 keys), steps at 3 and 4
    const uncached = seedUncachedWork(s);
    expect(uncached.bytes).toBe(3 * 320 + (3 + 4 + 5) * 32); // prefixes of 3, 4, 5
    expect(uncached.flops).toBeGreaterThan(cached.flops);
  });
});

// A tiny GPT on the same layer: 2 blocks, vocab 10.
//   MLP: c_fc 4x16 + 16, c_proj 16x4 + 4 = 64 + 16 + 64 + 4 = 148 floats = 592 bytes
//   ln_1 + ln_2: 4 vectors of 4 = 16 floats = 64 bytes
//   ln_f 8 floats, lm_head 10x4 = 40 floats (no bias)
const tinyGpt = { ...tiny, nLayer: 2, vocabSize: 10 };

describe('gptForwardWork', () => {
  test('a decode step at t = 9: every block once, 10 key/value rows per layer, one lm_head row', () => {
    const w = gptForwardWork(tinyGpt, 1, 1, 10);
    // per block 320 + 10 * 32 + 592 + 64 = 1296; ends: ln_f 32 + lm_head 160 + wte and wpe rows 2 * 16
    expect(w.bytes).toBe(2 * 1296 + 32 + 160 + 32);
    // per block: attention 288 (as above) + MLP 2 * (4*16 + 16*4) = 256; lm_head 2 * 10 * 4 = 80
    expect(w.flops).toBe(2 * (288 + 256) + 80);
  });

  test('the no-cache forward of 3 tokens: 3 rows of every matMul but lm_head (last position only)', () => {
    const w = gptForwardWork(tinyGpt, 1, 3, 3);
    const attention = forwardWork(tiny, 1, 3, 3);
    expect(w.flops).toBe(2 * (attention.flops + 3 * 256) + 80);
    expect(w.bytes).toBe(2 * (attention.bytes + 592 + 64) + 32 + 160 + 3 * 2 * 16);
  });

  test('the parts of a step add up to its matMuls and key/value reads', () => {
    const parts = [
      'projections (c_attn + c_proj)',
      'MLP (c_fc + c_proj)',
      'attention kernel',
      'lm_head',
    ];
    const sum = parts
      .map((p) => gptPartWork(tinyGpt, p, 9)!)
      .reduce((a, b) => ({ bytes: a.bytes + b.bytes, flops: a.flops + b.flops }));
    const step = gptForwardWork(tinyGpt, 1, 1, 10);
    // What the parts leave out: both layer norms of each block, ln_f, the two embedding rows.
    expect(step.bytes - sum.bytes).toBe(2 * 64 + 32 + 32);
    expect(step.flops).toBe(sum.flops);
    expect(gptPartWork(tinyGpt, 'attention kernel', 9)!.bytes).toBe(2 * 10 * 32);
    expect(gptPartWork(tinyGpt, 'layer norms, GELU, adds, embeddings', 9)).toBeNull();
  });
});

describe('the strategies scenario', () => {
  test('windowed caches read at most their window of keys; static and dynamic all t + 1', async () => {
    const { measurementWork } = await import('./floors.ts');
    const s = {
      id: 'strategies',
      title: 'strategies',
      params: { C: 4, nHead: 2, B: 1, window: 8, sinks: 2 },
      measurements: [],
      derived: {},
    };
    const m = (strategy: string, t: number) => ({
      key: `${strategy}/t=${t}`,
      labels: { strategy, t },
      timing: timing(1, 0),
    });
    expect(measurementWork(s, m('static', 20))!.bytes).toBe(320 + 21 * 32);
    expect(measurementWork(s, m('dynamic', 20))!.bytes).toBe(320 + 21 * 32);
    expect(measurementWork(s, m('sliding-window', 20))!.bytes).toBe(320 + 8 * 32);
    expect(measurementWork(s, m('sink', 20))!.bytes).toBe(320 + 8 * 32);
    expect(measurementWork(s, m('sliding-window', 5))!.bytes).toBe(320 + 6 * 32);
  });
});

describe('floorOf', () => {
  const rates = { readGBps: 10, gflops: 40 };
  test('the slower of bandwidth and FLOPs, with the ratio of the measured mean to it', () => {
    // 1e6 bytes at 10 GB/s = 0.1 ms; 1e6 flops at 40 GFLOP/s = 0.025 ms: bandwidth-bound.
    expect(floorOf({ bytes: 1e6, flops: 1e6 }, rates, 0.5)).toEqual({
      kind: 'bandwidth',
      amount: 1e6,
      rate: 10,
      ms: 0.1,
      ratio: 5,
    });
    const f = floorOf({ bytes: 1e6, flops: 1e8 }, rates, 5);
    expect(f).toMatchObject({ kind: 'flops', ms: 2.5, ratio: 2 });
  });
});

describe('applyFloors', () => {
  const scenario = (s: Partial<Scenario> & { id: string }): Scenario => ({
    title: s.id,
    params: {},
    measurements: [],
    derived: {},
    ...s,
  });
  const report = (machine: boolean): Report => ({
    schemaVersion: 2,
    noise: null,
    machine: machine ? { readGBps: 20, matmulGflops: 30, measurements: [], noise: null } : null,
    environment: {} as Report['environment'],
    scenarios: [
      scenario({
        id: 'context',
        params: { C: 4, nHead: 2, B: 1 },
        measurements: [
          { key: 'cached/t=9', labels: { variant: 'cached', t: 9 }, timing: timing(0.064, 0) },
        ],
      }),
    ],
  });
  test("uses the run's own machine rates", () => {
    const r = report(true);
    applyFloors(r);
    const floor = r.scenarios[0]!.measurements[0]!.floor!;
    expect(floor.kind).toBe('bandwidth');
    expect(floor.ms).toBeCloseTo(640 / 20 / 1e6, 15);
    expect(floor.ratio).toBeCloseTo(0.064 / (640 / 20 / 1e6), 6);
  });
  test('without a machine measurement there is no floor', () => {
    const r = report(false);
    applyFloors(r);
    expect(r.scenarios[0]!.measurements[0]!.floor).toBeUndefined();
  });
});

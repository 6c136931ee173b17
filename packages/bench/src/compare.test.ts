import { describe, expect, test } from 'vitest';
import { compareReports, formatComparison } from './compare.ts';
import { ReportSchemaError } from './report/read.ts';
import { type Report, schemaVersion, type Timing } from './report/schema.ts';
import { growthExponent } from './scenarios/context.ts';

function timing(samplesMs: number[]): Timing {
  const meanMs = samplesMs.reduce((a, b) => a + b, 0) / samplesMs.length;
  return {
    meanMs,
    stdMs: 0,
    minMs: Math.min(...samplesMs),
    medianMs: meanMs,
    loops: 1,
    repeats: samplesMs.length,
    samplesMs,
  };
}

function report(samples: Record<string, number[]>): Report {
  return {
    schemaVersion: 2,
    noise: null,
    machine: null,
    environment: {} as Report['environment'],
    scenarios: [
      {
        id: 'seed',
        title: 'seed',
        params: {},
        derived: {},
        measurements: Object.entries(samples).map(([key, s]) => ({
          key,
          labels: {},
          timing: timing(s),
        })),
      },
    ],
  };
}

describe('compareReports', () => {
  const base = report({
    cached: [10, 10.2, 9.8, 10.1, 9.9],
    uncached: [50, 51, 49, 50.5, 49.5],
    gone: [1, 1],
  });
  test('a consistent 20% slowdown is real; a shift inside the spread is noise', () => {
    const next = report({
      cached: [12, 12.2, 11.8, 12.1, 11.9],
      uncached: [50.4, 51.4, 49.4, 50.9, 49.9],
      added: [1],
    });
    const rows = compareReports(base, next);
    expect(rows.map((r) => [r.key, r.verdict])).toEqual([
      ['cached', 'slower'],
      ['uncached', 'noise'],
    ]);
    expect(rows[0]!.ratio).toBeCloseTo(1.2, 10);
    expect(formatComparison(rows)).toMatch(/1 of 2 metrics changed beyond the noise/);
  });
  test('a large but tiny change (< 2%) is still noise; faster is named', () => {
    const next = report({
      cached: [9.9, 10.1, 9.7, 10, 9.8],
      uncached: [40, 40.5, 39.5, 40.2, 39.8],
    });
    const rows = compareReports(base, next);
    expect(rows.map((r) => r.verdict)).toEqual(['noise', 'faster']);
  });
});

describe('a run flagged noisy', () => {
  const base = report({ cached: [10, 10.2, 9.8, 10.1, 9.9] });
  // A steady background load slows every sample alike: Welch's t alone would call it real.
  const next = () => report({ cached: [12, 12.2, 11.8, 12.1, 11.9] });
  test('its metrics are noise whatever their t, and the row says why', () => {
    const noisy = next();
    noisy.scenarios[0]!.noise = {
      before: { load1: 2, load5: 1, load15: 1, cpuCount: 2 },
      after: { load1: 2, load5: 1, load15: 1, cpuCount: 2 },
      othersCpu: 1.01,
      reasons: ['other processes used 1.01 cores'],
    };
    const [row] = compareReports(base, noisy);
    expect(row!.verdict).toBe('noise');
    expect(row!.t).toBeGreaterThan(3);
    expect(row!.flagged).toBe('new run noisy: other processes used 1.01 cores');
    expect(formatComparison([row!])).toMatch(/noise \(new run noisy: other processes/);
    expect(compareReports(noisy, base)[0]!.flagged).toMatch(/^base run noisy/);
  });
  test('so is a metric whose spread exceeds the run limit', () => {
    const wide = next();
    wide.noise = { noisy: true, reasons: [], maxOthersCpu: 0.5, maxCv: 0.1 };
    wide.scenarios[0]!.measurements[0]!.cv = 0.15;
    expect(compareReports(base, wide)[0]!.flagged).toBe(
      'new run: coefficient of variation 15% > 10%',
    );
    expect(compareReports(base, next())[0]!.verdict).toBe('slower');
  });
});

describe('reports of another schema version', () => {
  test.each([0, 99, undefined])(
    'schemaVersion %s is a ReportSchemaError, not an empty result',
    (v) => {
      const other = { ...report({ cached: [10, 11] }), schemaVersion: v } as unknown as Report;
      const current = report({ cached: [10, 11] });
      expect(() => compareReports(other, current)).toThrow(ReportSchemaError);
      expect(() => compareReports(current, other)).toThrow(
        new RegExp(`schemaVersion ${String(v)}.*reads versions 1 and ${schemaVersion}`),
      );
    },
  );
});

test('one sample on a side gives no noise estimate, so no verdict but noise', () => {
  const rows = compareReports(report({ cached: [10] }), report({ cached: [20] }));
  expect(rows[0]!.verdict).toBe('noise');
  expect(rows[0]!.t).toBeNaN();
});

describe('growthExponent', () => {
  test('is the log-log slope: 1 for linear, 2 for quadratic', () => {
    const ts = [64, 128, 256, 512];
    expect(growthExponent(ts.map((t) => ({ t, ms: 0.01 * t })))).toBeCloseTo(1, 12);
    expect(growthExponent(ts.map((t) => ({ t, ms: 3e-5 * t * t })))).toBeCloseTo(2, 12);
  });
});

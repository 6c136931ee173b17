import { describe, expect, test } from 'vitest';
import {
  coefficientOfVariation,
  maxCv,
  noiseReasons,
  othersCores,
  parseCpuTicks,
  runNoise,
} from './noise.ts';
import type { Measurement, Scenario } from './report/schema.ts';
import { timing } from './report/test-support/sample-report.ts';

// Real /proc layouts (Linux 6.x), numbers chosen by hand.
const procStat = (user: number, idle: number, steal = 0) =>
  `cpu  ${user} 0 0 ${idle} 0 0 0 ${steal} 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\ncpu1 0 0 0 0 0 0 0 0 0 0\nintr 1\n`;
const selfStat = (utime: number, cutime = 0) =>
  `4242 (node (main) x) R 1 1 1 0 -1 4194304 10 0 0 0 ${utime} 0 ${cutime} 0 20 0 1 0`;

describe('other processes CPU time', () => {
  test('parses busy, total, CPUs and our own ticks (children included)', () => {
    expect(parseCpuTicks(procStat(100, 50, 7), selfStat(30, 5))).toEqual({
      busy: 107,
      total: 157,
      cpus: 2,
      self: 35,
    });
    expect(parseCpuTicks('intr 1\n', selfStat(0))).toBeNull();
  });

  test('one core busy elsewhere while we use the other: 1 core of others', () => {
    // 2 CPUs for 100 ticks each = 200 ticks: we used 100, someone else 100, none idle.
    const start = parseCpuTicks(procStat(1000, 1000), selfStat(500))!;
    const end = parseCpuTicks(procStat(1200, 1000), selfStat(600))!;
    expect(othersCores(start, end)).toBeCloseTo(1, 12);
  });

  test('only our own work: 0 cores of others; steal counts as others', () => {
    const start = parseCpuTicks(procStat(1000, 1000), selfStat(500))!;
    expect(othersCores(start, parseCpuTicks(procStat(1100, 1100), selfStat(600))!)).toBe(0);
    // 50 of 200 ticks stolen by the hypervisor: a quarter of 2 CPUs.
    const stolen = parseCpuTicks(procStat(1100, 1050, 50), selfStat(600))!;
    expect(othersCores(start, stolen)).toBeCloseTo(0.5, 12);
    expect(othersCores(start, start)).toBeNull();
  });
});

function m(key: string, meanMs: number, stdMs: number, repeats = 7): Measurement {
  const t = timing(meanMs, stdMs, 10, repeats);
  const out: Measurement = { key, labels: {}, timing: t };
  out.cv = coefficientOfVariation(out);
  return out;
}

describe('coefficient of variation and the verdict', () => {
  test('std / mean; null for a single repeat', () => {
    expect(m('a', 20, 2).cv).toBeCloseTo(0.1, 12);
    expect(m('b', 20, 0, 1).cv).toBeNull();
  });

  test('a quiet scenario has no reasons; load or a wide spread make it noisy', () => {
    const quiet = [m('cached', 10, 0.3), m('uncached', 50, 1)];
    expect(noiseReasons(0.05, quiet)).toEqual([]);
    expect(noiseReasons(null, quiet)).toEqual([]);
    expect(noiseReasons(1.02, quiet)).toEqual(['other processes used 1.02 cores']);
    const wide = [m('cached', 10, 2.8), m('uncached', 50, 12), m('x', 1, 0.01)];
    expect(noiseReasons(0, wide)).toEqual([
      `2 measurement(s) vary by more than ${maxCv * 100}% (worst: cached, 28%)`,
    ]);
  });

  test('the run is noisy when any scenario is, and says which', () => {
    const scenario = (id: string, reasons: string[]): Scenario => ({
      id,
      title: id,
      params: {},
      measurements: [],
      derived: {},
      noise: {
        before: { load1: 1, load5: 1, load15: 1, cpuCount: 2 },
        after: { load1: 1, load5: 1, load15: 1, cpuCount: 2 },
        othersCpu: 0,
        reasons,
      },
    });
    expect(runNoise([scenario('seed', []), scenario('context', [])]).noisy).toBe(false);
    const noisy = runNoise([scenario('seed', ['other processes used 1.00 cores'])]);
    expect(noisy).toMatchObject({
      noisy: true,
      reasons: ['seed: other processes used 1.00 cores'],
    });
  });
});

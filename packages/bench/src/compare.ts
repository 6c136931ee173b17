import { upgradeReport } from './report/read.ts';
import type { Measurement, Report, Scenario, Timing } from './report/schema.ts';

/** One metric present in both reports. */
export interface ComparedMetric {
  scenario: string;
  key: string;
  baseMs: number;
  newMs: number;
  /** new / base: below 1 is faster. */
  ratio: number;
  /** Welch's t statistic over the per-repeat samples of both runs. */
  t: number;
  verdict: 'faster' | 'slower' | 'noise';
  /**
   * Why the metric counts as noise whatever its t: the run that measured it was flagged noisy
   * (a steady background load can shift every sample alike and fool Welch's t). Null otherwise.
   */
  flagged: string | null;
}

export interface CompareOptions {
  /** |t| above this is a real difference (default 3). */
  tThreshold?: number;
  /** Relative changes smaller than this are noise however consistent (default 0.02 = 2%). */
  minChange?: number;
}

/**
 * Compares every measurement the two reports share (same scenario id and key). A difference
 * counts only when it is both large against the measured noise of the two runs (Welch's t over
 * the repeats' samples, |t| > 3 by default) and larger than 2%; everything else is noise. A
 * metric whose scenario was flagged noisy in either run (other processes' CPU time), or whose
 * coefficient of variation exceeds the run's limit, is noise whatever its t.
 *
 * Reports of schema version 1 are read as current ones; any other version is a
 * `ReportSchemaError` (from `upgradeReport`), not an empty result.
 *
 * @example
 * const rows = compareReports(readReport('base.json'), readReport('new.json'));
 * console.log(formatComparison(rows));
 */
export function compareReports(
  base: Report,
  next: Report,
  options: CompareOptions = {},
): ComparedMetric[] {
  const { tThreshold = 3, minChange = 0.02 } = options;
  const baseReport = upgradeReport(base, 'the base report');
  const nextReport = upgradeReport(next, 'the new report');
  const out: ComparedMetric[] = [];
  for (const scenario of nextReport.scenarios) {
    const before = baseReport.scenarios.find((s) => s.id === scenario.id);
    if (!before) continue;
    for (const m of scenario.measurements) {
      const b = before.measurements.find((x) => x.key === m.key);
      if (!b) continue;
      const ratio = m.timing.meanMs / b.timing.meanMs;
      // With fewer than two samples on a side there is no noise estimate: never call it real.
      const measurable = b.timing.samplesMs.length >= 2 && m.timing.samplesMs.length >= 2;
      const t = measurable ? welchT(b.timing, m.timing) : Number.NaN;
      const flagged =
        noiseFlag('base', baseReport, before, b) ?? noiseFlag('new', nextReport, scenario, m);
      const real =
        !flagged && measurable && Math.abs(t) > tThreshold && Math.abs(ratio - 1) > minChange;
      out.push({
        scenario: scenario.id,
        key: m.key,
        baseMs: b.timing.meanMs,
        newMs: m.timing.meanMs,
        ratio,
        t,
        verdict: real ? (ratio < 1 ? 'faster' : 'slower') : 'noise',
        flagged,
      });
    }
  }
  return out;
}

/** Why a run's measurement is unreliable whatever its t, or null. */
function noiseFlag(side: string, report: Report, s: Scenario, m: Measurement): string | null {
  if (s.noise && s.noise.reasons.length > 0) return `${side} run noisy: ${s.noise.reasons[0]}`;
  const maxCv = report.noise?.maxCv;
  if (maxCv !== undefined && typeof m.cv === 'number' && m.cv > maxCv)
    return `${side} run: coefficient of variation ${(m.cv * 100).toFixed(0)}% > ${(maxCv * 100).toFixed(0)}%`;
  return null;
}

function welchT(a: Timing, b: Timing): number {
  const va = variance(a.samplesMs);
  const vb = variance(b.samplesMs);
  const se = Math.sqrt(va / a.samplesMs.length + vb / b.samplesMs.length);
  if (se === 0)
    return b.meanMs === a.meanMs ? 0 : Number.POSITIVE_INFINITY * Math.sign(b.meanMs - a.meanMs);
  return (b.meanMs - a.meanMs) / se;
}

function variance(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = xs.reduce((s, x) => s + x, 0) / xs.length;
  return xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1);
}

/** A plain-text table of a comparison, for the terminal. */
export function formatComparison(rows: ComparedMetric[]): string {
  const lines = ['scenario     metric                   base ms      new ms   ratio  verdict'];
  for (const r of rows) {
    lines.push(
      `${r.scenario.padEnd(12)} ${r.key.padEnd(22)} ${r.baseMs.toPrecision(4).padStart(9)} ${r.newMs.toPrecision(4).padStart(11)} ${r.ratio.toFixed(3).padStart(7)}  ${r.verdict === 'noise' ? (r.flagged ? `noise (${r.flagged})` : 'noise') : `${r.verdict} (t=${r.t.toFixed(1)})`}`,
    );
  }
  const real = rows.filter((r) => r.verdict !== 'noise');
  lines.push(
    real.length === 0
      ? `All ${rows.length} differences are within the measured noise.`
      : `${real.length} of ${rows.length} metrics changed beyond the noise (|t| > 3 and > 2%); the rest are noise.`,
  );
  return lines.join('\n');
}

/**
 * The one formatter of a report: every string that `latest.md` and the docs site's Benchmarks
 * page show comes from `reportView`, so the two can never print different numbers for one
 * report. Times are IPython's `%timeit` strings (format-time.ts); other numbers use Python's
 * `%g` rounding (half to even on the exact binary value), never `toPrecision`.
 */
import { formatG, formatSpeedup, formatTime, formatTimeit, groupThousands } from './format-time.ts';
import { peerSkips, peerTableView } from './peer-table.ts';
import type {
  Environment,
  Machine,
  Measurement,
  Report,
  Scenario,
  ScenarioNoise,
  SeedScenario,
} from './schema.ts';

export interface LabelledValue {
  label: string;
  value: string;
}

export interface TableView {
  columns: { label: string; numeric: boolean }[];
  rows: string[][];
}

export interface SeedView {
  /** The notebook's two `%timeit` lines: `cached:   19.6 ms ± 1.3 ms per loop (...)`. */
  timeit: [string, string];
  speedup: string;
  params: LabelledValue[];
}

export interface NoiseView {
  noisy: boolean;
  /** `Noisy run` or `Quiet run`. */
  title: string;
  /** One sentence: what it means, and the limits a quiet run stays within. */
  headline: string;
  /** One line per noisy scenario. */
  reasons: string[];
}

export interface ScenarioView extends TableView {
  id: string;
  title: string;
  /** Why the scenario did not run, or null when it ran. */
  skipped: string | null;
  params: LabelledValue[];
  derived: LabelledValue[];
  /** Load and CPU of others while it ran, one line; null when not recorded. */
  noise: string | null;
  noisy: boolean;
}

/** The machine's limits the floors use, with their measurements. */
export interface MachineView extends TableView {
  rates: LabelledValue[];
  noise: string | null;
  noisy: boolean;
}

export interface ReportView {
  quick: boolean;
  machine: MachineView | null;
  environment: LabelledValue[];
  /** Null for reports from before noise was recorded. */
  noise: NoiseView | null;
  seed: SeedView | null;
  /** kvkit and its peers side by side (null when no peer ran), and why peers were skipped. */
  peers: TableView | null;
  peerSkips: string[];
  scenarios: ScenarioView[];
}

/**
 * Formats a report for display: environment, noise verdict, the seed's `%timeit` lines and one
 * table per scenario, all as strings.
 *
 * @example
 * const view = reportView(readReport('reports/latest.json'));
 * console.log(view.noise?.headline, view.seed?.timeit[0]);
 */
export function reportView(report: Report): ReportView {
  const seed = report.scenarios.find(isSeed);
  return {
    quick: report.environment.quick,
    machine: report.machine ? machineView(report.machine) : null,
    environment: environmentRows(report.environment),
    noise: noiseView(report),
    seed: seed && !seed.skipped ? seedView(seed) : null,
    peers: peerTableView(report),
    peerSkips: peerSkips(report),
    scenarios: report.scenarios.map(scenarioView),
  };
}

function environmentRows(env: Environment): LabelledValue[] {
  const backend = env.wasmBinary ? `${env.backend} (${env.wasmBinary} binary)` : env.backend;
  const rows: [string, string][] = [
    ['Date', env.date],
    ['Mode', env.quick ? 'quick' : 'full'],
    ['Node', `${env.node} on ${env.platform}`],
    ['Backend', backend],
    ['tfjs', env.tfjsVersion],
    ['CPU', `${env.cpuModel} (${env.cpuCount} ${env.cpuCount === 1 ? 'CPU' : 'CPUs'})`],
    ['Git commit', env.gitCommit ?? 'unknown'],
  ];
  return rows.map(([label, value]) => ({ label, value }));
}

function noiseView(report: Report): NoiseView | null {
  const n = report.noise;
  if (!n) return null;
  const limits = `other processes below ${formatG(n.maxOthersCpu, 3)} cores and every measurement's coefficient of variation below ${formatG(n.maxCv * 100, 3)}%`;
  return {
    noisy: n.noisy,
    title: n.noisy ? 'Noisy run' : 'Quiet run',
    headline: n.noisy
      ? `Its ratios are unreliable: a quiet run has ${limits}.`
      : `${limits[0]!.toUpperCase()}${limits.slice(1)} in every scenario.`,
    reasons: n.reasons,
  };
}

export function isSeed(s: Scenario): s is SeedScenario {
  return s.id === 'seed' && 'cached' in s && 'uncached' in s && 'speedup' in s;
}

function seedView(s: SeedScenario): SeedView {
  return {
    timeit: [`cached:   ${formatTimeit(s.cached)}`, `uncached: ${formatTimeit(s.uncached)}`],
    speedup: formatSpeedup(s.speedup),
    params: paramsView(s.params),
  };
}

function paramsView(params: Record<string, unknown>): LabelledValue[] {
  return Object.entries(params).map(([label, v]) => ({
    label,
    value: typeof v === 'string' ? v : JSON.stringify(v),
  }));
}

function scenarioView(s: Scenario): ScenarioView {
  const ran = !s.skipped;
  return {
    id: s.id,
    title: s.title,
    skipped: s.skipped ?? null,
    params: paramsView(s.params),
    ...measurementTable(ran ? s.measurements : []),
    derived: Object.entries(s.derived).map(([label, v]) => ({
      label,
      value: formatDerived(label, v),
    })),
    noise: s.noise ? noiseLine(s.noise, s.measurements) : null,
    noisy: (s.noise?.reasons.length ?? 0) > 0,
  };
}

function machineView(m: Machine): MachineView {
  return {
    ...measurementTable(m.measurements),
    rates: [
      { label: 'read bandwidth', value: `${formatG(m.readGBps, 3)} GB/s` },
      { label: 'matMul', value: `${formatG(m.matmulGflops, 3)} GFLOP/s` },
    ],
    noise: m.noise ? noiseLine(m.noise, m.measurements) : null,
    noisy: (m.noise?.reasons.length ?? 0) > 0,
  };
}

function noiseLine(n: ScenarioNoise, measurements: Measurement[]): string {
  const load = `load average ${formatG(n.before.load1, 3)} → ${formatG(n.after.load1, 3)} on ${n.after.cpuCount} CPUs`;
  const others = n.othersCpu === null ? '' : `, other processes ${formatG(n.othersCpu, 2)} cores`;
  const cvs = measurements.map((m) => m.cv).filter((c): c is number => typeof c === 'number');
  const cv = cvs.length > 0 ? `, largest CV ${formatPercent(Math.max(...cvs))}` : '';
  const verdict = n.reasons.length > 0 ? `noisy (${n.reasons.join('; ')})` : 'quiet';
  return `${verdict}: ${load}${others}${cv}`;
}

function measurementTable(ms: Measurement[]): TableView {
  // Union of keys in first-seen order: measurements of one scenario may not all share them.
  const labelKeys = unionKeys(ms.map((m) => m.labels));
  const extraKeys = unionKeys(ms.map((m) => m.extra ?? {}));
  const withCv = ms.some((m) => m.cv !== undefined);
  const withFloor = ms.some((m) => m.floor !== undefined);
  // Label columns are numeric (right-aligned) only when every value is a number.
  const columns = [
    ...labelKeys.map((k) => ({
      label: k,
      numeric: ms.every((m) => typeof m.labels[k] === 'number'),
    })),
    ...[
      'mean ± std',
      'min',
      'median',
      'loops × repeats',
      ...(withCv ? ['cv'] : []),
      ...(withFloor ? ['floor', '× floor'] : []),
      ...extraKeys,
    ].map((label) => ({ label, numeric: true })),
  ];
  const rows = ms.map((m) => [
    ...labelKeys.map((k) => (m.labels[k] === undefined ? '' : String(m.labels[k]))),
    `${formatTime(m.timing.meanMs)} ± ${formatTime(m.timing.stdMs)}`,
    formatTime(m.timing.minMs),
    formatTime(m.timing.medianMs),
    `${groupThousands(m.timing.loops)} × ${m.timing.repeats}`,
    ...(withCv ? [typeof m.cv === 'number' ? formatPercent(m.cv) : ''] : []),
    ...(withFloor
      ? m.floor
        ? [`${formatTime(m.floor.ms)} (${m.floor.kind})`, formatRatio(m.floor.ratio)]
        : ['', '']
      : []),
    ...extraKeys.map((k) => {
      const v = m.extra?.[k];
      return v === undefined ? '' : formatExtra(k, v);
    }),
  ]);
  return { columns, rows };
}

function unionKeys(records: Record<string, unknown>[]): string[] {
  const keys = new Set<string>();
  for (const r of records) for (const k of Object.keys(r)) keys.add(k);
  return [...keys];
}

const isSpeedup = (key: string) => /(speedup|Speedup)$/.test(key);

/** A derived number: speedups as `3.5x`, others as `formatNumber`. */
export function formatDerived(key: string, v: number): string {
  return isSpeedup(key) ? formatSpeedup(v) : formatNumber(v);
}

function formatExtra(key: string, v: number): string {
  return /bytes$/i.test(key) ? formatBytes(v) : formatNumber(v);
}

/** `0.0234` -> `2.3%` (2 significant digits, Python rounding). */
export function formatPercent(fraction: number): string {
  return `${formatG(fraction * 100, 2)}%`;
}

/** A ratio to a floor or a peer, 3 significant digits: `1.42x`, `12.3x`, `0.871x`. */
export function formatRatio(x: number): string {
  return `${formatG(x, 3)}x`;
}

/** Integers and large values with thousands separators, others to 3 significant digits. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return groupThousands(v);
  if (Math.abs(v) >= 1000) return groupThousands(Math.round(v));
  return formatG(v, 3);
}

/** `98,304` bytes -> `96 KiB`: binary units, 3 significant digits. */
export function formatBytes(v: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (i < units.length - 1 && Math.abs(v) >= 1024 ** (i + 1)) i++;
  return i === 0 ? `${groupThousands(v)} B` : `${formatG(v / 1024 ** i, 3)} ${units[i]}`;
}

// Build-time data for the Benchmarks page (a VitePress data loader): reads one kvbench report,
// formats its numbers the way the report's Markdown and the seed notebook print them, and
// renders its charts to SVG. The page gets plain strings; nothing of @kvkit/bench (or vega)
// reaches the browser.
//
// Which report: the file named by $KVKIT_BENCH_REPORT if set (a path, relative to the directory
// the command was started from), else packages/bench/reports/latest.json (written by
// `npm run bench`, ignored by git), else packages/bench/reports/baseline.json (a committed copy
// of a full run). With none of them, the page says there is no report yet.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type Environment,
  formatSpeedup,
  formatTime,
  formatTimeit,
  type Measurement,
  type Report,
  renderCharts,
  type Scenario,
  type SeedScenario,
  schemaVersion,
} from '@kvkit/bench';
import { defineLoader } from 'vitepress';

/** The environment variable that points the page at another report file. */
export const reportEnvVar = 'KVKIT_BENCH_REPORT';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const reportsDir = join(repoRoot, 'packages', 'bench', 'reports');

export type ReportKind = 'env' | 'latest' | 'baseline';

export interface LabelledValue {
  label: string;
  value: string;
}

export interface ChartView {
  /** File name kvbench gives the chart, e.g. `context-step-time.svg`. */
  file: string;
  /** Standalone SVG markup, its ids prefixed so several charts can share one page. */
  svg: string;
}

export interface ScenarioView {
  id: string;
  title: string;
  /** Why the scenario did not run, or null when it ran. */
  skipped: string | null;
  params: LabelledValue[];
  /** Measurement table: label columns, then timing columns, then extra numbers. */
  columns: { label: string; numeric: boolean }[];
  rows: string[][];
  derived: LabelledValue[];
  charts: ChartView[];
}

export interface SeedView {
  /** The notebook's two `%timeit` lines, aligned. */
  timeit: string;
  speedup: string;
  params: LabelledValue[];
}

export interface ReportView {
  kind: ReportKind;
  /** Where the report was read from: repository-relative when inside the repository. */
  file: string;
  quick: boolean;
  environment: LabelledValue[];
  seed: SeedView | null;
  /** Charts that belong to no single scenario (the speedups across scenarios). */
  overviewCharts: ChartView[];
  scenarios: ScenarioView[];
}

export interface BenchmarkData {
  report: ReportView | null;
  envVar: string;
}

declare const data: BenchmarkData;

export { data };

/** The report to show, or null when there is none. Throws if $KVKIT_BENCH_REPORT names no file. */
function chooseReport(): { kind: ReportKind; path: string } | null {
  const fromEnv = process.env[reportEnvVar];
  if (fromEnv) {
    // npm and pnpm run scripts in the package folder and keep the caller's folder in INIT_CWD.
    const path = resolve(process.env.INIT_CWD ?? process.cwd(), fromEnv);
    if (!existsSync(path)) throw new Error(`${reportEnvVar}=${fromEnv}: no such file (${path})`);
    return { kind: 'env', path };
  }
  for (const kind of ['latest', 'baseline'] as const) {
    const path = join(reportsDir, `${kind}.json`);
    if (existsSync(path)) return { kind, path };
  }
  return null;
}

function readReport(path: string): Report {
  let report: Partial<Report>;
  try {
    report = JSON.parse(readFileSync(path, 'utf8')) as Partial<Report>;
  } catch (cause) {
    throw new Error(`Benchmarks page: cannot read the report ${path}`, { cause });
  }
  if (report.schemaVersion !== schemaVersion) {
    throw new Error(
      `Benchmarks page: ${path} has schemaVersion ${String(report.schemaVersion)}, but this site ` +
        `reads version ${schemaVersion}; run \`npm run bench\` again to write a current report`,
    );
  }
  if (typeof report.environment !== 'object' || !Array.isArray(report.scenarios)) {
    throw new Error(`Benchmarks page: ${path} is not a kvbench report (environment, scenarios)`);
  }
  return report as Report;
}

function displayPath(path: string): string {
  const inRepo = relative(repoRoot, path);
  return inRepo.startsWith('..') || isAbsolute(inRepo) ? path : inRepo.split('\\').join('/');
}

function environmentRows(env: Environment): LabelledValue[] {
  const backend = env.wasmBinary ? `${env.backend} (${env.wasmBinary} binary)` : env.backend;
  return [
    { label: 'Date', value: env.date },
    { label: 'Git commit', value: env.gitCommit ?? 'unknown' },
    { label: 'Mode', value: env.quick ? 'quick (kvbench --quick)' : 'full' },
    { label: 'Node', value: `${env.node} on ${env.platform}` },
    { label: 'Backend', value: `${backend}, tfjs ${env.tfjsVersion}` },
    {
      label: 'CPU',
      value: `${env.cpuModel} (${env.cpuCount} ${env.cpuCount === 1 ? 'CPU' : 'CPUs'})`,
    },
  ];
}

function isSeed(s: Scenario): s is SeedScenario {
  return s.id === 'seed' && 'cached' in s && 'uncached' in s && 'speedup' in s;
}

const isSpeedup = (key: string) => /(speedup|Speedup)$/.test(key);

/** Integers with thousands separators, large values rounded, others to 3 significant digits. */
function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) || Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return String(Number(v.toPrecision(3)));
}

/** Bytes in binary units to 3 significant digits: 98,304 -> `96 KiB`. */
function formatBytes(v: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (i < units.length - 1 && Math.abs(v) >= 1024 ** (i + 1)) i++;
  return i === 0 ? `${formatNumber(v)} B` : `${Number((v / 1024 ** i).toPrecision(3))} ${units[i]}`;
}

function formatParam(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function unionKeys(records: Record<string, unknown>[]): string[] {
  const keys = new Set<string>();
  for (const r of records) for (const k of Object.keys(r)) keys.add(k);
  return [...keys];
}

function table(ms: Measurement[]): Pick<ScenarioView, 'columns' | 'rows'> {
  const labelKeys = unionKeys(ms.map((m) => m.labels));
  const extraKeys = unionKeys(ms.map((m) => m.extra ?? {}));
  const columns = [
    ...labelKeys.map((k) => ({
      label: k,
      numeric: ms.every((m) => typeof m.labels[k] === 'number'),
    })),
    ...['mean ± std', 'min', 'median', 'loops × repeats', ...extraKeys].map((label) => ({
      label,
      numeric: true,
    })),
  ];
  const rows = ms.map((m) => [
    ...labelKeys.map((k) => (m.labels[k] === undefined ? '' : String(m.labels[k]))),
    `${formatTime(m.timing.meanMs)} ± ${formatTime(m.timing.stdMs)}`,
    formatTime(m.timing.minMs),
    formatTime(m.timing.medianMs),
    `${m.timing.loops.toLocaleString('en-US')} × ${m.timing.repeats}`,
    ...extraKeys.map((k) => {
      const v = m.extra?.[k];
      if (v === undefined) return '';
      return /bytes$/i.test(k) ? formatBytes(v) : formatNumber(v);
    }),
  ]);
  return { columns, rows };
}

/**
 * Makes the ids of one SVG unique on the page: inlined SVGs share the document's id space, and
 * vega numbers its clip paths and gradients from the same counter in every chart.
 */
function scopeSvgIds(svg: string, prefix: string): string {
  let out = svg;
  for (const [, id] of svg.matchAll(/\sid="([^"]+)"/g)) {
    const scoped = `${prefix}-${id}`;
    out = out
      .split(`id="${id}"`)
      .join(`id="${scoped}"`)
      .split(`url(#${id})`)
      .join(`url(#${scoped})`)
      .split(`href="#${id}"`)
      .join(`href="#${scoped}"`);
  }
  return out;
}

/** The scenario a chart file belongs to (`context-step-time.svg` -> `context`), if any. */
function chartOwner(file: string, scenarios: Scenario[]): string | null {
  const name = file.replace(/\.svg$/, '');
  const owner = scenarios.find((s) => name === s.id || name.startsWith(`${s.id}-`));
  return owner ? owner.id : null;
}

async function view(kind: ReportKind, path: string): Promise<ReportView> {
  const report = readReport(path);
  let svgs: Record<string, string>;
  try {
    svgs = await renderCharts(report);
  } catch (cause) {
    throw new Error(`Benchmarks page: rendering the charts of ${path} failed`, { cause });
  }
  const charts = Object.entries(svgs).map(([file, svg]) => ({
    file,
    owner: chartOwner(file, report.scenarios),
    svg: scopeSvgIds(svg, `kvbench-${file.replace(/\.svg$/, '')}`),
  }));
  const chartsOf = (owner: string | null): ChartView[] =>
    charts.filter((c) => c.owner === owner).map(({ file, svg }) => ({ file, svg }));

  const seed = report.scenarios.find(isSeed);
  const params = (p: Record<string, unknown>) =>
    Object.entries(p).map(([label, v]) => ({ label, value: formatParam(v) }));
  return {
    kind,
    file: displayPath(path),
    quick: report.environment.quick,
    environment: environmentRows(report.environment),
    seed:
      seed && !seed.skipped
        ? {
            timeit: [
              `cached:   ${formatTimeit(seed.cached)}`,
              `uncached: ${formatTimeit(seed.uncached)}`,
            ].join('\n'),
            speedup: formatSpeedup(seed.speedup),
            params: params(seed.params),
          }
        : null,
    overviewCharts: chartsOf(null),
    scenarios: report.scenarios.map((s) => ({
      id: s.id,
      title: s.title,
      skipped: s.skipped ?? null,
      params: params(s.params),
      ...table(s.skipped ? [] : s.measurements),
      derived: Object.entries(s.derived).map(([label, v]) => ({
        label,
        value: isSpeedup(label) ? formatSpeedup(v) : formatNumber(v),
      })),
      charts: s.skipped ? [] : chartsOf(s.id),
    })),
  };
}

export default defineLoader({
  // Rebuild the page in `vitepress dev` when a report is written or replaced. (Not the
  // $KVKIT_BENCH_REPORT file: VitePress globs these patterns, and a pattern outside the
  // repository would make the glob crawl from their common root, `/` at worst.)
  watch: ['../../packages/bench/reports/latest.json', '../../packages/bench/reports/baseline.json'],
  async load(): Promise<BenchmarkData> {
    const chosen = chooseReport();
    return {
      report: chosen ? await view(chosen.kind, chosen.path) : null,
      envVar: reportEnvVar,
    };
  },
});

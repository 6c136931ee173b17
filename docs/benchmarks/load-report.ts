// The Benchmarks page's build-time data (report.data.ts is the VitePress loader around it): reads
// one kvbench report, formats it with @kvkit/bench's `reportView` (the formatter latest.md is
// written with, so both show the same strings) and renders its charts to SVG. The page gets
// plain strings; nothing of @kvkit/bench (or vega) reaches the browser.
//
// Which report: the file named by $KVKIT_BENCH_REPORT if set (a path, relative to the directory
// the command was started from), else packages/bench/reports/latest.json (written by
// `npm run bench`, ignored by git), else the newest committed run in
// packages/bench/reports/history/. With none of them, the page says there is no report yet.
// The history chart follows the seed's and the GPT's ratios across every committed run, then the shown one.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  formatSpeedup,
  formatTime,
  historyChartSpec,
  historyPoints,
  planCharts,
  type ReportView,
  readHistory,
  readReport,
  renderCharts,
  renderSvg,
  reportView,
  type ScenarioView,
  type SeedScenario,
  type Timing,
} from '@kvkit/bench';
import { gptDims } from '@kvkit/bench/browser';

/** The environment variable that points the page at another report file. */
export const reportEnvVar = 'KVKIT_BENCH_REPORT';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const reportsDir = join(repoRoot, 'packages', 'bench', 'reports');
const historyDir = join(reportsDir, 'history');

/** Where the shown report came from: $KVKIT_BENCH_REPORT, latest.json, or the newest committed run. */
export type ReportKind = 'env' | 'latest' | 'history';

export interface ChartView {
  /** File name kvbench gives the chart, e.g. `context-step-time.svg`. */
  file: string;
  /** Standalone SVG markup, its ids prefixed so several charts can share one page. */
  svg: string;
}

export interface PageScenario extends ScenarioView {
  charts: ChartView[];
}

export interface PageReport extends Omit<ReportView, 'scenarios'> {
  kind: ReportKind;
  /** Where the report was read from: repository-relative when inside the repository. */
  file: string;
  /** Charts that belong to no single scenario (the speedups across scenarios). */
  overviewCharts: ChartView[];
  /** The peer comparison's chart (kvkit, PyTorch, both ONNX Runtimes, the floor), if any. */
  peersCharts: ChartView[];
  /** The seed's and the GPT's ratios across the committed runs and this one; null with nothing to draw. */
  history: { runs: string[]; chart: ChartView } | null;
  scenarios: PageScenario[];
}

/**
 * The report's seed numbers, for the in-browser run to stand beside ("Run it in your browser"):
 * each loop's mean ± std per loop, formatted as kvbench formats them, and where they were made.
 */
export interface BrowserBaseline {
  file: string;
  /** `Node.js v20.20.2, wasm simd, Intel(R) Xeon(R) Processor (2 CPUs), 2026-12-01` */
  where: string;
  /** The seed's sizes in the report (`B=8, T=64, C=128, 8 heads`), and whether it was a quick run. */
  sizes: string;
  quick: boolean;
  cached: string;
  uncached: string;
  speedup: string;
  /** The report's gpt scenario, or null when it has none (or skipped it). */
  gpt: GptBaseline | null;
}

/** The report's gpt numbers: each cached step, the no-cache forward and their ratio. */
export interface GptBaseline {
  /** `GPT-2 small: 12 layers, C=768, 12 heads, vocab 50257` */
  sizes: string;
  /** The decode step at each context t, `mean ± std`. */
  steps: { t: number; time: string }[];
  uncached: { t: number; time: string };
  /** No-cache forward over the cached step at the same t. */
  speedup: string;
}

export interface BenchmarkData {
  report: PageReport | null;
  /** The report's seed numbers for the in-browser run; null without a report or a seed. */
  browserBaseline: BrowserBaseline | null;
  envVar: string;
}

/** The report to show, or null when there is none. Throws if $KVKIT_BENCH_REPORT names no file. */
function chooseReport(): { kind: ReportKind; path: string } | null {
  const fromEnv = process.env[reportEnvVar];
  if (fromEnv) {
    // npm and pnpm run scripts in the package folder and keep the caller's folder in INIT_CWD.
    const path = resolve(process.env.INIT_CWD ?? process.cwd(), fromEnv);
    if (!existsSync(path)) throw new Error(`${reportEnvVar}=${fromEnv}: no such file (${path})`);
    return { kind: 'env', path };
  }
  const latest = join(reportsDir, 'latest.json');
  if (existsSync(latest)) return { kind: 'latest', path: latest };
  const committed = existsSync(historyDir)
    ? readdirSync(historyDir)
        .filter((f) => f.endsWith('.json'))
        .sort()
    : [];
  const newest = committed[committed.length - 1];
  return newest ? { kind: 'history', path: join(historyDir, newest) } : null;
}

function displayPath(path: string): string {
  const inRepo = relative(repoRoot, path);
  return inRepo.startsWith('..') || isAbsolute(inRepo) ? path : inRepo.split('\\').join('/');
}

/**
 * Makes the ids of one SVG unique on the page: inlined SVGs share the document's id space, and
 * vega numbers its clip paths and gradients from the same counter in every chart.
 */
export function scopeSvgIds(svg: string, prefix: string): string {
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

async function page(kind: ReportKind, path: string): Promise<PageReport> {
  const report = readReport(path);
  let svgs: Record<string, string>;
  try {
    svgs = await renderCharts(report);
  } catch (cause) {
    throw new Error(`Benchmarks page: rendering the charts of ${path} failed`, { cause });
  }
  const owners = new Map(planCharts(report).map((p) => [p.file, p.scenarioId]));
  const charts = Object.entries(svgs).map(([file, svg]) => ({
    file,
    owner: owners.get(file) ?? null,
    svg: scopeSvgIds(svg, `kvbench-${file.replace(/\.svg$/, '')}`),
  }));
  const chartsOf = (owner: string | null): ChartView[] =>
    charts.filter((c) => c.owner === owner).map(({ file, svg }) => ({ file, svg }));
  const view = reportView(report);
  return {
    ...view,
    kind,
    file: displayPath(path),
    overviewCharts: chartsOf(null),
    peersCharts: chartsOf('peers'),
    history: await historyView(path, report),
    scenarios: view.scenarios.map((s) => ({ ...s, charts: s.skipped ? [] : chartsOf(s.id) })),
  };
}

/** The committed runs (oldest first), then the shown report when it is not one of them. */
async function historyView(
  path: string,
  report: ReturnType<typeof readReport>,
): Promise<PageReport['history']> {
  const entries = existsSync(historyDir) ? readHistory(historyDir) : [];
  if (relative(historyDir, dirname(path)) !== '') entries.push({ name: 'this report', report });
  const spec = historyChartSpec(historyPoints(entries));
  if (!spec) return null;
  const svg = scopeSvgIds(await renderSvg(spec), 'kvbench-history');
  return { runs: entries.map((e) => e.name), chart: { file: 'history.svg', svg } };
}

/** `mean ± std` of one timing, as kvbench's `%timeit` line writes its parts. */
export function meanStd(t: Timing): string {
  return `${formatTime(t.meanMs)} ± ${formatTime(t.stdMs)}`;
}

function gptBaseline(report: ReturnType<typeof readReport>): GptBaseline | null {
  const gpt = report.scenarios.find((s) => s.id === 'gpt');
  if (!gpt || gpt.skipped || !('measurements' in gpt)) return null;
  const p = gpt.params as { nLayer: number; C: number; nHead: number; vocabSize: number };
  const timing = (key: string) => gpt.measurements.find((m) => m.key === key)?.timing;
  const steps = gpt.measurements
    .filter((m) => m.labels.variant === 'cached')
    .map((m) => ({ t: Number(m.labels.t), time: meanStd(m.timing) }))
    .sort((a, b) => a.t - b.t);
  const u = gpt.measurements.find((m) => m.labels.variant === 'uncached');
  const step = u && timing(`cached/t=${u.labels.t}`);
  if (!u || !step || steps.length === 0) return null;
  return {
    sizes: gptDims(p),
    steps,
    uncached: { t: Number(u.labels.t), time: meanStd(u.timing) },
    speedup: formatSpeedup(u.timing.meanMs / step.meanMs),
  };
}

function browserBaseline(path: string): BrowserBaseline | null {
  const report = readReport(path);
  const seed = report.scenarios.find((s): s is SeedScenario => s.id === 'seed' && 'cached' in s);
  if (!seed || seed.skipped) return null;
  const e = report.environment;
  const p = seed.params as Record<string, unknown>;
  return {
    file: displayPath(path),
    where:
      `Node.js ${e.node}, ${e.backend}${e.wasmBinary ? ` ${e.wasmBinary}` : ''}, ${e.cpuModel} ` +
      `(${e.cpuCount} CPUs), ${e.date.slice(0, 10)}`,
    sizes: `B=${p.B}, T=${p.T}, C=${p.C}, ${p.nHead} heads`,
    quick: e.quick,
    cached: meanStd(seed.cached),
    uncached: meanStd(seed.uncached),
    speedup: formatSpeedup(seed.speedup),
    gpt: gptBaseline(report),
  };
}

/** The page's data: the chosen report, formatted, with its charts (or none). */
export async function benchmarkData(): Promise<BenchmarkData> {
  const chosen = chooseReport();
  return {
    report: chosen ? await page(chosen.kind, chosen.path) : null,
    browserBaseline: chosen ? browserBaseline(chosen.path) : null,
    envVar: reportEnvVar,
  };
}

// The Benchmarks page's build-time data (report.data.ts is the VitePress loader around it): reads
// one kvbench report, formats it with @kvkit/bench's `reportView` (the formatter latest.md is
// written with, so both show the same strings) and renders its charts to SVG. The page gets
// plain strings; nothing of @kvkit/bench (or vega) reaches the browser.
//
// Which report: the file named by $KVKIT_BENCH_REPORT if set (a path, relative to the directory
// the command was started from), else packages/bench/reports/latest.json (written by
// `npm run bench`, ignored by git), else packages/bench/reports/baseline.json (a committed copy
// of a full run). With none of them, the page says there is no report yet.
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type ReportView,
  readReport,
  renderCharts,
  reportView,
  type Scenario,
  type ScenarioView,
} from '@kvkit/bench';

/** The environment variable that points the page at another report file. */
export const reportEnvVar = 'KVKIT_BENCH_REPORT';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const reportsDir = join(repoRoot, 'packages', 'bench', 'reports');

export type ReportKind = 'env' | 'latest' | 'baseline';

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
  scenarios: PageScenario[];
}

export interface BenchmarkData {
  report: PageReport | null;
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
  for (const kind of ['latest', 'baseline'] as const) {
    const path = join(reportsDir, `${kind}.json`);
    if (existsSync(path)) return { kind, path };
  }
  return null;
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

/** The scenario a chart file belongs to (`context-step-time.svg` -> `context`), if any. */
function chartOwner(file: string, scenarios: Scenario[]): string | null {
  const name = file.replace(/\.svg$/, '');
  const owner = scenarios.find((s) => name === s.id || name.startsWith(`${s.id}-`));
  return owner ? owner.id : null;
}

async function page(kind: ReportKind, path: string): Promise<PageReport> {
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
  const view = reportView(report);
  return {
    ...view,
    kind,
    file: displayPath(path),
    overviewCharts: chartsOf(null),
    scenarios: view.scenarios.map((s) => ({ ...s, charts: s.skipped ? [] : chartsOf(s.id) })),
  };
}

/** The page's data: the chosen report, formatted, with its charts (or none). */
export async function benchmarkData(): Promise<BenchmarkData> {
  const chosen = chooseReport();
  return { report: chosen ? await page(chosen.kind, chosen.path) : null, envVar: reportEnvVar };
}

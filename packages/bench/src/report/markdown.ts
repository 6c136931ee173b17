/**
 * The human-readable side of a report (`reports/latest.md`): environment, then one section per
 * scenario with its measurements as a table, its derived numbers and its charts. Times use
 * IPython's `%timeit` formatting so they read like the seed notebook.
 */
import { type ChartPlan, planCharts } from './charts.ts';
import { formatG, formatSpeedup, formatTime, formatTimeit, groupThousands } from './format-time.ts';
import type { Environment, Measurement, Report, Scenario, SeedScenario } from './schema.ts';

/**
 * Renders a report as Markdown. Charts are linked as `charts/<name>.svg` relative to the
 * Markdown file, matching what `writeReport` writes next to it; only charts `renderCharts` will
 * produce for this report are linked.
 */
export function renderMarkdown(report: Report): string {
  const charts = planCharts(report);
  const blocks: string[] = ['# kvkit benchmark report', environmentList(report.environment)];
  blocks.push(
    'Times are per call: mean ± standard deviation over the repeats (population std. dev., as ' +
      "IPython's `%timeit`), each repeat timing `loops` calls.",
  );
  const overview = charts.filter((c) => c.scenarioId === null);
  if (overview.length > 0) blocks.push(['## Speedups', ...overview.map(image)].join('\n\n'));
  for (const scenario of report.scenarios) {
    blocks.push(scenarioSection(scenario, scenario.skipped ? [] : chartsOf(charts, scenario.id)));
  }
  return `${blocks.join('\n\n')}\n`;
}

function environmentList(env: Environment): string {
  const backend = env.wasmBinary ? `${env.backend} (${env.wasmBinary} binary)` : env.backend;
  const rows: [string, string][] = [
    ['Date', env.date],
    ['Mode', env.quick ? 'quick' : 'full'],
    ['Node', `${env.node} on ${env.platform}`],
    ['Backend', backend],
    ['tfjs', env.tfjsVersion],
    ['CPU', `${env.cpuModel} (${env.cpuCount} ${env.cpuCount === 1 ? 'CPU' : 'CPUs'})`],
    ['Git commit', env.gitCommit ? `\`${env.gitCommit}\`` : 'unknown'],
  ];
  return rows.map(([k, v]) => `- **${k}:** ${v}`).join('\n');
}

/** The charts illustrating one scenario (scenario ids are unique within a report). */
function chartsOf(charts: ChartPlan[], id: string): ChartPlan[] {
  return charts.filter((c) => c.scenarioId === id);
}

function image(chart: ChartPlan): string {
  return `![${chart.alt}](charts/${chart.file})`;
}

function scenarioSection(s: Scenario, charts: ChartPlan[]): string {
  const parts = [`## ${s.title} (\`${s.id}\`)`];
  if (s.skipped) {
    parts.push(`skipped: ${s.skipped}`);
    return parts.join('\n\n');
  }
  if (isSeed(s)) parts.push(seedBlock(s));
  const params = paramsLine(s.params);
  if (params) parts.push(params);
  if (s.measurements.length > 0) parts.push(measurementTable(s.measurements));
  const derived = Object.entries(s.derived);
  if (derived.length > 0) {
    parts.push(derived.map(([k, v]) => `- ${k}: ${formatDerived(k, v)}`).join('\n'));
  }
  parts.push(...charts.map(image));
  return parts.join('\n\n');
}

function isSeed(s: Scenario): s is SeedScenario {
  return s.id === 'seed' && 'cached' in s && 'uncached' in s;
}

/** The notebook's two `%timeit` lines, character for character, plus the speedup. */
function seedBlock(s: SeedScenario): string {
  return [
    '```text',
    `cached:   ${formatTimeit(s.cached)}`,
    `uncached: ${formatTimeit(s.uncached)}`,
    `speedup: ${formatSpeedup(s.speedup)}`,
    '```',
  ].join('\n');
}

function paramsLine(params: Record<string, unknown>): string | null {
  const entries = Object.entries(params);
  if (entries.length === 0) return null;
  const shown = entries.map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return `Parameters: ${shown.map((p) => `\`${cell(p)}\``).join(', ')}`;
}

function measurementTable(ms: Measurement[]): string {
  // Union of keys in first-seen order: measurements of one scenario may not all share them.
  const labelKeys = unionKeys(ms.map((m) => m.labels));
  const extraKeys = unionKeys(ms.map((m) => m.extra ?? {}));
  const header = [...labelKeys, 'mean ± std', 'min', 'median', 'loops × repeats', ...extraKeys];
  // Numbers right-aligned, so digits line up; label columns only when every value is a number.
  const numeric = (k: string) => ms.every((m) => typeof m.labels[k] === 'number');
  const align = [
    ...labelKeys.map((k) => (numeric(k) ? '--:' : ':--')),
    ...Array.from({ length: 4 + extraKeys.length }, () => '--:'),
  ];
  const rows = ms.map((m) => [
    ...labelKeys.map((k) => (m.labels[k] === undefined ? '' : String(m.labels[k]))),
    `${formatTime(m.timing.meanMs)} ± ${formatTime(m.timing.stdMs)}`,
    formatTime(m.timing.minMs),
    formatTime(m.timing.medianMs),
    `${groupThousands(m.timing.loops)} × ${m.timing.repeats}`,
    ...extraKeys.map((k) => {
      const v = m.extra?.[k];
      return v === undefined ? '' : formatExtra(k, v);
    }),
  ]);
  return [header, align, ...rows].map((r) => `| ${r.map(cell).join(' | ')} |`).join('\n');
}

function unionKeys(records: Record<string, unknown>[]): string[] {
  const keys = new Set<string>();
  for (const r of records) for (const k of Object.keys(r)) keys.add(k);
  return [...keys];
}

/** A table cell: pipes would end the cell and newlines the row. */
function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function formatDerived(key: string, v: number): string {
  return /(speedup|Speedup)$/.test(key) ? formatSpeedup(v) : formatNumber(v);
}

function formatExtra(key: string, v: number): string {
  return /bytes$/i.test(key) ? formatBytes(v) : formatNumber(v);
}

/** Integers and large values with thousands separators, others to 3 significant digits. */
function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return groupThousands(v);
  if (Math.abs(v) >= 1000) return groupThousands(Math.round(v));
  return formatG(v, 3);
}

/** `98,304` bytes -> `96 KiB`: binary units, 3 significant digits. */
function formatBytes(v: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (i < units.length - 1 && Math.abs(v) >= 1024 ** (i + 1)) i++;
  return i === 0 ? `${groupThousands(v)} B` : `${formatG(v / 1024 ** i, 3)} ${units[i]}`;
}

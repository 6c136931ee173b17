/**
 * The human-readable side of a report (`reports/latest.md`): environment and noise verdict, then
 * one section per scenario with its measurements as a table, its derived numbers and its charts.
 * Every string comes from `reportView` (view.ts), the formatter the docs site uses too.
 */
import { type ChartPlan, planCharts } from './charts.ts';
import type { Report } from './schema.ts';
import { type ReportView, reportView, type ScenarioView, type TableView } from './view.ts';

/**
 * Renders a report as Markdown. Charts are linked as `charts/<name>.svg` relative to the
 * Markdown file, matching what `writeReport` writes next to it; only charts `renderCharts` will
 * produce for this report are linked.
 *
 * @example
 * writeFileSync('latest.md', renderMarkdown(readReport('latest.json')));
 */
export function renderMarkdown(report: Report): string {
  const view = reportView(report);
  const charts = planCharts(report);
  const blocks: string[] = ['# kvkit benchmark report', environmentList(view)];
  if (view.noise) blocks.push(noiseBlock(view.noise));
  if (view.machine) blocks.push(machineBlock(view.machine));
  blocks.push(
    'Times are per call: mean ± standard deviation over the repeats (population std. dev., as ' +
      "IPython's `%timeit`), each repeat timing `loops` calls.",
  );
  if (view.peers || view.peerSkips.length > 0)
    blocks.push(
      peersBlock(
        view,
        charts.filter((c) => c.scenarioId === 'peers'),
      ),
    );
  const overview = charts.filter((c) => c.scenarioId === null);
  if (overview.length > 0) blocks.push(['## Speedups', ...overview.map(image)].join('\n\n'));
  for (const s of view.scenarios) {
    blocks.push(
      scenarioSection(view, s, s.skipped ? [] : charts.filter((c) => c.scenarioId === s.id)),
    );
  }
  return `${blocks.join('\n\n')}\n`;
}

function environmentList(view: ReportView): string {
  return view.environment
    .map(
      ({ label, value }) =>
        `- **${label}:** ${label === 'Git commit' && value !== 'unknown' ? `\`${value}\`` : value}`,
    )
    .join('\n');
}

function noiseBlock(noise: NonNullable<ReportView['noise']>): string {
  const lines = [
    `> **${noise.noisy ? noise.title.toUpperCase() : noise.title}.** ${noise.headline}`,
  ];
  for (const r of noise.reasons) lines.push(`> - ${r}`);
  return lines.join('\n');
}

function machineBlock(m: NonNullable<ReportView['machine']>): string {
  return [
    "## The machine's limits",
    `Measured at the start of this run; every floor uses them: ${m.rates.map((r) => `${r.label} ${r.value}`).join(', ')} (from each measurement's fastest repeat).`,
    ...(m.noise ? [`Noise: ${m.noise}`] : []),
    table(m),
  ].join('\n\n');
}

function peersBlock(view: ReportView, charts: ChartPlan[]): string {
  const parts = [
    '## kvkit and its peers',
    "Mean time per call on the same weights and inputs, every peer checked against kvkit (within 1e-5; the GPT's logits within 1e-5, absolute) before its time is reported. PyTorch forms: `nn.Linear`, and `addmv` on an (in, out) contiguous weight copy (addmm for more than one row). ONNX Runtime sessions are made once, so set them against kvkit on a module built once. Floor: the time to read the weights and keys/values at this run's read bandwidth, or to do the FLOPs at its matMul rate, whichever is longer.",
  ];
  if (view.peers) parts.push(table(view.peers));
  if (view.peerSkips.length > 0)
    parts.push(view.peerSkips.map((s) => `- skipped: ${s}`).join('\n'));
  parts.push(...charts.map(image));
  return parts.join('\n\n');
}

function image(chart: ChartPlan): string {
  return `![${chart.alt}](charts/${chart.file})`;
}

function scenarioSection(view: ReportView, s: ScenarioView, charts: ChartPlan[]): string {
  const parts = [`## ${s.title} (\`${s.id}\`)`];
  if (s.skipped) {
    parts.push(`skipped: ${s.skipped}`);
    return parts.join('\n\n');
  }
  if (s.id === 'seed' && view.seed) {
    // The notebook's two `%timeit` lines, character for character, plus the speedup.
    parts.push(['```text', ...view.seed.timeit, `speedup: ${view.seed.speedup}`, '```'].join('\n'));
  }
  if (s.params.length > 0)
    parts.push(
      `Parameters: ${s.params.map((p) => `\`${cell(`${p.label}=${p.value}`)}\``).join(', ')}`,
    );
  if (s.noise) parts.push(`Noise: ${s.noise}`);
  if (s.rows.length > 0) parts.push(table(s));
  if (s.derived.length > 0) parts.push(s.derived.map((d) => `- ${d.label}: ${d.value}`).join('\n'));
  parts.push(...charts.map(image));
  return parts.join('\n\n');
}

/** A Markdown table; numbers right-aligned so digits line up. */
export function table(t: TableView): string {
  const header = t.columns.map((c) => c.label);
  const align = t.columns.map((c) => (c.numeric ? '--:' : ':--'));
  return [header, align, ...t.rows].map((r) => `| ${r.map(cell).join(' | ')} |`).join('\n');
}

/** A table cell: pipes would end the cell and newlines the row. */
function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

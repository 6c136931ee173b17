/**
 * Report charts as standalone SVG: Vega-Lite specs compiled to Vega and rendered headless in Node
 * (`renderer: 'none'` + `toSVG()`), so no canvas package and no browser are needed. Without the
 * optional `canvas` package vega estimates text widths from character counts instead of measuring
 * fonts, which keeps the output independent of installed fonts (and generous in its padding).
 *
 * `planCharts` (pure, synchronous) decides which charts a report gets; the Markdown report uses it
 * to embed exactly the files `renderCharts` produces.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
// Type-only: vega-lite exports its spec building blocks only under `types_unstable`.
import type { Field, PositionDef } from 'vega-lite/types_unstable/channeldef.js';
import type { LayerSpec, NonNormalizedSpec } from 'vega-lite/types_unstable/spec/index.js';
import { peersChartSpec, prefillChartSpec } from './charts-floors.ts';
import { formatSpeedup } from './format-time.ts';
import type { Measurement, Report, Scenario } from './schema.ts';

/** One chart a report will get: its file name under `charts/`, and where it belongs. */
export interface ChartPlan {
  /** File name, e.g. `context-step-time.svg`. */
  file: string;
  /** Alt text for the Markdown image. */
  alt: string;
  /**
   * The scenario the chart illustrates, `peers` for the peer comparison, or null for other
   * cross-scenario charts (speedups).
   */
  scenarioId: string | null;
  spec: TopLevelSpec;
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/** Plot-area width; axes and legends bring the whole image to roughly 640 px. */
const WIDTH = 520;
const HEIGHT = 300;
const VARIANT_COLORS = {
  cached: '#1f77b4',
  uncached: '#d62728',
  attention: '#2ca02c',
  'floor (cached step)': '#7f7f7f',
} as const;
const BAR_COLOR = '#4c78a8';
const SLOWDOWN_COLOR = '#e45756';

/** One look for all charts: white background (readable in dark-mode viewers), light grid. */
const config = {
  background: 'white',
  padding: 12,
  font: 'Helvetica, Arial, sans-serif',
  title: {
    fontSize: 15,
    subtitleFontSize: 12,
    subtitleColor: '#555555',
    anchor: 'start',
    offset: 12,
  },
  axis: {
    labelFontSize: 11,
    titleFontSize: 12,
    titleFontWeight: 'normal',
    titleColor: '#333333',
    gridColor: '#e6e6e6',
  },
  legend: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal' },
  view: { stroke: null },
} satisfies TopLevelSpec['config'];

/**
 * Which charts the report gets, in Markdown order. A chart is left out when its scenario is
 * missing or skipped, or has no usable numbers.
 *
 * @example
 * planCharts(report).map((c) => c.file); // ['speedup.svg', 'context-step-time.svg', ...]
 */
export function planCharts(report: Report): ChartPlan[] {
  const plans: (ChartPlan | null)[] = [
    speedupChart(report),
    contextChart(ran(report, 'context')),
    capacityChart(ran(report, 'capacity')),
    headsChart(ran(report, 'heads')),
    batchChart(ran(report, 'batch')),
    plan(
      'peers.svg',
      'kvkit and its peers per workload, with the floor',
      'peers',
      peersChartSpec(report),
    ),
    plan('prefill.svg', 'Prefill time against its FLOP floor', 'prefill', prefillChartSpec(report)),
  ];
  return plans.filter((p): p is ChartPlan => p !== null);
}

function plan(
  file: string,
  alt: string,
  scenarioId: string,
  spec: TopLevelSpec | null,
): ChartPlan | null {
  return spec ? { file, alt, scenarioId, spec: { config, ...spec } as TopLevelSpec } : null;
}

/**
 * Renders the report's charts to SVG strings keyed by file name (`context-step-time.svg`,
 * `speedup.svg`, `capacity.svg`, `heads.svg`, `batch.svg`); charts whose scenario is missing or
 * skipped are absent. The same report always gives byte-identical SVG.
 */
export async function renderCharts(report: Report): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const plan of planCharts(report)) out[plan.file] = await renderSvg(plan.spec);
  return out;
}

// vega numbers clip paths and gradients from module-level counters; resetting them before each
// render keeps ids stable, and the queue stops two concurrent renders from sharing the counters.
let queue: Promise<unknown> = Promise.resolve();

/**
 * Compiles a Vega-Lite spec and renders it headless to an SVG string.
 *
 * @example
 * const svg = await renderSvg(historyChartSpec(historyPoints(readHistory(dir)))!);
 */
export function renderSvg(spec: TopLevelSpec): Promise<string> {
  const vgSpec = compile(spec).spec;
  const run = queue.then(async () => {
    vega.resetSVGDefIds();
    const view = new vega.View(vega.parse(vgSpec), { renderer: 'none' });
    try {
      return await view.toSVG();
    } finally {
      view.finalize();
    }
  });
  queue = run.catch(() => undefined);
  return run;
}

/** The first scenario with this id that ran (not skipped), if any. */
function ran(report: Report, id: string): Scenario | undefined {
  return report.scenarios.find((s) => s.id === id && !s.skipped);
}

/** A label as a finite number, or undefined (labels may arrive as strings, e.g. `'512'`). */
function num(v: string | number | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** Mean and a ±1 std whisker, the whisker clamped at 0 so it never dips below the bars' base. */
function timeFields(m: Measurement) {
  const { meanMs, stdMs } = m.timing;
  return { ms: meanMs, lo: Math.max(0, meanMs - stdMs), hi: meanMs + stdMs };
}

// ---------------------------------------------------------------------------------------------
// (a) decode step time vs context length
// ---------------------------------------------------------------------------------------------

function contextChart(s: Scenario | undefined): ChartPlan | null {
  if (!s) return null;
  const rows = s.measurements.flatMap((m) => {
    const variant = m.labels.variant;
    const t = num(m.labels.t);
    // Log axes cannot place 0 or negative values.
    if ((variant !== 'cached' && variant !== 'uncached' && variant !== 'attention') || !t || t <= 0)
      return [];
    if (!(m.timing.meanMs > 0)) return [];
    const row = { variant, t, ms: m.timing.meanMs };
    // The cached step's floor: reading the weights and t + 1 keys/values at the run's bandwidth.
    return variant === 'cached' && m.floor
      ? [row, { variant: 'floor (cached step)' as const, t, ms: m.floor.ms }]
      : [row];
  });
  if (rows.length === 0) return null;
  const ts = [...new Set(rows.map((r) => r.t))].sort((a, b) => a - b);
  const variants = (['cached', 'uncached', 'attention', 'floor (cached step)'] as const).filter(
    (v) => rows.some((r) => r.variant === v),
  );
  return {
    file: 'context-step-time.svg',
    alt: 'Time of one decode step vs context length: cached, uncached, and the attention part of the cached step (log-log)',
    scenarioId: s.id,
    spec: {
      $schema: SCHEMA,
      config,
      title: { text: s.title, subtitle: 'Mean time of one decode step; both axes logarithmic' },
      width: WIDTH,
      height: HEIGHT,
      data: { values: rows },
      mark: { type: 'line', strokeWidth: 2, point: { filled: true, size: 55 } },
      encoding: {
        x: {
          field: 't',
          type: 'quantitative',
          // Contexts are usually powers of two: base-2 ticks at the measured points read best.
          scale: { type: 'log', base: 2 },
          axis: { grid: true, ...(ts.length <= 12 ? { values: ts } : {}), format: '~r' },
          title: 'context length t (tokens)',
        },
        y: {
          field: 'ms',
          type: 'quantitative',
          scale: { type: 'log' },
          axis: { grid: true, format: '~g' },
          title: 'time per decode step (ms)',
        },
        color: {
          field: 'variant',
          type: 'nominal',
          scale: { domain: variants, range: variants.map((v) => VARIANT_COLORS[v]) },
          legend: { title: 'variant', orient: 'top-left', fillColor: 'white', padding: 6 },
        },
      },
    },
  };
}

// ---------------------------------------------------------------------------------------------
// (b) every derived speedup, across scenarios
// ---------------------------------------------------------------------------------------------

function speedupChart(report: Report): ChartPlan | null {
  const rows: { label: string; speedup: number; text: string }[] = [];
  for (const s of report.scenarios) {
    if (s.skipped) continue;
    for (const [key, value] of Object.entries(s.derived)) {
      // A log axis cannot show 0 or negative factors (they would be bugs upstream anyway).
      if (!/(speedup|Speedup)$/.test(key) || !Number.isFinite(value) || value <= 0) continue;
      rows.push({ label: `${s.id}: ${key}`, speedup: value, text: formatSpeedup(value) });
    }
  }
  if (rows.length === 0) return null;
  // Log scale with bars growing out of 1×: speedups go right, slowdowns left, and 1.8x stays
  // readable next to 40x. Margins past the extremes leave room for the `12.3x` labels.
  const values = rows.map((r) => r.speedup);
  const domain = [Math.min(1, ...values) / 1.6, Math.max(1, ...values) * 1.6];
  const x: PositionDef<Field> = {
    field: 'speedup',
    type: 'quantitative',
    scale: { type: 'log', domain, nice: false },
    axis: { grid: true, format: '~g' },
    title: 'speedup (×, log scale; > 1 is faster)',
  };
  // Per layer, not shared: the 1× rule has its own one-row data set and must not get a category.
  const y: PositionDef<Field> = {
    field: 'label',
    type: 'nominal',
    sort: null, // keep report order: scenarios as they ran
    title: null,
    axis: { labelLimit: 240, labelFontSize: 12 },
  };
  const text = { field: 'text', type: 'nominal' } as const;
  return {
    file: 'speedup.svg',
    alt: 'Speedups across scenarios',
    scenarioId: null,
    spec: {
      $schema: SCHEMA,
      config,
      title: { text: 'Speedups', subtitle: 'Derived speedups of every scenario; dashed line: 1×' },
      width: WIDTH - 120, // the long category labels take the rest
      height: { step: 28 },
      data: { values: rows },
      layer: [
        {
          mark: { type: 'bar', height: { band: 0.7 } },
          encoding: {
            x,
            x2: { datum: 1 },
            y,
            color: {
              condition: { test: 'datum.speedup < 1', value: SLOWDOWN_COLOR },
              value: BAR_COLOR,
            },
          },
        },
        {
          transform: [{ filter: 'datum.speedup >= 1' }],
          mark: { type: 'text', align: 'left', dx: 4, fontSize: 11 },
          encoding: { x, y, text },
        },
        {
          transform: [{ filter: 'datum.speedup < 1' }],
          mark: { type: 'text', align: 'right', dx: -4, fontSize: 11 },
          encoding: { x, y, text },
        },
        {
          data: { values: [{ one: 1 }] },
          mark: { type: 'rule', strokeDash: [4, 3], color: '#333333' },
          encoding: { x: { field: 'one', type: 'quantitative' } },
        },
      ],
    },
  };
}

// ---------------------------------------------------------------------------------------------
// (c) per-scenario bar charts
// ---------------------------------------------------------------------------------------------

/** How bars are coloured and, when several share an x value, how they sit side by side. */
interface BarStyle {
  /** Colour bars by this field (with the domain in this order) instead of one colour. */
  colorBy?: { field: string; domain: string[] };
  /** Several bars per x value: place them side by side by this field instead of stacking. */
  offsetBy?: string;
}

/** The colour (and side-by-side offset) encodings for a BarStyle. */
function barEncoding(style: BarStyle) {
  const { colorBy, offsetBy } = style;
  return {
    color: colorBy
      ? {
          field: colorBy.field,
          type: 'nominal' as const,
          title: colorBy.field,
          scale: { domain: colorBy.domain },
        }
      : { value: BAR_COLOR },
    ...(offsetBy ? { xOffset: { field: offsetBy, type: 'nominal' as const } } : {}),
  };
}

/** Vertical bars of mean time per step with ±1 std whiskers, one bar per `xField` value. */
function timeBars(xField: string, xTitle: string, style: BarStyle = {}): LayerSpec<Field> {
  const x: PositionDef<Field> = {
    field: xField,
    type: 'ordinal',
    title: xTitle,
    axis: { labelAngle: 0 },
  };
  const { xOffset } = barEncoding(style);
  return {
    layer: [
      {
        mark: { type: 'bar', width: { band: 0.6 }, cornerRadiusEnd: 2 },
        encoding: {
          x,
          // Times of different variants side by side must never be summed into one stack.
          y: { field: 'ms', type: 'quantitative', title: 'time per step (ms)', stack: null },
          ...barEncoding(style),
        },
      },
      {
        mark: { type: 'rule', color: '#333333' },
        encoding: {
          x,
          y: { field: 'lo', type: 'quantitative' },
          y2: { field: 'hi' },
          ...(xOffset ? { xOffset } : {}),
        },
      },
    ],
  };
}

function capacityChart(s: Scenario | undefined): ChartPlan | null {
  if (!s) return null;
  const rows = s.measurements.flatMap((m) => {
    const blockSize = num(m.labels.blockSize);
    return blockSize === undefined ? [] : [{ blockSize, ...timeFields(m) }];
  });
  if (rows.length === 0) return null;
  return {
    file: 'capacity.svg',
    alt: 'Step time by cache block size',
    scenarioId: s.id,
    spec: {
      $schema: SCHEMA,
      config,
      title: {
        text: s.title,
        subtitle: 'Mean time per step by block size; whiskers: ±1 std. dev.',
      },
      width: WIDTH,
      height: HEIGHT,
      data: { values: rows },
      ...timeBars('blockSize', 'block size (tokens)'),
    },
  };
}

/** Binary byte units chosen by the largest value, so axis numbers stay short. */
function byteUnit(maxBytes: number): { unit: string; factor: number } {
  const units = ['bytes', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (i < units.length - 1 && maxBytes >= 1024 ** (i + 1)) i++;
  return { unit: units[i]!, factor: 1024 ** i };
}

function headsChart(s: Scenario | undefined): ChartPlan | null {
  if (!s) return null;
  const rows = s.measurements.flatMap((m) => {
    const nKvHeads = num(m.labels.nKvHeads);
    if (nKvHeads === undefined) return [];
    const kind = m.labels.kind === undefined ? '' : String(m.labels.kind);
    return [{ nKvHeads, kind, ...timeFields(m), cacheBytes: m.extra?.cacheBytes }];
  });
  if (rows.length === 0) return null;
  // Colour by kind only when it tells something (MQA / GQA / MHA), not for one constant value;
  // legend order follows the number of KV heads rather than the alphabet.
  const byHeads = [...rows].sort((a, b) => a.nKvHeads - b.nKvHeads);
  const kinds = [...new Set(byHeads.map((r) => r.kind))];
  const perX = new Map<number, Set<string>>();
  for (const r of rows) perX.set(r.nKvHeads, (perX.get(r.nKvHeads) ?? new Set()).add(r.kind));
  const style: BarStyle =
    kinds.length > 1 || kinds[0] !== ''
      ? {
          colorBy: { field: 'kind', domain: kinds },
          // Usually kind follows from nKvHeads (MQA = 1, MHA = nHead); if not, group the bars.
          ...([...perX.values()].some((k) => k.size > 1) ? { offsetBy: 'kind' } : {}),
        }
      : {};
  const withBytes = rows.filter((r) => r.cacheBytes !== undefined && Number.isFinite(r.cacheBytes));
  const { unit, factor } = byteUnit(Math.max(0, ...withBytes.map((r) => r.cacheBytes!)));
  const values = rows.map((r) => ({
    ...r,
    cache: r.cacheBytes === undefined ? null : r.cacheBytes / factor,
  }));
  const xTitle = 'KV heads (n_kv_heads)';
  const height = withBytes.length > 0 ? 200 : HEIGHT;
  // Narrower than the others: the kind legend sits to the right.
  const width = WIDTH - 40;
  const timePanel: NonNormalizedSpec = {
    width,
    height,
    ...timeBars('nKvHeads', xTitle, style),
  };
  const bytesPanel: NonNormalizedSpec = {
    width,
    height,
    transform: [{ filter: 'datum.cache != null' }],
    mark: { type: 'bar', width: { band: 0.6 }, cornerRadiusEnd: 2 },
    encoding: {
      x: { field: 'nKvHeads', type: 'ordinal', title: xTitle, axis: { labelAngle: 0 } },
      y: { field: 'cache', type: 'quantitative', title: `KV cache size (${unit})`, stack: null },
      ...barEncoding(style),
    },
  };
  return {
    file: 'heads.svg',
    alt: 'Step time and KV cache size by number of KV heads',
    scenarioId: s.id,
    spec: {
      $schema: SCHEMA,
      config,
      title: {
        text: s.title,
        subtitle:
          withBytes.length > 0
            ? // Short: without a canvas, vega over-estimates text width and would pad the image.
              'Time per step (±1 std. dev.) and KV cache size'
            : 'Mean time per step; whiskers: ±1 std. dev.',
      },
      data: { values },
      ...(withBytes.length > 0 ? { vconcat: [timePanel, bytesPanel], spacing: 24 } : timePanel),
    },
  };
}

function batchChart(s: Scenario | undefined): ChartPlan | null {
  if (!s) return null;
  const rows = s.measurements.flatMap((m) => {
    const B = num(m.labels.B);
    const tps = m.extra?.tokensPerSecond;
    return B === undefined || tps === undefined || !Number.isFinite(tps)
      ? []
      : [{ B, tokensPerSecond: tps }];
  });
  if (rows.length === 0) return null;
  const x: PositionDef<Field> = {
    field: 'B',
    type: 'ordinal',
    title: 'batch size B',
    axis: { labelAngle: 0 },
  };
  const y: PositionDef<Field> = { field: 'tokensPerSecond', type: 'quantitative' };
  return {
    file: 'batch.svg',
    alt: 'Decoding throughput (tokens/s) by batch size',
    scenarioId: s.id,
    spec: {
      $schema: SCHEMA,
      config,
      title: { text: s.title, subtitle: 'Tokens generated per second, all sequences together' },
      width: WIDTH,
      height: HEIGHT,
      data: { values: rows },
      layer: [
        {
          mark: { type: 'bar', width: { band: 0.6 }, cornerRadiusEnd: 2, color: BAR_COLOR },
          // No stacking: with cornerRadiusEnd, stackable bars become one clipped group each.
          encoding: { x, y: { ...y, title: 'throughput (tokens/s)', stack: null } },
        },
        {
          mark: { type: 'text', baseline: 'bottom', dy: -3, fontSize: 11 },
          encoding: {
            x,
            y,
            text: { field: 'tokensPerSecond', type: 'quantitative', format: ',.0f' },
          },
        },
      ],
    },
  };
}

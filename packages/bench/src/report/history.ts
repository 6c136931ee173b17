/**
 * The bench across time: the committed reports under `reports/history/` (one file per kept
 * run, named `YYYY-MM-DD-what.json`), read at any schema version, and the ratios a reader
 * follows across them: the seed's and the GPT model's. Each series is a function of one report,
 * so a new workload adds its ratios by adding entries to `historySeries`.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { readReport } from './read.ts';
import type { Report, Scenario } from './schema.ts';

/** One kept run: its file's name (without `.json`) and the report. */
export interface HistoryEntry {
  name: string;
  report: Report;
}

/** A ratio followed across runs. */
export interface HistorySeries {
  id: string;
  label: string;
  value(report: Report): number | null;
}

const scenario = (r: Report, id: string): Scenario | undefined =>
  r.scenarios.find((s) => s.id === id && !s.skipped);
const derived = (r: Report, id: string, ...keys: string[]): number | null => {
  const d = scenario(r, id)?.derived;
  for (const k of keys) if (d && typeof d[k] === 'number') return d[k];
  return null;
};

/** A ratio of the gpt scenario at its uncachedT (`overFloorAtT512` in full runs). */
const gptAt = (r: Report, name: string): number | null => {
  const u = scenario(r, 'gpt')?.params.uncachedT;
  return typeof u === 'number' ? derived(r, 'gpt', `${name}AtT${u}`) : null;
};

/**
 * The seed's ratios (its speedup, its distance to the floor, kvkit over each peer) and the GPT
 * model's (its cached step over the floor and over PyTorch's addmv form, and the no-cache
 * forward over the cached step, all at t=512).
 *
 * @example
 * const series = historySeries.filter((s) => s.id.startsWith('gpt-'));
 */
export const historySeries: HistorySeries[] = [
  {
    id: 'seed-speedup',
    label: 'seed: uncached / cached',
    value: (r) => derived(r, 'seed', 'speedup'),
  },
  {
    id: 'seed-floor',
    label: 'seed cached: time / floor',
    value: (r) =>
      scenario(r, 'seed')?.measurements.find((m) => m.key === 'cached')?.floor?.ratio ?? null,
  },
  {
    id: 'seed-torch',
    label: 'seed cached: kvkit / PyTorch nn.Linear',
    // Version-1 reports named it oursOverTorchCached.
    value: (r) => derived(r, 'peer-torch', 'oursOverTorchSeedCached', 'oursOverTorchCached'),
  },
  {
    id: 'seed-torch-addmv',
    label: 'seed cached: kvkit / PyTorch addmv',
    value: (r) => derived(r, 'peer-torch', 'oursOverTorchAddmvSeedCached'),
  },
  {
    id: 'seed-ort-web',
    label: 'seed cached, built once: kvkit / onnxruntime-web',
    value: (r) => derived(r, 'peer-ort-web', 'oursOverOrtWebSeedCached'),
  },
  {
    id: 'seed-ort-node',
    label: 'seed cached, built once: kvkit / onnxruntime-node',
    value: (r) => derived(r, 'peer-ort-node', 'oursOverOrtNodeSeedCached'),
  },
  {
    id: 'gpt-floor',
    label: 'gpt step at t=512: time / floor',
    value: (r) => gptAt(r, 'overFloor'),
  },
  {
    id: 'gpt-torch-addmv',
    label: 'gpt step at t=512: kvkit / PyTorch addmv',
    value: (r) => gptAt(r, 'overTorchAddmv'),
  },
  {
    id: 'gpt-speedup',
    label: 'gpt at t=512: no-cache forward / cached step',
    value: (r) => gptAt(r, 'speedup'),
  },
];

/**
 * Every `*.json` report in `dir`, oldest first (file names start with the date); a file of a
 * schema this version cannot read is a ReportSchemaError naming it.
 *
 * @example
 * const entries = readHistory('packages/bench/reports/history');
 */
export function readHistory(dir: string): HistoryEntry[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ name: f.slice(0, -5), report: readReport(join(dir, f)) }));
}

/** One point per run and series that has a value: the run's date and whether it was noisy. */
export interface HistoryPoint {
  run: string;
  date: string;
  series: string;
  value: number;
  noisy: boolean;
}

/**
 * The points of every series in every run, oldest run first.
 *
 * @example
 * const points = historyPoints(readHistory('reports/history'));
 */
export function historyPoints(entries: HistoryEntry[], series = historySeries): HistoryPoint[] {
  return entries.flatMap(({ name, report }) =>
    series.flatMap((s) => {
      const value = s.value(report);
      return value !== null && Number.isFinite(value) && value > 0
        ? [
            {
              run: name,
              date: report.environment.date,
              series: s.label,
              value,
              noisy: report.noise?.noisy ?? false,
            },
          ]
        : [];
    }),
  );
}

/**
 * The history chart: each series' ratio per run, on a log axis (1 = parity with the peer, or no
 * speedup); hollow points are runs flagged noisy. Null when no run has a value.
 *
 * @example
 * const spec = historyChartSpec(historyPoints(entries));
 * if (spec) writeFileSync('history.svg', await renderSvg(spec));
 */
export function historyChartSpec(points: HistoryPoint[]): TopLevelSpec | null {
  if (points.length === 0) return null;
  const x = {
    field: 'run',
    type: 'ordinal',
    sort: null,
    title: null,
    axis: { labelAngle: -20, labelLimit: 260 },
  } as const;
  const y = {
    field: 'value',
    type: 'quantitative',
    scale: { type: 'log' },
    axis: { format: '~g', grid: true },
    title: 'ratio (log scale)',
  } as const;
  const color = {
    field: 'series',
    type: 'nominal',
    title: null,
    legend: { orient: 'bottom', columns: 1, labelLimit: 480 },
  } as const;
  const points_ = (noisy: boolean) => ({
    transform: [{ filter: noisy ? 'datum.noisy' : '!datum.noisy' }],
    mark: { type: 'point', filled: !noisy, size: 60, strokeWidth: 2 },
    encoding: { x, y, color },
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    background: 'white',
    padding: 12,
    title: {
      text: 'The seed and the GPT model across committed runs',
      subtitle: 'kvkit / peer below 1: kvkit is faster; hollow points: runs flagged noisy',
      anchor: 'start',
    },
    width: 520,
    height: 300,
    data: { values: points },
    layer: [
      { mark: { type: 'line', strokeWidth: 2 }, encoding: { x, y, color } },
      points_(false),
      points_(true),
    ],
  } as TopLevelSpec;
}

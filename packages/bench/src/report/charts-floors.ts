/**
 * Charts with the floor drawn in: the peers side by side (kvkit, PyTorch in both forms, both
 * ONNX Runtimes) per workload, and the prefill against its FLOP floor. The floor is a black
 * tick: the time reading the weights and keys/values at the run's bandwidth, or doing the
 * FLOPs at its matMul rate, would take.
 */
import type { TopLevelSpec } from 'vega-lite';
import { peerColumns, peerRows } from './peer-table.ts';
import type { Report } from './schema.ts';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const look = { background: 'white', padding: 12 } as const;
const title = (text: string, subtitle: string) => ({ text, subtitle, anchor: 'start' as const });

/** The peers chart: mean time per workload and engine (log scale), the floor as a tick. */
export function peersChartSpec(report: Report): TopLevelSpec | null {
  const rows = peerRows(report);
  const bars = rows.flatMap((r) =>
    r.means.flatMap((ms, i) =>
      ms === null ? [] : [{ workload: r.label, engine: peerColumns[i]!.label, ms }],
    ),
  );
  if (bars.length === 0) return null;
  const floors = rows.flatMap((r) =>
    r.floorMs === null ? [] : [{ workload: r.label, ms: r.floorMs }],
  );
  const x = {
    field: 'workload',
    type: 'nominal',
    sort: null,
    title: null,
    axis: { labelAngle: -25, labelLimit: 220 },
  } as const;
  const y = {
    field: 'ms',
    type: 'quantitative',
    scale: { type: 'log' },
    axis: { format: '~g' },
    title: 'time per call (ms, log scale)',
  } as const;
  return {
    $schema: SCHEMA,
    ...look,
    title: title(
      'kvkit and its peers',
      'Mean time per call, same weights and inputs; black tick: the floor',
    ),
    width: 560,
    height: 300,
    layer: [
      {
        data: { values: bars },
        mark: { type: 'bar' },
        encoding: {
          x,
          xOffset: { field: 'engine', type: 'nominal', sort: peerColumns.map((c) => c.label) },
          y: { ...y, stack: null },
          color: {
            field: 'engine',
            type: 'nominal',
            sort: peerColumns.map((c) => c.label),
            legend: { orient: 'bottom', columns: 3, labelLimit: 220 },
          },
        },
      },
      {
        data: { values: floors },
        mark: { type: 'tick', color: 'black', thickness: 2, size: 40 },
        encoding: { x, y },
      },
    ],
  } as TopLevelSpec;
}

/** The prefill chart: the forward and its largest matMul against their floors. */
export function prefillChartSpec(report: Report): TopLevelSpec | null {
  const s = report.scenarios.find((x) => x.id === 'prefill' && !x.skipped);
  if (!s) return null;
  const values = s.measurements.flatMap((m) =>
    m.floor
      ? [{ what: String(m.labels.what ?? m.key), ms: m.timing.meanMs, floor: m.floor.ms }]
      : [],
  );
  if (values.length === 0) return null;
  const x = {
    field: 'what',
    type: 'nominal',
    sort: null,
    title: null,
    axis: { labelAngle: 0 },
  } as const;
  return {
    $schema: SCHEMA,
    ...look,
    title: title(
      s.title,
      'Mean time per call; black tick: the FLOP floor at this run\u2019s matMul rate',
    ),
    width: 420,
    height: 260,
    data: { values },
    layer: [
      {
        mark: { type: 'bar', width: { band: 0.5 }, color: '#4c78a8' },
        encoding: {
          x,
          y: { field: 'ms', type: 'quantitative', title: 'time per call (ms)', stack: null },
        },
      },
      {
        mark: { type: 'tick', color: 'black', thickness: 2 },
        encoding: { x, y: { field: 'floor', type: 'quantitative' } },
      },
    ],
  } as TopLevelSpec;
}

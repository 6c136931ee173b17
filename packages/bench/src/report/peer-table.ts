/**
 * The peers side by side: one row per workload (the seed's loops, the context layer's step and
 * prefix at each peer context), one column per engine and form, all from one report. kvkit's
 * cached seed loop appears twice: as the notebook times it (building the module inside the
 * timed code, as PyTorch's loop does) and on a module built once (as ONNX Runtime's session is).
 */
import { formatTime } from './format-time.ts';
import type { Report } from './schema.ts';
import type { TableView } from './view.ts';

interface RowId {
  workload: 'seed' | 'context';
  variant: 'cached' | 'uncached';
  t?: number;
}

/** Where a column's number for a row comes from: a scenario and a measurement key. */
type Source = (r: RowId) => { scenario: string; key: string } | null;

const at = (r: RowId) => (r.workload === 'seed' ? r.variant : `${r.variant}/t=${r.t}`);
const ort =
  (scenario: string): Source =>
  (r) => ({ scenario, key: `${r.workload}/${at(r)}` });
const torch =
  (prefix: string): Source =>
  (r) => ({
    scenario: 'peer-torch',
    key: r.workload === 'seed' ? `${prefix}/${r.variant}` : `${prefix}/context/${at(r)}`,
  });

/** The engines and forms, in column order. */
export const peerColumns: { label: string; source: Source }[] = [
  {
    label: 'kvkit',
    source: (r) => ({ scenario: r.workload === 'seed' ? 'seed' : 'context', key: at(r) }),
  },
  {
    label: 'kvkit, module built once',
    source: (r) =>
      r.workload === 'seed' && r.variant === 'cached'
        ? { scenario: 'seed', key: 'cached-loop-only' }
        : null,
  },
  { label: 'PyTorch nn.Linear', source: torch('torch') },
  { label: 'PyTorch addmv', source: torch('torch-addmv') },
  { label: 'onnxruntime-web', source: ort('peer-ort-web') },
  { label: 'onnxruntime-node', source: ort('peer-ort-node') },
];

/** One row's numbers: mean ms per column (null: not measured) and kvkit's floor for it. */
export interface PeerRow extends RowId {
  label: string;
  means: (number | null)[];
  floorMs: number | null;
}

/** The rows: the seed's two loops, then the context layer at every context a peer ran. */
export function peerRows(report: Report): PeerRow[] {
  const peers = report.scenarios.filter((s) => s.id.startsWith('peer-') && !s.skipped);
  if (peers.length === 0) return [];
  const measured = (scenario: string, key: string) =>
    report.scenarios
      .find((s) => s.id === scenario && !s.skipped)
      ?.measurements.find((m) => m.key === key);
  const ts = [
    ...new Set(
      peers.flatMap((s) =>
        s.measurements.map((m) => m.labels.t).filter((t): t is number => typeof t === 'number'),
      ),
    ),
  ].sort((a, b) => a - b);
  const ids: RowId[] = [
    { workload: 'seed', variant: 'cached' },
    { workload: 'seed', variant: 'uncached' },
    ...ts.flatMap((t) =>
      (['cached', 'uncached'] as const).map((variant) => ({
        workload: 'context' as const,
        variant,
        t,
      })),
    ),
  ];
  return ids.map((r) => {
    const cells = peerColumns.map((c) => {
      const src = c.source(r);
      return src ? measured(src.scenario, src.key) : undefined;
    });
    return {
      ...r,
      label:
        r.workload === 'seed'
          ? `seed ${r.variant} loop`
          : `context ${r.variant === 'cached' ? 'step' : 'prefix'} at t=${r.t}`,
      means: cells.map((m) => m?.timing.meanMs ?? null),
      floorMs: cells[0]?.floor?.ms ?? null,
    };
  });
}

/** Why each peer did not run, one line each (`peer-ort-web: onnxruntime-web not installed ...`). */
export function peerSkips(report: Report): string[] {
  return report.scenarios
    .filter((s) => s.id.startsWith('peer-') && s.skipped)
    .map((s) => `${s.id}: ${s.skipped}`);
}

/**
 * The peer table as strings: the mean time of each engine and form, and kvkit's floor; null
 * when no peer ran.
 *
 * @example
 * const t = peerTableView(report); // t?.columns[1].label === 'kvkit'
 */
export function peerTableView(report: Report): TableView | null {
  const rows = peerRows(report);
  if (rows.length === 0) return null;
  return {
    columns: [
      { label: 'workload', numeric: false },
      ...peerColumns.map((c) => ({ label: c.label, numeric: true })),
      { label: 'floor', numeric: true },
    ],
    rows: rows.map((r) => [
      r.label,
      ...r.means.map((v) => (v === null ? '' : formatTime(v))),
      r.floorMs === null ? '' : formatTime(r.floorMs),
    ]),
  };
}

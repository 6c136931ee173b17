/**
 * The peers side by side: one row per workload (the seed's loops, the context layer's step and
 * prefix at each peer context, the GPT's step at each context and its no-cache forward), one
 * column per engine and form, all from one report. kvkit's
 * cached seed loop appears twice: as the notebook times it (building the module inside the
 * timed code, as PyTorch's loop does) and on a module built once (as ONNX Runtime's session is).
 */
import { formatTime } from './format-time.ts';
import type { Report } from './schema.ts';
import type { TableView } from './view.ts';

interface RowId {
  workload: 'seed' | 'context' | 'gpt';
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
    key: r.workload === 'seed' ? `${prefix}/${r.variant}` : `${prefix}/${r.workload}/${at(r)}`,
  });

/** The engines and forms, in column order. */
export const peerColumns: { label: string; source: Source }[] = [
  { label: 'kvkit', source: (r) => ({ scenario: r.workload, key: at(r) }) },
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

/** Every (variant, t) a peer measured on this workload, in row order. */
function peerPoints(peers: Report['scenarios'], workload: 'context' | 'gpt'): RowId[] {
  const seen = new Map<string, RowId>();
  for (const m of peers.flatMap((s) => s.measurements)) {
    const { t, variant } = m.labels;
    if (m.labels.workload !== workload || typeof t !== 'number') continue;
    if (variant !== 'cached' && variant !== 'uncached') continue;
    seen.set(`${variant}/${t}`, { workload, variant, t });
  }
  // The context layer: both variants at each t; the GPT: its steps, then its no-cache forward.
  const order = (r: RowId) => (workload === 'gpt' && r.variant === 'uncached' ? 1e9 : 0) + r.t!;
  return [...seen.values()].sort(
    (a, b) => order(a) - order(b) || (a.variant === 'cached' ? -1 : 1),
  );
}

const rowLabel = (r: RowId): string =>
  r.workload === 'seed'
    ? `seed ${r.variant} loop`
    : `${r.workload} ${r.variant === 'cached' ? 'step' : 'prefix'} at t=${r.t}`;

/** The rows: the seed's two loops, the context layer and the GPT at every point a peer ran. */
export function peerRows(report: Report): PeerRow[] {
  const peers = report.scenarios.filter((s) => s.id.startsWith('peer-') && !s.skipped);
  if (peers.length === 0) return [];
  const measured = (scenario: string, key: string) =>
    report.scenarios
      .find((s) => s.id === scenario && !s.skipped)
      ?.measurements.find((m) => m.key === key);
  const ids: RowId[] = [
    { workload: 'seed', variant: 'cached' },
    { workload: 'seed', variant: 'uncached' },
    ...peerPoints(peers, 'context'),
    ...peerPoints(peers, 'gpt'),
  ];
  return ids.map((r) => {
    const cells = peerColumns.map((c) => {
      const src = c.source(r);
      return src ? measured(src.scenario, src.key) : undefined;
    });
    return {
      ...r,
      label: rowLabel(r),
      means: cells.map((m) => m?.timing.meanMs ?? null),
      floorMs: cells[0]?.floor?.ms ?? null,
    };
  });
}

/**
 * Why each peer, or a part of one, did not run, one line each
 * (`peer-ort-web: onnxruntime-web not installed ...`, `peer-torch (gpt): ...`).
 */
export function peerSkips(report: Report): string[] {
  return report.scenarios
    .filter((s) => s.id.startsWith('peer-'))
    .flatMap((s) =>
      s.skipped
        ? [`${s.id}: ${s.skipped}`]
        : Object.entries(s.partsSkipped ?? {}).map(([part, why]) => `${s.id} (${part}): ${why}`),
    );
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

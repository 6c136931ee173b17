// A small SVG line chart (step time against t), drawn at the element's own width so its text
// stays at its font size on a phone, with the legend above the plot so it never covers a line.

export interface Series {
  label: string;
  colour: string;
  points: { x: number; y: number }[];
}

const pad = { left: 56, right: 16, top: 48, bottom: 40 };
const ns = 'http://www.w3.org/2000/svg';

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>,
  text?: string,
): SVGElementTagNameMap[K] {
  const el = document.createElementNS(ns, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** Replaces the contents of `root` with a chart of `series` over x in [0, xMax]. */
export function drawLineChart(
  root: SVGSVGElement,
  series: Series[],
  xMax: number,
  labels: { x: string; y: string },
): void {
  const W = Math.max(300, Math.round(root.clientWidth || 640));
  const H = Math.round(Math.min(320, Math.max(220, W * 0.5)));
  root.setAttribute('viewBox', `0 0 ${W} ${H}`);
  root.replaceChildren();
  const yMax = niceMax(Math.max(1e-3, ...series.flatMap((s) => s.points.map((p) => p.y))));
  const px = (x: number) => pad.left + (x / xMax) * (W - pad.left - pad.right);
  const py = (y: number) => H - pad.bottom - (y / yMax) * (H - pad.top - pad.bottom);
  const axis = { stroke: '#9ca3af', 'stroke-width': 1 };
  root.append(svg('line', { x1: px(0), y1: py(0), x2: px(xMax), y2: py(0), ...axis }));
  root.append(svg('line', { x1: px(0), y1: py(0), x2: px(0), y2: py(yMax), ...axis }));
  for (const f of [0, 0.5, 1]) {
    const text = { 'font-size': 13, fill: '#4b5563' };
    root.append(
      svg(
        'text',
        { x: pad.left - 6, y: py(yMax * f) + 4, 'text-anchor': 'end', ...text },
        fmt(yMax * f),
      ),
    );
    root.append(
      svg(
        'text',
        { x: px(xMax * f), y: H - pad.bottom + 18, 'text-anchor': 'middle', ...text },
        fmt(xMax * f),
      ),
    );
  }
  root.append(
    svg(
      'text',
      { x: W / 2, y: H - 6, 'text-anchor': 'middle', 'font-size': 13, fill: '#374151' },
      labels.x,
    ),
  );
  root.append(svg('text', { x: 4, y: 36, 'font-size': 13, fill: '#374151' }, labels.y));
  let legendX = 4;
  for (const s of series) {
    root.append(svg('rect', { x: legendX, y: 8, width: 14, height: 4, fill: s.colour }));
    root.append(svg('text', { x: legendX + 20, y: 14, 'font-size': 12, fill: '#111827' }, s.label));
    legendX += 36 + s.label.length * 6.6;
    if (s.points.length === 0) continue;
    const d = s.points
      .map((p, i) => `${i ? 'L' : 'M'}${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`)
      .join('');
    root.append(
      svg('path', {
        d,
        fill: 'none',
        stroke: s.colour,
        'stroke-width': 2,
        'data-series': s.label,
        'data-points': s.points.length,
      }),
    );
  }
}

function niceMax(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  return v >= 10 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2);
}

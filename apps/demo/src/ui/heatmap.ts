// A matrix as a grid of coloured cells on a canvas: blue below zero, red above, white at zero.
// Used for the K and V cache, one row per position: a row not written yet is grey, a row the
// cache has evicted (a windowed cache) is hatched.

/** One row: its values (`cols` of them), or why it has none. */
export type HeatmapRow = ArrayLike<number> | 'empty' | 'evicted';

export interface HeatmapOptions {
  /** A row to outline (the position just written), or -1. */
  highlightRow?: number;
  /** |value| that maps to the full colour. */
  scale: number;
}

/** Draws `data` (one entry per row, `cols` values each) on `canvas`, sized to its CSS box. */
export function drawHeatmap(
  canvas: HTMLCanvasElement,
  data: readonly HeatmapRow[],
  cols: number,
  options: HeatmapOptions,
): void {
  const rows = data.length;
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || cols * 16;
  const height = canvas.clientHeight || rows * 16;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  const cw = width / cols;
  const ch = height / rows;
  for (let r = 0; r < rows; r++) {
    const row = data[r]!;
    for (let c = 0; c < cols; c++) {
      ctx.fillStyle = typeof row === 'string' ? '#e5e7eb' : colour(row[c]! / options.scale);
      ctx.fillRect(c * cw, r * ch, Math.ceil(cw), Math.ceil(ch));
    }
    if (row === 'evicted') hatch(ctx, r * ch, width, ch);
  }
  ctx.strokeStyle = 'rgba(255, 255, 255, 0.7)';
  ctx.lineWidth = 1;
  for (let r = 1; r < rows; r++) line(ctx, 0, r * ch, width, r * ch);
  for (let c = 1; c < cols; c++) line(ctx, c * cw, 0, c * cw, height);
  const hl = options.highlightRow ?? -1;
  if (hl >= 0 && hl < rows) {
    ctx.strokeStyle = '#111827';
    ctx.lineWidth = 2;
    ctx.strokeRect(1, hl * ch + 1, width - 2, ch - 2);
  }
}

/** Diagonal strokes across one row: an evicted position. */
function hatch(ctx: CanvasRenderingContext2D, y: number, width: number, height: number) {
  ctx.save();
  ctx.beginPath();
  ctx.rect(0, y, width, height);
  ctx.clip();
  ctx.strokeStyle = '#9ca3af';
  ctx.lineWidth = 1;
  for (let x = -height; x < width; x += 6) line(ctx, x, y + height, x + height, y);
  ctx.restore();
}

function line(ctx: CanvasRenderingContext2D, x0: number, y0: number, x1: number, y1: number) {
  ctx.beginPath();
  ctx.moveTo(x0, y0);
  ctx.lineTo(x1, y1);
  ctx.stroke();
}

/** -1 -> blue, 0 -> white, 1 -> red (clamped). */
function colour(v: number): string {
  const t = Math.max(-1, Math.min(1, v));
  const fade = (x: number) => Math.round(255 - (255 - x) * Math.abs(t));
  return t < 0
    ? `rgb(${fade(37)}, ${fade(99)}, ${fade(235)})`
    : `rgb(${fade(220)}, ${fade(38)}, ${fade(38)})`;
}

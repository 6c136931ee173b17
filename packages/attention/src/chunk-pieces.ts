import type { KVCache, RowSpans } from '@kvkit/kv-cache';

/** One piece of a chunk: columns [from, from + T), each row's start there, and its spans. */
export interface Piece {
  from: number;
  T: number;
  /** Each batch row's next position: where its first real column of this piece goes. */
  startPos: number[];
  /** The real columns of each row within the piece (null: all of them). */
  spans: RowSpans | null;
}

/**
 * The pieces in which a chunk of T columns is written to `cache` and attended: one piece
 * unless the cache takes fewer new positions per update at the rows' positions (a full ring
 * takes one), as many as it takes each time. Each row's real columns (`spans`, null for all)
 * are written at `startPos[b]`, `startPos[b] + 1`, ...; a piece holding none of a row's
 * columns leaves that row as it is. Call `next()` after the previous piece was written.
 *
 * @example
 * for (const p of cachePieces(cache, 0, [0, 0], 70, spans)) cache.update(0, rows(p), p.startPos, { spans: p.spans });
 */
export function* cachePieces(
  cache: KVCache,
  layer: number,
  startPos: readonly number[],
  T: number,
  spans: RowSpans | null,
): Generator<Piece> {
  const B = startPos.length;
  const written = (b: number, column: number) =>
    spans ? Math.min(Math.max(column - spans.first[b]!, 0), spans.count[b]!) : column;
  for (let from = 0; from < T; ) {
    const starts = startPos.map((s, b) => s + written(b, from));
    const n = Math.min(T - from, cache.maxUpdateLength(layer, starts, B));
    let pieceSpans: RowSpans | null = null;
    if (spans) {
      pieceSpans = { first: [], count: [] };
      for (let b = 0; b < B; b++) {
        const lo = Math.max(spans.first[b]!, from);
        const hi = Math.min(spans.first[b]! + spans.count[b]!, from + n);
        (pieceSpans.first as number[]).push(hi > lo ? lo - from : 0);
        (pieceSpans.count as number[]).push(Math.max(0, hi - lo));
      }
    }
    yield { from, T: n, startPos: starts, spans: pieceSpans };
    from += n;
  }
}

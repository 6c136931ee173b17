import { ShapeError, ValueError } from '@kvkit/tensor-utils';
import { checkLayoutSupported, type HeapRows, type KVView, RUN_BYTES } from './layout.ts';

/** Query rows in the view's heap: row (b, i), head h at `ptr + b*batchStride + i*rowStride + h*hs*4`. */
export interface QueryRows {
  ptr: number;
  batchStride: number;
  rowStride: number;
  /** Query rows per batch row. */
  T: number;
  /** Query heads (a multiple of the layout's key/value heads). */
  nHead: number;
  /** Absolute position of each batch row's first query row (one per batch row of the view). */
  startPos: ArrayLike<number>;
  /** Score scale; default `fround(1 / sqrt(headSize))`. */
  scale?: number;
}

/** Where the kernel writes: row (b, i), head h at `ptr + b*batchStride + i*rowStride + h*hs*4`. */
export interface OutputRows {
  ptr: number;
  batchStride: number;
  rowStride: number;
}

const NO_WINDOW = 0x7fffffff;

/**
 * softmax(q k^T * scale, masked by position) v for every (batch row, query head, query row),
 * reading the view's keys and values in place. The layout must be one the kernel reads
 * (`UnsupportedLayoutError` otherwise, before any memory is touched). Scratch is allocated for
 * the call and freed before it returns.
 *
 * @example
 * const view = cache.update(0, rows, startPos);           // what the cache holds now
 * attend(view, { ptr: q, batchStride, rowStride, T: 1, nHead: 12, startPos: [t] }, out);
 */
export function attend(view: KVView, queries: QueryRows, out: OutputRows): void {
  const { heap, layout, batchSize: B } = view;
  checkLayoutSupported(layout);
  const { nHead: nh, T } = queries;
  const { nKvHeads: nkv, headSize: hs } = layout;
  if (!Number.isInteger(nh) || nh < 1 || nh % nkv !== 0) {
    throw new ShapeError(
      `attend: nHead must be a positive multiple of nKvHeads ${nkv}, got ${nh}`,
      {
        expected: `a multiple of ${nkv}`,
        actual: [nh],
      },
    );
  }
  if (!Number.isInteger(T) || T < 1) {
    throw new ShapeError(`attend: T must be a positive integer, got ${T}`, {
      expected: 'T >= 1',
      actual: [T],
    });
  }
  if (queries.startPos.length !== B) {
    throw new ShapeError(
      `attend: startPos must give one position per batch row (${B}), got ${queries.startPos.length}`,
      { expected: [B], actual: [queries.startPos.length] },
    );
  }
  for (let b = 0; b < B; b++) {
    const s = queries.startPos[b]!;
    if (!Number.isInteger(s) || s < 0 || s + T - 1 > NO_WINDOW - 1) {
      throw new ValueError(
        `attend: startPos[${b}] must be a non-negative int32 position, got ${s}`,
        {
          argument: 'startPos',
          value: s,
        },
      );
    }
  }
  const scoresBytes = Math.ceil(Math.max(view.maxKeys, 1) / 4) * 16;
  const scratch = heap.alloc(scoresBytes + 4 * B);
  try {
    const i32 = heap.i32();
    for (let b = 0; b < B; b++) i32[(scratch + scoresBytes) / 4 + b] = queries.startPos[b]!;
    heap.attendRaw({
      q: queries.ptr,
      qBatch: queries.batchStride,
      qRow: queries.rowStride,
      out: out.ptr,
      outBatch: out.batchStride,
      outRow: out.rowStride,
      k: layout.keys,
      v: layout.values,
      kvHead: layout.headStride,
      kvRow: layout.rowStride,
      runs: layout.runs,
      runBatch: layout.runStride,
      runCounts: layout.runCounts,
      qStart: scratch + scoresBytes,
      B,
      T,
      nh,
      group: nh / nkv,
      hs,
      window: layout.window ?? NO_WINDOW,
      scale: queries.scale ?? Math.fround(1 / Math.sqrt(hs)),
      scores: scratch,
    });
  } finally {
    heap.free(scratch);
  }
}

/**
 * The no-cache case: each batch row's T query rows attend causally over that chunk's own keys
 * and values (positions 0..T-1), read where the projection left them.
 */
export function attendOwnRows(
  rows: HeapRows,
  dims: { nHead: number; nKvHeads: number; headSize: number },
  queries: Omit<QueryRows, 'T' | 'nHead' | 'startPos'>,
  out: OutputRows,
): void {
  const { heap, batchSize: B, T } = rows;
  const table = heap.alloc(B * (RUN_BYTES + 4));
  try {
    const i32 = heap.i32();
    const counts = table + B * RUN_BYTES;
    for (let b = 0; b < B; b++) {
      i32.set([b * rows.batchStride, T, 0, 0], (table + b * RUN_BYTES) / 4);
      i32[counts / 4 + b] = 1;
    }
    const view: KVView = {
      heap,
      batchSize: B,
      maxKeys: T,
      layout: {
        kind: 'contiguous',
        dtype: 'float32',
        nKvHeads: dims.nKvHeads,
        headSize: dims.headSize,
        keys: rows.ptr + rows.keyOffset,
        values: rows.ptr + rows.valueOffset,
        headStride: dims.headSize * 4,
        rowStride: rows.rowStride,
        runs: table,
        runStride: RUN_BYTES,
        runCounts: counts,
        window: null,
      },
    };
    attend(view, { ...queries, T, nHead: dims.nHead, startPos: new Array(B).fill(0) }, out);
  } finally {
    heap.free(table);
  }
}

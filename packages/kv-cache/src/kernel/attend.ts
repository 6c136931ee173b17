import { ShapeError, ValueError } from '@kvkit/tensor-utils';
import { checkSpans } from '../checks.ts';
import type { RowSpans } from '../kv-cache.ts';
import {
  checkLayoutSupported,
  type HeapRows,
  type KVLayout,
  type KVView,
  quantizedFormat,
  RUN_BYTES,
} from './layout.ts';

/** Query rows in the view's heap: row (b, i), head h at `ptr + b*batchStride + i*rowStride + h*hs*4`. */
export interface QueryRows {
  ptr: number;
  batchStride: number;
  rowStride: number;
  /** Query rows per batch row. */
  T: number;
  /** Query heads (a multiple of the layout's key/value heads). */
  nHead: number;
  /**
   * Absolute position of each batch row's first query row (one per batch row of the view); with
   * `spans`, of its first real query row (row `spans.first[b]`).
   */
  startPos: ArrayLike<number>;
  /** Score scale; default `fround(1 / sqrt(headSize))`. */
  scale?: number;
  /**
   * Ragged batches: batch row b's real queries are rows `[first[b], first[b] + count[b])` of
   * its T; the others are padding, neither read nor written. All T rows when omitted.
   */
  spans?: RowSpans;
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
  const spans = queries.spans ? checkSpans(queries.spans, B, T) : null;
  const scoresBytes = Math.ceil(Math.max(view.maxKeys, 1) / 4) * 16;
  const startsBytes = Math.ceil(B / 4) * 16;
  const quantized = layout.quantized ? quantizedScratchBytes(layout) : 0;
  const scratch = heap.alloc(scoresBytes + startsBytes + quantized);
  try {
    const i32 = heap.i32();
    for (let b = 0; b < B; b++) i32[(scratch + scoresBytes) / 4 + b] = queries.startPos[b]!;
    const descriptor = scratch + scoresBytes + startsBytes;
    if (quantized) writeDescriptor(heap.i32(), descriptor, layout);
    // Batch rows [b0, b0 + nb), `rows` query rows each, from query row `first`.
    const run = (b0: number, nb: number, first: number, rows: number) =>
      heap.attendRaw({
        q: queries.ptr + b0 * queries.batchStride + first * queries.rowStride,
        qBatch: queries.batchStride,
        qRow: queries.rowStride,
        out: out.ptr + b0 * out.batchStride + first * out.rowStride,
        outBatch: out.batchStride,
        outRow: out.rowStride,
        k: layout.keys,
        v: layout.values,
        kvHead: layout.headStride,
        kvRow: layout.rowStride,
        runs: layout.runs + b0 * layout.runStride,
        runBatch: layout.runStride,
        runCounts: layout.runCounts + 4 * b0,
        qStart: scratch + scoresBytes + 4 * b0,
        B: nb,
        T: rows,
        nh,
        group: nh / nkv,
        hs,
        window: layout.window ?? NO_WINDOW,
        scale: queries.scale ?? Math.fround(1 / Math.sqrt(hs)),
        scores: scratch,
        quantized: quantized ? descriptor : 0,
      });
    if (!spans) run(0, B, 0, T);
    else
      for (let b = 0; b < B; b++)
        if (spans.count[b]! > 0) run(b, 1, spans.first[b]!, spans.count[b]!);
  } finally {
    heap.free(scratch);
  }
}

const DESCRIPTOR_BYTES = 80;

/**
 * Scratch of a layout with quantized rows (byte sizes, each a multiple of 16): the descriptor,
 * the padded query row (f32), its int16 form, the padded output row (f32), and for a block of
 * value rows (at most 17 pairs) their weights (48 f32 per channel group), the int16 weight pairs
 * (20 i32 per channel group) and the zero-point sums (f32 per channel group).
 */
function scratchParts(layout: KVLayout): number[] {
  const f = quantizedFormat(layout.quantized!.dtype, layout.headSize, layout.quantized!.groupSize);
  const up = (n: number) => Math.ceil(n / 16) * 16;
  const g = f.valueGroups;
  return [
    DESCRIPTOR_BYTES,
    4 * f.paddedSize,
    2 * f.paddedSize,
    4 * f.paddedSize,
    192 * g,
    80 * g,
    up(4 * g),
  ];
}

function quantizedScratchBytes(layout: KVLayout): number {
  return scratchParts(layout).reduce((a, b) => a + b, 0);
}

/** The kernel's quantized-rows descriptor at `at` (field order: attention.wat), then its scratch. */
function writeDescriptor(i32: Int32Array, at: number, layout: KVLayout): void {
  const q = layout.quantized!;
  const f = quantizedFormat(q.dtype, layout.headSize, q.groupSize);
  const parts = scratchParts(layout);
  const [qpad, q16, vacc, af, wtab, zb] = parts
    .slice(1)
    .map((_, i) => at + parts.slice(0, i + 1).reduce((a, b) => a + b, 0));
  i32.set(
    [
      f.bits,
      Math.log2(q.groupSize),
      q.keys,
      q.keyHeadStride,
      f.keyGroupBytes,
      q.values,
      q.valueHeadStride,
      f.valueGroupBytes,
      f.rowBytes,
      f.paddedSize,
      f.valueGroups,
      qpad!,
      q16!,
      vacc!,
      af!,
      wtab!,
      zb!,
    ],
    at / 4,
  );
}

/**
 * The no-cache case: each batch row's T query rows attend causally over that chunk's own keys
 * and values (positions 0..T-1), read where the projection left them. With `queries.spans`
 * (a ragged batch), row b's real rows `[first[b], first[b] + count[b])` are positions
 * 0..count[b]-1 and attend among themselves; its padding rows are neither read nor written.
 */
export function attendOwnRows(
  rows: HeapRows,
  dims: { nHead: number; nKvHeads: number; headSize: number },
  queries: Omit<QueryRows, 'T' | 'nHead' | 'startPos'>,
  out: OutputRows,
): void {
  const { heap, batchSize: B, T } = rows;
  const spans = queries.spans ? checkSpans(queries.spans, B, T) : null;
  const table = heap.alloc(B * (RUN_BYTES + 4));
  try {
    const i32 = heap.i32();
    const counts = table + B * RUN_BYTES;
    for (let b = 0; b < B; b++) {
      const [first, count] = spans ? [spans.first[b]!, spans.count[b]!] : [0, T];
      i32.set(
        [b * rows.batchStride + first * rows.rowStride, count, 0, 0],
        (table + b * RUN_BYTES) / 4,
      );
      i32[counts / 4 + b] = count > 0 ? 1 : 0;
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

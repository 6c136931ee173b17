import { UnsupportedLayoutError } from '@kvkit/tensor-utils';
import type { KernelHeap } from './kernel-heap.ts';

/** The element type of the stored key/value rows. */
export type RowDType = 'float32' | 'int8' | 'int4';

/**
 * How a strategy places positions in slots. Every kind reaches the kernel the same way, as
 * runs of consecutive positions in consecutive slots (see `KVLayout.runs`):
 * - `contiguous`: slot p holds position p (static and dynamic caches): one run per batch row;
 * - `ring`: slot = f(position), the first `sinks` positions pinned and the rest in a ring of
 *   `window` slots (sliding-window and sink caches): up to three runs per batch row;
 * - `paged`: slots in fixed-size blocks found through a block table (a paged cache): one run
 *   per block, neighbouring pool blocks merged into one run.
 */
export type LayoutKind = 'contiguous' | 'ring' | 'paged';

/**
 * Where a layer's rows live in a `KernelHeap` and how to walk them: what a cache hands the
 * kernel. All addresses and strides are bytes.
 *
 * Key row for key/value head j of the slot at byte offset `o` (o from a run) is at
 * `keys + o + j * headStride`; the next slot of the run is `rowStride` further on. Values
 * likewise from `values`. A batch row's runs are `runCounts[b]` (int32 at `runCounts + 4b`)
 * entries of four int32 at `runs + b * runStride`: `[offset, count, firstPos, flags]`, flags
 * `RUN_SINK` and `RUN_QUANTIZED`. `dtype` is the dtype of the rows plain runs address; a run
 * flagged `RUN_QUANTIZED` addresses the layout's `quantized` rows instead, and its first field
 * is a group index (see `QuantizedLayout`).
 */
export interface KVLayout {
  kind: LayoutKind;
  dtype: RowDType;
  nKvHeads: number;
  headSize: number;
  keys: number;
  values: number;
  headStride: number;
  rowStride: number;
  runs: number;
  runStride: number;
  runCounts: number;
  /**
   * Visibility: a query at position P sees a key at position p <= P only when P - p < window,
   * unless the key's run is a sink run. Null: no window (every earlier position is seen).
   */
  window: number | null;
  /** Rows stored quantized (a `QuantizedKVCache`'s history); absent when no run is quantized. */
  quantized?: QuantizedLayout;
}

/** The element type of quantized rows. */
export type QuantizedDType = 'int8' | 'int4';

/**
 * Where a layout's quantized rows live: groups of `groupSize` positions. Group g of key/value
 * head j is at `keys + j * keyHeadStride + g * format.keyGroupBytes` (values likewise), laid out
 * as `quantizedFormat(dtype, headSize, groupSize)` describes. A run flagged `RUN_QUANTIZED`,
 * `[group, count, firstPos, flags]`, holds position `firstPos + i` in row `i % groupSize` of
 * group `group + floor(i / groupSize)`.
 */
export interface QuantizedLayout {
  dtype: QuantizedDType;
  groupSize: number;
  keys: number;
  values: number;
  keyHeadStride: number;
  valueHeadStride: number;
}

/** Run flag: a sink run (seen beyond the window). */
export const RUN_SINK = 1;
/** Run flag: the run's rows are the layout's quantized rows. */
export const RUN_QUANTIZED = 2;

/**
 * The byte format of quantized rows (what the kernel reads; docs/concepts/quantized-cache.md):
 * - a row is `paddedSize` channels, the head size rounded up to whole SIMD blocks (16 channels
 *   for int8, 32 for int4), padding zero; int8 takes a byte per channel, int4 16 bytes per 32
 *   channels (channel c + k in the low nibble of byte k, c + 16 + k in its high nibble);
 * - a parameter set is a bfloat16 scale s (2 bytes), plus for int4 an int8 zero point z
 *   (1 byte): element x is `s * q` (int8, q in [-127, 127]) or `s * (u - z)` (int4, u in [0, 15]);
 * - keys are grouped per channel over G positions: a key group is G rows, then one parameter
 *   set per channel (`paddedSize` scales, then the zero points);
 * - values are grouped per position over G channels: a value group is G rows, then
 *   `valueGroups` parameter sets per row (G x valueGroups scales, then the zero points).
 */
export interface QuantizedFormat {
  bits: 8 | 4;
  groupSize: number;
  paddedSize: number;
  /** Bytes of one row's elements. */
  rowBytes: number;
  /** Parameter sets per value row: ceil(paddedSize / groupSize). */
  valueGroups: number;
  /** Bytes of one parameter set: 2 (int8) or 3 (int4). */
  paramBytes: number;
  /** Bytes of G key rows with their per-channel parameters. */
  keyGroupBytes: number;
  /** Bytes of G value rows with their per-row parameters. */
  valueGroupBytes: number;
}

/** Group sizes the kernel reads: powers of two (a shift finds a group), 4 to 1024. */
export const GROUP_SIZES: readonly number[] = [4, 8, 16, 32, 64, 128, 256, 512, 1024];
/** The largest head size of quantized rows (the kernel's int32 dot products cannot overflow). */
export const MAX_QUANTIZED_HEAD_SIZE = 2048;

/**
 * The byte format of `dtype` rows of `headSize` channels in groups of `groupSize`.
 *
 * @example
 * quantizedFormat('int8', 64, 32).keyGroupBytes; // 32 rows x 64 bytes + 64 bf16 scales = 2176
 */
export function quantizedFormat(
  dtype: QuantizedDType,
  headSize: number,
  groupSize: number,
): QuantizedFormat {
  const bits = dtype === 'int4' ? 4 : 8;
  const block = bits === 8 ? 16 : 32;
  const paddedSize = Math.ceil(headSize / block) * block;
  const rowBytes = (paddedSize * bits) / 8;
  const valueGroups = Math.ceil(paddedSize / groupSize);
  const paramBytes = bits === 8 ? 2 : 3;
  return {
    bits,
    groupSize,
    paddedSize,
    rowBytes,
    valueGroups,
    paramBytes,
    keyGroupBytes: groupSize * rowBytes + paddedSize * paramBytes,
    valueGroupBytes: groupSize * (rowBytes + valueGroups * paramBytes),
  };
}

/** What attention reads for one layer: the layout, for batch rows [0, batchSize). */
export interface KVView {
  heap: KernelHeap;
  layout: KVLayout;
  batchSize: number;
  /** The most keys one query of any batch row can see (sizes the kernel's score scratch). */
  maxKeys: number;
}

/**
 * Layouts and dtypes of the rows plain runs address that the kernel reads; everything else is
 * refused. (int8 and int4 rows are read only as a layout's `quantized` part, with their scales.)
 */
const SUPPORTED: Readonly<Record<LayoutKind, readonly RowDType[]>> = {
  contiguous: ['float32'],
  ring: ['float32'],
  paged: ['float32'],
};

/**
 * Throws UnsupportedLayoutError unless the kernel reads this kind of layout with this dtype, and
 * its quantized rows, if any, in this dtype, group size and head size.
 */
export function checkLayoutSupported(
  layout: Pick<KVLayout, 'kind' | 'dtype' | 'quantized' | 'headSize'>,
): void {
  const q = layout.quantized;
  if (q !== undefined) {
    const why =
      q.dtype !== 'int8' && q.dtype !== 'int4'
        ? `quantized rows of dtype ${String(q.dtype)} (it reads int8 and int4)`
        : !GROUP_SIZES.includes(q.groupSize)
          ? `quantized rows in groups of ${q.groupSize} (it reads groups of ${GROUP_SIZES.join(', ')})`
          : layout.headSize > MAX_QUANTIZED_HEAD_SIZE
            ? `quantized rows of head size ${layout.headSize} (at most ${MAX_QUANTIZED_HEAD_SIZE})`
            : null;
    if (why !== null) {
      throw new UnsupportedLayoutError(`the attention kernel does not read ${why}`, {
        kind: String(layout.kind),
        dtype: String(q.dtype),
      });
    }
  }
  const dtypes = SUPPORTED[layout.kind] as readonly RowDType[] | undefined;
  if (!dtypes?.includes(layout.dtype)) {
    throw new UnsupportedLayoutError(
      `the attention kernel does not read ${String(layout.dtype)} rows in a ${String(layout.kind)} layout ` +
        `(it reads: ${Object.entries(SUPPORTED)
          .filter(([, d]) => d.length > 0)
          .map(([k, d]) => `${k} ${d.join('/')}`)
          .join(', ')})`,
      { kind: String(layout.kind), dtype: String(layout.dtype) },
    );
  }
}

/** Bytes of one run entry in a layout's run table: [offset, count, firstPos, flags] as int32. */
export const RUN_BYTES = 16;

/**
 * New key/value rows already in a heap, as a projection leaves them: row (b, i) starts at
 * `ptr + b * batchStride + i * rowStride`; its key for key/value head j at
 * `+ keyOffset + j * headSize * 4`, its value at `+ valueOffset + j * headSize * 4` (bytes).
 */
export interface HeapRows {
  heap: KernelHeap;
  ptr: number;
  batchStride: number;
  rowStride: number;
  keyOffset: number;
  valueOffset: number;
  batchSize: number;
  /** New positions per batch row. */
  T: number;
}

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
 * entries of four int32 at `runs + b * runStride`: `[offset, count, firstPos, sink]`.
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
}

/** What attention reads for one layer: the layout, for batch rows [0, batchSize). */
export interface KVView {
  heap: KernelHeap;
  layout: KVLayout;
  batchSize: number;
  /** The most keys one query of any batch row can see (sizes the kernel's score scratch). */
  maxKeys: number;
}

/** Layouts and row dtypes the kernel reads today; everything else is refused. */
const SUPPORTED: Readonly<Record<LayoutKind, readonly RowDType[]>> = {
  contiguous: ['float32'],
  ring: ['float32'],
  paged: ['float32'],
};

/** Throws UnsupportedLayoutError unless the kernel reads this kind of layout with this dtype. */
export function checkLayoutSupported(layout: Pick<KVLayout, 'kind' | 'dtype'>): void {
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

/** Bytes of one run entry in a layout's run table: [offset, count, firstPos, sink] as int32. */
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

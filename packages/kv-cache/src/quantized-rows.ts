import { CacheCapacityError } from '@kvkit/tensor-utils';
import type { QuantizedLayer } from './quantized-storage.ts';

/** A quantized cache's state: per layer, its storage and each batch row's lengths. */
export interface QuantizedStore {
  layers: QuantizedLayer[];
  /** Positions each row has seen, per layer. */
  lengths: number[][];
  /** Positions each row holds quantized ([0, q), a multiple of groupSize), per layer. */
  quantized: number[][];
}

/** Groups batch row b of `layer` holds. */
export function groupsHeld(store: QuantizedStore, layer: number, b: number): number {
  return (store.quantized[layer]![b] ?? 0) / store.layers[layer]!.format.groupSize;
}

/**
 * Throws CacheCapacityError unless `bytes` (what the cache would reserve) is within `maxBytes`.
 * `now`: what it reserves now.
 */
export function checkBudget(
  bytes: number,
  now: number,
  maxBytes: number | null,
  strategy: string,
): void {
  if (maxBytes !== null && bytes > maxBytes) {
    throw new CacheCapacityError(
      `the ${strategy} cache would reserve ${bytes} bytes, over its budget maxBytes = ${maxBytes} (it reserves ${now} now)`,
      { capacity: maxBytes, requested: bytes },
    );
  }
}

/** The storage a copy gives layer l: at least `minimum(l)` ([rows, groups]) when given. */
type Minimum = (layer: number) => readonly [number, number] | null;

/** Rows and groups layer l of a copy of `rows` needs; null: it holds nothing and may stay empty. */
function sizeFor(from: QuantizedStore, rows: readonly number[], l: number, minimum?: Minimum) {
  const atLeast = minimum?.(l) ?? null;
  if (!rows.some((r) => (from.lengths[l]![r] ?? 0) > 0) && atLeast === null) return null;
  const groups = Math.max(0, ...rows.map((r) => groupsHeld(from, l, r)));
  return [Math.max(rows.length, atLeast?.[0] ?? 0), Math.max(groups, atLeast?.[1] ?? 0)] as const;
}

/**
 * Copies batch rows `rows` of `from` (row i of `to` <- row rows[i] of `from`) into `to`, whose
 * layers are empty (allocated nothing) and of the same format: each layer is sized for
 * rows.length rows and the most groups a copied row holds (or `minimum(l)`, if larger), then
 * filled. Rows past rows.length are left empty. The caller checks the budget first
 * (`bytesForRows`) and frees `to` if this throws.
 */
export function copyRows(
  from: QuantizedStore,
  to: QuantizedStore,
  rows: readonly number[],
  minimum?: Minimum,
): void {
  from.layers.forEach((source, l) => {
    const size = sizeFor(from, rows, l, minimum);
    if (size === null) return;
    to.layers[l]!.grow(size[0], size[1], () => 0);
    rows.forEach((r, i) => {
      const n = from.lengths[l]![r] ?? 0;
      to.lengths[l]![i] = n; // every row, so the arrays have no holes
      to.quantized[l]![i] = n === 0 ? 0 : (from.quantized[l]![r] ?? 0);
      if (n > 0) to.layers[l]!.copyRow(source, r, i, groupsHeld(from, l, r));
    });
  });
}

/** What `copyRows(from, ..., rows, minimum)` will reserve. */
export function bytesForRows(
  from: QuantizedStore,
  rows: readonly number[],
  minimum?: Minimum,
): number {
  return from.layers.reduce((total, s, l) => {
    const size = sizeFor(from, rows, l, minimum);
    return size === null ? total : total + s.bytesFor(size[0], size[1]);
  }, 0);
}

import { CacheCapacityError } from '@kvkit/tensor-utils';
import type { Blocks, LayerStorage } from './layer-storage.ts';

/** How one layer is to grow: the size wanted, and the least that will do (under a budget). */
export interface Growth {
  layer: number;
  rows: number;
  slots: number;
  tightSlots: number;
}

/**
 * Grows several layers of a cache all or nothing: to the sizes wanted, or, when those would pass
 * `maxBytes`, to the tight ones (one layer: to the most slots between the two that fit), and
 * CacheCapacityError `{ capacity: maxBytes, requested }` when even the tight ones would not. Every block is taken before any layer changes, so a failed allocation
 * gives back what it took and leaves every layer as it was. With `keep`, each row keeps the slots
 * it holds (`lengths`); without, the caller is about to overwrite them.
 *
 * @example
 * growLayers(layers, lengths, [{ layer: 0, rows: 4, slots: 64, tightSlots: 40 }], { keep: true, ... });
 */
export function growLayers(
  layers: readonly LayerStorage[],
  lengths: readonly number[][],
  plan: readonly Growth[],
  options: { keep: boolean; maxBytes: number | null; strategy: string },
): void {
  if (plan.length === 0) return;
  const reserved = layers.reduce((n, s) => n + s.bytesReserved(), 0);
  const after = (slots: readonly number[]) =>
    plan.reduce((total, g, i) => {
      const s = layers[g.layer]!;
      return total - s.bytesReserved() + s.bytesFor(g.rows, slots[i]!);
    }, reserved);
  const { maxBytes } = options;
  let slots = plan.map((g) => g.slots);
  if (maxBytes !== null && after(slots) > maxBytes) {
    slots = plan.map((g) => g.tightSlots);
    if (after(slots) > maxBytes) {
      throw new CacheCapacityError(
        `the ${options.strategy} cache would reserve ${after(slots)} bytes, over its budget maxBytes = ${maxBytes} (it reserves ${reserved} now)`,
        { capacity: maxBytes, requested: after(slots) },
      );
    }
    if (plan.length === 1) {
      // One layer growing (a write): as far as the budget allows, so the next writes need no
      // copy, instead of one slot at a time.
      let [lo, hi] = [plan[0]!.tightSlots, plan[0]!.slots];
      while (lo < hi) {
        const mid = Math.ceil((lo + hi) / 2);
        if (after([mid]) <= maxBytes) lo = mid;
        else hi = mid - 1;
      }
      slots = [lo];
    }
  }
  const taken: [Growth, Blocks][] = [];
  try {
    for (const [i, g] of plan.entries()) {
      taken.push([g, layers[g.layer]!.allocate(g.rows, slots[i]!)]);
    }
  } catch (error) {
    for (const [g, blocks] of taken) layers[g.layer]!.release(blocks);
    throw error;
  }
  for (const [g, blocks] of taken) {
    const s = layers[g.layer]!;
    const held = lengths[g.layer]!;
    s.adopt(blocks, (b) => (options.keep ? Math.min(held[b] ?? 0, s.slots) : 0));
  }
}

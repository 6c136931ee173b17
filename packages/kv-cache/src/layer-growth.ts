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
 * Grows several layers of a cache all or nothing: to the sizes wanted, or to the tight ones when
 * the wanted ones would pass `maxBytes` (CacheCapacityError `{ capacity: maxBytes, requested }`
 * when even those would). Every block is taken before any layer changes, so a failed allocation
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
  const after = (tight: boolean) =>
    plan.reduce((total, g) => {
      const s = layers[g.layer]!;
      return total - s.bytesReserved() + s.bytesFor(g.rows, tight ? g.tightSlots : g.slots);
    }, reserved);
  const { maxBytes } = options;
  let tight = false;
  if (maxBytes !== null && after(false) > maxBytes) {
    tight = true;
    if (after(true) > maxBytes) {
      throw new CacheCapacityError(
        `the ${options.strategy} cache would reserve ${after(true)} bytes, over its budget maxBytes = ${maxBytes} (it reserves ${reserved} now)`,
        { capacity: maxBytes, requested: after(true) },
      );
    }
  }
  const taken: [Growth, Blocks][] = [];
  try {
    for (const g of plan) {
      taken.push([g, layers[g.layer]!.allocate(g.rows, tight ? g.tightSlots : g.slots)]);
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

import type { LayerStorage, StagedRow } from './layer-storage.ts';

/**
 * Rebuilds one layer's batch in place so that row b holds what row `indices[b]` held
 * (`reorder`): rows with `indices[b] === b` are left alone, every other destination gets a copy
 * of its source's held slots `[0, held(length))`. A destination is overwritten only once no
 * other pending copy still reads it; a cycle of rows (0 <- 1 <- 0) is broken by staging one of
 * them on the host first. Rows at or past `indices.length` are forgotten. The storage must
 * already hold `indices.length` rows wherever a source holds anything (the caller grows it).
 *
 * @example
 * gatherRows(storage, lengths, [1, 1, 0], (n) => n); // row 0 <- 1, row 1 stays, row 2 <- 0
 */
export function gatherRows(
  storage: LayerStorage,
  lengths: number[],
  indices: readonly number[],
  held: (length: number) => number,
): void {
  const before = lengths.slice();
  const lengthOf = (row: number) => before[row] ?? 0;
  const pending = new Set<number>();
  for (let b = 0; b < indices.length; b++) if (indices[b] !== b) pending.add(b);
  // readers.get(d): pending copies that still read row d (d itself pending, so it will change).
  const readers = new Map<number, number>();
  for (const e of pending) {
    const src = indices[e]!;
    if (pending.has(src)) readers.set(src, (readers.get(src) ?? 0) + 1);
  }
  const staged = new Map<number, StagedRow>();
  const copy = (d: number) => {
    const src = indices[d]!;
    const n = held(lengthOf(src));
    const fromHost = staged.get(src);
    if (n > 0) {
      if (fromHost) storage.unstageRow(d, fromHost, n);
      else storage.copyRow(storage, src, d, n);
    }
    lengths[d] = lengthOf(src);
    pending.delete(d);
    if (readers.has(src)) readers.set(src, readers.get(src)! - 1);
  };
  while (pending.size > 0) {
    const free = [...pending].filter((d) => (readers.get(d) ?? 0) === 0);
    if (free.length === 0) {
      // Only cycles are left: keep one row's contents aside, so it may be overwritten.
      const d = pending.values().next().value!;
      staged.set(d, storage.stageRow(d, held(lengthOf(d))));
      readers.set(d, 0);
      continue;
    }
    for (const d of free) copy(d);
  }
  for (let b = 0; b < indices.length; b++) if (indices[b] === b) lengths[b] = lengthOf(b);
  lengths.length = Math.min(lengths.length, indices.length);
}

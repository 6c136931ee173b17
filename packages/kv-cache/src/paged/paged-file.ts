import { type CacheFile, readCacheFile, writeCacheFile } from '../cache-file.ts';
import type { CacheConfig } from '../kv-cache.ts';
import { checkFits } from '../slot-file.ts';
import type { BlockPool } from './block-pool.ts';
import { OutOfBlocksError } from './errors.ts';
import { blocksFor, type Sequence } from './sequence.ts';

/** What a paged cache file records besides the rows. */
interface FileHeader {
  strategy: string;
  dtype: string;
  config: CacheConfig;
}

/**
 * Batch rows of a paged cache as a kvkit cache file (docs/operations/save-format.md): per
 * layer and row, its keys `(nkv, positions, hs)` then its values, in position order, gathered
 * block by block. A paged row holds every position it has seen, so its slots are its length.
 * Sharing between rows and token ids are not recorded: a loaded row holds blocks of its own.
 */
export function saveSequences(
  pool: BlockPool,
  rows: readonly Sequence[],
  h: FileHeader,
): Uint8Array {
  const { nLayers, nKvHeads, blockSize: bs } = pool.dims;
  const lengths = Array.from({ length: nLayers }, (_, l) => rows.map((s) => s.lengths[l]!));
  const header = { ...h, rows: rows.length, lengths, slots: lengths.map((l) => l.slice()) };
  return writeCacheFile(header, (body) => {
    let at = 0;
    lengths.forEach((layer, l) => {
      layer.forEach((n, b) => {
        for (const which of ['keys', 'values'] as const) {
          for (let j = 0; j < nKvHeads; j++) {
            for (let p = 0; p < n; p += bs) {
              const block = rows[b]!.table[p / bs]!;
              const bytes = pool.slotBytes(which, l, block, j, 0, Math.min(bs, n - p));
              body.set(bytes, at);
              at += bytes.length;
            }
          }
        }
      });
    });
  });
}

/**
 * A file checked for a paged cache of this strategy, dtype and config (FormatError otherwise),
 * whose rows fit its pool (OutOfBlocksError otherwise: rows that shared blocks when saved
 * each need their own), with the blocks they need. Changes nothing.
 */
export function readSequencesFile(
  bytes: Uint8Array,
  target: FileHeader & { maxPosition: number; numBlocks: number; blockSize: number },
): CacheFile & { blocks: number } {
  const file = readCacheFile(bytes);
  checkFits(file, { ...target, held: (n) => n });
  let needed = 0;
  for (let b = 0; b < file.rows; b++) {
    needed += blocksFor(
      file.lengths.map((l) => l[b]!),
      target.blockSize,
    );
  }
  if (needed > target.numBlocks) {
    throw new OutOfBlocksError(
      `out of KV blocks: load needs ${needed} block(s) of ${target.blockSize} positions for the file's ${file.rows} row(s); the pool has ${target.numBlocks}`,
      { needed, free: target.numBlocks },
    );
  }
  return { ...file, blocks: needed };
}

/** Writes a checked file's rows into sequences whose tables cover their lengths. */
export function loadSequences(pool: BlockPool, file: CacheFile, rows: readonly Sequence[]): void {
  const { nKvHeads, blockSize: bs, headSize } = pool.dims;
  let at = 0;
  file.lengths.forEach((layer, l) => {
    layer.forEach((n, b) => {
      for (const which of ['keys', 'values'] as const) {
        for (let j = 0; j < nKvHeads; j++) {
          for (let p = 0; p < n; p += bs) {
            const size = Math.min(bs, n - p) * headSize * 4;
            pool.setSlotBytes(
              which,
              l,
              rows[b]!.table[p / bs]!,
              j,
              0,
              file.body.subarray(at, at + size),
            );
            at += size;
          }
        }
      }
    });
  });
}

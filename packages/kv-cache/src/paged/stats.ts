import type { BlockPool } from './block-pool.ts';
import type { Sequence } from './sequence.ts';

/** What `stats()` reports; blocks used + cached + free = numBlocks. */
export interface PagedCacheStats {
  blockSize: number;
  numBlocks: number;
  /** Blocks some block table holds. */
  blocksUsed: number;
  /** Used blocks that two or more tables hold. */
  blocksShared: number;
  /** Unreferenced blocks kept for prefix reuse (evicted least recently used first). */
  blocksCached: number;
  /** Empty blocks. */
  blocksFree: number;
  /** Live sequences. */
  sequences: number;
  /** Key/value bytes of one block, all layers. */
  bytesPerBlock: number;
  /** Key/value bytes of the used blocks. */
  bytesAllocated: number;
  /** Key/value bytes of the slots holding a position (a shared slot counts once). */
  bytesUsed: number;
  /** bytesAllocated - bytesUsed, and its share of bytesAllocated (0 when nothing is allocated). */
  wasteBytes: number;
  waste: number;
  /** Full prompt blocks addSequence found in the prefix cache, and those it did not. */
  prefixHits: number;
  prefixMisses: number;
  /** Key/value bytes and blocks copy-on-write has copied. */
  bytesCopied: number;
  blocksCopied: number;
}

/** Slots holding a position, summed over layers; a slot several tables share counts once. */
export function slotsUsed(pool: BlockPool, sequences: Iterable<Sequence>): number {
  const { blockSize: bs, numBlocks, nLayers } = pool.dims;
  const seqs = [...sequences];
  const filled = new Int32Array(numBlocks);
  let total = 0;
  for (let l = 0; l < nLayers; l++) {
    filled.fill(0);
    for (const seq of seqs) {
      const n = seq.lengths[l]!;
      for (let i = 0; i * bs < n; i++) {
        const block = seq.table[i]!;
        filled[block] = Math.max(filled[block]!, Math.min(bs, n - i * bs));
      }
    }
    for (const n of filled) total += n;
  }
  return total;
}

/** The pool's statistics for these live sequences. O(blocks). */
export function poolStats(
  pool: BlockPool,
  sequences: Iterable<Sequence>,
  prefix: { hits: number; misses: number },
): PagedCacheStats {
  const { blockSize, numBlocks, nKvHeads, headSize } = pool.dims;
  const seqs = [...sequences];
  const blocksUsed = numBlocks - pool.emptyCount - pool.cachedCount;
  let blocksShared = 0;
  for (let b = 0; b < numBlocks; b++) if (pool.refCount(b) > 1) blocksShared++;
  const bytesAllocated = blocksUsed * pool.bytesPerBlock;
  const bytesUsed = slotsUsed(pool, seqs) * 2 * nKvHeads * headSize * 4;
  return {
    blockSize,
    numBlocks,
    blocksUsed,
    blocksShared,
    blocksCached: pool.cachedCount,
    blocksFree: pool.emptyCount,
    sequences: seqs.length,
    bytesPerBlock: pool.bytesPerBlock,
    bytesAllocated,
    bytesUsed,
    wasteBytes: bytesAllocated - bytesUsed,
    waste: bytesAllocated === 0 ? 0 : (bytesAllocated - bytesUsed) / bytesAllocated,
    prefixHits: prefix.hits,
    prefixMisses: prefix.misses,
    bytesCopied: pool.bytesCopied,
    blocksCopied: pool.blocksCopied,
  };
}

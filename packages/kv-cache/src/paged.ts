import { ValueError } from '@kvkit/tensor-utils';
import { checkMaxBytes, checkRowList } from './checks.ts';
import { KernelHeap } from './kernel/kernel-heap.ts';
import type { CacheConfig, CloneOptions, KVCache } from './kv-cache.ts';
import { loadSequences, readSequencesFile, saveSequences } from './paged/paged-file.ts';
import { PagedRows } from './paged/paged-rows.ts';
import type { PagedKVCacheOptions } from './paged/paged-sequences.ts';
import { blocksFor, register, type Sequence } from './paged/sequence.ts';

/**
 * A paged cache (vLLM's PagedAttention): one pool of `numBlocks` fixed-size blocks shared by
 * every sequence and layer, a block table per sequence, reference-counted blocks. Sequences
 * are first-class: `addSequence`, `forkSequence` (shares every block), `freeSequence`; a write
 * into a block another table holds copies that block first (copy-on-write), never the others.
 * With prefix caching, a full block is keyed by (its parent block's key, its token ids), and a
 * new sequence whose prompt starts with a cached prefix reuses those blocks and skips their
 * prefill; unreferenced cached blocks are evicted least recently used when the pool runs out.
 *
 * The KVCache contract speaks of batch rows: `bind([a, b])` makes rows 0 and 1 mean sequences
 * a and b for `update` / `view` / `read` / `crop` / `seqLength` until the next bind (a write to
 * a row past the binding gives that row a new sequence). The kernel reads keys and values in
 * place through the block tables: one run per block, no gather into a contiguous copy.
 * `reorder` rebinds rows, sharing blocks (no key or value is copied); `clone`, `fork` and
 * `load` build or fill pools of their own. Memory: `numBlocks x blockSize x bytesPerToken()`
 * for the pool, allocated on first use.
 *
 * @example
 * const cache = new PagedKVCache({ nLayers: 12, nKvHeads: 12, headSize: 64, numBlocks: 4096 });
 * const { id, reused } = cache.addSequence(promptIds); // positions [0, reused) are cached
 * cache.bind([id]);                                    // batch row 0 is this sequence
 * mha.useCache(cache).forward(promptTail, { useKvCache: true, startPos: reused });
 * const sample = cache.forkSequence(id);               // shares every block
 */
export class PagedKVCache extends PagedRows implements KVCache {
  constructor(options: PagedKVCacheOptions) {
    super(options);
  }

  /**
   * The settings `save()` records and `clone()` copies. `prefixCaching` is not among them (it
   * changes no stored row): a cache built from a file caches prefixes unless told otherwise.
   */
  config(): CacheConfig {
    const { nLayers, nKvHeads, headSize, maxBatchSize, blockSize, numBlocks } = this;
    return { nLayers, nKvHeads, headSize, maxBatchSize, blockSize, numBlocks };
  }

  /**
   * Rebinds the batch (beam search): row b now means the sequence row `indices[b]` meant. A row
   * taken twice gets a fork of its sequence (every block shared: no key or value is copied, a
   * later write copies the block it writes into); a bound sequence no row takes any more is
   * freed; rows past `indices.length` are no longer bound (seqLength 0).
   */
  reorder(indices: readonly number[]): void {
    this.checkAlive();
    const rows = checkRowList(indices, this.maxBatchSize, 'reorder');
    const sources = rows.map((r) => this.rowSequence(r, 'reorder'));
    const kept = new Set<Sequence>();
    const next = sources.map((seq) => {
      if (seq === null) return this.emptySequence();
      if (kept.has(seq)) return this.shareSequence(seq);
      kept.add(seq);
      return seq;
    });
    for (const id of new Set(this.bound)) {
      const seq = this.live.get(id);
      if (seq && !kept.has(seq)) this.dropSequence(seq);
    }
    this.bound = next.map((s) => s.id);
  }

  /**
   * A new paged cache that is a copy of this one: every sequence (same ids), binding, block,
   * prefix-cache entry and statistic, its pool copied whole. On `options.heap` (this heap by
   * default), under `options.maxBytes` (this budget by default).
   */
  clone(options: CloneOptions = {}): PagedKVCache {
    this.checkAlive();
    const copy = this.#emptyLike(options, 'clone');
    try {
      if (this.pool.allocated) copy.allocate(null);
      this.copyInto(copy);
      return copy;
    } catch (error) {
      copy.dispose();
      throw error;
    }
  }

  /**
   * A new paged cache whose batch row i holds a copy of row `rows[i]` of this one, in every
   * layer. The blocks the rows hold are copied once each (rows that shared a block share its
   * copy; a row taken twice shares all of them); token ids go along, and the copy's prefix
   * cache starts with their full blocks.
   */
  fork(rows: number | readonly number[], options: CloneOptions = {}): PagedKVCache {
    this.checkAlive();
    const list = checkRowList(typeof rows === 'number' ? [rows] : rows, this.maxBatchSize, 'fork');
    const sources = list.map((r) => this.rowSequence(r, 'fork'));
    const copy = this.#emptyLike(options, 'fork');
    try {
      copy.allocate(null);
      const blocks = new Map<number, number>(); // this pool's block -> the copy's
      const made = new Map<Sequence, Sequence>();
      copy.bound = sources.map((src) => {
        if (src === null) return copy.emptySequence().id;
        const twin = made.get(src);
        if (twin) return copy.shareSequence(twin).id;
        const seq = copy.emptySequence();
        seq.lengths = src.lengths.slice();
        seq.table = src.table.slice(0, blocksFor(src.lengths, this.blockSize)).map((b) => {
          const mine = blocks.get(b);
          if (mine !== undefined) {
            copy.pool.retain(mine);
            return mine;
          }
          const fresh = copy.pool.take();
          copy.pool.copyBlockFrom(this.pool, b, fresh);
          blocks.set(b, fresh);
          return fresh;
        });
        seq.tokens = src.tokens.fork();
        if (copy.prefixCaching) register(copy.pool, seq);
        made.set(src, seq);
        return seq.id;
      });
      return copy;
    } catch (error) {
      copy.dispose();
      throw error;
    }
  }

  /** The bound rows as a kvkit cache file (docs/operations/save-format.md). */
  save(): Uint8Array {
    this.checkAlive();
    const rows = this.bound.map((_, b) => this.rowSequence(b, 'save')!);
    return saveSequences(this.pool, rows, {
      strategy: this.strategy,
      dtype: this.dtype,
      config: this.config(),
    });
  }

  /**
   * Replaces every sequence with the file's rows: row b becomes a new sequence bound to row b,
   * in blocks of its own; the prefix cache is emptied (a file records no token ids). The whole
   * file is checked, and the pool allocated, before anything changes.
   */
  load(bytes: Uint8Array): void {
    this.checkAlive();
    const file = readSequencesFile(bytes, {
      strategy: this.strategy,
      dtype: this.dtype,
      config: this.config(),
      maxPosition: this.maxPosition,
      numBlocks: this.numBlocks,
      blockSize: this.blockSize,
    });
    if (file.blocks > 0) this.allocate(null); // the last step that may fail
    this.dropEverything();
    const rows = Array.from({ length: file.rows }, (_, b) => {
      const seq = this.emptySequence();
      seq.lengths = file.lengths.map((l) => l[b]!);
      const n = blocksFor(seq.lengths, this.blockSize);
      seq.table = Array.from({ length: n }, () => this.pool.take());
      return seq;
    });
    loadSequences(this.pool, file, rows);
    this.bound = rows.map((s) => s.id);
  }

  /** An empty cache of this config and prefix-caching setting, for clone and fork. */
  #emptyLike(options: CloneOptions, operation: string): PagedKVCache {
    if (options.heap !== undefined && !(options.heap instanceof KernelHeap)) {
      throw new ValueError(`${operation}: heap must be a KernelHeap`, {
        argument: 'heap',
        value: options.heap,
      });
    }
    return new PagedKVCache({
      nLayers: this.nLayers,
      nKvHeads: this.nKvHeads,
      headSize: this.headSize,
      blockSize: this.blockSize,
      numBlocks: this.numBlocks,
      maxBatchSize: this.maxBatchSize ?? undefined,
      prefixCaching: this.prefixCaching,
      heap: options.heap ?? this.heap,
      maxBytes: options.maxBytes === undefined ? this.maxBytes : checkMaxBytes(options.maxBytes),
    });
  }
}

export type { PagedKVCacheOptions };

import { CacheCapacityError, DisposedError, ValueError } from '@kvkit/tensor-utils';
import { checkBatch, checkCacheOptions, MAX_POSITION, positiveInteger } from '../checks.ts';
import { defaultHeap, type KernelHeap } from '../kernel/kernel-heap.ts';
import type { KVCacheOptions } from '../kv-cache.ts';
import { BlockPool } from './block-pool.ts';
import { SequenceError } from './errors.ts';
import { ROOT_KEY } from './prefix-index.ts';
import { newSequence, register, releaseAll, type Sequence } from './sequence.ts';
import { type PagedCacheStats, poolStats } from './stats.ts';
import { checkTokens } from './token-list.ts';

export interface PagedKVCacheOptions extends KVCacheOptions {
  /** Positions per block. Default 16. */
  blockSize?: number;
  /** Blocks in the pool, shared by every sequence and layer (allocated on first use). */
  numBlocks: number;
  /** Batch rows a step may bind; unbounded when omitted. */
  maxBatchSize?: number;
  /** Reuse cached full blocks of a prompt's prefix (addSequence with tokens). Default true. */
  prefixCaching?: boolean;
}

/** The heap is a 32-bit WebAssembly memory: the pool cannot be larger. */
const HEAP_LIMIT = 2 ** 32;

/**
 * The sequence side of `PagedKVCache`: sequences with their block tables over one reference-
 * counted block pool, prefix caching, and the binding of batch rows to sequences. The KVCache
 * contract is built on top of it in paged.ts.
 */
export abstract class PagedSequences {
  readonly nLayers: number;
  readonly nKvHeads: number;
  readonly headSize: number;
  readonly heap: KernelHeap;
  readonly maxBatchSize: number | null;
  readonly maxBytes: number | null;
  readonly blockSize: number;
  readonly numBlocks: number;
  readonly prefixCaching: boolean;
  protected readonly pool: BlockPool;
  protected readonly live = new Map<number, Sequence>();
  /** bound[b]: the sequence id batch row b means. */
  protected bound: number[] = [];
  #nextId = 1;
  #hits = 0;
  #misses = 0;
  #disposed = false;

  protected constructor(options: PagedKVCacheOptions) {
    const o = checkCacheOptions(options);
    this.nLayers = o.nLayers;
    this.nKvHeads = o.nKvHeads;
    this.headSize = o.headSize;
    this.maxBatchSize = o.maxBatchSize;
    this.maxBytes = o.maxBytes;
    this.blockSize = positiveInteger({ blockSize: options.blockSize ?? 16 }, 'blockSize', {
      max: 65536,
    })!;
    this.numBlocks = positiveInteger(options, 'numBlocks', {
      max: Math.floor(MAX_POSITION / this.blockSize),
    })!;
    const prefix = options.prefixCaching ?? true;
    if (typeof prefix !== 'boolean') {
      throw new ValueError(`prefixCaching must be true or false, got ${String(prefix)}`, {
        argument: 'prefixCaching',
        value: prefix,
      });
    }
    this.prefixCaching = prefix;
    this.heap = options.heap ?? defaultHeap();
    const dims = { ...o, blockSize: this.blockSize, numBlocks: this.numBlocks };
    const bytes =
      this.numBlocks * dims.nLayers * 2 * dims.nKvHeads * this.blockSize * dims.headSize * 4;
    if (bytes > HEAP_LIMIT) {
      throw new CacheCapacityError(
        `a pool of ${this.numBlocks} blocks x ${this.blockSize} positions x ${dims.nLayers} layer(s) x nKvHeads ${dims.nKvHeads} x headSize ${dims.headSize} ` +
          `needs ${bytes / 2 ** 30} GiB; the kernel heap holds at most 4 GiB`,
        { capacity: HEAP_LIMIT, requested: bytes },
      );
    }
    this.pool = new BlockPool(this.heap, dims);
  }

  get isDisposed(): boolean {
    return this.#disposed;
  }

  /**
   * A new sequence. With `tokens` (its prompt's ids), the longest run of the prompt's full
   * blocks found in the prefix cache is reused, at most `tokens.length - 1` positions, so the
   * caller always runs the last prompt token (it needs that token's output); `reused`
   * positions are cached already, and the caller prefills from position `reused`. The ids are
   * kept: a block whose ids are all known is cached once every layer has filled it.
   */
  addSequence(tokens?: ArrayLike<number>): { id: number; reused: number } {
    this.checkAlive();
    if (tokens !== undefined) checkTokens(tokens);
    const seq = newSequence(this.#nextId++, this.nLayers, this.blockSize);
    if (tokens !== undefined) seq.tokens.append(tokens);
    const bs = this.blockSize;
    const lookups =
      this.prefixCaching && tokens ? Math.floor(Math.max(0, tokens.length - 1) / bs) : 0;
    while (seq.keys.length < lookups) {
      const i = seq.keys.length;
      const hit = this.pool.index.lookup(
        i === 0 ? ROOT_KEY : seq.keys[i - 1]!,
        seq.tokens.block(i),
      );
      if (!hit) break;
      this.pool.retain(hit.block);
      seq.table.push(hit.block);
      seq.keys.push(hit.id);
    }
    this.#hits += seq.keys.length;
    this.#misses += lookups - seq.keys.length;
    const reused = seq.keys.length * bs;
    seq.lengths.fill(reused);
    this.live.set(seq.id, seq);
    return { id: seq.id, reused };
  }

  /**
   * A new sequence holding exactly what `sequence` holds, sharing every block (no key or value
   * is copied: O(blocks)). A later write into a shared block copies that block first.
   */
  forkSequence(sequence: number): number {
    return this.shareSequence(this.sequence(sequence, 'forkSequence')).id;
  }

  /**
   * Forgets a sequence and gives its blocks back (a block other tables hold stays theirs;
   * a cached full block stays cached until evicted). A batch row bound to it is unusable until
   * the next `bind`.
   */
  freeSequence(sequence: number): void {
    this.dropSequence(this.sequence(sequence, 'freeSequence'));
  }

  /** Records the ids of the sequence's next tokens (positions from its known ids on). */
  appendTokens(sequence: number, tokens: ArrayLike<number>): void {
    const seq = this.sequence(sequence, 'appendTokens');
    checkTokens(tokens);
    seq.tokens.append(tokens);
    if (this.prefixCaching) register(this.pool, seq);
  }

  /**
   * Makes batch rows [0, n) mean these sequences (in every layer) for the calls that follow:
   * `update`, `view`, `read`, `crop`, `seqLength`. A row past the binding that a write reaches
   * gets a new, empty sequence of its own (so a paged cache also serves as a plain cache of rows).
   */
  bind(sequences: readonly number[]): void {
    this.checkAlive();
    if (!Array.isArray(sequences)) {
      throw new ValueError(`bind: expected an array of sequence ids, got ${String(sequences)}`, {
        argument: 'sequences',
        value: sequences,
      });
    }
    if (sequences.length > 0) checkBatch(sequences.length, this.maxBatchSize);
    for (const id of sequences) this.sequence(id, 'bind');
    const twice = sequences.find((id, i) => sequences.indexOf(id) !== i);
    if (twice !== undefined) {
      throw new ValueError(`bind: sequence ${twice} is bound to two batch rows`, {
        argument: 'sequences',
        value: sequences,
      });
    }
    this.bound = sequences.slice();
  }

  /** The sequence ids batch rows [0, n) are bound to. */
  boundSequences(): number[] {
    this.checkAlive();
    return this.bound.slice();
  }

  /** Ids of the live sequences, oldest first. */
  sequences(): number[] {
    this.checkAlive();
    return [...this.live.keys()];
  }

  /** Positions a sequence has seen in one layer. */
  sequenceLength(sequence: number, layer = 0): number {
    const seq = this.sequence(sequence, 'sequenceLength');
    if (!Number.isInteger(layer) || layer < 0 || layer >= this.nLayers) {
      throw new ValueError(
        `layer ${layer} is out of range: this cache holds ${this.nLayers} layer(s)`,
        {
          argument: 'layer',
          value: layer,
        },
      );
    }
    return seq.lengths[layer]!;
  }

  /** A copy of the sequence's block table: the pool block of each of its blocks of positions. */
  blockTable(sequence: number): number[] {
    return this.sequence(sequence, 'blockTable').table.slice();
  }

  /** How many block tables hold `block`. */
  refCount(block: number): number {
    this.checkAlive();
    if (!Number.isInteger(block) || block < 0 || block >= this.numBlocks) {
      throw new ValueError(`block ${block} is out of range: the pool has ${this.numBlocks}`, {
        argument: 'block',
        value: block,
      });
    }
    return this.pool.refCount(block);
  }

  /** Blocks, bytes, waste, prefix-cache hits and copies, now. O(blocks). */
  stats(): PagedCacheStats {
    this.checkAlive();
    return poolStats(this.pool, this.live.values(), {
      hits: this.#hits,
      misses: this.#misses,
    });
  }

  /** The live sequence `id`, or a SequenceError naming what was asked of it. */
  protected sequence(id: number, operation: string): Sequence {
    this.checkAlive();
    const seq = this.live.get(id);
    if (seq) return seq;
    const freed = Number.isInteger(id) && id >= 1 && id < this.#nextId;
    throw new SequenceError(
      freed
        ? `${operation}: sequence ${id} was freed`
        : `${operation}: sequence ${String(id)} is unknown to this cache`,
      { sequence: id, state: freed ? 'freed' : 'unknown' },
    );
  }

  /** The sequence batch row b is bound to; null past the binding. */
  protected rowSequence(b: number, operation: string): Sequence | null {
    const id = this.bound[b];
    return id === undefined ? null : this.sequence(id, `${operation} (batch row ${b})`);
  }

  /** Binds rows [bound, B) to new, empty sequences (a write reached them). */
  protected bindNewRows(batchSize: number): void {
    while (this.bound.length < batchSize) this.bound.push(this.emptySequence().id);
  }

  /** A new, empty live sequence. */
  protected emptySequence(): Sequence {
    const seq = newSequence(this.#nextId++, this.nLayers, this.blockSize);
    this.live.set(seq.id, seq);
    return seq;
  }

  /** A new live sequence sharing every block of `src` (a fork: no key or value is copied). */
  protected shareSequence(src: Sequence): Sequence {
    const seq = this.emptySequence();
    seq.lengths = src.lengths.slice();
    seq.table = src.table.slice(0, Math.ceil(Math.max(...src.lengths) / this.blockSize));
    for (const block of seq.table) this.pool.retain(block);
    seq.tokens = src.tokens.fork();
    seq.keys = src.keys.slice();
    return seq;
  }

  /** Forgets a live sequence, giving its blocks back. */
  protected dropSequence(seq: Sequence): void {
    releaseAll(this.pool, seq);
    this.live.delete(seq.id);
  }

  /** Forgets every sequence and the prefix cache: every block is free again. */
  protected dropEverything(): void {
    for (const seq of this.live.values()) releaseAll(this.pool, seq);
    this.live.clear();
    this.bound = [];
    this.pool.forgetCached();
  }

  /**
   * Makes `target` (a cache of the same dims, its pool allocated) a copy of this one: every
   * sequence (same ids, tables, token ids), the binding, the blocks and their memory, the
   * prefix cache and the counters.
   */
  protected copyInto(target: PagedSequences): void {
    target.pool.copyFrom(this.pool);
    for (const seq of this.live.values()) {
      target.live.set(seq.id, {
        id: seq.id,
        lengths: seq.lengths.slice(),
        table: seq.table.slice(),
        tokens: seq.tokens.fork(),
        keys: seq.keys.slice(),
      });
    }
    target.bound = this.bound.slice();
    target.#nextId = this.#nextId;
    target.#hits = this.#hits;
    target.#misses = this.#misses;
  }

  protected checkAlive(): void {
    if (this.#disposed) throw new DisposedError('PagedKVCache');
  }

  protected markDisposed(): void {
    this.#disposed = true;
    this.live.clear();
    this.bound = [];
  }
}

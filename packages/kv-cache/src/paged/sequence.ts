import type { BlockPool } from './block-pool.ts';
import { OutOfBlocksError } from './errors.ts';
import { ROOT_KEY } from './prefix-index.ts';
import { TokenList } from './token-list.ts';

/**
 * One sequence of a paged cache: per layer, the positions it has seen; its block table (block
 * i holds positions [i·bs, (i+1)·bs) of every layer); the token ids it is known to hold; and the
 * prefix keys of its leading full blocks.
 */
export interface Sequence {
  readonly id: number;
  lengths: number[];
  table: number[];
  tokens: TokenList;
  /** Key id of each leading block whose prefix the index knows (in all layers, tokens known). */
  keys: number[];
}

export function newSequence(id: number, nLayers: number, blockSize: number): Sequence {
  return {
    id,
    lengths: new Array<number>(nLayers).fill(0),
    table: [],
    tokens: new TokenList(blockSize),
    keys: [],
  };
}

/** Blocks a sequence with these per-layer lengths needs: ceil(longest / bs). */
export function blocksFor(lengths: readonly number[], blockSize: number): number {
  return Math.ceil(Math.max(0, ...lengths) / blockSize);
}

/** The slots of table entry i that layer l of the sequence holds. */
function extent(seq: Sequence, layer: number, i: number, bs: number): number {
  return Math.min(bs, Math.max(0, seq.lengths[layer]! - i * bs));
}

/**
 * Makes positions [from, to) of the sequence writable: a block another table also holds is
 * copied first (copy-on-write, that block only), a block the prefix index names leaves it (its
 * contents are about to change), and the table grows by fresh blocks. The caller has checked
 * that the pool has the blocks (`BlockPlan`).
 */
export function prepareWrite(pool: BlockPool, seq: Sequence, from: number, to: number): void {
  const bs = pool.dims.blockSize;
  if (to <= from) return;
  const last = Math.ceil(to / bs);
  for (let i = Math.floor(from / bs); i < Math.min(last, seq.table.length); i++) {
    const block = seq.table[i]!;
    if (pool.refCount(block) > 1) {
      seq.table[i] = pool.copy(block, (l) => extent(seq, l, i, bs));
      pool.release(block);
    } else {
      pool.index.remove(block);
    }
  }
  while (seq.table.length < last) seq.table.push(pool.take());
}

/** Gives back the blocks past the sequence's longest layer, the last one first. */
export function trim(pool: BlockPool, seq: Sequence): void {
  const keep = blocksFor(seq.lengths, pool.dims.blockSize);
  while (seq.table.length > keep) pool.release(seq.table.pop()!);
}

/**
 * Forgets positions >= length in the given layers, and the token ids from `length` on; blocks
 * no layer needs any more go back to the pool (a shared one stays with its other tables).
 */
export function cropSequence(
  pool: BlockPool,
  seq: Sequence,
  length: number,
  layers: readonly number[],
): void {
  let changed = false;
  for (const l of layers) {
    if (seq.lengths[l]! > length) {
      seq.lengths[l] = length;
      changed = true;
    }
  }
  seq.tokens.truncate(length);
  seq.keys.length = Math.min(seq.keys.length, Math.floor(length / pool.dims.blockSize));
  if (changed) trim(pool, seq);
}

/**
 * Releases every block of the table, the last one first: unreferenced cached blocks are
 * evicted least recently used first, so a prefix's tail goes before its head.
 */
export function releaseAll(pool: BlockPool, seq: Sequence): void {
  while (seq.table.length > 0) pool.release(seq.table.pop()!);
}

/**
 * Puts the sequence's newly full blocks (full in every layer, token ids known) in the prefix
 * index. A block whose prefix is already cached elsewhere stays out (it is a duplicate) but its
 * key id is that prefix's, so the blocks after it are keyed on the same chain.
 */
export function register(pool: BlockPool, seq: Sequence): void {
  const bs = pool.dims.blockSize;
  const full = Math.floor(Math.min(seq.tokens.length, ...seq.lengths) / bs);
  while (seq.keys.length < full) {
    const i = seq.keys.length;
    const parent = i === 0 ? ROOT_KEY : seq.keys[i - 1]!;
    const tokens = seq.tokens.block(i);
    const id =
      pool.index.lookup(parent, tokens)?.id ?? pool.index.register(parent, tokens, seq.table[i]!);
    if (id === null) return; // the block already stands for another prefix
    seq.keys.push(id);
  }
}

/**
 * Counts the blocks a series of writes and crops would take from the pool, without changing
 * anything: copies of shared blocks, new blocks past the tables, and (for crops) blocks given
 * back. Reference counts are tracked as the operations would change them, so two writes into
 * one shared block count one copy, as the real writes would make.
 */
export class BlockPlan {
  readonly #pool: BlockPool;
  readonly #delta = new Map<number, number>();
  needed = 0;
  #released = 0;

  constructor(pool: BlockPool) {
    this.#pool = pool;
  }

  /** Blocks the pool would have for these operations. */
  get available(): number {
    return this.#pool.available + this.#released;
  }

  /** Throws OutOfBlocksError, naming the blocks needed and free, if the pool is short. */
  check(operation: string): void {
    if (this.needed <= this.available) return;
    const { blockSize, numBlocks } = this.#pool.dims;
    throw new OutOfBlocksError(
      `out of KV blocks: ${operation} needs ${this.needed} new block(s) of ${blockSize} positions, ` +
        `${this.available} free (${this.#pool.cachedCount} of them cached for prefix reuse) of ${numBlocks}`,
      { needed: this.needed, free: this.available },
    );
  }

  #refs(block: number): number {
    return this.#pool.refCount(block) + (this.#delta.get(block) ?? 0);
  }

  #drop(block: number): void {
    this.#delta.set(block, (this.#delta.get(block) ?? 0) - 1);
    if (this.#refs(block) === 0) this.#released++;
  }

  /**
   * A crop of `layer` to `to`, then a write of [from, to + T) to it, as `update` after the
   * seed's rewind does them. `seq` null: a row with no sequence yet. Returns nothing; see needed.
   */
  write(seq: Sequence | null, layer: number, from: number, end: number, cropTo?: number): void {
    const bs = this.#pool.dims.blockSize;
    let held = seq?.table.length ?? 0;
    if (seq && cropTo !== undefined && seq.lengths[layer]! > cropTo) {
      const lengths = seq.lengths.map((n, l) => (l === layer ? cropTo : n));
      const keep = blocksFor(lengths, bs);
      for (let i = held - 1; i >= keep; i--) this.#drop(seq.table[i]!);
      held = Math.min(held, keep);
    }
    if (end <= from) return;
    for (let i = Math.floor(from / bs); i < Math.ceil(end / bs); i++) {
      if (i >= held) this.needed++;
      else if (this.#refs(seq!.table[i]!) > 1) {
        this.needed++;
        this.#delta.set(seq!.table[i]!, (this.#delta.get(seq!.table[i]!) ?? 0) - 1);
      }
    }
  }
}

/** What the index knows of one cached full block. */
export interface PrefixEntry {
  /** This entry's key id: the parent key of the next block of the same prefix. Never reused. */
  id: number;
  block: number;
}

/** The parent key of a sequence's first block. */
export const ROOT_KEY = 0;

/**
 * Prefix caching's index: a full block is found by its key, (the key id of the block before
 * it, the block's token ids), so a block stands for its whole prefix, not only its own tokens.
 * The key is exact (a JavaScript Map hashes the string form): two different prefixes never
 * share an entry, so a hit never attends to another prompt's keys. Each physical block has at
 * most one entry.
 *
 * A key id names one prefix for ever. When an entry's block is evicted, entries whose parent it
 * was can no longer be reached from a first block; they stay until their own blocks are evicted.
 */
export class PrefixIndex {
  readonly #entries = new Map<string, PrefixEntry>();
  readonly #keyOfBlock = new Map<number, string>();
  #nextId = ROOT_KEY + 1;

  get size(): number {
    return this.#entries.size;
  }

  lookup(parent: number, tokens: Int32Array): PrefixEntry | undefined {
    return this.#entries.get(key(parent, tokens));
  }

  has(block: number): boolean {
    return this.#keyOfBlock.has(block);
  }

  /**
   * Registers `block` as holding the prefix (parent, tokens) and returns its new key id; null
   * when the block already stands for another prefix or that prefix is already cached.
   */
  register(parent: number, tokens: Int32Array, block: number): number | null {
    const k = key(parent, tokens);
    if (this.#keyOfBlock.has(block) || this.#entries.has(k)) return null;
    const entry = { id: this.#nextId++, block };
    this.#entries.set(k, entry);
    this.#keyOfBlock.set(block, k);
    return entry.id;
  }

  /** Forgets the entry of `block`, if it has one (its contents are about to change). */
  remove(block: number): void {
    const k = this.#keyOfBlock.get(block);
    if (k === undefined) return;
    this.#keyOfBlock.delete(block);
    this.#entries.delete(k);
  }

  clear(): void {
    this.#entries.clear();
    this.#keyOfBlock.clear();
  }

  /** Makes this index a copy of `src` (same keys, key ids and blocks). */
  copyFrom(src: PrefixIndex): void {
    this.clear();
    for (const [k, e] of src.#entries) this.#entries.set(k, { ...e });
    for (const [b, k] of src.#keyOfBlock) this.#keyOfBlock.set(b, k);
    this.#nextId = src.#nextId;
  }
}

function key(parent: number, tokens: Int32Array): string {
  return `${parent}:${tokens.join(',')}`;
}

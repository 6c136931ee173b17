import { ValueError } from '@kvkit/tensor-utils';

/** Token ids are int32 (what a tokenizer hands out); anything else is refused. */
const MAX_TOKEN = 0x7fffffff;

/** Throws ValueError naming the first entry that is not a non-negative integer token id. */
export function checkTokens(tokens: ArrayLike<number>, argument = 'tokens'): void {
  if (typeof tokens !== 'object' || tokens === null || typeof tokens.length !== 'number') {
    throw new ValueError(`${argument} must be an array of token ids, got ${String(tokens)}`, {
      argument,
      value: tokens,
    });
  }
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > MAX_TOKEN) {
      throw new ValueError(
        `${argument}[${i}] must be a non-negative integer token id, got ${String(t)}`,
        { argument: `${argument}[${i}]`, value: t },
      );
    }
  }
}

/**
 * A sequence's known token ids, in chunks of one block each. Full chunks never change, so a
 * fork shares them and copies only the last, partial one: O(blocks), not O(tokens).
 */
export class TokenList {
  readonly #blockSize: number;
  #chunks: Int32Array[] = [];
  #length = 0;

  constructor(blockSize: number) {
    this.#blockSize = blockSize;
  }

  get length(): number {
    return this.#length;
  }

  /** The ids of block i (positions [i·bs, (i+1)·bs)); only for full blocks. */
  block(i: number): Int32Array {
    return this.#chunks[i]!;
  }

  append(tokens: ArrayLike<number>): void {
    const bs = this.#blockSize;
    for (let i = 0; i < tokens.length; i++) {
      const at = this.#length % bs;
      if (at === 0) this.#chunks.push(new Int32Array(bs));
      this.#chunks[this.#chunks.length - 1]![at] = tokens[i]!;
      this.#length++;
    }
  }

  /** Forgets the ids at positions >= n. */
  truncate(n: number): void {
    if (n >= this.#length) return;
    const bs = this.#blockSize;
    this.#chunks.length = Math.ceil(n / bs);
    const last = this.#chunks.length - 1;
    // A shared full chunk becomes partial: give this list its own copy before it is appended to.
    if (n % bs !== 0) this.#chunks[last] = this.#chunks[last]!.slice();
    this.#length = n;
  }

  fork(): TokenList {
    const copy = new TokenList(this.#blockSize);
    copy.#chunks = this.#chunks.slice();
    const last = copy.#chunks.length - 1;
    if (this.#length % this.#blockSize !== 0) copy.#chunks[last] = copy.#chunks[last]!.slice();
    copy.#length = this.#length;
    return copy;
  }
}

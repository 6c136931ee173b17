import { ValueError } from '@kvkit/tensor-utils';
import type { Tokenizer } from './tokenizer.ts';

/**
 * A character-level tokenizer, as in minGPT's and nanoGPT's character demos: one id per
 * distinct character (Unicode code point), ids in the order of `chars`. Built from a corpus with
 * {@link CharTokenizer.fromText} (its sorted distinct characters), or from a saved `chars`.
 *
 * @example
 * const tok = CharTokenizer.fromText('hello world');
 * tok.encode('hold'); // [3, 5, 4, 2]
 * tok.decode([3, 2]); // 'he'
 */
export class CharTokenizer implements Tokenizer {
  /** The vocabulary: character i has id i. */
  readonly chars: string;
  readonly vocabSize: number;
  readonly #alphabet: readonly string[];
  readonly #ids: ReadonlyMap<string, number>;

  /**
   * @param chars Every character of the vocabulary once, in id order.
   * @throws {ValueError} for an empty vocabulary or a repeated character.
   */
  constructor(chars: string) {
    if (typeof chars !== 'string' || chars.length === 0) {
      throw new ValueError('CharTokenizer: chars must be a non-empty string', {
        argument: 'chars',
        value: chars,
      });
    }
    const alphabet = Array.from(chars); // code points, not UTF-16 units
    const ids = new Map<string, number>();
    alphabet.forEach((c, i) => {
      if (ids.has(c)) {
        throw new ValueError(
          `CharTokenizer: character ${JSON.stringify(c)} appears twice in chars`,
          {
            argument: 'chars',
            value: c,
          },
        );
      }
      ids.set(c, i);
    });
    this.chars = chars;
    this.vocabSize = alphabet.length;
    this.#alphabet = alphabet;
    this.#ids = ids;
  }

  /**
   * The tokenizer of a corpus: its distinct characters sorted by code point (Python's
   * `sorted(set(text))`).
   *
   * @example
   * CharTokenizer.fromText('banana').chars; // 'abn'
   */
  static fromText(text: string): CharTokenizer {
    const distinct = [...new Set(Array.from(text))].sort(
      (a, b) => a.codePointAt(0)! - b.codePointAt(0)!,
    );
    return new CharTokenizer(distinct.join(''));
  }

  /** @throws {ValueError} naming the first character outside the vocabulary and its index. */
  encode(text: string): number[] {
    const out: number[] = [];
    let i = 0;
    for (const c of text) {
      const id = this.#ids.get(c);
      if (id === undefined) {
        throw new ValueError(
          `CharTokenizer.encode: character ${JSON.stringify(c)} at index ${i} is not in the vocabulary`,
          { argument: 'text', value: c },
        );
      }
      out.push(id);
      i++;
    }
    return out;
  }

  /** @throws {ValueError} naming the first id outside [0, vocabSize). */
  decode(ids: readonly number[]): string {
    let out = '';
    ids.forEach((id, i) => {
      const c = this.#alphabet[id];
      if (!Number.isInteger(id) || c === undefined) {
        throw new ValueError(
          `CharTokenizer.decode: ids[${i}] = ${id} is not an id in [0, ${this.vocabSize})`,
          { argument: 'ids', value: id },
        );
      }
      out += c;
    });
    return out;
  }
}

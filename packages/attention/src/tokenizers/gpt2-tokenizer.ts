import { ValueError } from '@kvkit/tensor-utils';
import type { Tokenizer } from './tokenizer.ts';

/** GPT-2's `<|endoftext|>` id, the token its training documents end with. */
export const GPT2_END_OF_TEXT = 50256;

/** The part of js-tiktoken's Tiktoken this wrapper uses. */
interface Bpe {
  encode(
    text: string,
    allowedSpecial?: string[] | 'all',
    disallowedSpecial?: string[] | 'all',
  ): number[];
  decode(ids: number[]): string;
}

/**
 * GPT-2's byte-level BPE (50257 ids), through js-tiktoken (pure JavaScript, Node and browsers).
 * Its vocabulary ships inside that package: nothing is downloaded. Build it with
 * {@link loadGpt2Tokenizer}, which loads the ~0.5 MB vocabulary module on first use.
 *
 * @example
 * const tok = await loadGpt2Tokenizer();
 * tok.encode('Hello, world!'); // [15496, 11, 995, 0]
 */
export class Gpt2Tokenizer implements Tokenizer {
  readonly vocabSize = 50257;
  readonly endOfText = GPT2_END_OF_TEXT;
  readonly #bpe: Bpe;

  /** Use {@link loadGpt2Tokenizer}; this takes an already-built js-tiktoken encoder. */
  constructor(bpe: Bpe) {
    this.#bpe = bpe;
  }

  /**
   * Text to ids. `<|endoftext|>` in the text becomes id 50256 only with `allowSpecial`;
   * otherwise it is a ValueError (as tiktoken refuses it), so user text cannot forge it.
   */
  encode(text: string, options: { allowSpecial?: boolean } = {}): number[] {
    if (typeof text !== 'string') {
      throw new ValueError('Gpt2Tokenizer.encode: text must be a string', {
        argument: 'text',
        value: text,
      });
    }
    try {
      return options.allowSpecial ? this.#bpe.encode(text, 'all') : this.#bpe.encode(text);
    } catch (e) {
      throw new ValueError(
        `Gpt2Tokenizer.encode: ${(e as Error).message}`,
        { argument: 'text', value: text },
        { cause: e },
      );
    }
  }

  /**
   * Ids to text. A sequence that ends inside a multi-byte character decodes that character as
   * U+FFFD; decode whole sequences when streaming.
   */
  decode(ids: readonly number[]): string {
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new ValueError(
          `Gpt2Tokenizer.decode: ids[${i}] = ${id} is not an id in [0, ${this.vocabSize})`,
          {
            argument: 'ids',
            value: id,
          },
        );
      }
    });
    return this.#bpe.decode([...ids]);
  }
}

let loading: Promise<Gpt2Tokenizer> | undefined;

/**
 * GPT-2's tokenizer (js-tiktoken's `gpt2` ranks), loaded once and shared.
 *
 * @example
 * const tok = await loadGpt2Tokenizer();
 * tok.decode([15496, 11, 995, 0]); // 'Hello, world!'
 */
export function loadGpt2Tokenizer(): Promise<Gpt2Tokenizer> {
  loading ??= (async () => {
    const [{ Tiktoken }, ranks] = await Promise.all([
      import('js-tiktoken/lite'),
      import('js-tiktoken/ranks/gpt2'),
    ]);
    return new Gpt2Tokenizer(new Tiktoken(ranks.default));
  })();
  return loading;
}

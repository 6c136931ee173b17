/**
 * What generation needs from a tokenizer: text to ids and back.
 *
 * @example
 * const ids = tokenizer.encode('In the beginning');
 * const text = tokenizer.decode(ids);
 */
export interface Tokenizer {
  /** Number of token ids: ids run 0..vocabSize-1. */
  readonly vocabSize: number;
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
}

import { ValueError } from '@kvkit/tensor-utils';
import { describe, expect, test } from 'vitest';
import { CharTokenizer, GPT2_END_OF_TEXT, loadGpt2Tokenizer } from '../src/index.ts';

describe('CharTokenizer', () => {
  test("fromText: the corpus's distinct characters sorted by code point, as sorted(set(text))", () => {
    const tok = CharTokenizer.fromText('hello world');
    expect(tok.chars).toBe(' dehlorw');
    expect(tok.vocabSize).toBe(8);
    expect(tok.encode('hold')).toEqual([3, 5, 4, 1]);
    expect(tok.decode([3, 2])).toBe('he');
  });

  test('code points, not UTF-16 units', () => {
    const tok = CharTokenizer.fromText('a😀b');
    expect(tok.vocabSize).toBe(3);
    expect(tok.decode(tok.encode('😀ab😀'))).toBe('😀ab😀');
  });

  test('bad input is a ValueError naming it', () => {
    const tok = new CharTokenizer('abc');
    expect(() => tok.encode('abd')).toThrow(/"d" at index 2 is not in the vocabulary/);
    expect(() => tok.decode([0, 3])).toThrow(/ids\[1\] = 3/);
    expect(() => tok.decode([0.5])).toThrow(ValueError);
    expect(() => new CharTokenizer('abca')).toThrow(/"a" appears twice/);
    expect(() => new CharTokenizer('')).toThrow(ValueError);
  });
});

describe("GPT-2's BPE (js-tiktoken)", () => {
  // Ids from GPT-2's published vocabulary (encoder.json): 'Hello' 15496, ',' 11, ' world' 995,
  // '!' 0, ' the' 262, '<|endoftext|>' 50256.
  test('known ids', async () => {
    const tok = await loadGpt2Tokenizer();
    expect(tok.vocabSize).toBe(50257);
    expect(tok.encode('Hello, world!')).toEqual([15496, 11, 995, 0]);
    expect(tok.encode(' the')).toEqual([262]);
    expect(tok.decode([15496, 11, 995, 0])).toBe('Hello, world!');
    expect(tok.encode('<|endoftext|>', { allowSpecial: true })).toEqual([GPT2_END_OF_TEXT]);
  });

  test('round trip of text with accents, emoji and whitespace', async () => {
    const tok = await loadGpt2Tokenizer();
    const text = 'Café déjà vu 😀\n\ttabs   and  spaces — done.';
    expect(tok.decode(tok.encode(text))).toBe(text);
  });

  test('loaded once', async () => {
    expect(await loadGpt2Tokenizer()).toBe(await loadGpt2Tokenizer());
  });

  test('a special token in user text is refused unless allowed; bad ids are ValueErrors', async () => {
    const tok = await loadGpt2Tokenizer();
    expect(() => tok.encode('a <|endoftext|> b')).toThrow(ValueError);
    expect(() => tok.decode([50257])).toThrow(/ids\[0\] = 50257/);
    expect(() => tok.decode([-1])).toThrow(ValueError);
  });
});

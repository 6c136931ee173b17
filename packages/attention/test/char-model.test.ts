import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type CharTokenizer, type GPT, loadCharModel, readSafetensors } from '../src/index.ts';
import golden from './fixtures/genesis_char_generation.json' with { type: 'json' };
import { maxDiff } from './gpt-support.ts';
import { setupBackend } from './support.ts';

// The shipped character model (models/genesis-char.safetensors, see training/README.md) against
// PyTorch: genesis_char_generation.json holds the logits of a prompt and the tokens minGPT's
// generate gives with torch's generator (fixtures/README.md says how it was made).

const modelUrl = new URL('../models/genesis-char.safetensors', import.meta.url);
const bytes = new Uint8Array(readFileSync(modelUrl));
let model: GPT;
let tokenizer: CharTokenizer;

beforeAll(async () => {
  await setupBackend();
  ({ model, tokenizer } = await loadCharModel(modelUrl));
});
afterAll(() => model.dispose());

test('is the file the fixture was made from, small enough to ship', () => {
  expect(createHash('sha256').update(bytes).digest('hex')).toBe(golden.model.sha256);
  expect(bytes.length).toBeLessThan(2 * 1024 * 1024);
  const { metadata } = readSafetensors(bytes);
  expect(JSON.parse(metadata['kvkit.training']!)).toMatchObject({ steps: 1500 });
});

test("gpt-nano from the file's metadata, with its character tokenizer", () => {
  expect(model.dims).toMatchObject({
    nLayer: 3,
    nHead: 3,
    nEmbd: 48,
    blockSize: 64,
    vocabSize: 60,
  });
  expect(tokenizer.vocabSize).toBe(60);
  expect(tokenizer.encode(golden.prompt)).toEqual(golden.prompt_ids);
});

test("logits of the prompt within a few times torch's own float32 error", () => {
  // Trained logits reach |10|: torch's float32 logits are 8e-6 from float64 here, so each
  // float32 implementation is about 1e-5 from the truth and from the other.
  const idx = tf.tensor2d([golden.prompt_ids], undefined, 'int32');
  const logits = model.forward(idx);
  const vsTorch = maxDiff(logits, golden.logits);
  const vsFloat64 = maxDiff(logits, golden.logits_float64);
  console.log(
    `genesis-char logits: max |diff| ${vsTorch} vs torch float32, ${vsFloat64} vs float64`,
  );
  expect(vsTorch).toBeLessThan(3 * golden.logits_vs_float64_max_abs_diff);
  expect(vsFloat64).toBeLessThan(3 * golden.logits_vs_float64_max_abs_diff);
  tf.dispose([idx, logits]);
});

describe.each(golden.generations.map((g) => [g.name, g] as const))('%s', (_, g) => {
  const newTokens = g.tokens.length - golden.prompt_ids.length;
  const cachedToo = golden.prompt_ids.length + newTokens <= 64;
  test.each(cachedToo ? [true, false] : [false])(
    'useKvCache %s: PyTorch tokens and text',
    async (useKvCache) => {
      const { tokens } = await model.generate([golden.prompt_ids], {
        maxNewTokens: newTokens,
        useKvCache,
        ...(g.seed === null
          ? {}
          : { doSample: true, seed: g.seed, temperature: g.temperature, topK: g.top_k ?? null }),
      });
      expect(tokens[0]).toEqual(g.tokens);
      expect(tokenizer.decode(tokens[0]!)).toBe(g.text);
    },
  );
});

test('it learned the text: held-out loss far below the uniform ln(60) = 4.09', () => {
  // The last 10% of the corpus was held out of training.
  const text = readFileSync(new URL('../training/genesis-kjv.txt', import.meta.url), 'utf8');
  const ids = tokenizer.encode(text.slice(Math.floor(text.length * 0.9)));
  let nll = 0;
  let count = 0;
  for (let start = 0; start + 65 <= ids.length && count < 64 * 40; start += 650) {
    const idx = tf.tensor2d([ids.slice(start, start + 64)], undefined, 'int32');
    const logits = model.forward(idx);
    const logp = tf.logSoftmax(logits).arraySync() as number[][][];
    for (let t = 0; t < 64; t++) nll -= logp[0]![t]![ids[start + t + 1]!]!;
    count += 64;
    tf.dispose([idx, logits]);
  }
  expect(nll / count).toBeLessThan(1.6);
});

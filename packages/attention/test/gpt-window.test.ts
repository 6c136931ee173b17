import type { CacheSpec } from '@kvkit/kv-cache';
import { CacheCapacityError } from '@kvkit/tensor-utils';
import { beforeAll, describe, expect, test } from 'vitest';
import { GPT } from '../src/index.ts';
import { rows, tiny, tinyConfig } from './gpt-support.ts';
import { setupBackend } from './support.ts';

// Cached generation past blockSize with a windowed cache. The reference is minGPT's own way past
// blockSize, crop-and-recompute (no cache: every step re-runs the last blockSize tokens at
// positions 0..blockSize-1), produced by PyTorch (gpt_tiny.json's uncached_sliding_window). Up to
// blockSize the two are the same computation, so the tokens must be identical; past it the
// windowed cache keeps keys made with their old position embeddings, so the tokens may differ:
// the first step they do is printed (docs/guide/generation.md reports it).

beforeAll(setupBackend);

const blockSize = tiny.config.block_size;
const w = tiny.uncached_sliding_window;
const prompt = rows(tiny.prompt);
const T = prompt[0]!.length;

function model(cache: CacheSpec): GPT {
  return new GPT(tinyConfig(), { cache }).eval().loadStateDict(tiny.state_dict);
}

describe.each([
  ['sliding-window 16', { strategy: 'sliding-window', window: blockSize } as CacheSpec],
  ['sliding-window 8', { strategy: 'sliding-window', window: 8 } as CacheSpec],
  ['sink 4 + 12', { strategy: 'sink', sinkTokens: 4, window: blockSize - 4 } as CacheSpec],
])('%s cache past blockSize', (name, cache) => {
  test('generates past blockSize; equals crop-and-recompute wherever the two compute the same', async () => {
    const gpt = model(cache);
    expect(gpt.decodesPastBlockSize).toBe(true);
    const result = await gpt.generate(prompt, { maxNewTokens: w.max_new_tokens });
    const want = rows(w.tokens);
    expect(result.tokens.map((r) => r.length)).toEqual(want.map((r) => r.length));
    // A window of the full blockSize sees exactly what crop-and-recompute sees until the sequence
    // passes blockSize: the same tokens, bit for bit.
    const exactUntil = (cache as { window: number }).window === blockSize ? blockSize : 0;
    for (let b = 0; b < want.length; b++) {
      expect(result.tokens[b]!.slice(0, exactUntil)).toEqual(want[b]!.slice(0, exactUntil));
      const first = result.tokens[b]!.findIndex((t, i) => t !== want[b]![i]);
      console.log(
        `${name}, row ${b}: first token that differs from crop-and-recompute at position ${first} (prompt ${T}, blockSize ${blockSize})`,
      );
    }
    gpt.dispose();
  });
});

test('a window wider than blockSize cannot decode past it (queries would see more than the model was trained on)', async () => {
  const gpt = model({ strategy: 'sink', sinkTokens: 4, window: blockSize });
  expect(gpt.decodesPastBlockSize).toBe(false);
  await expect(gpt.generate(prompt, { maxNewTokens: w.max_new_tokens })).rejects.toThrow(
    CacheCapacityError,
  );
  gpt.dispose();
});

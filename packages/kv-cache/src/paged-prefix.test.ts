import { initBackend } from '@kvkit/tensor-utils';
import { beforeAll, describe, expect, test } from 'vitest';
import { append, held } from '../test/support.ts';
import { OutOfBlocksError } from './paged/errors.ts';
import { PagedKVCache } from './paged.ts';

// Prefix caching, in the style of the hand-computed cache tests: keys are token ids (values
// 10x), so what a sequence reads back shows whose blocks it reuses.

beforeAll(async () => {
  await initBackend('wasm');
});

const one = { nKvHeads: 1, headSize: 1 };
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/** Adds a sequence for `tokens` and prefills what was not reused, every layer in turn. */
function prompt(cache: PagedKVCache, tokens: number[]): { id: number; reused: number } {
  const added = cache.addSequence(tokens);
  cache.bind([added.id]);
  if (added.reused < tokens.length)
    for (let l = 0; l < cache.nLayers; l++) append(cache, [tokens.slice(added.reused)], l);
  return added;
}

describe('PagedKVCache: prefix caching', () => {
  test('a prompt reuses the cached full blocks of its prefix, at most length - 1 positions', () => {
    const cache = new PagedKVCache({ ...one, nLayers: 2, blockSize: 4, numBlocks: 32 });
    const a = cache.addSequence(range(1, 11)); // 10 tokens: 2 full blocks to look up (9 / 4)
    expect(a.reused).toBe(0);
    cache.bind([a.id]);
    append(cache, [range(1, 11)], 0);
    // Layer 1 has not written them yet: nothing is cached.
    expect(cache.addSequence(range(1, 11)).reused).toBe(0);
    append(cache, [range(1, 11)], 1);
    const b = prompt(cache, range(1, 11));
    expect(b.reused).toBe(8);
    expect(cache.blockTable(b.id).slice(0, 2)).toEqual(cache.blockTable(a.id).slice(0, 2));
    expect(cache.refCount(cache.blockTable(a.id)[0]!)).toBe(2);
    cache.bind([a.id, b.id]);
    expect(held(cache, 2, 1).ids).toEqual([range(1, 11), range(1, 11)]);
    expect(prompt(cache, range(1, 9)).reused).toBe(4); // 8 tokens: the last one runs, 4 reused
    expect(prompt(cache, [1, 2, 3, 4, 5, 6, 7, 99, 9]).reused).toBe(4); // block 1 differs
    expect(prompt(cache, [99, 2, 3, 4, 5, 6, 7, 8, 9]).reused).toBe(0); // block 0 differs
    // [5, 6, 7, 8] is cached, but as the block after [1, 2, 3, 4]: not a first block.
    expect(prompt(cache, [5, 6, 7, 8, 1]).reused).toBe(0);
    // Lookups: 2 + 2 + 2 + 1 + 2 + 2 + 1; hits: 2 (b) + 1 + 1.
    expect(cache.stats()).toMatchObject({ prefixHits: 4, prefixMisses: 8 });
    cache.dispose();
  });

  test('decoded tokens cache their blocks too, when their ids are given', () => {
    const cache = new PagedKVCache({ ...one, blockSize: 2, numBlocks: 16 });
    const a = prompt(cache, [1, 2, 3]);
    append(cache, [[4]]);
    expect(cache.addSequence([1, 2, 3, 4, 5]).reused).toBe(2); // 4's id is not known
    cache.appendTokens(a.id, [4]);
    expect(cache.addSequence([1, 2, 3, 4, 5]).reused).toBe(4);
    cache.dispose();
  });

  test('without prefix caching, nothing is reused', () => {
    const cache = new PagedKVCache({ ...one, blockSize: 2, numBlocks: 16, prefixCaching: false });
    prompt(cache, [1, 2, 3, 4, 5]);
    expect(cache.addSequence([1, 2, 3, 4, 5]).reused).toBe(0);
    expect(cache.stats()).toMatchObject({ prefixHits: 0, prefixMisses: 0, blocksCached: 0 });
    cache.dispose();
  });

  test('a crop forgets token ids: a block rewritten after it is not found under the old ones', () => {
    const cache = new PagedKVCache({ ...one, blockSize: 2, numBlocks: 16 });
    const a = prompt(cache, [1, 2, 3, 4]);
    append(cache, [[5]]);
    cache.crop(3); // position 3 (token 4) is forgotten, and so is its id
    append(cache, [[8, 9]]); // a different continuation, ids not given
    expect(cache.addSequence([1, 2, 3, 4, 5]).reused).toBe(2);
    cache.appendTokens(a.id, [8, 9]);
    const b = prompt(cache, [1, 2, 3, 8, 9]);
    expect(b.reused).toBe(4);
    cache.bind([b.id]);
    expect(held(cache, 1).ids).toEqual([[1, 2, 3, 8, 9]]);
    cache.dispose();
  });

  test('freed prompts stay cached; the pool evicts the least recently used, tails first', () => {
    const cache = new PagedKVCache({ ...one, blockSize: 2, numBlocks: 4 });
    const a = prompt(cache, [1, 2, 3, 4, 5]); // blocks [1,2] [3,4] cached, [5] partial
    cache.freeSequence(a.id);
    expect(cache.stats()).toMatchObject({ blocksUsed: 0, blocksCached: 2, blocksFree: 2 });
    const b = prompt(cache, [7, 7, 7, 7, 7, 7]); // 3 blocks: the 2 free ones and 1 evicted
    expect(b.reused).toBe(0);
    expect(cache.stats()).toMatchObject({ blocksUsed: 3, blocksCached: 1, blocksFree: 0 });
    cache.freeSequence(b.id); // [7,7] [7,7] are cached now, more recently than [1,2]
    const c = prompt(cache, [1, 2, 3, 4, 5]); // [3,4] was evicted first, so only [1,2] is left
    expect(c.reused).toBe(2);
    cache.bind([c.id]);
    expect(held(cache, 1).ids).toEqual([[1, 2, 3, 4, 5]]);
    cache.dispose();
  });

  test('a cached block a table holds is never evicted: out of blocks instead', () => {
    const cache = new PagedKVCache({ ...one, blockSize: 2, numBlocks: 3 });
    const a = prompt(cache, [1, 2, 3, 4]);
    const b = cache.addSequence();
    cache.bind([b.id]);
    const before = cache.stats();
    expect(() => append(cache, [[1, 2, 3]])).toThrow(OutOfBlocksError);
    expect(() => append(cache, [[1, 2, 3]])).toThrow(
      /out of KV blocks: update needs 2 new block\(s\) of 2 positions, 1 free \(0 of them cached for prefix reuse\) of 3/,
    );
    expect(cache.stats()).toEqual(before);
    cache.bind([a.id]);
    expect(held(cache, 1).ids).toEqual([[1, 2, 3, 4]]);
    cache.dispose();
  });
});

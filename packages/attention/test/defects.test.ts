import { defaultHeap, KernelHeap, StaticKVCache } from '@kvkit/kv-cache';
import { CacheCapacityError, DisposedError, rand, setSeed, ValueError } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { CausalSelfAttention, GPT } from '../src/index.ts';
import { setupBackend } from './support.ts';

// The defects found by trying the 0.x packages as a new user would, each a test that failed
// before the cache contract was rewritten.

beforeAll(setupBackend);

const config = { ...GPT.getDefaultConfig(), nHead: 2, nEmbd: 8, blockSize: 16, maxBatchSize: 4 };

describe('defects of the first cache interface', () => {
  test('1. a batch that grows mid-decode is refused, naming the row that would read unwritten rows', () => {
    setSeed(1);
    const mha = new CausalSelfAttention(config).eval();
    const prompt = rand([1, 3, 8]);
    const step = rand([2, 1, 8]);
    mha.forward(prompt, { useKvCache: true, startPos: 0 }).dispose();
    expect(() => mha.forward(step, { useKvCache: true, startPos: 3 })).toThrow(ValueError);
    expect(() => mha.forward(step, { useKvCache: true, startPos: 3 })).toThrow(
      /startPos 3 of batch row 1 would leave a gap: it has seen positions \[0, 0\)/,
    );
    expect([mha.kvCache!.seqLength(0, 0), mha.kvCache!.seqLength(0, 1)]).toEqual([3, 0]);
    tf.dispose([prompt, step]);
    mha.dispose();
  });

  test('3. a module with a huge blockSize reserves nothing for good: other caches still allocate', () => {
    const heap = new KernelHeap({ maximumBytes: 64 << 20 });
    const before = heap.bytesAllocated();
    setSeed(2);
    const huge = new CausalSelfAttention({ ...config, blockSize: 1e9 }, { heap }).eval();
    const x = rand([1, 5, 8]);
    huge.forward(x).dispose(); // the no-cache kernel path: scratch sized by this call
    expect(heap.bytesAllocated()).toBe(before);
    // Its own static cache (1e9 positions) can never fit: a typed error, nothing adopted.
    expect(() => huge.forward(x, { useKvCache: true })).toThrow(CacheCapacityError);
    expect(huge.kvCache).toBeNull();
    huge.dispose();
    const other = new StaticKVCache({
      maxBatchSize: 4,
      nKvHeads: 2,
      headSize: 4,
      capacity: 1024,
      heap,
    });
    const m = new CausalSelfAttention(config, { heap }).eval().useCache(other);
    m.forward(x, { useKvCache: true }).dispose();
    expect(other.seqLength()).toBe(5);
    other.dispose();
    m.dispose();
    expect(heap.bytesAllocated()).toBe(before);
    x.dispose();
  });

  test('4a. useCache(disposedCache) is refused and keeps the module’s own cache', () => {
    setSeed(3);
    const mha = new CausalSelfAttention(config).eval();
    const x = rand([1, 2, 8]);
    mha.forward(x, { useKvCache: true }).dispose();
    const own = mha.kvCache!;
    const dead = new StaticKVCache({ maxBatchSize: 4, nKvHeads: 2, headSize: 4, capacity: 16 });
    dead.dispose();
    expect(() => mha.useCache(dead)).toThrow(DisposedError);
    expect(mha.kvCache).toBe(own);
    expect(own.isDisposed).toBe(false);
    expect(own.seqLength()).toBe(2);
    x.dispose();
    mha.dispose();
  });

  test('4b. useCache(m.kvCache) then m.dispose() frees the cache (no leak)', () => {
    const heap = defaultHeap();
    const before = heap.bytesAllocated();
    setSeed(4);
    const mha = new CausalSelfAttention(config).eval();
    const x = rand([1, 2, 8]);
    mha.forward(x, { useKvCache: true }).dispose();
    const own = mha.kvCache!;
    mha.useCache(own);
    mha.dispose();
    expect(own.isDisposed).toBe(true);
    expect(heap.bytesAllocated()).toBe(before);
    x.dispose();
  });

  test('2b. a call that fails for want of memory leaves the cache exactly as it was', () => {
    // 1.55 MiB: a 1,000-token prompt fits (its staged rows, then a dynamic cache of 1,000 slots);
    // 100 more tokens stage fine, but growing the cache to 2,000 slots next to the old block does not.
    const heap = new KernelHeap({ initialBytes: 65536, maximumBytes: 1.55 * (1 << 20) });
    setSeed(5);
    const wide = { ...config, nEmbd: 64, blockSize: 4096 };
    const mha = new CausalSelfAttention(wide, { heap, cache: 'dynamic' }).eval();
    const prompt = rand([1, 1000, 64]);
    mha.forward(prompt, { useKvCache: true }).dispose();
    const cache = mha.kvCache!;
    const read = () => {
      const r = cache.read(0, 1);
      const out = {
        k: Array.from(r.keys.dataSync()),
        v: Array.from(r.values.dataSync()),
        n: cache.seqLength(),
      };
      tf.dispose([r.keys, r.values]);
      return out;
    };
    const before = read();
    const reserved = cache.bytesReserved();
    const live = heap.bytesAllocated();
    const more = rand([1, 100, 64]);
    expect(() => mha.forward(more, { useKvCache: true, startPos: 1000 })).toThrow(
      CacheCapacityError,
    );
    expect(read()).toEqual(before);
    expect([cache.bytesReserved(), heap.bytesAllocated()]).toEqual([reserved, live]);
    // A rewind that would have come with it did not happen either.
    expect(() => mha.forward(more, { useKvCache: true, startPos: 990 })).toThrow(
      CacheCapacityError,
    );
    expect(read()).toEqual(before);
    mha
      .forward(tf.slice(more, [0, 0, 0], [1, 1, 64]), { useKvCache: true, startPos: 999 })
      .dispose();
    expect(cache.seqLength()).toBe(1000); // and it goes on, within what it holds
    tf.dispose([prompt, more]);
    mha.dispose();
    expect(heap.bytesAllocated()).toBe(0);
  });

  test('5. a static cache without a capacity is refused at construction', () => {
    const noCapacity = {
      maxBatchSize: 1,
      nKvHeads: 1,
      headSize: 4,
    } as unknown as ConstructorParameters<typeof StaticKVCache>[0];
    expect(() => new StaticKVCache(noCapacity)).toThrow(ValueError);
    expect(() => new StaticKVCache(noCapacity)).toThrow(
      /capacity must be a positive integer, got undefined/,
    );
  });

  test('a bad cache option fails at construction', () => {
    expect(
      () => new CausalSelfAttention(config, { cache: { strategy: 'sliding-window', window: 0 } }),
    ).toThrow(/window must be a positive integer/);
    expect(() => new CausalSelfAttention(config, { cache: 'paged' as never })).toThrow(
      /cache must be 'static', 'dynamic'/,
    );
  });
});

import { CacheCapacityError, initBackend } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import {
  attend,
  DynamicKVCache,
  KernelHeap,
  type KVCache,
  PagedKVCache,
  type RowSpans,
  SinkKVCache,
  SlidingWindowKVCache,
  StaticKVCache,
} from '../src/index.ts';
import { randomFloats } from './reference.ts';
import { held, ids } from './support.ts';

// Ragged batches: an update's rows carry padding (left or right), and `spans` say which
// columns each batch row really holds. Each row must end up holding exactly what it would
// hold had it been written alone, and the kernel must read each row's real queries only.

beforeAll(async () => {
  await initBackend('wasm');
});

const one = { nKvHeads: 1, headSize: 1 };
const strategies: [string, () => KVCache][] = [
  ['static', () => new StaticKVCache({ ...one, maxBatchSize: 3, capacity: 12 })],
  ['dynamic', () => new DynamicKVCache({ ...one, initialSlots: 1 })],
  ['sliding-window', () => new SlidingWindowKVCache({ ...one, window: 8 })],
  ['sink', () => new SinkKVCache({ ...one, sinkTokens: 1, window: 7 })],
  ['paged', () => new PagedKVCache({ ...one, blockSize: 3, numBlocks: 32 })],
];

/** Writes `rows` (0 = padding) with spans, and returns what each row holds. */
function writeRagged(cache: KVCache, rows: number[][], spans: RowSpans, startPos: number[]) {
  const t = ids(rows);
  cache.update(0, t, startPos, { spans });
  tf.dispose([t.keys, t.values]);
  return held(cache, rows.length).ids;
}

describe.each(strategies)('%s: ragged updates', (_, make) => {
  test('left padding: [_, _, 1, 2], [3, 4, 5, 6], [_, _, _, 7] hold [1, 2], [3, 4, 5, 6], [7]', () => {
    const cache = make();
    const got = writeRagged(
      cache,
      [
        [0, 0, 1, 2],
        [3, 4, 5, 6],
        [0, 0, 0, 7],
      ],
      { first: [2, 0, 3], count: [2, 4, 1] },
      [0, 0, 0],
    );
    expect(got).toEqual([[1, 2], [3, 4, 5, 6], [7]]);
    expect([0, 1, 2].map((b) => cache.seqLength(0, b))).toEqual([2, 4, 1]);
    // then a decode step per row at its own position, as any batch continues
    expect(
      writeRagged(cache, [[8], [9], [10]], { first: [0, 0, 0], count: [1, 1, 1] }, [2, 4, 1]),
    ).toEqual([
      [1, 2, 8],
      [3, 4, 5, 6, 9],
      [7, 10],
    ]);
    cache.dispose();
  });

  test('right padding, and a row with nothing in this chunk', () => {
    const cache = make();
    const got = writeRagged(
      cache,
      [
        [1, 2, 0],
        [3, 0, 0],
        [0, 0, 0],
      ],
      { first: [0, 0, 0], count: [2, 1, 0] },
      [0, 0, 0],
    );
    expect(got).toEqual([[1, 2], [3], []]);
    expect(cache.seqLength(0, 2)).toBe(0);
    cache.dispose();
  });

  test('equals writing each row alone, bit for bit (random rows, several chunks)', () => {
    const together = make();
    const alone = [make(), make(), make()];
    let salt = 7;
    for (const spans of [
      { first: [1, 0, 2], count: [2, 3, 1] },
      { first: [0, 0, 0], count: [1, 0, 2] },
      { first: [2, 1, 0], count: [1, 2, 3] },
    ]) {
      const rows = Array.from({ length: 3 }, () => Array.from(randomFloats(3, ++salt)));
      const starts = [0, 1, 2].map((b) => together.seqLength(0, b));
      writeRagged(together, rows, spans, starts);
      rows.forEach((r, b) => {
        const n = spans.count[b]!;
        if (n > 0)
          writeRagged(
            alone[b]!,
            [r.slice(spans.first[b]!, spans.first[b]! + n)],
            { first: [0], count: [n] },
            [alone[b]!.seqLength()],
          );
      });
    }
    const t = held(together, 3);
    alone.forEach((c, b) => {
      expect(t.ids[b]).toEqual(held(c, 1).ids[0]);
      expect(t.positions[b]).toEqual(held(c, 1).positions[0]);
      c.dispose();
    });
    together.dispose();
  });
});

test('a ring cache: spans count against the per-update limit, not the padded T', () => {
  const cache = new SlidingWindowKVCache({ ...one, window: 2 });
  writeRagged(cache, [[1, 2]], { first: [0], count: [2] }, [0]);
  // full ring: one position per update; a 3-column chunk carrying 1 real position is fine
  expect(writeRagged(cache, [[0, 0, 3]], { first: [2], count: [1] }, [2])).toEqual([[2, 3]]);
  const t = ids([[0, 4, 5]]);
  expect(() => cache.update(0, t, [3], { spans: { first: [1], count: [2] } })).toThrow(
    CacheCapacityError,
  );
  expect(() => cache.update(0, t, [3], { spans: { first: [1], count: [2] } })).toThrow(
    /takes at most 1 new position\(s\) per update at startPos 3, got 2/,
  );
  tf.dispose([t.keys, t.values]);
  cache.dispose();
});

test('attend with spans reads each row\u2019s real queries only, as attending each row alone does', () => {
  const heap = new KernelHeap();
  const [B, T, nkv, hs, nh] = [3, 4, 1, 4, 2];
  const cache = new DynamicKVCache({ nKvHeads: nkv, headSize: hs, heap });
  const spans = { first: [1, 0, 3], count: [3, 4, 1] };
  const kv = tf.tensor4d(randomFloats(B * nkv * T * hs, 3), [B, nkv, T, hs]);
  const view = cache.update(0, { keys: kv, values: kv }, [0, 0, 0], { spans });
  kv.dispose();
  const rowBytes = nh * hs * 4;
  const q = heap.alloc(B * T * rowBytes);
  const out = heap.alloc(B * T * rowBytes);
  const alone = heap.alloc(T * rowBytes);
  heap.f32().set(randomFloats(B * T * nh * hs, 4), q / 4);
  heap.f32().fill(42, out / 4, (out + B * T * rowBytes) / 4); // padding rows must keep this
  const rows = { batchStride: T * rowBytes, rowStride: rowBytes };
  attend(
    view,
    { ptr: q, ...rows, T, nHead: nh, startPos: [0, 0, 0], spans },
    { ptr: out, ...rows },
  );
  const got = heap.f32().slice(out / 4, (out + B * T * rowBytes) / 4);
  for (let b = 0; b < B; b++) {
    const f = spans.first[b]!;
    const n = spans.count[b]!;
    // row b alone: its real queries as a batch of one over a cache of row b alone
    const single = cache.fork(b);
    const v1 = single.view(0, 1);
    attend(
      v1,
      { ptr: q + (b * T + f) * rowBytes, ...rows, T: n, nHead: nh, startPos: [0] },
      { ptr: alone, ...rows },
    );
    const want = heap.f32().slice(alone / 4, alone / 4 + n * nh * hs);
    expect(got.subarray((b * T + f) * nh * hs, (b * T + f + n) * nh * hs)).toEqual(want);
    for (let i = 0; i < T; i++) {
      if (i >= f && i < f + n) continue;
      expect(Array.from(got.subarray((b * T + i) * nh * hs, (b * T + i + 1) * nh * hs))).toEqual(
        new Array(nh * hs).fill(42),
      );
    }
    single.dispose();
  }
  cache.dispose();
});

import { defaultHeap } from '@kvkit/kv-cache';
import { maxAbsDiff, rand, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { CausalSelfAttention, GPT } from '../src/index.ts';
import { setupBackend } from './support.ts';

// The kernel path keeps caches and scratch in one growable WebAssembly heap. Its traps: views
// detached when the heap grows mid-sequence, and caches of different modules sharing a heap.

beforeAll(setupBackend);

const C = 16;
const config = {
  ...GPT.getDefaultConfig(),
  nHead: 4,
  nKvHeads: 2,
  nEmbd: C,
  blockSize: 32,
  maxBatchSize: 2,
};

function module(implementation: 'kernel' | 'reference') {
  setSeed(3);
  return new CausalSelfAttention(config, { implementation }).eval();
}

function decode(mha: CausalSelfAttention, x: tf.Tensor, from: number, to: number): tf.Tensor[] {
  const out: tf.Tensor[] = [];
  for (let p = from; p < to; p++) {
    const step = tf.slice(x, [0, p, 0], [2, 1, C]);
    out.push(mha.forward(step, { useKvCache: true, startPos: p }));
    step.dispose();
  }
  return out;
}

describe('kernel heap traps', () => {
  test('the heap growing in the middle of a sequence changes nothing', () => {
    setSeed(8);
    const x = rand([2, 32, C]);
    const kernel = module('kernel');
    const reference = module('reference');
    const first = [...decode(kernel, x, 0, 10)];
    const heap = defaultHeap();
    const before = heap.bytesTotal();
    const ballast = heap.alloc(64 << 20); // forces memory.grow: every old view is detached
    expect(heap.bytesTotal()).toBeGreaterThan(before);
    const second = decode(kernel, x, 10, 20);
    heap.free(ballast);
    const expected = decode(reference, x, 0, 20);
    const ours = [...first, ...second];
    const worst = Math.max(...ours.map((y, i) => maxAbsDiff(y, expected[i]!)));
    expect(worst).toBeLessThanOrEqual(1e-6);
    tf.dispose([x, ...ours, ...expected]);
    kernel.dispose();
    reference.dispose();
  });

  test('two modules decoding interleaved do not see each other', () => {
    setSeed(9);
    const xa = rand([2, 32, C]);
    const xb = rand([2, 32, C]);
    const a = module('kernel');
    const b = module('kernel');
    const interleaved: tf.Tensor[][] = [[], []];
    for (let p = 0; p < 12; p++) {
      interleaved[0]!.push(...decode(a, xa, p, p + 1));
      interleaved[1]!.push(...decode(b, xb, p, p + 1));
    }
    const alone = module('kernel');
    const expectedB = decode(alone, xb, 0, 12);
    expect(Math.max(...interleaved[1]!.map((y, i) => maxAbsDiff(y, expectedB[i]!)))).toBe(0);
    tf.dispose([xa, xb, ...interleaved.flat(), ...expectedB]);
    for (const m of [a, b, alone]) m.dispose();
  });

  test('a disposed module returns its cache to the heap; decoding is flat in the heap', () => {
    const heap = defaultHeap();
    const start = heap.bytesAllocated();
    setSeed(10);
    const x = rand([2, 32, C]);
    const mha = module('kernel');
    tf.dispose(decode(mha, x, 0, 4));
    const afterPrefill = heap.bytesAllocated();
    tf.dispose(decode(mha, x, 4, 32));
    expect(heap.bytesAllocated()).toBe(afterPrefill); // per-call scratch is freed every call
    mha.dispose();
    x.dispose();
    expect(heap.bytesAllocated()).toBe(start); // the cache's K and V blocks went back
  });
});

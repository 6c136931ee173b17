import { type CacheSpec, KernelHeap } from '@kvkit/kv-cache';
import { rand, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, expect, test } from 'vitest';
import { CausalSelfAttention, GPT } from '../src/index.ts';
import { setupBackend } from './support.ts';

beforeAll(setupBackend);

const STEPS = 10_000;

/** tfjs-wasm's heap size (its Memory only grows), 0 on other backends. */
function tfjsHeapBytes(): number {
  return (
    (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.byteLength ?? 0
  );
}

test.each([
  ['static', 'static' as CacheSpec, STEPS + 8],
  ['dynamic', 'dynamic' as CacheSpec, STEPS + 8],
  ['sliding-window', { strategy: 'sliding-window', window: 64 } as CacheSpec, 16],
  ['sink', { strategy: 'sink', window: 60, sinkTokens: 4 } as CacheSpec, 16],
])(
  '%s: 10,000 single-token steps leave tensors, the tfjs heap and the kvkit heap flat',
  (name, cache, blockSize) => {
    const heap = new KernelHeap();
    setSeed(1);
    const mha = new CausalSelfAttention(
      { ...GPT.getDefaultConfig(), nHead: 2, nEmbd: 8, blockSize, maxBatchSize: 1 },
      { cache, heap },
    ).eval();
    const token = rand([1, 1, 8]);
    const prompt = rand([1, 8, 8]);
    mha.forward(prompt, { useKvCache: true, startPos: 0 }).dispose();
    const c = mha.kvCache!;
    // The growing strategies reach their final size first (a static cache has it from the start).
    if (name === 'dynamic') c.reserve(0, 1, STEPS + 8);
    for (let p = 8; p < 80; p++) mha.forward(token, { useKvCache: true, startPos: p }).dispose();
    const start = {
      tensors: tf.memory().numTensors,
      tfjs: tfjsHeapBytes(),
      total: heap.bytesTotal(),
      live: heap.bytesAllocated(),
      reserved: c.bytesReserved(),
    };
    for (let p = 80; p < STEPS + 8; p++)
      mha.forward(token, { useKvCache: true, startPos: p }).dispose();
    const end = {
      tensors: tf.memory().numTensors,
      tfjs: tfjsHeapBytes(),
      total: heap.bytesTotal(),
      live: heap.bytesAllocated(),
      reserved: c.bytesReserved(),
    };
    expect(end).toEqual(start);
    expect(c.seqLength()).toBe(STEPS + 8);
    if (c.maxSlots !== null && name !== 'static') {
      expect(c.slotsHeld()).toBe(c.maxSlots); // a windowed cache holds exactly its capacity
      expect(c.bytesUsed()).toBe(c.maxSlots * c.bytesPerToken());
    }
    tf.dispose([token, prompt]);
    mha.dispose();
    expect(heap.bytesAllocated()).toBe(0);
  },
);

import { type CacheSpec, KernelHeap } from '@kvkit/kv-cache';
import { Generator, rand, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, expect, test } from 'vitest';
import { CausalSelfAttention, GPT } from '../src/index.ts';
import { setupBackend } from './support.ts';

// Memory that grows across generations is the top complaint of JS users. A 10,000-step
// generation-like loop (a beam of 4, reordered every few steps, cropped back now and then as
// "regenerate" does): the tensor count, tfjs-wasm's heap and the kvkit heap must stay flat.

beforeAll(setupBackend);

const STEPS = 10_000;
const WARMUP = 1_000;
const BEAMS = 4;

/** tfjs-wasm's heap size (its Memory only grows), 0 on other backends. */
function tfjsHeapBytes(): number {
  return (
    (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.byteLength ?? 0
  );
}

test.each([
  ['static', 'static' as CacheSpec],
  ['dynamic', 'dynamic' as CacheSpec],
  ['sliding-window', { strategy: 'sliding-window', window: 48 } as CacheSpec],
  ['sink', { strategy: 'sink', window: 44, sinkTokens: 4 } as CacheSpec],
])(
  '%s: 10,000 steps with reorder and crop mixed in leave tensors and both heaps flat',
  (name, cache) => {
    const heap = new KernelHeap();
    setSeed(2);
    const mha = new CausalSelfAttention(
      { ...GPT.getDefaultConfig(), nHead: 2, nEmbd: 8, blockSize: 128, maxBatchSize: BEAMS },
      { cache, heap },
    ).eval();
    const token = rand([BEAMS, 1, 8]);
    const draw = new Generator(99);
    let length = 0;
    let reorders = 0;
    let crops = 0;
    const measure = () => ({
      tensors: tf.memory().numTensors,
      tfjs: tfjsHeapBytes(),
      total: heap.bytesTotal(),
      live: heap.bytesAllocated(),
      reserved: mha.kvCache?.bytesReserved() ?? 0,
    });
    let start = measure();
    for (let step = 0; step < STEPS; step++) {
      if (step === WARMUP) start = measure();
      mha.forward(token, { useKvCache: true, startPos: length }).dispose();
      length++;
      const c = mha.kvCache!;
      if (step % 5 === 4) {
        c.reorder(Array.from({ length: BEAMS }, () => draw.random() % BEAMS));
        reorders++;
      }
      if (length >= 100) {
        // "regenerate": drop the last tokens; a ring that has wrapped keeps only its sinks
        const to =
          c.maxSlots !== null && length > c.maxSlots
            ? c.visibility.sinks
            : 20 + (draw.random() % 60);
        c.crop(to);
        length = to;
        crops++;
      }
    }
    const end = measure();
    console.log(
      `${name}: ${STEPS} steps, ${reorders} reorders, ${crops} crops; from step ${WARMUP}: ${JSON.stringify(start)} -> ${JSON.stringify(end)}`,
    );
    expect(end).toEqual(start);
    expect(crops).toBeGreaterThan(50);
    tf.dispose(token);
    mha.dispose();
    expect(heap.bytesAllocated()).toBe(0);
  },
);

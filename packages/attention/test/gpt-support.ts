// Helpers shared by the GPT tests: the PyTorch fixtures as models, token arrays, the kvkit
// kernel heap's size.
import { defaultHeap } from '@kvkit/kv-cache';
import * as tf from '@tensorflow/tfjs-core';
import { GPT, type GPTConfig } from '../src/index.ts';
import tiny from './fixtures/gpt_tiny.json' with { type: 'json' };

export type TensorFixture = { shape: number[]; data: number[] };
export { tiny };

/** The gpt_tiny config in kvkit's names. */
export function tinyConfig(overrides: Partial<GPTConfig> = {}): Partial<GPTConfig> {
  const c = tiny.config;
  return {
    ...GPT.getDefaultConfig(),
    nLayer: c.n_layer,
    nHead: c.n_head,
    nKvHeads: c.n_kv_heads,
    nEmbd: c.n_embd,
    vocabSize: c.vocab_size,
    blockSize: c.block_size,
    maxBatchSize: c.max_batch_size,
    ...overrides,
  };
}

/** gpt_tiny with PyTorch's weights, in eval mode. */
export function tinyModel(implementation: 'kernel' | 'reference' = 'kernel'): GPT {
  const gpt = new GPT(tinyConfig(), { implementation });
  return gpt.eval().loadStateDict(tiny.state_dict);
}

/** A fixture's int tensor as rows of ids. */
export function rows(t: TensorFixture): number[][] {
  const [B, T] = t.shape as [number, number];
  return Array.from({ length: B }, (_, b) => t.data.slice(b * T, (b + 1) * T));
}

export function ids(t: TensorFixture): tf.Tensor2D {
  return tf.tensor2d(Int32Array.from(t.data), t.shape as [number, number], 'int32');
}

/** Largest |a - b| between a tensor and a fixture's float32 values. */
export function maxDiff(actual: tf.Tensor, expected: TensorFixture): number {
  const a = actual.dataSync();
  if (a.length !== expected.data.length) return Number.POSITIVE_INFINITY;
  let m = 0;
  for (let i = 0; i < a.length; i++)
    m = Math.max(m, Math.abs(a[i]! - Math.fround(expected.data[i]!)));
  return m;
}

/**
 * Bytes allocated in the default kvkit kernel heap (where the caches keep their rows). The one
 * place the GPT tests ask for it.
 */
export function kernelHeapBytes(): number {
  return defaultHeap().bytesAllocated();
}

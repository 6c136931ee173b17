import { GPT } from '@kvkit/attention';
import { maxAbsDiff, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';

/**
 * The small GPT of `smallGptWorkload`: the shape of the character model `@kvkit/attention`
 * ships (minGPT's gpt-nano: 3 layers, 3 heads, width 48; 60 token ids, 64 positions), one
 * sequence, `prompt` tokens before decoding starts.
 */
export const smallGptSizes = {
  modelType: 'gpt-nano',
  vocabSize: 60,
  blockSize: 64,
  prompt: 4,
} as const;

export type SmallGptSizes = {
  modelType: string;
  vocabSize: number;
  blockSize: number;
  prompt: number;
};

/**
 * A whole GPT decoding one sequence, cached vs uncached, small enough for a browser tab (the
 * docs' "Run it in your browser" times it): weights drawn after `setSeed(42)`, fixed token ids.
 * `cached()` prefills the prompt and decodes every later position one token at a time with the
 * KV cache; `uncached()` runs the forward of every prefix instead (minGPT's `generate` without a
 * cache). Both compute the last position's logits for positions prompt-1 .. blockSize-1, on a
 * model built once (not inside the timed code, unlike the seed cells). `maxAbsDiff()` runs both
 * and returns the largest difference between their logits; `dispose()` frees the model.
 *
 * @example
 * const w = smallGptWorkload();
 * const cached = timeit(() => w.cached());
 * const uncached = timeit(() => w.uncached());
 * console.log(w.newTokens, uncached.meanMs / cached.meanMs, w.maxAbsDiff());
 * w.dispose();
 */
export function smallGptWorkload(s: SmallGptSizes = smallGptSizes) {
  const { vocabSize, blockSize, prompt } = s;
  setSeed(42);
  const gpt = new GPT({
    ...GPT.getDefaultConfig(),
    modelType: s.modelType,
    vocabSize,
    blockSize,
    maxBatchSize: 1, // rows the static cache preallocates
  }).eval();
  const ids = Array.from({ length: blockSize }, (_, i) => (i * 7 + 3) % vocabSize);
  const token = (t: number) => tf.tensor2d([ids[t]!], [1, 1], 'int32'); // (1, 1)
  const prefix = (t: number) => tf.tensor2d(ids.slice(0, t), [1, t], 'int32'); // (1, t)
  const steps = Array.from({ length: blockSize }, (_, t) => (t < prompt ? null : token(t)));
  const prefixes = Array.from({ length: blockSize + 1 }, (_, t) => (t < prompt ? null : prefix(t)));
  const last = { lastPositionOnly: true };
  /** The cached loop; `keep` receives each logits tensor (else it is disposed). */
  const cachedLoop = (keep?: (y: tf.Tensor) => void) => {
    gpt.resetCache();
    const first = gpt.forward(prefixes[prompt]!, { useKvCache: true, startPos: 0, ...last });
    keep ? keep(first) : first.dispose();
    for (let t = prompt; t < blockSize; t++) {
      const y = gpt.forward(steps[t]!, { useKvCache: true, startPos: t, ...last }); // (1, 1, V)
      keep ? keep(y) : y.dispose();
    }
  };
  const uncachedLoop = (keep?: (y: tf.Tensor) => void) => {
    for (let t = prompt; t <= blockSize; t++) {
      const y = gpt.forward(prefixes[t]!, last); // (1, 1, V)
      keep ? keep(y) : y.dispose();
    }
  };
  return {
    /** Decoded positions per loop (after the prompt). */
    newTokens: blockSize - prompt,
    cached(): void {
      cachedLoop();
    },
    uncached(): void {
      uncachedLoop();
    },
    maxAbsDiff(): number {
      const a: tf.Tensor[] = [];
      const b: tf.Tensor[] = [];
      cachedLoop((y) => a.push(y));
      uncachedLoop((y) => b.push(y));
      try {
        return Math.max(...a.map((y, i) => maxAbsDiff(y, b[i]!)));
      } finally {
        tf.dispose([...a, ...b]);
      }
    },
    dispose(): void {
      gpt.dispose();
      tf.dispose([...steps, ...prefixes].filter((t): t is tf.Tensor2D => t !== null));
    },
  };
}

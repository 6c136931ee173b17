import { CausalSelfAttention, GPT } from '@kvkit/attention';
import { rand, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import type { Timing } from '../report/schema.ts';
import { type TimeitOptions, timeit } from '../timeit.ts';

/** The seed notebook's timing sizes (cells 17-20) and a small set for quick runs. */
export const seedSizes = {
  full: { B: 8, T: 64, C: 128, nHead: 8, prefill: 3 },
  quick: { B: 2, T: 16, C: 32, nHead: 4, prefill: 3 },
} as const;

export type SeedSizes = (typeof seedSizes)[keyof typeof seedSizes];

/**
 * Cells 19 and 20 as two functions. Both construct the module (after `set_seed(42)`, as the
 * notebook does inside the timed cell); the cached one prefills `prefill` tokens and decodes
 * positions prefill..T-1 one at a time, the uncached one runs the full forward of every prefix
 * prefill..T. Input slices are made once, outside the timed code: in torch `input[:, i:i+1]`
 * is a free view, in tfjs a slice is a kernel call, and it is not what is being measured.
 */
export function seedWorkload(s: SeedSizes) {
  setSeed(42);
  const x = rand([s.B, s.T, s.C]);
  const config = { ...GPT.getDefaultConfig(), nHead: s.nHead, nEmbd: s.C, blockSize: s.T };
  const steps = Array.from({ length: s.T }, (_, i) => tf.slice(x, [0, i, 0], [s.B, 1, s.C]));
  const prefixes = Array.from({ length: s.T + 1 }, (_, i) =>
    i === 0 ? null : tf.slice(x, [0, 0, 0], [s.B, i, s.C]),
  );
  const cAttnT = rand([s.C, 3 * s.C]) as tf.Tensor2D; // (C, 3C), the shapes of the module's weights
  const cProjT = rand([s.C, s.C]) as tf.Tensor2D;
  const build = () => {
    setSeed(42);
    return new CausalSelfAttention(config).eval();
  };
  return {
    cached(): void {
      const mha = build();
      mha.forward(prefixes[s.prefill]!, { useKvCache: true, startPos: 0 }).dispose();
      for (let i = s.prefill; i < s.T; i++)
        mha.forward(steps[i]!, { useKvCache: true, startPos: i }).dispose();
      mha.dispose();
    },
    uncached(): void {
      const mha = build();
      for (let i = s.prefill; i <= s.T; i++) mha.forward(prefixes[i]!).dispose();
      mha.dispose();
    },
    /**
     * Only the projection matMuls the uncached loop cannot avoid (c_attn and c_proj over every
     * prefix, through the same tfjs matMul the module uses): the floor under any honest
     * no-cache loop on this backend.
     */
    projectionsOnly(): void {
      for (let i = s.prefill; i <= s.T; i++) {
        const rows = tf.reshape(prefixes[i]!, [s.B * i, s.C]) as tf.Tensor2D;
        tf.matMul(rows, cAttnT).dispose();
        tf.matMul(rows, cProjT).dispose();
        rows.dispose();
      }
    },
    dispose(): void {
      tf.dispose([x, cAttnT, cProjT, ...steps, ...prefixes.filter((p) => p !== null)]);
    },
  };
}

/** Times both cells with the same options; returns the two timings and the speedup. */
export function measureSeed(
  s: SeedSizes,
  options: TimeitOptions,
  progress: (what: string) => void,
  withProjections = true,
): { cached: Timing; uncached: Timing; projections: Timing | null; speedup: number } {
  const w = seedWorkload(s);
  try {
    progress('cached loop');
    const cached = timeit(() => w.cached(), options);
    progress('uncached loop');
    const uncached = timeit(() => w.uncached(), options);
    let projections: Timing | null = null;
    if (withProjections) {
      progress("the uncached loop's projection matMuls alone");
      projections = timeit(() => w.projectionsOnly(), options);
    }
    return { cached, uncached, projections, speedup: uncached.meanMs / cached.meanMs };
  } finally {
    w.dispose();
  }
}

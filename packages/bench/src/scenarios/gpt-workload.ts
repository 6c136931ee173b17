/**
 * The `gpt` workload: a whole GPT (GPT-2 small's shape in full runs: 12 layers, C=768, 12 heads,
 * vocab 50257, blockSize 1024) with random weights, the prompt it decodes, and kvkit's model on
 * them. Every engine (kvkit, PyTorch, both ONNX Runtimes) gets the same weights from
 * `gptWeights`, drawn from kvkit's generator with a fixed seed, so each peer scenario can draw
 * them again instead of keeping half a gigabyte alive between scenarios.
 *
 * A decode step "at t" writes position t with t positions cached before it (the context
 * scenario's convention). blockSize 1024 holds positions 0 .. 1023, so the longest step is at
 * t = 1023 (it attends over all 1024 positions): position 1024 would be past the position
 * embeddings. The step at t decodes prompt token t, so it computes exactly what the no-cache
 * forward of the prompt's first t + 1 tokens computes for its last position.
 */
import { GPT, type StateDict } from '@kvkit/attention';
import { Generator } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import type { TimeitOptions } from '../timeit.ts';

/** The model's sizes and the contexts a run decodes at. */
export interface GptSizes {
  nLayer: number;
  nHead: number;
  C: number;
  vocabSize: number;
  blockSize: number;
  /** Decode steps are timed at these t (ascending; the last is blockSize - 1). */
  contexts: readonly number[];
  /** The uncached step is timed at this t: the forward of the first t + 1 tokens. */
  uncachedT: number;
}

/**
 * Full runs: GPT-2 small's shape. Quick runs: a tiny model, so the smoke run stays short.
 *
 * @example
 * const s = quick ? gptSizes.quick : gptSizes.full;
 * s.contexts; // [128, 512, 1023] in full runs
 */
export const gptSizes = {
  full: {
    nLayer: 12,
    nHead: 12,
    C: 768,
    vocabSize: 50257,
    blockSize: 1024,
    contexts: [128, 512, 1023],
    uncachedT: 512,
  },
  quick: {
    nLayer: 2,
    nHead: 4,
    C: 64,
    vocabSize: 512,
    blockSize: 64,
    contexts: [16, 32, 63],
    uncachedT: 32,
  },
} as const satisfies Record<'full' | 'quick', GptSizes>;

/** The seed of the weights and the prompt. */
const seed = 2024;

/** A named float32 array with its torch shape. */
export interface GptTensor {
  shape: number[];
  data: Float32Array;
}

/**
 * minGPT's parameter names and torch shapes (`(out, in)` for Linear weights), in order.
 *
 * @example
 * gptParameterList(gptSizes.quick)[0]; // ['transformer.wte.weight', [512, 64]]
 */
export function gptParameterList(s: GptSizes): [string, number[]][] {
  const { C, nLayer, vocabSize: V, blockSize } = s;
  const out: [string, number[]][] = [
    ['transformer.wte.weight', [V, C]],
    ['transformer.wpe.weight', [blockSize, C]],
  ];
  for (let i = 0; i < nLayer; i++) {
    const p = `transformer.h.${i}.`;
    out.push(
      [`${p}ln_1.weight`, [C]],
      [`${p}ln_1.bias`, [C]],
      [`${p}attn.c_attn.weight`, [3 * C, C]],
      [`${p}attn.c_attn.bias`, [3 * C]],
      [`${p}attn.c_proj.weight`, [C, C]],
      [`${p}attn.c_proj.bias`, [C]],
      [`${p}ln_2.weight`, [C]],
      [`${p}ln_2.bias`, [C]],
      [`${p}mlp.c_fc.weight`, [4 * C, C]],
      [`${p}mlp.c_fc.bias`, [4 * C]],
      [`${p}mlp.c_proj.weight`, [C, 4 * C]],
      [`${p}mlp.c_proj.bias`, [C]],
    );
  }
  out.push(
    ['transformer.ln_f.weight', [C]],
    ['transformer.ln_f.bias', [C]],
    ['lm_head.weight', [V, C]],
  );
  return out;
}

/** `n` uniform values with this mean and standard deviation, from `g` (24 bits each). */
function uniform(g: Generator, n: number, mean: number, std: number): Float32Array {
  const out = new Float32Array(n);
  const halfWidth = std * Math.sqrt(3); // U(-a, a) has std a / sqrt(3)
  const words = new Uint32Array(Math.min(n, 1 << 20));
  for (let at = 0; at < n; at += words.length) {
    const w = at + words.length <= n ? words : words.subarray(0, n - at);
    g.fill(w);
    for (let i = 0; i < w.length; i++)
      out[at + i] = mean + ((w[i]! >>> 8) * 2 ** -23 - 1) * halfWidth;
  }
  return out;
}

/**
 * The weights every engine runs, under minGPT's names and torch's layouts: uniform values with
 * the standard deviations of minGPT's init (0.02, and 0.02 / sqrt(2 nLayer) for every
 * `c_proj.weight`; uniform because it draws ten times faster than a normal), and, unlike minGPT's
 * init, non-zero biases (std 0.02) and layer-norm weights 1 ± 0.1, so a peer that drops a bias
 * or swaps two norms fails the check. Deterministic: the same sizes give the same values.
 *
 * @example
 * const w = gptWeights(gptSizes.quick);
 * w.get('lm_head.weight')!.shape; // [512, 64]
 */
export function gptWeights(s: GptSizes): Map<string, GptTensor> {
  const g = new Generator(seed);
  const projStd = 0.02 / Math.sqrt(2 * s.nLayer);
  const out = new Map<string, GptTensor>();
  for (const [name, shape] of gptParameterList(s)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const norm = /ln_(1|2|f)\.weight$/.test(name);
    const std = norm ? 0.1 / Math.sqrt(3) : name.endsWith('c_proj.weight') ? projStd : 0.02;
    out.set(name, { shape, data: uniform(g, n, norm ? 1 : 0, std) });
  }
  return out;
}

/**
 * The prompt: blockSize token ids, uniform over the vocabulary (its own generator).
 *
 * @example
 * const ids = gptPrompt(gptSizes.quick); // Int32Array(64)
 */
export function gptPrompt(s: GptSizes): Int32Array {
  const words = new Generator(seed + 1).fill(new Uint32Array(s.blockSize));
  return Int32Array.from(words, (w) => Math.floor((w / 2 ** 32) * s.vocabSize));
}

/**
 * The config kvkit's GPT is built with: dropout off, one batch row for the static cache.
 *
 * @example
 * const gpt = new GPT(gptConfig(gptSizes.quick), { weights });
 */
export function gptConfig(s: GptSizes) {
  return {
    ...GPT.getDefaultConfig(),
    nLayer: s.nLayer,
    nHead: s.nHead,
    nEmbd: s.C,
    vocabSize: s.vocabSize,
    blockSize: s.blockSize,
    // The default 64 rows would make GPT-2 small's static cache ~4.8 GB.
    maxBatchSize: 1,
    embdPdrop: 0,
    residPdrop: 0,
    attnPdrop: 0,
  };
}

/**
 * The timing of a call that takes seconds (a GPT's no-cache forward of 513 tokens): 3 repeats
 * of one call (fewer when the run asks for fewer), no warm-up beyond the one untimed call a
 * given loop count makes, which the caller uses to read and check the call's output.
 *
 * @example
 * const t = timeit(forward, slowCallTiming(ctx.timing)); // 4 calls in all
 */
export function slowCallTiming(timing: TimeitOptions): TimeitOptions {
  return {
    ...timing,
    loops: timing.loops ?? 1,
    repeats: Math.min(3, timing.repeats ?? 3),
    warmup: 0,
  };
}

/**
 * Why the GPT cannot run in this run, or null: on the cpu backend tfjs's matMuls are plain
 * JavaScript, and kvkit's prefill and no-cache forwards of GPT-2 small alone would take many
 * minutes (quick runs' tiny model runs anywhere).
 *
 * @example
 * const why = gptUnavailable(ctx);
 * if (why) return { ...base, skipped: why };
 */
export function gptUnavailable(ctx: { backend: 'wasm' | 'cpu'; quick: boolean }): string | null {
  return ctx.backend === 'cpu' && !ctx.quick
    ? 'GPT-2 small on the cpu backend would take many minutes (run it on wasm, or with --quick)'
    : null;
}

/** Positions a prefill writes per forward call. */
export const prefillChunk = 256;

/**
 * kvkit's GPT on `gptWeights`, with the static cache, and the calls the scenario times. `fill`
 * caches positions [0, maxT) of the prompt; `step(t)` decodes prompt token t at position t
 * (cropping back to t first when more is cached: O(1) for the static cache), returning its
 * logits `(1, 1, vocab)`; `uncached(prefix)` is the no-cache forward of a prefix, last position.
 *
 * @example
 * const w = gptWorkload(gptSizes.quick);
 * w.fill(63);
 * w.step(63).dispose();
 * w.dispose();
 */
export function gptWorkload(s: GptSizes, weights: Map<string, GptTensor> = gptWeights(s)) {
  const dict: StateDict = Object.fromEntries(weights);
  const gpt = new GPT(gptConfig(s), { weights: dict }).eval();
  const ids = gptPrompt(s);
  // Made now, not in the timed calls (timeit counts tensors made there as leaks).
  const tokens = new Map<number, tf.Tensor2D>();
  const token = (t: number) => {
    const known = tokens.get(t);
    if (known) return known;
    const x = tf.tensor2d([ids[t]!], [1, 1], 'int32');
    tokens.set(t, x);
    return x;
  };
  for (const t of s.contexts) token(t);
  return {
    gpt,
    ids,
    /** Caches positions [0, t) of the prompt, in chunks of `prefillChunk`. */
    fill(t: number): void {
      gpt.resetCache();
      for (let start = 0; start < t; start += prefillChunk) {
        const n = Math.min(prefillChunk, t - start);
        const chunk = tf.tensor2d(ids.subarray(start, start + n), [1, n], 'int32');
        gpt.forward(chunk, { useKvCache: true, startPos: start, lastPositionOnly: true }).dispose();
        chunk.dispose();
      }
    },
    step(t: number): tf.Tensor3D {
      return gpt.forward(token(t), { useKvCache: true, startPos: t, lastPositionOnly: true });
    },
    /** The prompt's first t + 1 tokens `(1, t + 1)`, for `uncached`. */
    prefix(t: number): tf.Tensor2D {
      return tf.tensor2d(ids.subarray(0, t + 1), [1, t + 1], 'int32');
    },
    uncached(prefix: tf.Tensor2D): tf.Tensor3D {
      return gpt.forward(prefix, { lastPositionOnly: true });
    },
    dispose(): void {
      for (const x of tokens.values()) x.dispose();
      gpt.dispose();
    },
  };
}

export type GptWorkload = ReturnType<typeof gptWorkload>;

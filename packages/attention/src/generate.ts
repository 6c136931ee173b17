import { type Generator, getDefaultGenerator } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { checkGenerateOptions, type GeneratePlan } from './generate-options.ts';
import type { GPT } from './gpt.ts';
import type { PromptIds } from './idx.ts';
import { nextTokens } from './next-token.ts';

export type { PromptIds } from './idx.ts';

/**
 * Options of {@link generate} (minGPT's `generate(idx, max_new_tokens, temperature, do_sample,
 * top_k)` and the fork's `use_kv_cache`), plus stop tokens, an AbortSignal and a callback.
 *
 * @example
 * const options: GenerateOptions = { maxNewTokens: 50, doSample: true, temperature: 0.8, topK: 10, seed: 42 };
 */
export interface GenerateOptions {
  /** Tokens to add to each row (a non-negative integer). */
  maxNewTokens: number;
  /**
   * Decode with the model's key-value cache (default true): the prompt runs once at startPos 0,
   * then one token per step at its position. The prompt plus `maxNewTokens` must fit blockSize.
   * Without the cache every step re-runs the last blockSize tokens, as minGPT does.
   */
  useKvCache?: boolean;
  /** Logits are divided by it before softmax. A finite number > 0; default 1. */
  temperature?: number;
  /** Sample from the probabilities (default false: take the most likely token). */
  doSample?: boolean;
  /** Keep only the k most likely tokens per step (an integer in [1, vocabSize]); default all. */
  topK?: number | null;
  /**
   * Draw from a fresh generator seeded with it: the tokens `torch.manual_seed(seed)` right before
   * minGPT's `generate` gives. The default generator is not touched. Not with `generator`.
   */
  seed?: number | bigint;
  /** Draw from this generator (default: the default generator, like torch's global one). */
  generator?: Generator;
  /** Token ids that end a row; the stop token is kept. Generation ends when every row has stopped. */
  stopTokens?: readonly number[];
  /** Aborts between steps: the call rejects with `signal.reason` and frees what it made. */
  signal?: AbortSignal;
  /** Called after every step with the tokens just chosen. */
  onToken?: (step: TokenStep) => void;
}

/** One generation step: the token chosen for each row. */
export interface TokenStep {
  /** 0 for the first new token. */
  step: number;
  /** The token chosen for each row (rows that stopped earlier still get one; it is not kept). */
  tokens: number[];
  /** Whether each row has stopped (at this step or before). */
  stopped: boolean[];
}

/** What {@link generate} returns. */
export interface GenerateResult {
  /** Each row's prompt and new tokens (a row that stopped ends with its stop token). */
  tokens: number[][];
  /** Each row's new tokens only. */
  newTokens: number[][];
  /** Why each row ended: `length` (maxNewTokens reached) or `stop` (a stop token). */
  finishReasons: ('length' | 'stop')[];
  /** Steps run (new positions per row). */
  steps: number;
  /** Wall-clock timing of the whole call. */
  timing: GenerateTiming;
}

/** Timing of a generation, in milliseconds and tokens per second (all rows counted). */
export interface GenerateTiming {
  totalMs: number;
  /** The first step: the prompt's forward and the first token. */
  firstTokenMs: number;
  /** New tokens (rows x steps) per second over the whole call. */
  tokensPerSecond: number;
  /** New tokens per second after the first step (the decode rate); NaN with one step or less. */
  decodeTokensPerSecond: number;
}

/** Models generating right now: one model's cache cannot serve two generations at once. */
const busy = new WeakSet<GPT>();

/** Lets timers and abort events run between steps, without the 1 ms floor of setTimeout in Node. */
function yieldToEventLoop(): Promise<void> {
  if (typeof setImmediate === 'function') return new Promise((done) => setImmediate(done));
  return new Promise((done) => setTimeout(done, 0));
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason ?? new Error('generation aborted');
}

/**
 * minGPT's generation as an async iterator of steps, one token per row each, with stop tokens,
 * an AbortSignal and the result as the iterator's return value. Every option is checked when
 * it is called (typed errors, nothing run); breaking out of the loop or aborting frees every
 * tensor it made. The model's cache keeps its allocation for the next call.
 *
 * @example
 * for await (const { tokens } of streamTokens(gpt, [[1, 2, 3]], { maxNewTokens: 20 })) {
 *   process.stdout.write(tokenizer.decode(tokens));
 * }
 */
export function streamTokens(
  model: GPT,
  idx: PromptIds,
  options: GenerateOptions,
): AsyncGenerator<TokenStep, GenerateResult> {
  const plan = checkGenerateOptions(model, idx, options, busy.has(model));
  return run(model, plan);
}

/**
 * minGPT's `generate`: `maxNewTokens` new tokens per row of `idx`, greedy or sampled, with the
 * cache (the default) or without it. With `seed`, the sampled tokens are those of
 * `torch.manual_seed(seed); model.generate(...)` in PyTorch 1.13 on CPU for the same weights.
 * Options are checked before anything runs (typed errors).
 *
 * @example
 * const { tokens, timing } = await generate(gpt, [[0, 5, 3]], { maxNewTokens: 10, doSample: true, topK: 5, seed: 7 });
 * console.log(tokens[0], `${timing.tokensPerSecond.toFixed(0)} tokens/s`);
 */
export async function generate(
  model: GPT,
  idx: PromptIds,
  options: GenerateOptions,
): Promise<GenerateResult> {
  const iterator = streamTokens(model, idx, options);
  for (;;) {
    const next = await iterator.next();
    if (next.done) return next.value;
  }
}

async function* run(model: GPT, plan: GeneratePlan): AsyncGenerator<TokenStep, GenerateResult> {
  const { rows, maxNewTokens, useKvCache, signal, onToken, stopTokens } = plan;
  throwIfAborted(signal);
  if (busy.has(model)) throw plan.busyError();
  busy.add(model);
  const B = rows.length;
  const T = rows[0]!.length;
  const { vocabSize: V, blockSize } = model.dims;
  const sequences = rows.map((r) => [...r]); // what the model has seen and will see, per row
  const newTokens: number[][] = rows.map(() => []);
  const stopped = rows.map(() => false);
  const sampling = {
    temperature: plan.temperature,
    topK: plan.topK,
    doSample: plan.doSample,
    generator: plan.generator ?? getDefaultGenerator(),
  };
  const start = performance.now();
  let firstTokenMs = 0;
  let steps = 0;
  try {
    for (let step = 0; step < maxNewTokens; step++) {
      let input: tf.Tensor2D;
      let startPos = 0;
      if (useKvCache && step > 0) {
        input = tf.tensor2d(
          Int32Array.from(sequences, (s) => s[s.length - 1]!),
          [B, 1],
          'int32',
        );
        startPos = T + step - 1;
      } else {
        // The prompt (cached path, step 0), or the last blockSize tokens (minGPT's crop).
        const t = Math.min(sequences[0]!.length, blockSize);
        input = tf.tensor2d(
          Int32Array.from(sequences.flatMap((s) => s.slice(-t))),
          [B, t],
          'int32',
        );
      }
      let logits: tf.Tensor | null = null;
      let values: Float32Array;
      try {
        logits = model.forward(input, { useKvCache, startPos, lastPositionOnly: true }); // (B, 1, V)
        values = (await logits.data()) as Float32Array;
      } finally {
        input.dispose();
        logits?.dispose();
      }
      const next = nextTokens(values, B, V, sampling);
      for (let b = 0; b < B; b++) {
        sequences[b]!.push(next[b]!);
        if (stopped[b]) continue;
        newTokens[b]!.push(next[b]!);
        if (stopTokens.has(next[b]!)) stopped[b] = true;
      }
      steps = step + 1;
      if (step === 0) firstTokenMs = performance.now() - start;
      const event: TokenStep = { step, tokens: Array.from(next), stopped: [...stopped] };
      onToken?.(event);
      yield event;
      if (stopped.every(Boolean)) break;
      await yieldToEventLoop();
      throwIfAborted(signal);
    }
  } finally {
    busy.delete(model);
  }
  const totalMs = performance.now() - start;
  const generated = steps * B;
  return {
    tokens: rows.map((r, b) => [...r, ...newTokens[b]!]),
    newTokens,
    finishReasons: stopped.map((s) => (s ? 'stop' : 'length')),
    steps,
    timing: {
      totalMs,
      firstTokenMs,
      tokensPerSecond: totalMs > 0 ? (generated * 1000) / totalMs : Number.NaN,
      decodeTokensPerSecond:
        steps > 1 ? ((steps - 1) * B * 1000) / (totalMs - firstTokenMs) : Number.NaN,
    },
  };
}

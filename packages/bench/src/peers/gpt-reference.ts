/**
 * kvkit's side of the GPT comparisons: its logits on the shared weights and prompt, which every
 * peer must reproduce before its timings count. The `gpt` scenario computes them while it runs
 * (`runGptSchedule` with its timings hooked in) and remembers them for the peer scenarios of
 * the same run; a peer scenario run without it computes them itself.
 */
import { type GptSizes, type GptWorkload, gptWorkload } from '../scenarios/gpt-workload.ts';

/** kvkit's logits `(vocab)` of each decode step, by t, and of the no-cache forward at uncachedT. */
export interface GptReference {
  steps: Map<number, Float32Array>;
  uncached: Float32Array;
}

const remembered = new Map<string, GptReference>();
const keyOf = (s: GptSizes) => JSON.stringify(s);

/** What to do at each point of the schedule, with the model in the state it names. */
export interface GptScheduleHooks {
  /** After the step at t was computed once: the cache holds positions [0, t]. */
  step?(t: number): void;
  /**
   * Given the no-cache forward of the first uncachedT + 1 tokens: call it at least once (its
   * first call also reads kvkit's logits, so a timing's first, untimed call can be that one).
   */
  uncached?(forward: () => void): void;
}

/**
 * The schedule every engine follows: cache the prompt's first maxT positions, then, longest
 * context first, decode prompt token t at position t (each shorter step crops back to t), then
 * the no-cache forward of the first uncachedT + 1 tokens. Returns kvkit's logits at each point
 * and remembers them for the peers of this run.
 *
 * @example
 * const ref = runGptSchedule(w, gptSizes.quick, { step: (t) => timeit(() => w.step(t).dispose()) });
 */
export function runGptSchedule(
  w: GptWorkload,
  s: GptSizes,
  hooks: GptScheduleHooks = {},
): GptReference {
  const contexts = [...s.contexts].sort((a, b) => b - a);
  w.fill(contexts[0]!);
  const steps = new Map<number, Float32Array>();
  for (const t of contexts) {
    const y = w.step(t);
    steps.set(t, Float32Array.from(y.dataSync()));
    y.dispose();
    hooks.step?.(t);
  }
  const prefix = w.prefix(s.uncachedT);
  try {
    let uncached: Float32Array | null = null;
    const forward = () => {
      const y = w.uncached(prefix);
      uncached ??= Float32Array.from(y.dataSync());
      y.dispose();
    };
    hooks.uncached?.(forward);
    if (!uncached) forward();
    const ref = { steps, uncached: uncached! };
    remembered.set(keyOf(s), ref);
    return ref;
  } finally {
    prefix.dispose();
  }
}

/**
 * kvkit's logits for these sizes: the ones this run's `gpt` scenario computed, or computed now
 * on a model built for the purpose (and freed).
 *
 * @example
 * const ref = gptReference(gptSizes.quick);
 * ref.steps.get(63)!.length; // 512, the vocabulary
 */
export function gptReference(s: GptSizes): GptReference {
  const known = remembered.get(keyOf(s));
  if (known) return known;
  const w = gptWorkload(s);
  try {
    return runGptSchedule(w, s);
  } finally {
    w.dispose();
  }
}

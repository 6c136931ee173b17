import { ValueError } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { mean, median, min, standardDeviation } from 'simple-statistics';
import type { Timing } from './report/schema.ts';

export interface TimeitOptions {
  /** Calls per repeat; 0 = calibrate like IPython (1, 2, 5, 10, 20, ... until >= targetMs). */
  loops?: number;
  /** Timed repeats, IPython's default 7. */
  repeats?: number;
  /** Calibration target for one repeat, ms (IPython: 200). */
  targetMs?: number;
  /**
   * Soft cap on the whole measurement, ms: when `loops * repeats` calls would take longer,
   * repeats are reduced, down to `minRepeats`. Keeps slow variants from eating the run.
   */
  budgetMs?: number;
  minRepeats?: number;
  /** Untimed calls before calibration (JIT, kernel caches, first allocations). */
  warmup?: number;
  /** Called after each repeat with (done, total), for progress displays. */
  onRepeat?: (done: number, total: number) => void;
}

/**
 * One measurement as a sequence of requests: "call the function `loops` times and tell me how
 * long it took". The sync and async drivers below answer them, so both time by the same rules.
 */
type Plan = Generator<number, Timing, number>;

function* plan(options: TimeitOptions): Plan {
  const {
    targetMs = 200,
    budgetMs = Number.POSITIVE_INFINITY,
    minRepeats = 3,
    warmup = 1,
  } = options;
  let repeats = options.repeats ?? 7;
  let loops = options.loops ?? 0;
  // Validate everything before the first call: calibration loops until a repeat takes
  // targetMs, so a NaN or infinite target would never return.
  check('repeats', repeats, Number.isInteger(repeats) && repeats >= 1, 'a positive integer');
  check('loops', loops, Number.isInteger(loops) && loops >= 0, 'a non-negative integer');
  check('targetMs', targetMs, Number.isFinite(targetMs) && targetMs > 0, 'a finite number > 0');
  check('budgetMs', budgetMs, budgetMs > 0, 'a number > 0 (Infinity: no cap)');
  check(
    'minRepeats',
    minRepeats,
    Number.isInteger(minRepeats) && minRepeats >= 1,
    'a positive integer',
  );
  check('warmup', warmup, Number.isInteger(warmup) && warmup >= 0, 'a non-negative integer');
  if (warmup > 0) yield warmup; // untimed: the answer is ignored
  let perCallMs = Number.NaN;
  if (loops === 0) {
    // Python's timeit.autorange: 1, 2, 5, 10, 20, 50, ... until one repeat takes targetMs.
    for (let scale = 1; ; scale *= 10) {
      for (const m of [1, 2, 5]) {
        loops = m * scale;
        const ms = yield loops;
        perCallMs = ms / loops;
        if (ms >= targetMs) break;
      }
      if (perCallMs * loops >= targetMs) break;
    }
  } else {
    perCallMs = yield 1;
  }
  const affordable = Math.floor(budgetMs / (perCallMs * loops));
  repeats = Math.max(Math.min(repeats, minRepeats), Math.min(repeats, affordable));
  const samplesMs: number[] = [];
  for (let r = 0; r < repeats; r++) {
    samplesMs.push((yield loops) / loops);
    options.onRepeat?.(r + 1, repeats);
  }
  return {
    meanMs: mean(samplesMs),
    stdMs: standardDeviation(samplesMs), // population std, as IPython's TimeitResult
    minMs: min(samplesMs),
    medianMs: median(samplesMs),
    loops,
    repeats,
    samplesMs,
  };
}

/**
 * `%timeit` for one function: warm up, calibrate loops per repeat, then time `repeats` runs of
 * `loops` calls and report the per-call mean ± population std over repeats (as IPython), with
 * min, median and the raw samples. `fn` must dispose what it creates: the tensor count is
 * checked after the timed runs, and a leak fails the measurement instead of skewing it.
 *
 * @example
 * const t = timeit(() => mha.forward(x).dispose(), { repeats: 7 });
 * console.log(formatTimeit(t)); // "1.2 ms ± 30 µs per loop (mean ± std. dev. of 7 runs, 200 loops each)"
 */
export function timeit(fn: () => void, options: TimeitOptions = {}): Timing {
  const tensorsBefore = tf.memory().numTensors;
  const steps = plan(options);
  let step = steps.next();
  while (!step.done) {
    const start = performance.now();
    for (let i = 0; i < step.value; i++) fn();
    step = steps.next(performance.now() - start);
  }
  checkLeaks(tensorsBefore, step.value);
  return step.value;
}

/**
 * `timeit` for an async function (an ONNX Runtime session's `run`), by the same rules: each
 * call is awaited before the next starts, and the time includes the awaits.
 *
 * @example
 * const t = await timeitAsync(() => session.run(feeds).then(() => {}));
 */
export async function timeitAsync(
  fn: () => Promise<void>,
  options: TimeitOptions = {},
): Promise<Timing> {
  const tensorsBefore = tf.memory().numTensors;
  const steps = plan(options);
  let step = steps.next();
  while (!step.done) {
    const start = performance.now();
    for (let i = 0; i < step.value; i++) await fn();
    step = steps.next(performance.now() - start);
  }
  checkLeaks(tensorsBefore, step.value);
  return step.value;
}

function checkLeaks(tensorsBefore: number, t: Timing): void {
  const leaked = tf.memory().numTensors - tensorsBefore;
  if (leaked !== 0) {
    throw new Error(
      `timeit: the timed function leaked ${leaked} tensor(s) over ${t.repeats * t.loops} calls`,
    );
  }
}

function check(argument: string, value: number, ok: boolean, expected: string): void {
  if (!ok)
    throw new ValueError(`timeit: ${argument} must be ${expected}, got ${value}`, {
      argument,
      value,
    });
}

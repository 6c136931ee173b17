// What "Run it in your browser" times (BrowserBench.vue shows it): the seed scenario's two loops
// and the gpt scenario's schedule at its quick sizes, each by kvbench's timeit rules, as rows of
// "the report" beside "your browser". The loops run on the page's thread; `say` reports progress
// and lets the page paint before each one blocks it.
import type { BrowserBaseline } from '../../../benchmarks/load-report.ts';

export type Bench = typeof import('@kvkit/bench/browser');

/** One row of a table: the report's cell, the browser's, and the browser's raw number. */
export interface Row {
  label: string;
  report: string;
  browser: string;
  /** The browser's mean in ms, or the ratio for a speedup row (for tests). */
  value: number;
}

type Timing = ReturnType<Bench['timeit']>;
const meanStd = (b: Bench, t: Timing) => `${b.formatTime(t.meanMs)} ± ${b.formatTime(t.stdMs)}`;

/**
 * The seed scenario (the notebook's sizes: B=8, T=64, C=128, 8 heads), cached and uncached loops,
 * with kvbench's seed options.
 *
 * @example
 * const rows = await seedRows(bench, baseline, say); // cached loop, uncached loop, speedup
 */
export async function seedRows(
  b: Bench,
  baseline: BrowserBaseline | null,
  say: (what: string) => Promise<void>,
): Promise<Row[]> {
  const w = b.seedWorkload(b.seedSizes.full);
  try {
    await say('timing the cached loop…');
    const cached = b.timeit(() => w.cached(), { budgetMs: 60_000 });
    await say('timing the uncached loop…');
    const uncached = b.timeit(() => w.uncached(), { budgetMs: 60_000 });
    const speedup = uncached.meanMs / cached.meanMs;
    return [
      row('cached loop', baseline?.cached, meanStd(b, cached), cached.meanMs),
      row('uncached loop', baseline?.uncached, meanStd(b, uncached), uncached.meanMs),
      row('speedup', baseline?.speedup, b.formatSpeedup(speedup), speedup),
    ];
  } finally {
    w.dispose();
  }
}

/** The gpt rows, and the check that the cached step gives the no-cache forward's logits. */
export interface GptRun {
  rows: Row[];
  /** Largest |difference| between the step's logits at uncachedT and the no-cache forward's. */
  maxAbsDiff: number;
  sizes: string;
}

/**
 * The gpt scenario's schedule at its quick sizes (a tiny GPT with random weights; full runs use
 * GPT-2 small's shape, too large for a page): the cached decode step at each context, timed as
 * the scenario times it, then the no-cache forward at uncachedT.
 *
 * @example
 * const { rows, maxAbsDiff } = await gptRun(bench, baseline, say);
 */
export async function gptRun(
  b: Bench,
  baseline: BrowserBaseline | null,
  say: (what: string) => Promise<void>,
): Promise<GptRun> {
  const s = b.gptSizes.quick;
  const report = baseline?.gpt ?? null;
  const steps = new Map<number, Timing>();
  let uncached: Timing | null = null;
  await say('building the model and caching the prompt…');
  const w = b.gptWorkload(s);
  try {
    const ref = b.runGptSchedule(w, s, {
      step: (t) => {
        steps.set(
          t,
          b.timeit(() => w.step(t).dispose(), { budgetMs: 3_000 }),
        );
      },
      uncached: (forward) => {
        uncached = b.timeit(forward, b.slowCallTiming({}));
      },
    });
    const atU = ref.steps.get(s.uncachedT)!;
    const maxAbsDiff = atU.reduce((m, v, i) => Math.max(m, Math.abs(v - ref.uncached[i]!)), 0);
    const u = uncached as Timing | null;
    if (!u) throw new Error('the gpt schedule did not run the no-cache forward');
    const step = steps.get(s.uncachedT)!;
    const rows = s.contexts.map((t, i) => {
      const time = steps.get(t)!;
      const theirs = report?.steps[i];
      return row(
        'cached step',
        theirs && `${theirs.time} (t=${theirs.t})`,
        `${meanStd(b, time)} (t=${t}, ${(1000 / time.meanMs).toFixed(0)} tokens/s)`,
        time.meanMs,
      );
    });
    rows.push(
      row(
        'no-cache forward',
        report && `${report.uncached.time} (t=${report.uncached.t})`,
        `${meanStd(b, u)} (t=${s.uncachedT})`,
        u.meanMs,
      ),
      row(
        'speedup (no-cache forward / cached step, same t)',
        report?.speedup,
        b.formatSpeedup(u.meanMs / step.meanMs),
        u.meanMs / step.meanMs,
      ),
    );
    return { rows, maxAbsDiff, sizes: b.gptDims(s) };
  } finally {
    w.dispose();
  }
}

function row(label: string, report: string | null | undefined, browser: string, value: number) {
  return { label, report: report ?? '—', browser, value };
}

import { gptForwardWork } from '../floors.ts';
import { runGptSchedule } from '../peers/gpt-reference.ts';
import type { Measurement, Scenario } from '../report/schema.ts';
import type { ScenarioDefinition } from '../scenario.ts';
import { timeit } from '../timeit.ts';
import { timeGptParts } from './gpt-parts.ts';
import { gptSizes, gptUnavailable, gptWorkload, slowCallTiming } from './gpt-workload.ts';
import { gptDims } from './titles.ts';

/**
 * The targets the issue sets for kvkit's GPT decode, as ratios from one run (the report's
 * parameters carry them so a reader sees each ratio beside its target).
 */
export const gptTargets = {
  overTorchAddmv: '<= 0.8 (kvkit / PyTorch addmv form, step at t=512)',
  overFloor: '<= 1.5 (kvkit / the bandwidth floor, step at t=512)',
  flatness: '<= 1.15 (step at the longest t / step at t=128)',
  speedup: '>= 20 (no-cache forward / cached step, t=512)',
} as const;

/**
 * A whole GPT decoding at B=1 with the static cache: ms per token and tokens/s at each context,
 * the no-cache forward of the same prefix at uncachedT, and where the step's time goes there
 * (each part timed alone: gpt-parts.ts). Steps re-decode position t by cropping back to it.
 */
export const gptScenario: ScenarioDefinition = {
  id: 'gpt',
  title:
    'GPT decode, B=1, static cache (GPT-2 small: 12 layers, C=768, 12 heads, vocab 50257): t = 128, 512, 1023',
  async run(ctx) {
    const s = ctx.quick ? gptSizes.quick : gptSizes.full;
    const [lo, hi] = [s.contexts[0]!, s.contexts[s.contexts.length - 1]!];
    const title = `GPT decode, B=1, static cache (${gptDims(s)}): t = ${s.contexts.join(', ')}`;
    const unavailable = gptUnavailable(ctx);
    if (unavailable) {
      const params = { ...s, B: 1, backend: ctx.backend };
      return { id: 'gpt', title, params, measurements: [], derived: {}, skipped: unavailable };
    }
    ctx.progress('gpt: drawing the weights and building the model');
    const w = gptWorkload(s);
    const measurements: Measurement[] = [];
    try {
      ctx.progress(`gpt: prefill of ${hi} positions`);
      runGptSchedule(w, s, {
        step: (t) => {
          ctx.progress(`gpt: cached step at t=${t}`);
          const timing = timeit(() => w.step(t).dispose(), { budgetMs: 3_000, ...ctx.timing });
          measurements.push({
            key: `cached/t=${t}`,
            labels: { variant: 'cached', t },
            timing,
            extra: { tokensPerSecond: 1000 / timing.meanMs },
          });
          if (t === s.uncachedT) measurements.push(...timeGptParts(ctx, w, t));
        },
        uncached: (forward) => {
          ctx.progress(`gpt: no-cache forward of ${s.uncachedT + 1} tokens`);
          // Each call takes seconds on GPT-2 small: 3 repeats of one call. The first, untimed
          // call (the one a given loop count still makes) reads kvkit's logits and warms up.
          const timing = timeit(forward, slowCallTiming(ctx.timing));
          measurements.push({
            key: `uncached/t=${s.uncachedT}`,
            labels: { variant: 'uncached', t: s.uncachedT },
            timing,
            extra: { tokensPerSecond: 1000 / timing.meanMs },
          });
        },
      });
    } finally {
      w.dispose();
    }
    const at = (key: string) => measurements.find((m) => m.key === key)!.timing;
    const step = at(`cached/t=${s.uncachedT}`);
    const parts = measurements.filter((m) => m.labels.variant === 'part');
    const bytes = gptForwardWork(s, 1, 1, s.uncachedT + 1).bytes;
    const u = s.uncachedT;
    const result: Scenario = {
      id: 'gpt',
      title,
      params: {
        ...s,
        B: 1,
        cache: 'static',
        step: 'forward(token, { useKvCache, startPos: t, lastPositionOnly }), re-decoding position t (cropped back to t)',
        uncached: `forward(first ${u + 1} tokens, { lastPositionOnly })`,
        weights: 'gptWeights: uniform, seeded, minGPT init std',
        backend: ctx.backend,
        targets: gptTargets,
      },
      measurements,
      derived: {
        [`flatnessT${hi}OverT${lo}`]: at(`cached/t=${hi}`).meanMs / at(`cached/t=${lo}`).meanMs,
        [`speedupAtT${u}`]: at(`uncached/t=${u}`).meanMs / step.meanMs,
        // Weights and keys/values read per token over the step's time: the bandwidth it reaches.
        [`readGBpsAtT${u}`]: bytes / step.meanMs / 1e6,
        // What the parts timed alone leave of the step (fastest repeats: the least disturbed).
        [`restMsAtT${u}`]: step.minMs - parts.reduce((sum, m) => sum + m.timing.minMs, 0),
      },
    };
    return result;
  },
};

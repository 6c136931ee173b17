/**
 * The GPT part of the ONNX Runtime peers: the gpt scenario's weights as one ONNX graph
 * (`gptModel`), the prompt prefilled in chunks with each call's presents fed back as the next
 * call's pasts (as transformers.js decodes), then, longest context first, one decode step at
 * each t on the pasts cut back to t, and the no-cache forward of the first uncachedT + 1
 * tokens. Each point's logits are checked against kvkit's before it is timed; a mismatch, or a
 * model the engine cannot load, skips the GPT part only.
 */
import { gptReference } from '../peers/gpt-reference.ts';
import { gptModel, gptOnnxNames } from '../peers/onnx-gpt.ts';
import type { OrtEngine, OrtSession } from '../peers/ort-engines.ts';
import { PastPresentRunner, values } from '../peers/ort-runner.ts';
import { gptTolerance, maxAbsDiff } from '../peers/verify.ts';
import type { Measurement } from '../report/schema.ts';
import type { ScenarioContext } from '../scenario.ts';
import { timeitAsync } from '../timeit.ts';
import {
  type GptSizes,
  gptPrompt,
  gptUnavailable,
  gptWeights,
  prefillChunk,
  slowCallTiming,
} from './gpt-workload.ts';

/**
 * Runs the GPT on one engine; returns its measurements, or why there are none.
 *
 * @example
 * const g = await ortGptPart(ctx, engine, 'peer-ort-node', gptSizes.full);
 * if (g.skipped) result.partsSkipped = { gpt: g.skipped };
 */
export async function ortGptPart(
  ctx: ScenarioContext,
  engine: OrtEngine,
  label: string,
  s: GptSizes,
): Promise<{ measurements: Measurement[]; skipped: string | null }> {
  const unavailable = gptUnavailable(ctx);
  if (unavailable) return { measurements: [], skipped: unavailable };
  const ref = gptReference(s);
  ctx.progress(`${label}: building the GPT's ONNX graph and session`);
  let session: OrtSession;
  try {
    session = await engine.createSession(gptModel(s, gptWeights(s)));
  } catch (error) {
    const why = String((error as Error).message ?? error).split('\n')[0];
    return { measurements: [], skipped: `${engine.label} could not load the GPT (${why})` };
  }
  const runner = new PastPresentRunner(engine, session, {
    B: 1,
    nKvHeads: s.nHead,
    headSize: s.C / s.nHead,
    layers: s.nLayer,
    inputName: gptOnnxNames.inputIds,
    outputName: gptOnnxNames.logits,
  });
  const ids = gptPrompt(s);
  const input = (from: number, to: number) => engine.int64(ids.subarray(from, to), [1, to - from]);
  const contexts = [...s.contexts].sort((a, b) => b - a);
  const labels = { engine: engine.id, workload: 'gpt' };
  const measurements: Measurement[] = [];
  // The largest |difference| from kvkit's logits, and why it is too large when it is.
  const check = (what: string, ours: Float32Array, theirs: Float32Array) => {
    const d = maxAbsDiff(ours, theirs);
    const problem =
      d <= gptTolerance
        ? null
        : `${engine.label}: GPT logits differ from kvkit's (${what}: max |difference| ${d} > ${gptTolerance}); its GPT timings withheld`;
    return { d, problem };
  };
  try {
    ctx.progress(`${label}: GPT prefill of ${contexts[0]} positions`);
    const chunks = [];
    for (let at = 0; at < contexts[0]!; at += prefillChunk)
      chunks.push(input(at, Math.min(contexts[0]!, at + prefillChunk)));
    const { pasts } = await runner.feed(chunks);
    for (const t of contexts) {
      const past = runner.truncate(pasts, t);
      const token = input(t, t + 1);
      const step = async () => (await runner.run(token, past)).output;
      const { d, problem } = check(`step at t=${t}`, ref.steps.get(t)!, values(await step()));
      if (problem) return { measurements: [], skipped: problem };
      ctx.progress(`${label}: GPT step at t=${t}`);
      const timing = await timeitAsync(async () => void (await step()), {
        budgetMs: 3_000,
        ...ctx.timing,
      });
      measurements.push({
        key: `gpt/cached/t=${t}`,
        labels: { ...labels, variant: 'cached', t },
        timing,
        extra: { logitsMaxAbsDiff: d },
      });
    }
    const t = s.uncachedT;
    const prefix = input(0, t + 1);
    ctx.progress(`${label}: GPT no-cache forward of ${t + 1} tokens`);
    // Each call takes seconds: 3 repeats of one call. The first, untimed call (the one a given
    // loop count still makes) is the one checked against kvkit's logits.
    let checked: ReturnType<typeof check> | null = null;
    const timing = await timeitAsync(async () => {
      const out = (await runner.run(prefix, runner.emptyPasts())).output;
      checked ??= check(`prefix at t=${t}`, ref.uncached, values(out));
    }, slowCallTiming(ctx.timing));
    const { d, problem } = checked!;
    if (problem) return { measurements: [], skipped: problem };
    measurements.push({
      key: `gpt/uncached/t=${t}`,
      labels: { ...labels, variant: 'uncached', t },
      timing,
      extra: { logitsMaxAbsDiff: d },
    });
    return { measurements, skipped: null };
  } finally {
    await runner.release();
  }
}

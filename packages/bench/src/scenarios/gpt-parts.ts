/**
 * Where a GPT decode step's time goes, measured by timing each part of the step on its own, in
 * the same run, through the model's public members: the Linear layers of every block
 * (`h[i].attn.cAttn` and `cProj`; `h[i].mlp.cFc` and `cProj`) and `lmHead` applied to one row,
 * as the step applies them (kvkit's matrix-vector kernel); the attention kernel (`attend` over
 * the model's own cache, t + 1 keys per layer, as the step reads them); and the layer norms,
 * GELU, residual adds and the embedding lookup as the tfjs ops the step runs. Each part loops
 * over the 12 blocks the way one step does, on inputs made beforehand. What the parts leave of
 * the whole step is the rest: staging the attention's rows in and out of the kernel heap, the
 * cache write, reshapes and slices, tf.tidy and each op's dispatch.
 *
 * A part timed alone may find more of its weights in the CPU caches than it does inside a whole
 * step (which streams every weight once): the rest then comes out smaller than what the step
 * really spends on it, never larger.
 */
import { newGelu } from '@kvkit/attention';
import { attend } from '@kvkit/kv-cache';
import * as tf from '@tensorflow/tfjs-core';
import type { Measurement } from '../report/schema.ts';
import type { ScenarioContext } from '../scenario.ts';
import { timeit } from '../timeit.ts';
import type { GptWorkload } from './gpt-workload.ts';

/** The parts, in the order the report lists them. */
export const gptParts = [
  'projections (c_attn + c_proj)',
  'MLP (c_fc + c_proj)',
  'attention kernel',
  'lm_head',
  'layer norms, GELU, adds, embeddings',
] as const;
export type GptPart = (typeof gptParts)[number];

/**
 * Times each part of the decode step at t (the cache must hold positions [0, t]); returns one
 * measurement per part, labelled `{ variant: 'part', part, t }`.
 *
 * @example
 * measurements.push(...timeGptParts(ctx, w, 512));
 */
export function timeGptParts(ctx: ScenarioContext, w: GptWorkload, t: number): Measurement[] {
  const { gpt } = w;
  const { nEmbd: C, nHead: nh } = gpt.dims;
  const x = tf.randomUniform([1, C], -1, 1, 'float32', 1) as tf.Tensor2D; // (1, C)
  const x3 = tf.reshape(x, [1, 1, C]) as tf.Tensor3D; // (1, 1, C)
  const h = tf.randomUniform([1, 4 * C], -1, 1, 'float32', 2) as tf.Tensor2D; // (1, 4C)
  const ids = tf.tensor2d([w.ids[t]!], [1, 1], 'int32');
  const pos = tf.tensor1d([t], 'int32');
  const cache = gpt.kvCache!;
  const heap = cache.heap;
  const rowBytes = C * 4;
  const q = heap.alloc(rowBytes);
  const out = heap.alloc(rowBytes);
  heap.f32().fill(0.01, q / 4, q / 4 + C);
  const views = gpt.h.map((_, layer) => cache.view(layer, 1));
  const row = { batchStride: rowBytes, rowStride: rowBytes };
  const queries = { ptr: q, ...row, T: 1, nHead: nh, startPos: [t] };
  const runs: Record<GptPart, () => void> = {
    'projections (c_attn + c_proj)': () => {
      for (const b of gpt.h) {
        b.attn.cAttn.apply(x).dispose();
        b.attn.cProj.apply(x).dispose();
      }
    },
    'MLP (c_fc + c_proj)': () => {
      for (const b of gpt.h) {
        b.mlp.cFc.apply(x).dispose();
        b.mlp.cProj.apply(h).dispose();
      }
    },
    'attention kernel': () => {
      for (const view of views) attend(view, queries, { ptr: out, ...row });
    },
    lm_head: () => gpt.lmHead.apply(x).dispose(),
    'layer norms, GELU, adds, embeddings': () =>
      tf.tidy(() => {
        tf.add(gpt.wte.apply(ids), gpt.wpe.apply(pos));
        for (const b of gpt.h) {
          tf.add(x3, b.ln1.apply(x3));
          b.ln2.apply(x);
          newGelu(h);
          tf.add(x3, x3);
        }
        gpt.lnF.apply(x);
      }),
  };
  const measurements: Measurement[] = [];
  try {
    for (const part of gptParts) {
      ctx.progress(`gpt: ${part} of the step at t=${t}, alone`);
      const timing = timeit(runs[part], { budgetMs: 2_000, ...ctx.timing });
      measurements.push({ key: `part/${part}`, labels: { variant: 'part', part, t }, timing });
    }
  } finally {
    heap.free(q);
    heap.free(out);
    tf.dispose([x, x3, h, ids, pos]);
  }
  return measurements;
}

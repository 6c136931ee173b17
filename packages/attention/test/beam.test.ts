import type { CacheSpec } from '@kvkit/kv-cache';
import { Generator, rand, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { CausalSelfAttention, GPT } from '../src/index.ts';
import { setupBackend } from './support.ts';

// Beam search's cache step: after every decode step the beams are reordered (some kept twice,
// some dropped: kvCache.reorder(indices)), then each beam decodes its next token. Over 50
// random steps, every output of every beam must equal running that beam's own history alone,
// token by token, in a fresh module (within 1e-6).

beforeAll(setupBackend);

const BEAMS = 4;
const STEPS = 50;
const PROMPT = 5;
const C = 16;
const specs: [string, CacheSpec][] = [
  ['static', 'static'],
  ['dynamic', 'dynamic'],
  ['sliding-window', { strategy: 'sliding-window', window: 8 }],
  ['sink', { strategy: 'sink', window: 6, sinkTokens: 2 }],
];

function build(B: number, cache: CacheSpec, implementation: 'kernel' | 'reference') {
  setSeed(21);
  return new CausalSelfAttention(
    {
      ...GPT.getDefaultConfig(),
      nEmbd: C,
      nHead: 4,
      nKvHeads: 2,
      blockSize: PROMPT + STEPS,
      maxBatchSize: B,
    },
    { cache, implementation },
  ).eval();
}

/** A beam's history: its input rows, and the output the batch gave it at each position. */
interface Beam {
  inputs: number[][];
  outputs: number[][];
}

/** Replays each beam alone, token by token; returns the worst |batch output - alone output|. */
function replay(beams: Beam[], spec: CacheSpec, impl: 'kernel' | 'reference'): number {
  let worst = 0;
  for (const beam of beams) {
    const alone = build(1, spec, impl);
    beam.inputs.forEach((row, p) => {
      const x = tf.tensor3d([[row]]);
      const y = alone.forward(x, { useKvCache: true, startPos: p });
      const got = y.dataSync();
      beam.outputs[p]!.forEach((v, i) => {
        worst = Math.max(worst, Math.abs(v - got[i]!));
      });
      tf.dispose([x, y]);
    });
    alone.dispose();
  }
  return worst;
}

describe.each(specs)('%s cache', (name, spec) => {
  test.each(['kernel', 'reference'] as const)(
    '%s path: 50 random beam steps equal each beam run alone (1e-6)',
    (impl) => {
      const mha = build(BEAMS, spec, impl);
      const draw = new Generator(1234);
      setSeed(5);
      const prompt = rand([1, PROMPT, C]);
      const tokens = rand([STEPS, BEAMS, C]);
      const first = mha.forward(prompt, { useKvCache: true, startPos: 0 });
      mha.kvCache!.reorder(new Array(BEAMS).fill(0)); // every beam starts from the prompt
      const promptRows = (prompt.arraySync() as number[][][])[0]!;
      const promptOut = (first.arraySync() as number[][][])[0]!;
      let beams: Beam[] = Array.from({ length: BEAMS }, () => ({
        inputs: [...promptRows],
        outputs: [...promptOut],
      }));
      let worst = 0;
      let kept = 0;
      for (let step = 0; step < STEPS; step++) {
        // Beams that survive, with repeats (a good beam kept twice), as a beam search picks them.
        const indices = Array.from({ length: BEAMS }, () => draw.random() % BEAMS);
        kept += new Set(indices).size;
        mha.kvCache!.reorder(indices);
        beams = indices.map((i) => ({
          inputs: [...beams[i]!.inputs],
          outputs: [...beams[i]!.outputs],
        }));
        const x = tf.slice(tokens, [step, 0, 0], [1, BEAMS, C]);
        const xs = tf.reshape(x, [BEAMS, 1, C]);
        const y = mha.forward(xs, { useKvCache: true, startPos: PROMPT + step });
        const xr = xs.arraySync() as number[][][];
        const yr = y.arraySync() as number[][][];
        beams.forEach((beam, b) => {
          beam.inputs.push(xr[b]![0]!);
          beam.outputs.push(yr[b]![0]!);
        });
        tf.dispose([x, xs, y]);
        if ((step + 1) % 10 === 0) worst = Math.max(worst, replay(beams, spec, impl));
      }
      console.log(
        `beam ${name} ${impl}: max |batch - alone| over ${STEPS} steps = ${worst.toExponential(2)} (${kept} distinct beams kept of ${STEPS * BEAMS})`,
      );
      expect(kept).toBeLessThan(STEPS * BEAMS); // beams really were duplicated and dropped
      expect(worst).toBeLessThanOrEqual(1e-6);
      expect(mha.kvCache!.seqLength(0, BEAMS - 1)).toBe(PROMPT + STEPS);
      tf.dispose([prompt, tokens, first]);
      mha.dispose();
    },
  );
});

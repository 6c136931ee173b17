import { rand, setSeed } from '@kvkit/tensor-utils';
import { expectNoLeak } from '@kvkit/tensor-utils/testing';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, expect, test } from 'vitest';
import { CausalSelfAttention, GPT } from '../src/index.ts';
import { setupBackend } from './support.ts';

beforeAll(setupBackend);

test('1,000 decode steps leave tf.memory().numTensors unchanged apart from the outputs', async () => {
  const C = 16;
  const steps = 1000;
  setSeed(0);
  const mha = new CausalSelfAttention({
    ...GPT.getDefaultConfig(),
    nHead: 4,
    nKvHeads: 2,
    nEmbd: C,
    blockSize: steps + 4,
    maxBatchSize: 2,
  });
  mha.eval();
  const x = rand([2, 1, C]);
  const prompt = rand([2, 4, C]);
  mha.forward(prompt, { useKvCache: true, startPos: 0 }).dispose();
  const outputs: tf.Tensor[] = [];
  await expectNoLeak(
    () => {
      for (let p = 4; p < 4 + steps; p++)
        outputs.push(mha.forward(x, { useKvCache: true, startPos: p }));
    },
    { allowed: steps, label: `${steps} decode steps` },
  );
  expect(outputs).toHaveLength(steps);
  expect(mha.kvCache?.seqLength()).toBe(steps + 4);
  tf.dispose(outputs);
  // And with the outputs disposed inside the loop, the count is exactly flat.
  mha.resetCache();
  mha.forward(prompt, { useKvCache: true, startPos: 0 }).dispose();
  const before = tf.memory().numTensors;
  for (let p = 4; p < 4 + steps; p++) mha.forward(x, { useKvCache: true, startPos: p }).dispose();
  expect(tf.memory().numTensors).toBe(before);
  tf.dispose([x, prompt]);
  const beforeDispose = tf.memory().numTensors;
  mha.dispose();
  expect(tf.memory().numTensors).toBe(beforeDispose - 4); // its four parameters
});

import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { GPT } from '@kvkit/attention';
import { initBackend } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';

await initBackend('wasm');
const gpt = new GPT({
  ...GPT.getDefaultConfig(),
  modelType: 'gpt2',
  vocabSize: 50257,
  blockSize: 1024,
  maxBatchSize: 1,
}).eval();
const prompt = tf.tensor2d(
  Array.from({ length: 128 }, (_, i) => i % 50257),
  [1, 128],
  'int32',
);
gpt.forward(prompt, { useKvCache: true, startPos: 0, lastPositionOnly: true }).dispose();
const tok = tf.tensor2d([5], [1, 1], 'int32');
const run = (n) => {
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < 10; i++)
      gpt.forward(tok, { useKvCache: true, startPos: 128 + i, lastPositionOnly: true }).dispose();
    gpt.kvCache.crop(128);
  }
};
run(2);
const s = new Session();
s.connect();
await s.post('Profiler.enable');
await s.post('Profiler.setSamplingInterval', { interval: 200 });
await s.post('Profiler.start');
const t0 = performance.now();
run(5);
const dt = performance.now() - t0;
const { profile } = await s.post('Profiler.stop');
writeFileSync('.scratch/decode.cpuprofile', JSON.stringify(profile));
console.log('ms/token', (dt / 50).toFixed(1));

// Trains the tiny character-level GPT shipped in models/ (see training/README.md):
//
//   pnpm --filter @kvkit/attention train:char-model        (about 5 minutes on 2 cores)
//
// minGPT's gpt-nano (3 layers, 3 heads, C = 48) with blockSize 64 on the Book of Genesis (King
// James Version), with Adam on tfjs-wasm, then saved as safetensors under minGPT's names with
// the config, the tokenizer and the training record in the metadata. The trained weights are
// read back with loadGPT and their logits compared with the training forward before the file
// is written. Everything is seeded: a run repeats bit for bit on the same machine.
//
// The training forward is written here in plain tfjs ops because the library's inference path
// is not differentiable (attention runs in kvkit's WebAssembly kernel, weights are plain
// tensors); it reuses the library's layerNorm and newGelu and the GPT's own init.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { register } from 'node:module';
import { Generator, initBackend, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import {
  CharTokenizer,
  CONFIG_METADATA_KEY,
  GPT,
  type GPTConfig,
  layerNorm,
  loadGPT,
  newGelu,
  TOKENIZER_METADATA_KEY,
  writeSafetensors,
} from '../src/index.ts';

// tfjs-core's Node bundle registers no gradients; its ESM build does, once Node can resolve it
// (tfjs-gradients-hooks.mjs). Registered here, after tsx's own hooks, so it runs first.
register('./tfjs-gradients-hooks.mjs', import.meta.url);
await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');

const corpusUrl = new URL('./genesis-kjv.txt', import.meta.url);
const outUrl = process.env.OUT
  ? new URL(process.env.OUT, `file://${process.cwd()}/`)
  : new URL('../models/genesis-char.safetensors', import.meta.url);
const STEPS = Number(process.env.STEPS ?? 1500);
const BATCH = 32;
const LR = 3e-3;
const LR_FINAL = 3e-4;

await initBackend('wasm');
const text = readFileSync(corpusUrl, 'utf8');
const tokenizer = CharTokenizer.fromText(text);
const data = Int32Array.from(tokenizer.encode(text));
const split = Math.floor(data.length * 0.9);
const train = data.subarray(0, split);
const val = data.subarray(split);

const config: Partial<GPTConfig> = {
  ...GPT.getDefaultConfig(),
  modelType: 'gpt-nano',
  vocabSize: tokenizer.vocabSize,
  blockSize: 64,
  maxBatchSize: 8, // rows the static cache preallocates when this model generates
  embdPdrop: 0,
  residPdrop: 0,
  attnPdrop: 0,
};

// The GPT's own init (minGPT's distribution), as trainable variables. Linear weights are kept
// (in, out) while training, so the forward's matMuls take the fast untransposed path.
setSeed(0);
const init = new GPT(config);
const { nLayer, nHead, nEmbd: C, blockSize: T, vocabSize: V } = init.dims;
const hs = C / nHead;
const isLinearWeight = (name: string) =>
  /(c_attn|c_proj|c_fc)\.weight$|lm_head\.weight$/.test(name);
const params = new Map<string, tf.Variable>();
const initial = init.stateDict();
for (const [name, t] of Object.entries(initial)) {
  params.set(name, tf.variable(isLinearWeight(name) ? tf.transpose(t) : t, true, name));
}
tf.dispose(Object.values(initial));
init.dispose();
const p = (name: string) => params.get(name)!;
const p1 = (name: string) => params.get(name)! as tf.Tensor as tf.Tensor1D;

const causal = tf.tensor2d(
  Float32Array.from({ length: T * T }, (_, i) => (i % T > Math.floor(i / T) ? -1e9 : 0)),
  [T, T],
);

/**
 * x (N, in) times W (in, out), with a gradient made of untransposed 2-D matMuls: tfjs-wasm runs
 * those through XNNPACK, while the transposed ones of the default gradient take a slow loop
 * (5x slower here).
 */
const matMulFast = tf.customGrad(((x: tf.Tensor, w: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x, w]);
  return {
    value: tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D),
    gradFunc: (dy: tf.Tensor, [sx, sw]: tf.Tensor[]) => [
      tf.matMul(dy as tf.Tensor2D, tf.transpose(sw!) as tf.Tensor2D),
      tf.matMul(tf.transpose(sx!) as tf.Tensor2D, dy as tf.Tensor2D),
    ],
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (
  x: tf.Tensor2D,
  w: tf.Tensor2D,
) => tf.Tensor2D;

/** Logits (B*t, V) for ids (B, t), in differentiable tfjs ops. */
function forward(idx: tf.Tensor2D): tf.Tensor2D {
  const [B, t] = idx.shape;
  const linear = (x: tf.Tensor2D, name: string) =>
    tf.add(matMulFast(x, p(`${name}.weight`) as tf.Tensor2D), p(`${name}.bias`)) as tf.Tensor2D;
  const oneHot = tf.cast(tf.oneHot(tf.reshape(idx, [B * t]), V), 'float32') as tf.Tensor2D;
  const tok = matMulFast(oneHot, p('transformer.wte.weight') as tf.Tensor2D); // (B*t, C)
  let x = tf.add(tf.reshape(tok, [B, t, C]), tf.slice(p('transformer.wpe.weight'), [0, 0], [t, C])); // (B, t, C)
  const mask = tf.slice(causal, [0, 0], [t, t]);
  for (let i = 0; i < nLayer; i++) {
    const h = `transformer.h.${i}.`;
    const a = layerNorm(
      tf.reshape(x, [B * t, C]),
      p1(`${h}ln_1.weight`),
      p1(`${h}ln_1.bias`),
    ) as tf.Tensor2D;
    const [q, k, v] = tf.split(linear(a, `${h}attn.c_attn`), 3, 1);
    const heads = (z: tf.Tensor) => tf.transpose(tf.reshape(z, [B, t, nHead, hs]), [0, 2, 1, 3]); // (B, nh, t, hs)
    const att = tf.softmax(
      tf.add(tf.mul(tf.matMul(heads(q!), heads(k!), false, true), 1 / Math.sqrt(hs)), mask),
    ); // (B, nh, t, t)
    const y = tf.reshape(tf.transpose(tf.matMul(att, heads(v!)), [0, 2, 1, 3]), [
      B * t,
      C,
    ]) as tf.Tensor2D;
    x = tf.add(x, tf.reshape(linear(y, `${h}attn.c_proj`), [B, t, C]));
    const m = layerNorm(
      tf.reshape(x, [B * t, C]),
      p1(`${h}ln_2.weight`),
      p1(`${h}ln_2.bias`),
    ) as tf.Tensor2D;
    x = tf.add(
      x,
      tf.reshape(linear(newGelu(linear(m, `${h}mlp.c_fc`)), `${h}mlp.c_proj`), [B, t, C]),
    );
  }
  const f = layerNorm(
    tf.reshape(x, [B * t, C]),
    p1('transformer.ln_f.weight'),
    p1('transformer.ln_f.bias'),
  );
  return matMulFast(f as tf.Tensor2D, p('lm_head.weight') as tf.Tensor2D); // (B*t, V)
}

function loss(idx: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
  const logits = forward(idx);
  return tf.losses.softmaxCrossEntropy(
    tf.oneHot(tf.reshape(targets, [-1]), V),
    logits,
  ) as tf.Scalar;
}

/** B random windows of T + 1 tokens: inputs and next-token targets. */
function batch(source: Int32Array, rng: Generator, B: number): [tf.Tensor2D, tf.Tensor2D] {
  const x = new Int32Array(B * T);
  const y = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const start = rng.random() % (source.length - T - 1);
    x.set(source.subarray(start, start + T), b * T);
    y.set(source.subarray(start + 1, start + T + 1), b * T);
  }
  return [tf.tensor2d(x, [B, T], 'int32'), tf.tensor2d(y, [B, T], 'int32')];
}

function evaluate(source: Int32Array, batches: number): number {
  const rng = new Generator(7);
  let sum = 0;
  for (let i = 0; i < batches; i++) {
    const [x, y] = batch(source, rng, BATCH);
    sum += tf.tidy(() => loss(x, y).dataSync()[0]!);
    tf.dispose([x, y]);
  }
  return sum / batches;
}

const optimizer = tf.train.adam(LR);
const rng = new Generator(1337);
const started = performance.now();
console.log(
  `gpt-nano, vocab ${V}, ${train.length} training characters, ${STEPS} steps of ${BATCH} x ${T}`,
);
for (let step = 0; step < STEPS; step++) {
  // linear decay of the learning rate over the run
  (optimizer as unknown as { learningRate: number }).learningRate =
    LR + (LR_FINAL - LR) * (step / STEPS);
  const [x, y] = batch(train, rng, BATCH);
  const value = optimizer.minimize(() => loss(x, y), true) as tf.Scalar;
  if (step % 100 === 0 || step === STEPS - 1) {
    const seconds = (performance.now() - started) / 1000;
    console.log(`step ${step}: loss ${value.dataSync()[0]!.toFixed(4)} (${seconds.toFixed(0)} s)`);
  }
  tf.dispose([x, y, value]);
}
const trainingSeconds = (performance.now() - started) / 1000;
const trainLoss = evaluate(train, 20);
const valLoss = evaluate(val, 20);
console.log(
  `trained in ${trainingSeconds.toFixed(0)} s: train loss ${trainLoss.toFixed(4)}, validation loss ${valLoss.toFixed(4)}`,
);

// minGPT's names and (out, in) weights.
const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
for (const [name, v] of params) {
  const t = isLinearWeight(name) ? tf.transpose(v) : v;
  tensors.set(name, { shape: t.shape, data: t.dataSync() as Float32Array });
  if (t !== v) t.dispose();
}
const { modelType: _, nLayer: __, nHead: ___, nEmbd: ____, ...rest } = config;
const savedConfig = { ...rest, modelType: 'gpt-nano' };
const bytes = writeSafetensors(tensors, {
  format: 'pt',
  [CONFIG_METADATA_KEY]: JSON.stringify(savedConfig),
  [TOKENIZER_METADATA_KEY]: JSON.stringify({ type: 'char', chars: tokenizer.chars }),
  'kvkit.training': JSON.stringify({
    corpus: 'training/genesis-kjv.txt (the Book of Genesis, King James Version; public domain)',
    corpusSha256: createHash('sha256').update(text).digest('hex'),
    script: 'training/train-char-model.ts',
    steps: STEPS,
    batch: [BATCH, T],
    optimizer: `adam, learning rate ${LR} -> ${LR_FINAL} linearly`,
    trainLoss: Number(trainLoss.toFixed(4)),
    validationLoss: Number(valLoss.toFixed(4)),
  }),
});

// The library must compute what was trained: its logits against the training forward.
const loaded = await loadGPT(bytes);
const [vx] = batch(val, new Generator(3), 4);
const ours = loaded.forward(vx);
const theirs = tf.tidy(() => tf.reshape(forward(vx), [4, T, V]));
const diff = tf.max(tf.abs(tf.sub(ours, theirs))).dataSync()[0]!;
console.log(`loadGPT logits vs the training forward: max |diff| ${diff.toExponential(2)}`);
if (!(diff < 1e-4))
  throw new Error(`the saved model does not compute what was trained (diff ${diff})`);
tf.dispose([vx, ours, theirs]);
loaded.dispose();
writeFileSync(outUrl, bytes);
console.log(
  `wrote ${outUrl.pathname.split('/').slice(-2).join('/')} (${bytes.length} bytes, ${trainingSeconds.toFixed(0)} s of training)`,
);

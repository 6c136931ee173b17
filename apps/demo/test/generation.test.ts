import { createRequire } from 'node:module';
import { type CharTokenizer, type GPT, loadCharModel } from '@kvkit/attention';
import { type CacheSpec, createCache } from '@kvkit/kv-cache';
import { initBackend, ValueError } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type GenerationSettings, TextGenerator } from '../src/generation.ts';
import { strategies } from '../src/strategies.ts';
import { quantizedBytes } from './quantized-bytes.ts';

const modelPath = createRequire(import.meta.url).resolve(
  '@kvkit/attention/models/genesis-char.safetensors',
);

let demo: TextGenerator;
let reference: { model: GPT; tokenizer: CharTokenizer };

beforeAll(async () => {
  await initBackend('wasm');
  demo = await TextGenerator.load(modelPath);
  reference = await loadCharModel(modelPath);
});

afterAll(() => {
  demo?.dispose();
  reference?.model.dispose();
});

const sampled: GenerationSettings = {
  prompt: 'And God said',
  maxNewTokens: 52,
  useKvCache: true,
  strategy: 'static',
  doSample: true,
  temperature: 0.8,
  topK: 10,
  seed: 42,
};

/**
 * The tokens of `generate` on a separately loaded model with the cache a spec names, built here
 * (not through the demo's strategy registry): what the demo's run must give.
 */
async function referenceText(s: GenerationSettings, spec: CacheSpec | null): Promise<string> {
  const { model, tokenizer } = reference;
  const d = model.dims;
  const cache = spec
    ? createCache(spec, {
        nLayers: d.nLayer,
        nKvHeads: d.nKvHeads,
        headSize: d.headSize,
        maxBatchSize: d.maxBatchSize,
        blockSize: d.blockSize,
      })
    : null;
  if (cache) model.useCache(cache);
  try {
    const { newTokens } = await model.generate([tokenizer.encode(s.prompt)], {
      maxNewTokens: s.maxNewTokens,
      useKvCache: s.useKvCache,
      doSample: s.doSample,
      temperature: s.temperature,
      topK: s.topK,
      seed: s.seed,
    });
    return tokenizer.decode(newTokens[0]!);
  } finally {
    cache?.dispose();
  }
}

/** The cache each picker entry should build for the 64-position model (its label's settings). */
const specs: Record<string, CacheSpec> = {
  static: 'static',
  dynamic: { strategy: 'dynamic', initialSlots: 8 },
  'sliding-window': { strategy: 'sliding-window', window: 32 },
  sink: { strategy: 'sink', sinkTokens: 4, window: 28 },
  // paged keeps every position, in blocks: it must decode as the static cache does
  paged: 'static',
  'quantized-int8': { strategy: 'quantized', bits: 8, groupSize: 16, residual: 16 },
  'quantized-int4': { strategy: 'quantized', bits: 4, groupSize: 16, residual: 16 },
};

describe('text generation with the shipped model', () => {
  test('the labels name the settings the entries use', () => {
    expect(strategies.map((s) => s.label(64))).toEqual([
      "static (the notebook's)",
      'dynamic (grows ×2 from 8)',
      'sliding window (32)',
      'sink (4 + 28)',
      'paged (blocks of 8)',
      'quantized int8 (groups of 16, last 16 in float32)',
      'quantized int4 (groups of 16, last 16 in float32)',
    ]);
  });

  test.each(Object.keys(specs))(
    '%s: a seeded sampled run gives the tokens of generate with that cache',
    async (id) => {
      const s = { ...sampled, strategy: id };
      const steps: number[] = [];
      const out = await demo.run(s, { onProgress: (p) => steps.push(p.steps) });
      expect(out.reason).toBe('length');
      expect(out.text).toBe(await referenceText(s, specs[id]!));
      expect(steps).toEqual(Array.from({ length: 52 }, (_, i) => i + 1)); // one report per token
      // The last token is never fed back: prompt + 51 positions seen.
      expect(out.cache!.strategy).toBe(id.replace(/-int[48]$/, '')); // the cache's own name
      expect(out.cache!.seqLength).toBe(12 + 51);
      const held = { 'sliding-window': 32, sink: 32 }[id as 'sink'] ?? 63;
      expect(out.cache!.slotsHeld).toBe(held);
      if (id.startsWith('quantized')) {
        // 63 positions, groups of 16, the last 16 in float32: 32 quantized; 3 layers x 3 heads of 16.
        const q = quantizedBytes(63, 16, 16, 16, id.endsWith('8') ? 8 : 4);
        expect(out.cache!.quantized).toBe(q.Q);
        expect(q.Q).toBe(32);
        expect(out.cache!.bytesUsed).toBe(3 * 3 * q.bytes);
        expect(out.cache!.bytesUsed).toBeLessThan(held * 2 * 3 * 48 * 4);
      } else {
        expect(out.cache!.quantized).toBe(0);
        expect(out.cache!.bytesUsed).toBe(held * 2 * 3 * 48 * 4); // K and V, 3 layers, width 48, float32
      }
      expect(out.cache!.bytesReserved).toBeGreaterThanOrEqual(out.cache!.bytesUsed);
    },
  );

  test('greedy decoding: with the cache = without it, and = generate without a cache', async () => {
    const greedy = { ...sampled, doSample: false, maxNewTokens: 40 };
    const cached = await demo.run(greedy);
    const uncached = await demo.run({ ...greedy, useKvCache: false });
    expect(cached.text).toHaveLength(40);
    expect(uncached.text).toBe(cached.text);
    expect(uncached.cache).toBeNull();
    expect(cached.text).toBe(await referenceText({ ...greedy, useKvCache: false }, null));
  });

  test('a windowed cache goes past the context (GPT.decodesPastBlockSize); a cache that keeps every position refuses', async () => {
    expect(strategies.map((st) => [st.id, demo.select(st.id).decodesPastBlockSize])).toEqual([
      ['static', false],
      ['dynamic', false],
      ['sliding-window', true],
      ['sink', true],
      ['paged', false],
      ['quantized-int8', false],
      ['quantized-int4', false],
    ]);
    for (const id of ['sliding-window', 'sink']) {
      const long = { ...sampled, strategy: id, maxNewTokens: 100 }; // 12 + 100 > 64
      const out = await demo.run(long);
      expect(out.steps).toBe(100);
      expect(out.cache!.seqLength).toBe(12 + 99);
      expect(out.cache!.slotsHeld).toBe(32);
      expect(out.text).toBe(await referenceText(long, specs[id]!));
    }
    await expect(demo.run({ ...sampled, maxNewTokens: 100 })).rejects.toThrow(
      /exceeds blockSize 64/,
    );
  });

  test('without the cache it goes past the context (minGPT crops); the abort signal stops it', async () => {
    const controller = new AbortController();
    const out = await demo.run(
      { ...sampled, useKvCache: false, maxNewTokens: 500 },
      {
        signal: controller.signal,
        onProgress: (p) => {
          if (p.steps === 70) controller.abort();
        },
      },
    );
    expect(out.reason).toBe('aborted');
    expect(out.steps).toBe(70);
    expect(out.text).toHaveLength(70);
  });

  test('refused settings are the typed errors of the library, and nothing leaks across runs', async () => {
    const before = tf.memory().numTensors;
    await expect(demo.run({ ...sampled, prompt: 'Quixotic 7' })).rejects.toThrow(ValueError);
    await expect(demo.run({ ...sampled, temperature: 0 })).rejects.toThrow(/temperature/);
    await expect(demo.run({ ...sampled, maxNewTokens: 60 })).rejects.toThrow(
      /exceeds blockSize 64/,
    );
    for (const s of strategies) await demo.run({ ...sampled, strategy: s.id, maxNewTokens: 8 });
    expect(tf.memory().numTensors).toBe(before);
  });
});

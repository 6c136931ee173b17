// What the demo's "Generate text" panel must write, computed here in Node through the packages'
// public API (the built dist/, as any consumer): the shipped model from its file, `generate`
// with the panel's settings, and each cache built here from the spec its picker label names
// (not through the demo's own strategy registry).
import { createRequire } from 'node:module';
import { loadCharModel } from '@kvkit/attention';
import { type CacheSpec, createCache } from '@kvkit/kv-cache';
import { initBackend } from '@kvkit/tensor-utils';

const modelPath = createRequire(import.meta.url).resolve(
  '@kvkit/attention/models/genesis-char.safetensors',
);

/** The panel's defaults: sampled, temperature 0.8, top-k 10, seed 42, 52 new tokens. */
export const defaults = {
  prompt: 'And God said',
  maxNewTokens: 52,
  temperature: 0.8,
  topK: 10,
  seed: 42,
};

/** Greedy runs in the test: 40 new tokens. */
export const greedyTokens = 40;

/** The caches the picker offers for the 64-position model, as its labels describe them. */
export const pickerSpecs: Record<string, { label: string; spec: CacheSpec }> = {
  static: { label: "static (the notebook's)", spec: 'static' },
  dynamic: { label: 'dynamic (grows ×2 from 8)', spec: { strategy: 'dynamic', initialSlots: 8 } },
  'sliding-window': {
    label: 'sliding window (32)',
    spec: { strategy: 'sliding-window', window: 32 },
  },
  sink: { label: 'sink (4 + 28)', spec: { strategy: 'sink', sinkTokens: 4, window: 28 } },
  // Blocks change where the rows live, not what is attended: it decodes as a static cache.
  paged: { label: 'paged (blocks of 8)', spec: 'static' },
  'quantized-int8': {
    label: 'quantized int8 (groups of 16, last 16 in float32)',
    spec: { strategy: 'quantized', bits: 8, groupSize: 16, residual: 16 },
  },
  'quantized-int4': {
    label: 'quantized int4 (groups of 16, last 16 in float32)',
    spec: { strategy: 'quantized', bits: 4, groupSize: 16, residual: 16 },
  },
};

/** A sampled run past the model's 64 positions with the sliding window: 100 new tokens. */
export const pastBlockSize = { strategy: 'sliding-window', maxNewTokens: 100 } as const;

export interface Run {
  strategy: string;
  text: string;
}

export interface Expected {
  /** The default (sampled) run, per picker entry. */
  sampled: Run[];
  /** Greedy decoding without the cache. */
  greedy: string;
  /** The sampled run of `pastBlockSize`. */
  long: string;
}

/** Runs every expected generation once (about a second). */
export async function expectedGenerations(): Promise<Expected> {
  await initBackend('wasm');
  const { model, tokenizer } = await loadCharModel(modelPath);
  try {
    const d = model.dims;
    const shape = {
      nLayers: d.nLayer,
      nKvHeads: d.nKvHeads,
      headSize: d.headSize,
      maxBatchSize: d.maxBatchSize,
      blockSize: d.blockSize,
    };
    const prompt = [tokenizer.encode(defaults.prompt)];
    const sampled: Run[] = [];
    for (const [strategy, { spec }] of Object.entries(pickerSpecs)) {
      const cache = createCache(spec, shape);
      model.useCache(cache);
      const { newTokens } = await model.generate(prompt, {
        maxNewTokens: defaults.maxNewTokens,
        doSample: true,
        temperature: defaults.temperature,
        topK: defaults.topK,
        seed: defaults.seed,
      });
      cache.dispose();
      sampled.push({ strategy, text: tokenizer.decode(newTokens[0]!) });
    }
    const greedy = await model.generate(prompt, {
      maxNewTokens: greedyTokens,
      useKvCache: false,
    });
    const cache = createCache(pickerSpecs[pastBlockSize.strategy]!.spec, shape);
    model.useCache(cache);
    const long = await model.generate(prompt, {
      maxNewTokens: pastBlockSize.maxNewTokens,
      doSample: true,
      temperature: defaults.temperature,
      topK: defaults.topK,
      seed: defaults.seed,
    });
    cache.dispose();
    return {
      sampled,
      greedy: tokenizer.decode(greedy.newTokens[0]!),
      long: tokenizer.decode(long.newTokens[0]!),
    };
  } finally {
    model.dispose();
  }
}

import { DynamicKVCache, StaticKVCache } from '@kvkit/kv-cache';
import {
  CacheCapacityError,
  DisposedError,
  DTypeError,
  getDefaultGenerator,
  ShapeError,
  ValueError,
} from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type GenerateOptions, GPT, MODEL_TYPES } from '../src/index.ts';
import { kernelHeapBytes, rows, tiny, tinyConfig, tinyModel } from './gpt-support.ts';
import { setupBackend } from './support.ts';

// Every rejected call is a typed error naming the offending values, made before anything
// changes: the weights, the cache (length in every layer) and the default generator stay as
// they were.

beforeAll(setupBackend);

type ErrorClass = new (...a: never[]) => Error;

describe('config', () => {
  test("minGPT's model_type table (mingpt/model.py)", () => {
    expect(MODEL_TYPES).toEqual({
      'openai-gpt': { nLayer: 12, nHead: 12, nEmbd: 768 },
      gpt2: { nLayer: 12, nHead: 12, nEmbd: 768 },
      'gpt2-medium': { nLayer: 24, nHead: 16, nEmbd: 1024 },
      'gpt2-large': { nLayer: 36, nHead: 20, nEmbd: 1280 },
      'gpt2-xl': { nLayer: 48, nHead: 25, nEmbd: 1600 },
      'gopher-44m': { nLayer: 8, nHead: 16, nEmbd: 512 },
      'gpt-mini': { nLayer: 6, nHead: 6, nEmbd: 192 },
      'gpt-micro': { nLayer: 4, nHead: 4, nEmbd: 128 },
      'gpt-nano': { nLayer: 3, nHead: 3, nEmbd: 48 },
    });
    expect(GPT.modelTypes).toBe(MODEL_TYPES);
  });

  test('getDefaultConfig keeps the fork defaults', () => {
    expect(GPT.getDefaultConfig()).toEqual({
      modelType: 'gpt',
      nLayer: null,
      nHead: null,
      nKvHeads: null,
      nEmbd: null,
      vocabSize: null,
      blockSize: null,
      embdPdrop: 0.1,
      residPdrop: 0.1,
      attnPdrop: 0.1,
      maxBatchSize: 64,
    });
    expect(GPT.getDefaultConfig()).not.toBe(GPT.getDefaultConfig());
  });

  test('a model type sets nLayer, nHead and nEmbd; nKvHeads gives GQA', () => {
    const gpt = new GPT({
      ...GPT.getDefaultConfig(),
      modelType: 'gpt-nano',
      nKvHeads: 1,
      vocabSize: 7,
      blockSize: 8,
    });
    expect(gpt.dims).toMatchObject({ nLayer: 3, nHead: 3, nEmbd: 48, nKvHeads: 1, headSize: 16 });
    expect(gpt.stateDict()['transformer.h.0.attn.c_attn.weight']!.shape).toEqual([48 + 2 * 16, 48]);
    expect(gpt.h[2]!.attn.layer).toBe(2);
    // wte + wpe + 3 blocks + ln_f + lm_head, as minGPT counts
    const block =
      2 * 48 + (80 * 48 + 80) + (48 * 48 + 48) + 2 * 48 + (192 * 48 + 192) + (48 * 192 + 48);
    expect(gpt.numParameters()).toBe(7 * 48 + 8 * 48 + 3 * block + 2 * 48 + 7 * 48);
    tf.dispose(Object.values(gpt.stateDict()));
    gpt.dispose();
  });

  const bad: [string, object, RegExp][] = [
    [
      'an unknown model type',
      { modelType: 'gpt3', vocabSize: 5, blockSize: 4 },
      /'gpt3' is not one of/,
    ],
    [
      'a model type and a disagreeing size',
      { modelType: 'gpt-nano', nLayer: 4, vocabSize: 5, blockSize: 4 },
      /nLayer = 4 disagrees/,
    ],
    [
      'no vocabSize',
      { nLayer: 1, nHead: 1, nEmbd: 4, blockSize: 4 },
      /vocabSize must be a positive integer, got null/,
    ],
    ['nLayer 0', { nLayer: 0, nHead: 1, nEmbd: 4, vocabSize: 5, blockSize: 4 }, /nLayer must be/],
    [
      'nKvHeads not dividing nHead',
      { nLayer: 1, nHead: 4, nKvHeads: 3, nEmbd: 8, vocabSize: 5, blockSize: 4 },
      /nKvHeads/,
    ],
    [
      'a huge vocabulary',
      { nLayer: 1, nHead: 1, nEmbd: 64, vocabSize: 1e9, blockSize: 4 },
      /vocabSize \* nEmbd = 64000000000/,
    ],
    [
      'a huge blockSize',
      { nLayer: 1, nHead: 1, nEmbd: 16, vocabSize: 5, blockSize: 1e9 },
      /blockSize \* nEmbd/,
    ],
    [
      'embdPdrop 1',
      { nLayer: 1, nHead: 1, nEmbd: 4, vocabSize: 5, blockSize: 4, embdPdrop: 1 },
      /embdPdrop/,
    ],
  ];
  test.each(bad)('%s is a ValueError, and nothing is drawn', (_, config, message) => {
    const before = getDefaultGenerator().getState();
    const count = tf.memory().numTensors;
    expect(() => new GPT({ ...GPT.getDefaultConfig(), modelType: null, ...config })).toThrow(
      ValueError,
    );
    expect(() => new GPT({ ...GPT.getDefaultConfig(), modelType: null, ...config })).toThrow(
      message,
    );
    expect(getDefaultGenerator().getState()).toEqual(before);
    expect(tf.memory().numTensors).toBe(count);
  });
});

describe('forward and the cache', () => {
  let gpt: GPT;
  const x = () =>
    tf.tensor2d(
      [
        [1, 2, 3, 4, 5],
        [6, 7, 8, 9, 10],
      ],
      [2, 5],
      'int32',
    );
  const lengths = () =>
    Array.from({ length: gpt.dims.nLayer }, (_, l) => gpt.kvCache?.seqLength(l));
  beforeAll(() => {
    gpt = new GPT(tinyConfig({ maxBatchSize: 2 })).eval().loadStateDict(tiny.state_dict);
    const prompt = x();
    gpt.forward(prompt, { useKvCache: true, startPos: 0 }).dispose();
    prompt.dispose();
  });
  afterAll(() => gpt.dispose());

  const cases: [string, () => tf.Tensor, object, ErrorClass, RegExp][] = [
    [
      'float ids',
      () => tf.zeros([2, 1]),
      { useKvCache: true, startPos: 5 },
      DTypeError,
      /int32 token ids, got float32/,
    ],
    [
      'rank 1 ids',
      () => tf.tensor1d([1], 'int32'),
      { useKvCache: true, startPos: 5 },
      ShapeError,
      /\(B >= 1, T >= 1\), got \[1\]/,
    ],
    [
      'an id past the vocabulary',
      () => tf.tensor2d([[1], [11]], [2, 1], 'int32'),
      { useKvCache: true, startPos: 5 },
      ValueError,
      /idx\[1\]\[0\] = 11 is outside \[0, vocabSize = 11\)/,
    ],
    [
      'a negative id',
      () => tf.tensor2d([[-1], [1]], [2, 1], 'int32'),
      { useKvCache: true, startPos: 5 },
      ValueError,
      /idx\[0\]\[0\] = -1/,
    ],
    [
      'three rows for a cache of two',
      () => tf.tensor2d([[1], [1], [1]], [3, 1], 'int32'),
      { useKvCache: true, startPos: 5 },
      CacheCapacityError,
      /batch size 3 exceeds maxBatchSize 2/,
    ],
    [
      'a gap in the cache',
      () => tf.tensor2d([[1], [1]], [2, 1], 'int32'),
      { useKvCache: true, startPos: 7 },
      ValueError,
      /gap/,
    ],
    [
      'past blockSize with the cache',
      () =>
        tf.tensor2d(
          [
            [1, 1],
            [1, 1],
          ],
          [2, 2],
          'int32',
        ),
      { useKvCache: true, startPos: 15 },
      CacheCapacityError,
      /15 \+ 2 exceeds blockSize 16/,
    ],
    [
      'a fractional startPos',
      () => tf.tensor2d([[1], [1]], [2, 1], 'int32'),
      { useKvCache: true, startPos: 4.5 },
      ValueError,
      /4\.5/,
    ],
    [
      'startPos without the cache',
      () => tf.tensor2d([[1], [1]], [2, 1], 'int32'),
      { startPos: 3 },
      ValueError,
      /needs useKvCache/,
    ],
    [
      'T past blockSize without the cache',
      () => tf.zeros([1, 17], 'int32'),
      {},
      ShapeError,
      /T = 17 exceeds blockSize 16/,
    ],
  ];
  test.each(cases)(
    '%s: typed error, every layer of the cache unchanged',
    (_, make, options, type, message) => {
      const idx = make();
      const before = lengths();
      const count = tf.memory().numTensors;
      expect(() => gpt.forward(idx, options)).toThrow(type);
      expect(() => gpt.forward(idx, options)).toThrow(message);
      expect(lengths()).toEqual(before);
      expect(tf.memory().numTensors).toBe(count);
      idx.dispose();
    },
  );

  test('a disposed idx is a DisposedError', () => {
    const idx = x();
    idx.dispose();
    expect(() => gpt.forward(idx)).toThrow(DisposedError);
  });

  test('useCache: a cache that does not fit, or a disposed one, is refused; the old one stays', () => {
    const own = gpt.kvCache;
    const small = new StaticKVCache({
      nLayers: 1,
      maxBatchSize: 2,
      nKvHeads: 2,
      headSize: 8,
      capacity: 16,
    });
    expect(() => gpt.useCache(small)).toThrow(ShapeError);
    small.dispose();
    expect(() => gpt.useCache(small)).toThrow(DisposedError);
    expect(gpt.kvCache).toBe(own);
    expect(own?.isDisposed).toBe(false);
  });

  test("useCache: the model frees the cache it made, not the user's; dispose leaves the user's alone", () => {
    const model = tinyModel();
    const idx = x();
    model.forward(idx, { useKvCache: true, startPos: 0 }).dispose();
    const own = model.kvCache!;
    const mine = new StaticKVCache({
      nLayers: 2,
      maxBatchSize: 2,
      nKvHeads: 2,
      headSize: 8,
      capacity: 16,
    });
    model.useCache(mine);
    expect(own.isDisposed).toBe(true);
    model.forward(idx, { useKvCache: true, startPos: 0 }).dispose();
    expect(mine.seqLength(1)).toBe(5);
    model.dispose();
    expect(mine.isDisposed).toBe(false);
    const heap = kernelHeapBytes();
    mine.dispose();
    expect(kernelHeapBytes()).toBeLessThan(heap);
    idx.dispose();
  });
});

describe('the cache option', () => {
  test('names the strategy the model builds and shares between its blocks', () => {
    const gpt = new GPT(tinyConfig(), { cache: { strategy: 'sliding-window', window: 8 } })
      .eval()
      .loadStateDict(tiny.state_dict);
    const idx = tf.tensor2d([[1, 2, 3]], [1, 3], 'int32');
    gpt.forward(idx, { useKvCache: true, startPos: 0 }).dispose();
    expect(gpt.kvCache?.strategy).toBe('sliding-window');
    for (const block of gpt.h) expect(block.attn.kvCache).toBe(gpt.kvCache);
    idx.dispose();
    gpt.dispose();
  });

  test('a bad spec is a ValueError before any weight exists', () => {
    const count = tf.memory().numTensors;
    expect(() => new GPT(tinyConfig(), { cache: 'ring' as never })).toThrow(ValueError);
    expect(
      () => new GPT(tinyConfig(), { cache: { strategy: 'sliding-window', window: 0 } }),
    ).toThrow(ValueError);
    expect(tf.memory().numTensors).toBe(count);
  });

  test('useCache takes an unbounded (dynamic) cache', async () => {
    const gpt = tinyModel();
    const cache = new DynamicKVCache({ nLayers: 2, nKvHeads: 2, headSize: 8 });
    gpt.useCache(cache);
    const { tokens } = await gpt.generate(rows(tiny.prompt), { maxNewTokens: 12 });
    expect(tokens).toEqual(rows(tiny.greedy.tokens));
    expect(cache.seqLength(1, 1)).toBe(15); // the last token is never fed back
    gpt.dispose();
    cache.dispose();
  });
});

describe('loadStateDict: all or nothing', () => {
  let gpt: GPT;
  beforeAll(() => {
    gpt = tinyModel();
  });
  afterAll(() => gpt.dispose());

  const weightBits = () => {
    const sd = gpt.stateDict();
    const out = Object.fromEntries(
      Object.entries(sd).map(([n, t]) => [
        n,
        Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer)),
      ]),
    );
    tf.dispose(Object.values(sd));
    return out;
  };
  const good = () => ({
    ...(tiny.state_dict as Record<string, { shape: number[]; data: unknown[] }>),
  });
  const last = 'lm_head.weight';

  const cases: [string, () => Record<string, unknown>, ErrorClass, RegExp][] = [
    [
      'a wrong shape in the last tensor',
      () => ({ ...good(), [last]: { shape: [11, 15], data: new Array(165).fill(0) } }),
      ShapeError,
      /'lm_head.weight' must have shape \[11, 16\], got \[11, 15\]/,
    ],
    [
      'a missing tensor',
      () => {
        const d = good();
        delete d['transformer.ln_f.bias'];
        return d;
      },
      ValueError,
      /missing keys \[transformer\.ln_f\.bias\]/,
    ],
    [
      'an extra tensor',
      () => ({ ...good(), 'transformer.h.0.attn.bias': { shape: [1], data: [1] } }),
      ValueError,
      /unexpected keys \[transformer\.h\.0\.attn\.bias\]/,
    ],
    [
      'a key named constructor',
      () => ({ ...good(), constructor: { shape: [1], data: [1] } }),
      ValueError,
      /\[constructor\] name Object\.prototype members/,
    ],
    [
      'a key named __proto__',
      () =>
        Object.defineProperty(good(), '__proto__', {
          value: { shape: [1], data: [1] },
          enumerable: true,
        }),
      ValueError,
      /__proto__/,
    ],
    [
      'a string in the data',
      () => ({
        ...good(),
        [last]: { shape: [11, 16], data: [...tiny.state_dict[last].data.slice(0, 175), 'x'] },
      }),
      ValueError,
      /'lm_head\.weight'\[175\] is string x, not a number/,
    ],
    [
      'an int32 tensor',
      () => ({ ...good(), [last]: tf.zeros([11, 16], 'int32') }),
      DTypeError,
      /must be float32, got int32/,
    ],
    [
      'a disposed tensor',
      () => {
        const t = tf.zeros([11, 16]);
        t.dispose();
        return { ...good(), [last]: t };
      },
      DisposedError,
      /lm_head\.weight/,
    ],
  ];
  test.each(cases)('%s: typed error, every weight unchanged', (_, make, type, message) => {
    const before = weightBits();
    const dict = make();
    expect(() => gpt.loadStateDict(dict as never)).toThrow(type);
    expect(() => gpt.loadStateDict(dict as never)).toThrow(message);
    expect(weightBits()).toEqual(before);
    tf.dispose(Object.values(dict).filter((v): v is tf.Tensor => v instanceof tf.Tensor));
  });
});

describe('generate: bad options are typed errors before anything runs', () => {
  let gpt: GPT;
  beforeAll(() => {
    gpt = tinyModel();
  });
  afterAll(() => gpt.dispose());
  const prompt = [[1, 2, 3, 4]];

  const cases: [
    string,
    unknown,
    Partial<GenerateOptions> & Record<string, unknown>,
    ErrorClass,
    RegExp,
  ][] = [
    [
      'temperature 0',
      prompt,
      { temperature: 0 },
      ValueError,
      /temperature must be a finite number > 0, got 0/,
    ],
    ['temperature -1', prompt, { temperature: -1 }, ValueError, /got -1/],
    ['temperature NaN', prompt, { temperature: Number.NaN }, ValueError, /got NaN/],
    [
      'temperature Infinity',
      prompt,
      { temperature: Number.POSITIVE_INFINITY },
      ValueError,
      /got Infinity/,
    ],
    [
      'topK 0',
      prompt,
      { topK: 0 },
      ValueError,
      /topK must be an integer in \[1, vocabSize = 11\], got 0/,
    ],
    ['topK past the vocabulary', prompt, { topK: 12 }, ValueError, /got 12/],
    ['topK 2.5', prompt, { topK: 2.5 }, ValueError, /got 2\.5/],
    [
      'maxNewTokens -1',
      prompt,
      { maxNewTokens: -1 },
      ValueError,
      /maxNewTokens must be a non-negative integer, got -1/,
    ],
    ['maxNewTokens NaN', prompt, { maxNewTokens: Number.NaN }, ValueError, /got NaN/],
    [
      'maxNewTokens past blockSize with the cache',
      prompt,
      { maxNewTokens: 13 },
      CacheCapacityError,
      /4 \+ 13 = 17 exceeds blockSize 16/,
    ],
    ['a seed that is not an integer', prompt, { seed: 1.5 }, ValueError, /1\.5/],
    [
      'seed and generator',
      prompt,
      { seed: 1, generator: getDefaultGenerator() },
      ValueError,
      /seed or generator/,
    ],
    [
      'an unknown option',
      prompt,
      { max_new_tokens: 3 },
      ValueError,
      /unknown options \[max_new_tokens\]/,
    ],
    ['a stop token past the vocabulary', prompt, { stopTokens: [11] }, ValueError, /stopTokens/],
    [
      'a signal that is not an AbortSignal',
      prompt,
      { signal: {} as AbortSignal },
      ValueError,
      /AbortSignal/,
    ],
    [
      'doSample "yes"',
      prompt,
      { doSample: 'yes' as unknown as boolean },
      ValueError,
      /doSample must be a boolean/,
    ],
    ['an empty prompt', [], {}, ValueError, /non-empty array/],
    ['a ragged prompt', [[1, 2], [3]], {}, ShapeError, /row 1 has 1 ids, row 0 has 2/],
    ['an id past the vocabulary', [[1, 11]], {}, ValueError, /idx\[0\]\[1\] = 11/],
    [
      'a prompt longer than blockSize',
      [Array(17).fill(1)],
      { useKvCache: false },
      ShapeError,
      /T = 17 exceeds blockSize 16/,
    ],
    [
      'more rows than the cache holds',
      Array(65).fill([1]),
      {},
      CacheCapacityError,
      /batch 65 exceeds/,
    ],
  ];
  test.each(cases)('%s', async (_, idx, options, type, message) => {
    const generator = getDefaultGenerator().getState();
    const length = gpt.kvCache?.seqLength() ?? null;
    const count = tf.memory().numTensors;
    const call = () =>
      gpt.generate(idx as number[][], { maxNewTokens: 3, ...options } as GenerateOptions);
    await expect(call()).rejects.toThrow(type);
    await expect(call()).rejects.toThrow(message);
    // The stream form throws when it is called, before any iteration.
    expect(() =>
      gpt.stream(idx as number[][], { maxNewTokens: 3, ...options } as GenerateOptions),
    ).toThrow(type);
    expect(getDefaultGenerator().getState()).toEqual(generator);
    expect(gpt.kvCache?.seqLength() ?? null).toBe(length);
    expect(tf.memory().numTensors).toBe(count);
  });

  test('a disposed model is a DisposedError', async () => {
    const model = tinyModel();
    model.dispose();
    await expect(model.generate(prompt, { maxNewTokens: 1 })).rejects.toThrow(DisposedError);
    expect(() => model.forward(tf.zeros([1, 1], 'int32'))).toThrow(DisposedError);
    expect(() => model.stateDict()).toThrow(DisposedError);
  });
});

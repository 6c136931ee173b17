import { Generator, getDefaultGenerator, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { GPT, generate, streamTokens, type TokenStep } from '../src/index.ts';
import { kernelHeapBytes, rows, tiny, tinyConfig, tinyModel } from './gpt-support.ts';
import { setupBackend } from './support.ts';

// Generation beyond minGPT's loop: the streaming form, stop tokens, AbortSignal, the busy guard,
// timing, and what each leaves behind. Expected tokens are PyTorch's (gpt_tiny.json).

beforeAll(setupBackend);

const sampled = tiny.sampling[0]!; // seed 7, temperature 0.9, top_k 5
const sampledOptions = {
  maxNewTokens: sampled.max_new_tokens,
  temperature: sampled.temperature,
  topK: sampled.top_k,
  doSample: true,
  seed: sampled.seed,
};
const prompt = rows(tiny.prompt);

describe('generation', () => {
  let gpt: GPT;
  beforeAll(() => {
    gpt = tinyModel();
  });
  afterAll(() => gpt.dispose());

  test('the stream yields one step per token, and returns the same result as generate', async () => {
    const steps: TokenStep[] = [];
    const iterator = gpt.stream(prompt, sampledOptions);
    let next = await iterator.next();
    while (!next.done) {
      steps.push(next.value);
      next = await iterator.next();
    }
    const result = next.value;
    expect(result.tokens).toEqual(rows(sampled.tokens));
    expect(steps.map((s) => s.step)).toEqual([...Array(12).keys()]);
    const newTokens = rows(sampled.new_tokens);
    expect(steps.map((s) => s.tokens)).toEqual(newTokens[0]!.map((t, i) => [t, newTokens[1]![i]]));
  });

  test('for await ... of gives the tokens; onToken sees the same steps', async () => {
    const seen: number[][] = [];
    const streamed: number[][] = [];
    for await (const step of streamTokens(gpt, prompt, {
      ...sampledOptions,
      onToken: (s) => seen.push(s.tokens),
    })) {
      streamed.push(step.tokens);
    }
    expect(streamed).toEqual(seen);
    expect(streamed).toHaveLength(12);
  });

  test('timing: tokens per second are reported', async () => {
    const { timing, steps } = await generate(gpt, prompt, { maxNewTokens: 8 });
    expect(steps).toBe(8);
    expect(timing.totalMs).toBeGreaterThan(0);
    expect(timing.firstTokenMs).toBeGreaterThan(0);
    expect(timing.firstTokenMs).toBeLessThanOrEqual(timing.totalMs);
    expect(timing.tokensPerSecond).toBeCloseTo((16 * 1000) / timing.totalMs, 6);
    expect(timing.decodeTokensPerSecond).toBeGreaterThan(0);
  });

  test('seed draws from a fresh generator and leaves the default one alone', async () => {
    setSeed(123);
    const before = getDefaultGenerator().getState();
    await gpt.generate(prompt, sampledOptions);
    expect(getDefaultGenerator().getState()).toEqual(before);
  });

  test('without seed: the default generator, as torch.manual_seed before generate', async () => {
    setSeed(sampled.seed);
    const { seed: _, ...options } = sampledOptions;
    const { tokens } = await gpt.generate(prompt, options);
    expect(tokens).toEqual(rows(sampled.tokens));
  });

  test('a given generator is used and advanced: 2 * B * V draws per step', async () => {
    const g = new Generator(sampled.seed);
    const { seed: _, ...options } = sampledOptions;
    const { tokens } = await gpt.generate(prompt, { ...options, generator: g });
    expect(tokens).toEqual(rows(sampled.tokens));
    const expected = new Generator(sampled.seed);
    expected.fill(new Uint32Array(12 * sampled.uint32_draws_per_step));
    expect(g.getState()).toEqual(expected.getState());
  });

  test('maxNewTokens 0 returns the prompt', async () => {
    const result = await gpt.generate(prompt, { maxNewTokens: 0 });
    expect(result.tokens).toEqual(prompt);
    expect(result.steps).toBe(0);
  });

  test('a prompt as an int32 tensor', async () => {
    const idx = tf.tensor2d(Int32Array.from(tiny.prompt.data), [2, 4], 'int32');
    const { tokens } = await gpt.generate(idx, { maxNewTokens: 12 });
    expect(tokens).toEqual(rows(tiny.greedy.tokens));
    idx.dispose();
  });
});

describe('stop tokens', () => {
  let gpt: GPT;
  beforeAll(() => {
    gpt = tinyModel();
  });
  afterAll(() => gpt.dispose());
  const newTokens = rows(sampled.new_tokens);

  test("a row ends at its first stop token; the other row's tokens are unchanged", async () => {
    // A token row 0 emits before row 1 does (or row 1 never does).
    const stop = newTokens[0]!.find((t) => newTokens[1]!.indexOf(t) !== newTokens[0]!.indexOf(t))!;
    const i0 = newTokens[0]!.indexOf(stop);
    const i1 = newTokens[1]!.indexOf(stop);
    const result = await gpt.generate(prompt, { ...sampledOptions, stopTokens: [stop] });
    expect(result.newTokens[0]).toEqual(newTokens[0]!.slice(0, i0 + 1));
    expect(result.newTokens[1]).toEqual(i1 >= 0 ? newTokens[1]!.slice(0, i1 + 1) : newTokens[1]);
    expect(result.finishReasons).toEqual(['stop', i1 >= 0 ? 'stop' : 'length']);
    expect(result.steps).toBe(i1 >= 0 ? Math.max(i0, i1) + 1 : 12);
  });

  test('generation ends when every row has stopped', async () => {
    const stops = [newTokens[0]![2]!, newTokens[1]![3]!];
    const result = await gpt.generate(prompt, { ...sampledOptions, stopTokens: stops });
    const end = (r: number[]) => r.findIndex((t) => stops.includes(t));
    expect(result.steps).toBe(Math.max(end(newTokens[0]!), end(newTokens[1]!)) + 1);
    expect(result.finishReasons).toEqual(['stop', 'stop']);
  });
});

describe('abort, break and the busy guard: nothing left behind', () => {
  let gpt: GPT;
  let tensors: number;
  let heap: number;
  beforeAll(async () => {
    gpt = tinyModel();
    await gpt.generate(prompt, { maxNewTokens: 1 }); // the model's cache exists from here on
    tensors = tf.memory().numTensors;
    heap = kernelHeapBytes();
  });
  afterAll(() => gpt.dispose());

  const expectClean = () => {
    expect(tf.memory().numTensors).toBe(tensors);
    expect(kernelHeapBytes()).toBe(heap);
  };

  test('aborted between steps: rejects with the signal reason and frees everything', async () => {
    const controller = new AbortController();
    const steps: number[] = [];
    const call = gpt.generate(prompt, {
      ...sampledOptions,
      signal: controller.signal,
      onToken: (s) => {
        steps.push(s.step);
        if (s.step === 4) controller.abort();
      },
    });
    await expect(call).rejects.toMatchObject({ name: 'AbortError' });
    expect(steps).toEqual([0, 1, 2, 3, 4]);
    expectClean();
    // and the model generates normally afterwards
    const { tokens } = await gpt.generate(prompt, sampledOptions);
    expect(tokens).toEqual(rows(sampled.tokens));
  });

  test('aborted from a timer while decoding (the loop yields to the event loop)', async () => {
    const long = new GPT(tinyConfig({ blockSize: 512 })).eval();
    await long.generate(prompt, { maxNewTokens: 1 });
    const before = { tensors: tf.memory().numTensors, heap: kernelHeapBytes() };
    const controller = new AbortController();
    let steps = 0;
    const call = long.generate(prompt, {
      maxNewTokens: 500,
      signal: controller.signal,
      onToken: () => {
        steps++;
        if (steps === 2) setTimeout(() => controller.abort(new Error('stop now')), 0);
      },
    });
    await expect(call).rejects.toThrow('stop now');
    expect(steps).toBeLessThan(500);
    expect({ tensors: tf.memory().numTensors, heap: kernelHeapBytes() }).toEqual(before);
    long.dispose();
  });

  test('an already-aborted signal: nothing runs', async () => {
    let steps = 0;
    await expect(
      gpt.generate(prompt, {
        maxNewTokens: 3,
        signal: AbortSignal.abort(),
        onToken: () => steps++,
      }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    expect(steps).toBe(0);
    expectClean();
  });

  test('breaking out of for-await frees everything', async () => {
    let n = 0;
    for await (const _ of gpt.stream(prompt, { maxNewTokens: 12 })) if (++n === 3) break;
    expect(n).toBe(3);
    expectClean();
  });

  test('a second generation on a busy model is refused; the first is unharmed', async () => {
    const first = gpt.stream(prompt, sampledOptions);
    await first.next();
    await expect(gpt.generate(prompt, { maxNewTokens: 2 })).rejects.toThrow(/already generating/);
    let result = await first.next();
    while (!result.done) result = await first.next();
    expect(result.value.tokens).toEqual(rows(sampled.tokens));
    expectClean();
  });

  test('an error thrown by onToken propagates and frees everything', async () => {
    await expect(
      gpt.generate(prompt, {
        maxNewTokens: 5,
        onToken: () => {
          throw new Error('callback failed');
        },
      }),
    ).rejects.toThrow('callback failed');
    expectClean();
  });
});

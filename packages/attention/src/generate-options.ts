import {
  CacheCapacityError,
  DisposedError,
  Generator,
  ShapeError,
  ValueError,
} from '@kvkit/tensor-utils';
import type { GenerateOptions } from './generate.ts';
import type { GPT } from './gpt.ts';
import { type PromptIds, promptRows } from './idx.ts';

/** Checked generation options: everything `run` needs, nothing left to validate. */
export interface GeneratePlan {
  rows: number[][];
  maxNewTokens: number;
  useKvCache: boolean;
  temperature: number;
  doSample: boolean;
  topK: number | null;
  generator: Generator | null;
  stopTokens: ReadonlySet<number>;
  signal: AbortSignal | undefined;
  onToken: GenerateOptions['onToken'];
  /** The error for a model that started another generation in the meantime. */
  busyError(): ValueError;
}

const KNOWN = new Set([
  'maxNewTokens',
  'useKvCache',
  'temperature',
  'doSample',
  'topK',
  'seed',
  'generator',
  'stopTokens',
  'signal',
  'onToken',
]);

function bad(argument: string, value: unknown, message: string): ValueError {
  return new ValueError(`generate: ${message}`, { argument, value });
}

const busyError = () =>
  new ValueError(
    'generate: the model is already generating (its cache serves one call at a time)',
    {
      argument: 'model',
      value: 'busy',
    },
  );

/**
 * The longest sequence (prompt + new tokens) a cached generation may reach: blockSize, where the
 * position embeddings end, unless the model's cache is a sliding-window or sink cache that fits
 * in blockSize, which decodes on for ever (`GPT.decodesPastBlockSize`).
 */
function cachedSequenceLimit(model: GPT): number {
  return model.decodesPastBlockSize ? Number.POSITIVE_INFINITY : model.dims.blockSize;
}

/**
 * Checks a generate call completely before anything runs: the model alive and idle, the prompt,
 * and every option (unknown names included), with typed errors naming the offending values.
 */
export function checkGenerateOptions(
  model: GPT,
  idx: PromptIds,
  options: GenerateOptions,
  isBusy: boolean,
): GeneratePlan {
  if (model.isDisposed) throw new DisposedError('generate: GPT');
  if (options === null || typeof options !== 'object') {
    throw bad('options', options, 'options must be an object with maxNewTokens');
  }
  const unknown = Object.keys(options).filter((k) => !KNOWN.has(k));
  if (unknown.length > 0) {
    throw bad(
      unknown[0]!,
      unknown,
      `unknown options [${unknown.join(', ')}]; known: ${[...KNOWN].join(', ')}`,
    );
  }
  const { vocabSize: V, blockSize } = model.dims;
  const rows = promptRows(idx, V, 'generate');
  const B = rows.length;
  const T = rows[0]!.length;
  const { maxNewTokens, useKvCache = true, temperature = 1, doSample = false } = options;
  if (typeof maxNewTokens !== 'number' || !Number.isSafeInteger(maxNewTokens) || maxNewTokens < 0) {
    throw bad(
      'maxNewTokens',
      maxNewTokens,
      `maxNewTokens must be a non-negative integer, got ${String(maxNewTokens)}`,
    );
  }
  for (const [argument, value] of [
    ['useKvCache', useKvCache],
    ['doSample', doSample],
  ] as const) {
    if (typeof value !== 'boolean') {
      throw bad(argument, value, `${argument} must be a boolean, got ${String(value)}`);
    }
  }
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || !(temperature > 0)) {
    throw bad(
      'temperature',
      temperature,
      `temperature must be a finite number > 0, got ${String(temperature)}`,
    );
  }
  const topK = options.topK ?? null;
  if (
    topK !== null &&
    (typeof topK !== 'number' || !Number.isInteger(topK) || topK < 1 || topK > V)
  ) {
    throw bad(
      'topK',
      topK,
      `topK must be an integer in [1, vocabSize = ${V}], got ${String(topK)}`,
    );
  }
  if (options.seed !== undefined && options.generator !== undefined) {
    throw bad('seed', options.seed, 'give seed or generator, not both');
  }
  let generator: Generator | null = null;
  if (options.seed !== undefined)
    generator = new Generator(options.seed); // throws ValueError for a bad seed
  else if (options.generator !== undefined) {
    if (typeof (options.generator as Partial<Generator> | null)?.fill !== 'function') {
      throw bad('generator', options.generator, 'generator must be a Generator');
    }
    generator = options.generator;
  }
  const stops = options.stopTokens ?? [];
  if (!Array.isArray(stops) || stops.some((t) => !Number.isInteger(t) || t < 0 || t >= V)) {
    throw bad(
      'stopTokens',
      stops,
      `stopTokens must be an array of token ids in [0, ${V}), got ${String(stops)}`,
    );
  }
  const { signal, onToken } = options;
  if (
    signal !== undefined &&
    typeof (signal as Partial<AbortSignal> | null)?.aborted !== 'boolean'
  ) {
    throw bad('signal', signal, 'signal must be an AbortSignal');
  }
  if (onToken !== undefined && typeof onToken !== 'function') {
    throw bad('onToken', onToken, 'onToken must be a function');
  }
  if (T > blockSize) {
    throw new ShapeError(`generate: the prompt's T = ${T} exceeds blockSize ${blockSize}`, {
      expected: `T <= ${blockSize}`,
      actual: [B, T],
    });
  }
  if (useKvCache) {
    const limit = cachedSequenceLimit(model);
    if (T + maxNewTokens > limit) {
      throw new CacheCapacityError(
        `generate: prompt + maxNewTokens = ${T} + ${maxNewTokens} = ${T + maxNewTokens} exceeds blockSize ${limit} ` +
          '(with this cache; without the cache minGPT crops to the last blockSize tokens, and a sliding-window or sink cache goes past it)',
        { capacity: limit, requested: T + maxNewTokens },
      );
    }
    // The model's cache, or the one its first cached forward builds (at most maxBatchSize rows).
    const rowsHeld = model.kvCache ? model.kvCache.maxBatchSize : model.dims.maxBatchSize;
    if (rowsHeld !== null && B > rowsHeld) {
      throw new CacheCapacityError(
        `generate: batch ${B} exceeds the cache's maxBatchSize ${rowsHeld}`,
        {
          capacity: rowsHeld,
          requested: B,
        },
      );
    }
  }
  if (isBusy) throw busyError();
  return {
    rows,
    maxNewTokens,
    useKvCache,
    temperature,
    doSample,
    topK,
    generator,
    stopTokens: new Set(stops),
    signal,
    onToken,
    busyError,
  };
}

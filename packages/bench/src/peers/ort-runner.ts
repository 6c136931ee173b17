/**
 * Running an attention model on ONNX Runtime the way transformers.js runs a decoder: the first
 * call gets empty pasts (B, nkv, 0, hs), and every later call gets the previous call's presents
 * as its pasts. Inputs are made once, outside anything timed (kvkit's and PyTorch's loops slice
 * their inputs beforehand too).
 */

import { DTypeError, ValueError } from '@kvkit/tensor-utils';
import { onnxNames } from './onnx-attention.ts';
import type { OrtEngine, OrtSession, OrtTensor } from './ort-engines.ts';

/** The model's sizes the runner needs to build pasts, and its input and output names. */
export interface RunnerDims {
  B: number;
  nKvHeads: number;
  headSize: number;
  layers: number;
  /** The graph's input (`input` by default; a GPT's is `input_ids`). */
  inputName?: string;
  /** The graph's output (`output` by default; a GPT's is `logits`). */
  outputName?: string;
}

/** `x[:, from:to]` of a row-major (B, T, C) array, as a new (B, to - from, C) array. */
export function sliceTokens(
  x: Float32Array,
  dims: { B: number; T: number; C: number },
  from: number,
  to: number,
): Float32Array {
  const { B, T, C } = dims;
  const out = new Float32Array(B * (to - from) * C);
  for (let b = 0; b < B; b++)
    out.set(x.subarray((b * T + from) * C, (b * T + to) * C), b * (to - from) * C);
  return out;
}

/**
 * A session plus the feeding rules.
 *
 * @example
 * const runner = new PastPresentRunner(engine, session, { B: 1, nKvHeads: 12, headSize: 64, layers: 1 });
 * let { output, pasts } = await runner.feed([prompt]); // prefill from empty pasts
 * ({ output, pasts } = await runner.run(nextToken, pasts)); // one decode step
 */
export class PastPresentRunner {
  readonly #engine: OrtEngine;
  readonly #session: OrtSession;
  readonly #dims: RunnerDims;

  constructor(engine: OrtEngine, session: OrtSession, dims: RunnerDims) {
    this.#engine = engine;
    this.#session = session;
    this.#dims = dims;
  }

  /** An input tensor (B, T, C) from row-major data. */
  input(data: Float32Array, T: number, C: number): OrtTensor {
    return this.#engine.tensor(data, [this.#dims.B, T, C]);
  }

  /** Pasts of length 0, as transformers.js makes them for the first call. */
  emptyPasts(): Record<string, OrtTensor> {
    const { B, nKvHeads, headSize, layers } = this.#dims;
    const feeds: Record<string, OrtTensor> = {};
    for (let i = 0; i < layers; i++) {
      for (const name of [onnxNames.pastKey(i), onnxNames.pastValue(i)])
        feeds[name] = this.#engine.tensor(new Float32Array(0), [B, nKvHeads, 0, headSize]);
    }
    return feeds;
  }

  /** One call: the output and the presents renamed as the next call's pasts. */
  async run(
    input: OrtTensor,
    pasts: Record<string, OrtTensor>,
  ): Promise<{ output: OrtTensor; pasts: Record<string, OrtTensor> }> {
    const { inputName = onnxNames.input, outputName = onnxNames.output } = this.#dims;
    const r = await this.#session.run({ [inputName]: input, ...pasts });
    const next: Record<string, OrtTensor> = {};
    for (let i = 0; i < this.#dims.layers; i++) {
      next[onnxNames.pastKey(i)] = r[onnxNames.presentKey(i)]!;
      next[onnxNames.pastValue(i)] = r[onnxNames.presentValue(i)]!;
    }
    return { output: r[outputName]!, pasts: next };
  }

  /**
   * Feeds `chunks` in order, each call's presents becoming the next call's pasts, from empty
   * pasts: a prefill in pieces, or a prefill followed by single-token steps. Returns the last
   * output and the pasts after it.
   */
  async feed(
    chunks: readonly OrtTensor[],
  ): Promise<{ output: OrtTensor; pasts: Record<string, OrtTensor> }> {
    let pasts = this.emptyPasts();
    let output: OrtTensor | null = null;
    for (const chunk of chunks) ({ output, pasts } = await this.run(chunk, pasts));
    if (!output)
      throw new ValueError('PastPresentRunner.feed: no chunks to feed', {
        argument: 'chunks',
        value: chunks,
      });
    return { output, pasts };
  }

  /**
   * The first `length` positions of `pasts` (B, nkv, P, hs), copied: the pasts of a shorter
   * context, as a cache cropped back to `length` holds it.
   */
  truncate(pasts: Record<string, OrtTensor>, length: number): Record<string, OrtTensor> {
    const out: Record<string, OrtTensor> = {};
    for (const [name, t] of Object.entries(pasts)) {
      const [B, n, P, hs] = t.dims as [number, number, number, number];
      if (!(Number.isInteger(length) && length >= 0 && length <= P)) {
        throw new ValueError(`PastPresentRunner.truncate: length ${length} outside [0, ${P}]`, {
          argument: 'length',
          value: length,
        });
      }
      const from = values(t);
      const kept = new Float32Array(B * n * length * hs);
      for (let r = 0; r < B * n; r++)
        kept.set(from.subarray(r * P * hs, (r * P + length) * hs), r * length * hs);
      out[name] = this.#engine.tensor(kept, [B, n, length, hs]);
    }
    return out;
  }

  release(): Promise<void> {
    return this.#session.release();
  }
}

/** A tensor's values as float32 (ONNX Runtime returns Float32Array for float32 outputs). */
export function values(t: OrtTensor): Float32Array {
  if (!(t.data instanceof Float32Array)) {
    const actual = (t.data as object | null)?.constructor?.name ?? typeof t.data;
    throw new DTypeError(`expected float32 values (Float32Array), got ${actual}`, {
      expected: 'float32',
      actual,
    });
  }
  return t.data;
}

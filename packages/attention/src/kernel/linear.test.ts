import { readFileSync } from 'node:fs';
import { initBackend, rand, setSeed, tfjsWasmMemory } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { assemble } from '../../../kv-cache/scripts/build-kernels.mjs';
import { Linear } from '../linear.ts';
import { linearKernelReady } from './linear-kernel.ts';
import { linearWasmBase64 } from './linear-wasm.ts';

beforeAll(async () => {
  await initBackend('wasm');
});
afterAll(async () => {
  await initBackend('wasm');
});

describe('the committed linear kernel module', () => {
  test('is what linear.wat assembles to (run build:kernels after editing the .wat)', async () => {
    const source = readFileSync(new URL('./linear.wat', import.meta.url), 'utf8');
    expect(await assemble('linear.wat', source)).toBe(linearWasmBase64);
  });
});

/** A layer with weights and bias drawn uniformly from [-1, 1). */
function layer(K: number, N: number, bias = true): Linear<boolean> {
  setSeed(K * 7919 + N);
  const weight = Float32Array.from(rand([N, K]).dataSync(), (v) => 2 * v - 1); // (out, in)
  const b = bias ? Float32Array.from(rand([N]).dataSync(), (v) => 2 * v - 1) : null;
  return new Linear(K, N, { bias, values: { weight, bias: b } } as never);
}

/**
 * The float64 product and, per output, the rigorous float32 bound on a K-term sum:
 * |fl(sum) - sum| <= K * 2^-24 * sum |terms| (plus the bias's own rounding).
 */
function float64(x: Float32Array, w: Float32Array, b: Float32Array | null, K: number, N: number) {
  const y = new Float64Array(N);
  const bound = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let s = b ? b[n]! : 0;
    let a = b ? Math.abs(b[n]!) : 0;
    for (let k = 0; k < K; k++) {
      s += x[k]! * w[n * K + k]!; // w is (out, in)
      a += Math.abs(x[k]! * w[n * K + k]!);
    }
    y[n] = s;
    bound[n] = (K + 1) * 2 ** -24 * a + 1e-30;
  }
  return { y, bound };
}

describe('Linear on one row (decode steps) runs kvkit’s matrix-vector kernel', () => {
  test('the kernel is in use after initBackend("wasm")', () => {
    expect(tfjsWasmMemory()).not.toBeNull();
    expect(linearKernelReady()).toBe(true);
  });

  test.each([
    [1, 1],
    [3, 5],
    [6, 18],
    [7, 9], // K % 4 and N % 8 tails
    [13, 11], // eight rows, then four, then one; N % 8 tail
    [3072, 768],
    [128, 384],
    [768, 2304],
    [768, 4100], // two column chunks, the second a tail
    [64, 9001],
  ])(
    'x (1, %i) W: within the float32 bound of a float64 product, and of the matMul path',
    (K, N) => {
      for (const bias of [true, false]) {
        const lin = layer(K, N, bias);
        const x = tf.tidy(() => tf.sub(tf.mul(rand([1, K]), 2), 1)) as tf.Tensor2D;
        const y = lin.apply(x);
        const { weight, bias: b } = lin.state();
        const xs = x.dataSync() as Float32Array;
        const want = float64(
          xs,
          weight.dataSync() as Float32Array,
          b ? (b.dataSync() as Float32Array) : null,
          K,
          N,
        );
        const got = y.dataSync();
        // The same through tfjs' matMul (two rows: the kernel takes only one), first row.
        const two = tf.concat([x, x]);
        const viaMatMul = lin
          .apply(two as tf.Tensor2D)
          .dataSync()
          .subarray(0, N);
        let worst = 0;
        for (let n = 0; n < N; n++) {
          worst = Math.max(worst, Math.abs(got[n]! - want.y[n]!) / want.bound[n]!);
          expect(Math.abs(viaMatMul[n]! - want.y[n]!)).toBeLessThanOrEqual(want.bound[n]!);
        }
        expect(worst).toBeLessThanOrEqual(1);
        expect(y.shape).toEqual([1, N]);
        tf.dispose([x, y, two, weight, ...(b ? [b] : [])]);
        lin.dispose();
      }
    },
  );

  test('NaN and infinities spread as in the matMul path; an infinite weight makes no NaN elsewhere', () => {
    const K = 9;
    const N = 11;
    const weight = Float32Array.from({ length: N * K }, (_, i) => ((i * 37) % 17) / 17 - 0.5);
    weight[3 * K + 8] = Number.POSITIVE_INFINITY; // output 3, the last (tail) input row
    const lin = new Linear(K, N, { values: { weight, bias: new Float32Array(N) } });
    for (const poison of [Number.NaN, Number.POSITIVE_INFINITY, 0]) {
      const xs = Float32Array.from({ length: K }, (_, k) => 0.1 * (k + 1));
      xs[2] = poison === 0 ? xs[2]! : poison;
      const x = tf.tensor2d(xs, [1, K]);
      const pattern = (t: tf.Tensor) =>
        Array.from(t.dataSync().subarray(0, N), (v) =>
          Number.isNaN(v) ? 'nan' : Number.isFinite(v) ? 'f' : 'inf',
        );
      const one = lin.apply(x);
      const two = lin.apply(tf.concat([x, x]) as tf.Tensor2D);
      expect(pattern(one)).toEqual(pattern(two));
      tf.dispose([x, one, two]);
    }
    lin.dispose();
  });

  test('no tensor leaks over 1,000 rows, inside and outside tf.tidy', () => {
    const lin = layer(64, 72);
    const x = rand([1, 64]) as tf.Tensor2D;
    lin.apply(x).dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 1000; i++) lin.apply(x).dispose();
    tf.tidy(() => {
      for (let i = 0; i < 100; i++) lin.apply(x);
    });
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    lin.dispose();
  });

  test('on the cpu backend the plain matMul runs, with the same numbers to float32 rounding', async () => {
    const lin = layer(40, 24);
    const x = rand([1, 40]) as tf.Tensor2D;
    const wasmY = lin.apply(x).dataSync().slice();
    const xs = x.dataSync().slice();
    const { weight, bias } = lin.state();
    const [w, b] = [weight.dataSync().slice(), bias!.dataSync().slice()];
    tf.dispose([weight, bias!, x]);
    lin.dispose();
    await initBackend('cpu');
    expect(linearKernelReady()).toBe(false);
    const onCpu = new Linear(40, 24, {
      values: { weight: w as Float32Array, bias: b as Float32Array },
    });
    const cpuY = onCpu.apply(tf.tensor2d(xs, [1, 40])).dataSync();
    const want = float64(xs as Float32Array, w as Float32Array, b as Float32Array, 40, 24);
    for (let n = 0; n < 24; n++) {
      expect(Math.abs(cpuY[n]! - want.y[n]!)).toBeLessThanOrEqual(want.bound[n]!);
      expect(Math.abs(wasmY[n]! - want.y[n]!)).toBeLessThanOrEqual(want.bound[n]!);
    }
    onCpu.dispose();
    await initBackend('wasm');
    expect(linearKernelReady()).toBe(true);
  });
});

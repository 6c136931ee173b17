import { rand, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import type { Machine, Measurement } from './report/schema.ts';
import { gpt2Small, quickLayer } from './scenarios/layer-workload.ts';
import { type TimeitOptions, timeit } from './timeit.ts';

/** Bytes in each of the two buffers the read pass compares: far beyond any CPU cache. */
const readBufferBytes = 64 * 1024 * 1024;

/**
 * The machine's limits, measured at the start of every run so every floor uses this run's
 * machine: the read-only memory bandwidth (Buffer.equals of two equal 64 MiB buffers: glibc's
 * memcmp reads both with vector loads, the fastest read-only pass Node offers without native
 * code of our own) and XNNPACK's matMul rate through tfjs-wasm on the prefill's largest matMul
 * shape. Rates use each measurement's fastest repeat (the least disturbed).
 *
 * @example
 * const m = measureMachine({ quick: true, backend: 'wasm', timing: {}, progress: console.log });
 * console.log(m.readGBps, m.matmulGflops);
 */
export function measureMachine(ctx: {
  quick: boolean;
  backend: 'wasm' | 'cpu';
  timing: TimeitOptions;
  progress: (message: string) => void;
}): Machine {
  const a = Buffer.alloc(readBufferBytes, 1);
  const b = Buffer.alloc(readBufferBytes, 1);
  ctx.progress('machine: read-only bandwidth');
  const read = timeit(
    () => {
      if (!a.equals(b)) throw new Error('machine: the read pass compared unequal buffers');
    },
    { budgetMs: 5_000, ...ctx.timing },
  );
  const readBytes = 2 * readBufferBytes;
  const dims = ctx.quick ? quickLayer : gpt2Small;
  const T = ctx.quick ? 128 : 1024;
  setSeed(1);
  const x = rand([T, dims.C]) as tf.Tensor2D;
  const w = rand([dims.C, 3 * dims.C]) as tf.Tensor2D;
  ctx.progress('machine: XNNPACK matMul');
  const matmul = timeit(() => tf.matMul(x, w).dispose(), { budgetMs: 10_000, ...ctx.timing });
  tf.dispose([x, w]);
  const flops = 2 * T * dims.C * 3 * dims.C;
  const measurements: Measurement[] = [
    {
      key: 'read',
      labels: { what: `read 2 x ${readBufferBytes / 2 ** 20} MiB (Buffer.equals)` },
      timing: read,
      extra: { bytes: readBytes },
    },
    {
      key: 'matmul',
      labels: { what: `matMul (${T}, ${dims.C}) x (${dims.C}, ${3 * dims.C}) on ${ctx.backend}` },
      timing: matmul,
      extra: { flops },
    },
  ];
  return {
    readGBps: readBytes / read.minMs / 1e6,
    matmulGflops: flops / matmul.minMs / 1e6,
    measurements,
    noise: null,
  };
}

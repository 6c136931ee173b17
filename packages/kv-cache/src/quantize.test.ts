import { describe, expect, test } from 'vitest';
import { attentionFloat64, randomFloats } from '../test/reference.ts';
import { quantizedFormat } from './kernel/layout.ts';
import {
  bf16Up,
  bf16Value,
  quantizeKeyGroup,
  quantizeValueRow,
  readKeyRow,
  readValueRow,
} from './quantize.ts';

describe('bf16Up', () => {
  test.each([
    [0, 0, 0],
    [1, 0x3f80, 1],
    [1 / 127, 0x3c02, 0.0079345703125], // 2^-7 x 1.007874 -> 2^-7 x (1 + 2/128)
    [2 / 15, 0x3e09, 0.1337890625], // 2^-3 x 1.0667 -> 2^-3 x 137/128
    [3.4e38, 0x7f80, Number.POSITIVE_INFINITY], // above the largest bfloat16
  ])('%d -> bits %i = %d (the smallest bfloat16 >= x)', (x, bits, value) => {
    expect(bf16Up(x)).toBe(bits);
    expect(bf16Value(bits)).toBe(value);
  });

  test('NaN stays NaN', () => {
    expect(bf16Value(bf16Up(Number.NaN))).toBeNaN();
  });
});

describe.each(['int8', 'int4'] as const)('%s groups', (dtype) => {
  /** A group's step (before bf16 rounding up): max |x| / 127, or (max - min) / 15 and |min| / 127. */
  const stepOf = (group: number[]) => {
    const lo = Math.min(...group);
    const hi = Math.max(...group);
    return dtype === 'int8'
      ? Math.max(Math.abs(lo), Math.abs(hi)) / 127
      : Math.max((hi - lo) / 15, Math.abs(lo) / 127);
  };

  test('every element is within half a step of its group scale, on 200 random groups', () => {
    const G = 32;
    const hs = 40;
    const f = quantizedFormat(dtype, hs, G);
    const src = randomFloats(2 * G * hs, 1).map((x, i) => x * (1 + (i % 7)) + (i % 5) - 2);
    const dst = new Uint8Array(f.keyGroupBytes + f.valueGroupBytes);
    const out = new Float32Array(hs);
    let worst = 0;
    for (let trial = 0; trial < 200; trial++) {
      const shift = randomFloats(G * hs, trial + 2);
      const rows = Array.from({ length: G }, (_, r) => r * hs);
      const data = src.slice(0, G * hs).map((x, i) => x * (1 + shift[i]! / 4));
      quantizeKeyGroup(f, { src: data, dst }, rows, hs, 0);
      for (const r of [0, 7, 31])
        quantizeValueRow(f, { src: data, dst }, r * hs, hs, f.keyGroupBytes, r);
      for (let c = 0; c < hs; c++) {
        const step = stepOf(rows.map((at) => data[at + c]!));
        for (const r of [0, 7, 31]) {
          readKeyRow(f, dst, 0, r, hs, out, 0);
          const err = Math.abs(out[c]! - data[r * hs + c]!);
          worst = Math.max(worst, err / step);
          expect(err).toBeLessThanOrEqual((step / 2) * (1 + 2 ** -7));
        }
      }
      for (const r of [0, 7, 31]) {
        readValueRow(f, dst, f.keyGroupBytes, r, hs, out, 0);
        for (let g = 0; g * G < hs; g++) {
          const part = Array.from(
            data.subarray(r * hs + g * G, r * hs + Math.min(hs, (g + 1) * G)),
          );
          const step = stepOf(part);
          part.forEach((x, i) => {
            expect(Math.abs(out[g * G + i]! - x)).toBeLessThanOrEqual((step / 2) * (1 + 2 ** -7));
          });
        }
      }
    }
    expect(worst).toBeGreaterThan(0.4); // the bound is tight: some element is nearly half a step off
  });
});

/**
 * KIVI's grouping (keys per channel over positions, values per position over channels) against
 * keys per position, measured by float64 attention over the dequantized rows. Keys with outlier
 * channels (a per-channel offset and scale, as KIVI observed in LLM keys) are where it matters;
 * on i.i.d. keys the two are close.
 */
describe('grouping of keys: per channel (KIVI) vs per position', () => {
  const hs = 64;
  const G = 32;
  const t = 256;
  const trials = 8;

  /** Keys (t, hs), values (t, hs), queries; `outliers` gives channels an offset and a scale. */
  function data(seed: number, outliers: boolean) {
    const u = randomFloats(3 * t * hs + 2 * hs, seed);
    const chScale = Array.from({ length: hs }, (_, c) =>
      outliers ? Math.exp(1.5 * u[3 * t * hs + c]!) : 1,
    );
    const chShift = Array.from({ length: hs }, (_, c) =>
      outliers ? 2 * u[3 * t * hs + hs + c]! : 0,
    );
    const keys = Array.from({ length: t }, (_, p) =>
      Float32Array.from({ length: hs }, (_, c) => chShift[c]! + (chScale[c]! * u[p * hs + c]!) / 2),
    );
    const values = Array.from({ length: t }, (_, p) =>
      Float32Array.from({ length: hs }, (_, c) => u[t * hs + p * hs + c]! / 2),
    );
    const q = Float32Array.from({ length: hs }, (_, c) => u[2 * t * hs + c]! / 2);
    return { keys, values, q };
  }

  /** Dequantized keys grouped per channel (the cache's format) or per position (as values are). */
  function dequantized(dtype: 'int8' | 'int4', keys: Float32Array[], perChannel: boolean) {
    const f = quantizedFormat(dtype, hs, G);
    const src = new Float32Array(t * hs);
    for (const [p, k] of keys.entries()) src.set(k, p * hs);
    const dst = new Uint8Array(Math.max(f.keyGroupBytes, f.valueGroupBytes));
    const out = keys.map(() => new Float32Array(hs));
    for (let g = 0; g < t / G; g++) {
      const rows = Array.from({ length: G }, (_, r) => (g * G + r) * hs);
      if (perChannel) quantizeKeyGroup(f, { src, dst }, rows, hs, 0);
      else for (let r = 0; r < G; r++) quantizeValueRow(f, { src, dst }, rows[r]!, hs, 0, r);
      for (let r = 0; r < G; r++) {
        if (perChannel) readKeyRow(f, dst, 0, r, hs, out[g * G + r]!, 0);
        else readValueRow(f, dst, 0, r, hs, out[g * G + r]!, 0);
      }
    }
    return out;
  }

  function meanError(dtype: 'int8' | 'int4', outliers: boolean, perChannel: boolean): number {
    let sum = 0;
    for (let trial = 0; trial < trials; trial++) {
      const { keys, values, q } = data(100 + trial, outliers);
      const d = { nh: 1, nkv: 1, hs, visibility: { window: null, sinks: 0 } };
      const want = attentionFloat64(q, t - 1, keys, values, d);
      const got = attentionFloat64(q, t - 1, dequantized(dtype, keys, perChannel), values, d);
      for (let e = 0; e < hs; e++) sum += Math.abs(got[e]! - want[e]!);
    }
    return sum / (trials * hs);
  }

  test.each(['int8', 'int4'] as const)(
    '%s: per channel is better with outlier channels, no worse on i.i.d. keys',
    (dtype) => {
      const table = [false, true].map((outliers) => ({
        keys: outliers ? 'outlier channels' : 'i.i.d.',
        perChannel: meanError(dtype, outliers, true),
        perPosition: meanError(dtype, outliers, false),
      }));
      console.info(
        `${dtype} mean |attention error| (keys only quantized):`,
        table
          .map(
            (r) =>
              `${r.keys}: per channel ${r.perChannel.toExponential(2)}, per position ${r.perPosition.toExponential(2)}`,
          )
          .join('; '),
      );
      // Measured (see docs/concepts/quantized-cache.md): int8 2.6x and int4 1.3x lower with
      // outlier channels; within 10% either way on i.i.d. keys.
      expect(table[1]!.perChannel).toBeLessThan(table[1]!.perPosition);
      expect(table[0]!.perChannel).toBeLessThan(table[0]!.perPosition * 1.5);
    },
  );
});

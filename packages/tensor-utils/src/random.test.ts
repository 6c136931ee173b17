import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type Described,
  expectDescribed,
  expectValueError,
  fixture,
  hexBits,
  sha256,
} from '../test/rng-support.ts';
import { ValueError } from './errors.ts';
import { Generator, getDefaultGenerator, setSeed } from './generator.ts';
import { fusedMultiplyAdd32, rand, uniformValues } from './random.ts';

interface UniformCase extends Described {
  from: number;
  to: number;
}

const vectors = fixture<{ rand10_seed42_f32_bits_hex: string[] }>('rng_vectors.json');
const torchRef = fixture<{
  rand_8_64_128: Described;
  uniform: UniformCase[];
  fresh_generator: { initial_seed: string; rand4: Described };
  baseline_kernel: { cpu_capability: string; uniform: UniformCase[] };
}>('torch-linear-init.json');
type TensorFixture = { shape: number[]; data: number[] };
const notebook = fixture<{ seeds: { seed: number }; x: TensorFixture }>(
  'a_seed_notebook.init.json',
);
const mha = fixture<{ seeds: { seed: number }; x: TensorFixture }>('b_mha_b3_t16_c32_h4.init.json');

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('rand against torch.rand', () => {
  it('first 10 values after seed 42, as bit patterns', () => {
    const g = new Generator(42);
    const t = rand([10], { generator: g });
    expect(t.dtype).toBe('float32');
    expect(t.shape).toEqual([10]);
    expect(hexBits(t.dataSync() as Float32Array)).toEqual(vectors.rand10_seed42_f32_bits_hex);
    t.dispose();
  });

  it('setSeed(42); rand([2, 8, 6]) is the seed notebook x bit for bit', () => {
    setSeed(notebook.seeds.seed);
    const x = rand([2, 8, 6]);
    expect(x.shape).toEqual(notebook.x.shape);
    expect(hexBits(x.dataSync() as Float32Array)).toEqual(
      hexBits(Float32Array.from(notebook.x.data)),
    );
    x.dispose();
  });

  it('setSeed(7); rand([3, 16, 32]) is the MHA case x bit for bit', () => {
    setSeed(mha.seeds.seed);
    const x = rand([3, 16, 32]);
    expect(x.shape).toEqual(mha.x.shape);
    expect(hexBits(x.dataSync() as Float32Array)).toEqual(hexBits(Float32Array.from(mha.x.data)));
    x.dispose();
  });

  it('rand(8, 64, 128) after seed 42 has torch’s SHA-256 (65536 draws, 105 block regenerations)', () => {
    setSeed(42);
    const x = rand([8, 64, 128]);
    expect(x.shape).toEqual([8, 64, 128]);
    expectDescribed(x.dataSync() as Float32Array, torchRef.rand_8_64_128);
    x.dispose();
  });

  it('a fresh Generator() matches a fresh torch.Generator()', () => {
    const g = new Generator();
    expect(g.initialSeed().toString()).toBe(torchRef.fresh_generator.initial_seed);
    const t = rand([4], { generator: g });
    expectDescribed(t.dataSync() as Float32Array, torchRef.fresh_generator.rand4);
    t.dispose();
  });

  it('consecutive calls continue the stream; shape does not change the order', () => {
    const g = new Generator(42);
    const a = rand([3], { generator: g });
    const b = rand([2, 2, 2], { generator: g });
    const whole = uniformValues(11, 0, 1, { generator: new Generator(42) });
    expect(hexBits(Float32Array.from([...a.dataSync(), ...b.dataSync()]))).toEqual(hexBits(whole));
    expect(hexBits(whole).slice(0, 10)).toEqual(vectors.rand10_seed42_f32_bits_hex);
    tf.dispose([a, b]);
  });

  it('uses the default generator when none is given, and not when one is', () => {
    setSeed(42);
    const own = rand([5], { generator: new Generator(0) });
    const t = rand([10]);
    expect(hexBits(t.dataSync() as Float32Array)).toEqual(vectors.rand10_seed42_f32_bits_hex);
    expect(getDefaultGenerator().getState().index).toBe(10);
    tf.dispose([own, t]);
  });

  it('scalar and empty shapes', () => {
    const g = new Generator(42);
    const s = rand([], { generator: g });
    expect(s.shape).toEqual([]);
    expect(hexBits(s.dataSync() as Float32Array)).toEqual(
      vectors.rand10_seed42_f32_bits_hex.slice(0, 1),
    );
    const e = rand([0, 3], { generator: g });
    expect(e.shape).toEqual([0, 3]);
    expect(e.size).toBe(0);
    // The empty tensor consumed nothing.
    const next = rand([1], { generator: g });
    expect(hexBits(next.dataSync() as Float32Array)).toEqual(
      vectors.rand10_seed42_f32_bits_hex.slice(1, 2),
    );
    tf.dispose([s, e, next]);
  });

  it('rejects bad shapes with a ValueError naming the value', () => {
    expect(() => rand([2, -1])).toThrow(
      new ValueError('rand: shape [2, -1] has a negative dimension -1', {
        argument: 'shape',
        value: [2, -1],
      }),
    );
    expect(() => rand([2, -1])).toThrow(ValueError);
    expect(() => rand([2, 1.5])).toThrow('rand: shape [2, 1.5] has a non-integer dimension 1.5');
    expect(() => rand([Number.NaN])).toThrow(ValueError);
    expect(() => rand(3 as unknown as number[])).toThrow(ValueError);
    const g = new Generator(42);
    expect(() => rand([4, -2], { generator: g })).toThrow(ValueError);
    // Validation happens before any draw.
    expect(g.getState().index).toBe(624);
  });
});

describe('uniformValues against torch uniform_', () => {
  for (const [i, ref] of torchRef.uniform.entries()) {
    it(`uniform_(${ref.from}, ${ref.to}) x ${ref.count}: fused (default) matches AVX2 torch`, () => {
      const values = uniformValues(ref.count, ref.from, ref.to, { generator: new Generator(42) });
      expectDescribed(values, ref);
      const explicit = uniformValues(ref.count, ref.from, ref.to, {
        generator: new Generator(42),
        rounding: 'fused',
      });
      expect(sha256(explicit)).toBe(ref.sha256);
    });

    const base = torchRef.baseline_kernel.uniform[i]!;
    it(`uniform_(${base.from}, ${base.to}): two-roundings matches torch's baseline kernel`, () => {
      expect(torchRef.baseline_kernel.cpu_capability).toBe('NO AVX');
      const values = uniformValues(base.count, base.from, base.to, {
        generator: new Generator(42),
        rounding: 'two-roundings',
      });
      expectDescribed(values, base);
    });
  }

  it('validates its arguments before drawing', () => {
    const g = new Generator(1);
    const bad: Array<[() => unknown, string]> = [
      [() => uniformValues(-1, 0, 1, { generator: g }), 'n'],
      [() => uniformValues(1.5, 0, 1, { generator: g }), 'n'],
      [() => uniformValues(2, Number.NaN, 1, { generator: g }), 'from'],
      [() => uniformValues(2, 0, Number.POSITIVE_INFINITY, { generator: g }), 'to'],
      [() => uniformValues(2, 1, 0, { generator: g }), 'from'],
      [() => uniformValues(2, -3e38, 3e38, { generator: g }), 'to'],
      [() => uniformValues(2, 0, 1, { generator: g, rounding: 'exact' as 'fused' }), 'rounding'],
      [() => uniformValues(2, 0, 1, { generator: {} as Generator }), 'generator'],
    ];
    for (const [fn, argument] of bad) expectValueError(fn, argument);
    expect(() => uniformValues(2, 1, 0)).toThrow(/from = 1 > to = 0/);
    expect(g.getState().index).toBe(624);
  });

  it('from === to gives that value (after rounding to float32) and still draws', () => {
    const g = new Generator(42);
    expect(Array.from(uniformValues(3, 0.1, 0.1, { generator: g }))).toEqual([
      Math.fround(0.1),
      Math.fround(0.1),
      Math.fround(0.1),
    ]);
    expect(g.getState().index).toBe(3);
  });
});

/** A float32 value as sign * m * 2^e with integer m, read from its bits. */
function decompose(v: number): { m: bigint; e: number } {
  const bits = new Uint32Array(Float32Array.of(v).buffer)[0]!;
  const biased = (bits >>> 23) & 0xff;
  const frac = bits & 0x7fffff;
  const m = BigInt(biased === 0 ? frac : frac | 0x800000);
  return { m: bits >>> 31 ? -m : m, e: (biased === 0 ? 1 : biased) - 150 };
}

/** Exact x * y + z with one round-to-nearest-even to float32, in BigInt arithmetic. */
function exactFma32(x: number, y: number, z: number): number {
  const a = decompose(x);
  const b = decompose(y);
  const c = decompose(z);
  const e0 = Math.min(a.e + b.e, c.e);
  const n = ((a.m * b.m) << BigInt(a.e + b.e - e0)) + (c.m << BigInt(c.e - e0));
  if (n === 0n) return 0;
  const negative = n < 0n;
  const mag = negative ? -n : n;
  const top = mag.toString(2).length - 1 + e0; // floor(log2 |value|)
  const quantumExp = Math.max(top, -126) - 23;
  let q: bigint;
  if (quantumExp <= e0) {
    q = mag << BigInt(e0 - quantumExp);
  } else {
    const shift = BigInt(quantumExp - e0);
    q = mag >> shift;
    const rem = mag - (q << shift);
    const half = 1n << (shift - 1n);
    if (rem > half || (rem === half && (q & 1n) === 1n)) q += 1n;
  }
  // q <= 2^24, so the product is exact; fround maps 2^128 to Infinity.
  const r = Math.fround(Number(q) * 2 ** quantumExp);
  return negative ? -r : r;
}

describe('fusedMultiplyAdd32 (exact single rounding)', () => {
  const rng = new Generator(2024);
  const randomFloat32 = (minExp: number, maxExp: number): number => {
    const exp = minExp + (rng.random() % (maxExp - minExp + 1));
    const sign = rng.random() & 1 ? -1 : 1;
    return Math.fround(sign * (1 + (rng.random() & 0x7fffff) * 2 ** -23) * 2 ** exp);
  };
  const randomX = (): number => (rng.random() & 0xffffff) * 2 ** -24;

  it('equals an exact BigInt reference on random inputs across magnitudes', () => {
    const mismatches: number[][] = [];
    for (let i = 0; i < 10000; i++) {
      const x = randomX();
      const y = Math.abs(randomFloat32(-140, 127));
      const z = randomFloat32(-149, 127);
      if (fusedMultiplyAdd32(x, y, z) !== exactFma32(x, y, z)) mismatches.push([x, y, z]);
    }
    expect(mismatches).toEqual([]);
  });

  it('rounds products that are exact float32 midpoints by the sign of a tiny addend', () => {
    const mismatches: number[][] = [];
    let checked = 0;
    let naiveWrong = 0;
    for (let i = 0; i < 5000; i++) {
      // k odd and >= 2^24 / 3 makes 3k an odd 25-bit integer: an exact float32 midpoint.
      const k = (Math.ceil(2 ** 24 / 3) + 2 * (rng.random() % 2796202)) | 1;
      if (k >= 2 ** 24) continue;
      const x = k * 2 ** -24;
      const tiny = randomFloat32(-149, -60);
      for (const z of [tiny, -tiny, 0]) {
        if (fusedMultiplyAdd32(x, 3, z) !== exactFma32(x, 3, z)) mismatches.push([x, z]);
        checked++;
      }
      // The naive fround of the binary64 sum loses the tiny addend and ties to even instead.
      if (Math.fround(x * 3 + tiny) !== exactFma32(x, 3, tiny)) naiveWrong++;
    }
    expect(mismatches).toEqual([]);
    expect(naiveWrong).toBeGreaterThan(100);
    expect(checked).toBeGreaterThan(1000);
  });

  it('handles the float32 overflow boundary and subnormals', () => {
    const max = 3.4028234663852886e38;
    const cases: Array<[number, number, number]> = [
      [0.5, max, max],
      [2 ** -24, max, max],
      [0.5, 2 ** -149, 2 ** -149],
      [0.75, 2 ** -148, -(2 ** -149)],
      [0.999, 1e-40, 1e-45],
      [0.5, 1, -0.5],
    ];
    for (const [x, y, z] of cases) {
      const fx = Math.fround(x);
      const fy = Math.fround(y);
      const fz = Math.fround(z);
      expect(fusedMultiplyAdd32(fx, fy, fz)).toBe(exactFma32(fx, fy, fz));
    }
  });

  it('uniformValues agrees with the exact FMA element by element, in both fill paths', () => {
    for (const [from, to] of [
      [-0.3, 0.45],
      [-1000, -999.3],
      [1e-30, 0.7],
      [-0.036084391824351615, 0.036084391824351615],
    ] as const) {
      const values = uniformValues(5000, from, to, { generator: new Generator(9) });
      const g = new Generator(9);
      const lo = Math.fround(from);
      const span = Math.fround(Math.fround(to) - lo);
      for (let i = 0; i < values.length; i++) {
        const x = (g.random() & 0xffffff) * 2 ** -24;
        if (values[i] !== exactFma32(x, span, lo)) {
          throw new Error(`uniform(${from}, ${to})[${i}] = ${values[i]} != exact FMA`);
        }
      }
    }
  });
});

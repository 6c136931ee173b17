import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectValueError, fixture, hexBits } from '../test/rng-support.ts';
import { DTypeError, ShapeError } from './errors.ts';
import { Generator, setSeed } from './generator.ts';
import { rand } from './random.ts';
import { exponentialValues, multinomial, multinomialValues } from './sampling.ts';

type TensorFixture = { shape: number[]; data: number[] };
interface Draw {
  seed: number;
  samples: TensorFixture;
  exp_noise: TensorFixture;
  rand2_after: TensorFixture;
}
const ref = fixture<{
  exponential: {
    seed: number;
    n: number;
    float32_bits_hex: string[];
    float64: number[];
    float64_bits_hex: string[];
  }[];
  exponential_derivation: {
    seed: number;
    elements: { u32_first: number; u32_second: number; u: number; float32_bits_hex: string }[];
  }[];
  rand_after_exponential: {
    seed: number;
    recipe: string;
    uint32_draws_consumed_by_exponential: number;
    rand_bits_hex: string[];
  }[];
  multinomial: { name: string; probs: TensorFixture; draws: Draw[] }[];
}>('rng_sampling.json');

/** Distance in units in the last place between two doubles of the same sign. */
function ulps(a: number, b: number): number {
  const view = new DataView(new ArrayBuffer(16));
  view.setFloat64(0, a);
  view.setFloat64(8, b);
  const d = view.getBigInt64(0) - view.getBigInt64(8);
  return Number(d < 0n ? -d : d);
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('exponentialValues against torch exponential_', () => {
  it.each(ref.exponential.map((e) => [e.seed, e.n, e] as const))(
    'seed %s, n = %s: float32 bit for bit',
    (seed, n, e) => {
      const values = exponentialValues(n, { generator: new Generator(seed) });
      expect(values).toBeInstanceOf(Float32Array);
      expect(hexBits(values)).toEqual(e.float32_bits_hex);
    },
  );

  it('float64 values are within 1 ulp of torch (V8 and glibc log differ in the last bit)', () => {
    let exact = 0;
    let total = 0;
    for (const e of ref.exponential) {
      const values = exponentialValues(e.n, { generator: new Generator(e.seed), dtype: 'float64' });
      expect(values).toBeInstanceOf(Float64Array);
      values.forEach((v, i) => {
        expect(ulps(v, e.float64[i]!)).toBeLessThanOrEqual(1);
        if (v === e.float64[i]) exact++;
        total++;
      });
    }
    // Most agree exactly: the formula is the same, only the log's last bit can differ.
    expect(exact / total).toBeGreaterThan(0.85);
  });

  it('derivation: u is the low 53 bits of (first << 32) | second, scaled by 2^-53', () => {
    for (const d of ref.exponential_derivation) {
      const g = new Generator(d.seed);
      const words = new Generator(d.seed).fill(new Uint32Array(2 * d.elements.length));
      const values = exponentialValues(d.elements.length, { generator: g });
      d.elements.forEach((el, i) => {
        expect(words[2 * i]).toBe(el.u32_first);
        expect(words[2 * i + 1]).toBe(el.u32_second);
        expect(((el.u32_first & 0x1fffff) * 2 ** 32 + el.u32_second) * 2 ** -53).toBe(el.u);
        expect(hexBits(values.subarray(i, i + 1))).toEqual([el.float32_bits_hex]);
      });
    }
  });

  it.each(ref.rand_after_exponential.map((r) => [r.recipe, r] as const))(
    '%s: rand continues after 2n outputs',
    (_, r) => {
      const g = new Generator(r.seed);
      const n = r.uint32_draws_consumed_by_exponential / 2;
      exponentialValues(n, {
        generator: g,
        dtype: r.recipe.includes('float64') ? 'float64' : 'float32',
      });
      const t = rand([r.rand_bits_hex.length], { generator: g });
      expect(hexBits(t.dataSync() as Float32Array)).toEqual(r.rand_bits_hex);
      t.dispose();
    },
  );

  it('uses the default generator when none is given', () => {
    setSeed(42);
    const a = exponentialValues(5);
    expect(hexBits(a)).toEqual(hexBits(exponentialValues(5, { generator: new Generator(42) })));
  });

  it('rejects bad counts, dtypes and generators', () => {
    expectValueError(() => exponentialValues(-1), 'n', /-1/);
    expectValueError(() => exponentialValues(1.5), 'n', /1\.5/);
    expectValueError(() => exponentialValues(Number.NaN), 'n', /NaN/);
    expectValueError(() => exponentialValues(1, { dtype: 'int32' as 'float32' }), 'dtype', /int32/);
    expectValueError(
      () => exponentialValues(1, { generator: {} as Generator }),
      'generator',
      /not a Generator/,
    );
  });
});

describe('multinomial against torch.multinomial(probs, 1)', () => {
  const cases = ref.multinomial.flatMap((m) =>
    m.draws.map((d) => [m.name, d.seed, m.probs, d] as const),
  );

  it.each(cases)('%s, seed %s: samples, noise and the generator after', (_, seed, probs, d) => {
    const [rows, cols] = probs.shape as [number, number];
    const g = new Generator(seed);
    const samples = multinomialValues(Float32Array.from(probs.data), rows, cols, { generator: g });
    expect(Array.from(samples)).toEqual(d.samples.data);
    // The noise it drew is torch's exp_noise: the same stream, position for position.
    const noise = exponentialValues(rows * cols, { generator: new Generator(seed) });
    expect(hexBits(noise)).toEqual(hexBits(Float32Array.from(d.exp_noise.data)));
    // And it drew nothing else: torch.rand(2) right after matches.
    const after = rand([2], { generator: g });
    expect(hexBits(after.dataSync() as Float32Array)).toEqual(
      hexBits(Float32Array.from(d.rand2_after.data)),
    );
    after.dispose();
  });

  it.each(cases)('%s, seed %s: the tensor form after setSeed', (_, seed, probs, d) => {
    setSeed(seed);
    const p = tf.tensor(Float32Array.from(probs.data), probs.shape, 'float32');
    const out = multinomial(p);
    expect(out.dtype).toBe('int32');
    expect(out.shape).toEqual(d.samples.shape);
    expect(Array.from(out.dataSync())).toEqual(d.samples.data);
    tf.dispose([p, out]);
  });

  it('a 1-D probs tensor gives one sample of shape (1)', () => {
    const m = ref.multinomial.find((c) => c.name === 'one_row_1x11')!;
    const p = tf.tensor1d(Float32Array.from(m.probs.data));
    setSeed(m.draws[0]!.seed);
    const out = multinomial(p);
    expect(out.shape).toEqual([1]);
    expect(Array.from(out.dataSync())).toEqual(m.draws[0]!.samples.data);
    tf.dispose([p, out]);
  });

  it('a zero weight never wins', () => {
    const g = new Generator(3);
    for (let i = 0; i < 200; i++) {
      const [s] = multinomialValues(Float32Array.of(0, 1e-30, 0), 1, 3, { generator: g });
      expect(s).toBe(1);
    }
  });

  it('rejects bad weights before drawing anything', () => {
    const g = new Generator(5);
    const before = g.getState();
    for (const bad of [-0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expectValueError(
        () => multinomialValues([0.5, bad], 1, 2, { generator: g }),
        'probs',
        /inf, nan or element < 0/,
      );
    }
    expectValueError(
      () => multinomialValues([0.5, 0.5, 0, 0], 2, 2, { generator: g }),
      'probs',
      /row 1/,
    );
    expect(g.getState()).toEqual(before);
  });

  it('rejects bad sizes, tensors and numSamples', () => {
    expect(() => multinomialValues([1, 2, 3], 2, 2)).toThrow(ShapeError);
    expectValueError(() => multinomialValues([], 0, 2), 'rows', /0/);
    expectValueError(() => multinomialValues([1], 1, 1.5), 'cols', /1\.5/);
    const p = tf.tensor2d([[0.5, 0.5]]);
    expectValueError(() => multinomial(p, 2), 'numSamples', /not supported/);
    const ints = tf.tensor2d([[1, 1]], [1, 2], 'int32');
    expect(() => multinomial(ints)).toThrow(DTypeError);
    const cube = tf.zeros([1, 1, 2]);
    expect(() => multinomial(cube)).toThrow(ShapeError);
    expectValueError(() => multinomial([0.5, 0.5] as unknown as tf.Tensor), 'probs');
    tf.dispose([p, ints, cube]);
  });
});

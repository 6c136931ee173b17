import { describe, expect, it } from 'vitest';
import { expectValueError, fixture } from '../test/rng-support.ts';
import { ValueError } from './errors.ts';
import { Generator, type GeneratorState, getDefaultGenerator, setSeed } from './generator.ts';

/** Test vectors recorded from PyTorch 1.13 (see test/fixtures/README.md). */
const vectors = fixture<{
  mt19937_seed42_first20_u32: number[];
  mt19937_seed42_outputs_624_to_628_u32: number[];
  mt19937_seed0_first5_u32: number[];
}>('rng_vectors.json');

function draw(g: Generator, n: number): number[] {
  return Array.from({ length: n }, () => g.random());
}

describe('Generator (MT19937) against torch vectors', () => {
  it('seed 42: first 20 outputs', () => {
    expect(draw(new Generator(42), 20)).toEqual(vectors.mt19937_seed42_first20_u32);
  });

  it('seed 42: outputs 624..628, counted from 1 (across the first block regeneration)', () => {
    // The vector's numbering is 1-based: its first entry is the last word of the first block.
    // Checked against torch 1.13: the low 24 bits of these five equal
    // torch.manual_seed(42); torch.rand(630) * 2^24 at 0-based positions 623..627.
    const g = new Generator(42);
    draw(g, 623);
    expect(draw(g, 5)).toEqual(vectors.mt19937_seed42_outputs_624_to_628_u32);
  });

  it('seed 0: first 5 outputs', () => {
    expect(draw(new Generator(0), 5)).toEqual(vectors.mt19937_seed0_first5_u32);
  });

  it('outputs are unsigned 32-bit integers', () => {
    const g = new Generator(1234);
    for (const v of draw(g, 2000)) {
      expect(Number.isInteger(v) && v >= 0 && v <= 0xffffffff).toBe(true);
    }
  });

  it('manualSeed resets the stream and returns this', () => {
    const g = new Generator(42);
    draw(g, 700);
    expect(g.manualSeed(42)).toBe(g);
    expect(draw(g, 20)).toEqual(vectors.mt19937_seed42_first20_u32);
  });
});

describe('fill (bulk draws)', () => {
  it('equals the same number of random() calls, from any position and across blocks', () => {
    const bulk = new Generator(42);
    const single = new Generator(42);
    for (const n of [0, 1, 5, 623, 624, 625, 1300, 3]) {
      const words = bulk.fill(new Uint32Array(n));
      expect(Array.from(words)).toEqual(draw(single, n));
    }
    expect(bulk.getState()).toEqual(single.getState());
    expect(Array.from(new Generator(42).fill(new Uint32Array(20)))).toEqual(
      vectors.mt19937_seed42_first20_u32,
    );
  });
});

describe('seed semantics (64-bit seed, low 32 bits reach the state)', () => {
  it('42 and 2^32 + 42 give the same stream (number and bigint)', () => {
    const a = draw(new Generator(42), 700);
    expect(draw(new Generator(2 ** 32 + 42), 700)).toEqual(a);
    expect(draw(new Generator(2n ** 32n + 42n), 700)).toEqual(a);
    expect(draw(new Generator(42n), 700)).toEqual(a);
  });

  it('-1 behaves as 2^32 - 1 and is stored as 2^64 - 1', () => {
    const g = new Generator(-1);
    expect(g.initialSeed()).toBe(2n ** 64n - 1n);
    expect(draw(g, 700)).toEqual(draw(new Generator(2 ** 32 - 1), 700));
  });

  it('-42 wraps modulo 2^64; 2^63 behaves like 0', () => {
    expect(new Generator(-42).initialSeed()).toBe(2n ** 64n - 42n);
    expect(draw(new Generator(-42), 10)).toEqual(draw(new Generator(2 ** 32 - 42), 10));
    expect(draw(new Generator(2n ** 63n), 5)).toEqual(vectors.mt19937_seed0_first5_u32);
    expect(new Generator(2n ** 63n).initialSeed()).toBe(2n ** 63n);
  });

  it('default seed is torch default_rng_seed_val', () => {
    expect(new Generator().initialSeed()).toBe(67280421310721n);
    expect(draw(new Generator(), 10)).toEqual(draw(new Generator(67280421310721n), 10));
  });

  it('rejects seeds torch would reject, naming the value', () => {
    expectValueError(() => new Generator(1.5), 'seed', /1\.5/);
    expectValueError(() => new Generator(Number.NaN), 'seed', /NaN/);
    expectValueError(() => new Generator(Number.POSITIVE_INFINITY), 'seed');
    expectValueError(() => new Generator(2n ** 64n), 'seed', /18446744073709551616/);
    expectValueError(() => new Generator(-(2n ** 63n) - 1n), 'seed');
    expectValueError(() => new Generator('42' as unknown as number), 'seed');
    // Boundaries are accepted.
    expect(new Generator(-(2n ** 63n)).initialSeed()).toBe(2n ** 63n);
    expect(new Generator(2n ** 64n - 1n).initialSeed()).toBe(2n ** 64n - 1n);
  });

  it('a rejected manualSeed leaves the generator unchanged', () => {
    const g = new Generator(42);
    g.random();
    expect(() => g.manualSeed(0.5)).toThrow(ValueError);
    expect(g.initialSeed()).toBe(42n);
    expect(draw(g, 19)).toEqual(vectors.mt19937_seed42_first20_u32.slice(1));
  });
});

describe('getState / setState', () => {
  it('round trip resumes the same stream, also across a block boundary and through JSON', () => {
    const g = new Generator(42);
    draw(g, 620);
    const saved = g.getState();
    const expected = draw(g, 20); // crosses the regeneration at output 624
    expect(saved.index).toBe(620);
    expect(saved.seed).toBe('42');
    expect(saved.state).toHaveLength(624);

    const fresh = new Generator(7).setState(JSON.parse(JSON.stringify(saved)) as GeneratorState);
    expect(draw(fresh, 20)).toEqual(expected);
    expect(fresh.initialSeed()).toBe(42n);
    expect(draw(g.setState(saved), 20)).toEqual(expected);
  });

  it('state of a freshly seeded generator has index 624 (exhausted)', () => {
    const s = new Generator(42).getState();
    expect(s.index).toBe(624);
    expect(s.state[0]).toBe(42);
    // init_genrand: 1812433253 * (42 ^ (42 >> 30)) + 1 mod 2^32
    expect(s.state[1]).toBe(Number((1812433253n * 42n + 1n) % 2n ** 32n));
  });

  it('getState returns a copy and setState copies its input', () => {
    const g = new Generator(42);
    const s = g.getState();
    s.state[0] = 0;
    s.state[1] = 0;
    expect(draw(g, 3)).toEqual(vectors.mt19937_seed42_first20_u32.slice(0, 3));

    const h = new Generator(1);
    const t = new Generator(42).getState();
    h.setState(t);
    t.state.fill(5);
    t.index = 0;
    expect(draw(h, 3)).toEqual(vectors.mt19937_seed42_first20_u32.slice(0, 3));
  });

  it('accepts a Uint32Array of words', () => {
    const s = new Generator(42).getState();
    const g = new Generator(0).setState({
      ...s,
      state: new Uint32Array(s.state) as unknown as number[],
    });
    expect(draw(g, 3)).toEqual(vectors.mt19937_seed42_first20_u32.slice(0, 3));
  });

  it('bad data throws a ValueError naming the field and leaves the generator unchanged', () => {
    const good = new Generator(42).getState();
    const bad: Array<[unknown, string]> = [
      [null, 'state'],
      ['nope', 'state'],
      [{ ...good, state: good.state.slice(1) }, 'state.state'],
      [{ ...good, state: undefined }, 'state.state'],
      [{ ...good, state: good.state.map((w, i) => (i === 5 ? -1 : w)) }, 'state.state'],
      [{ ...good, state: good.state.map((w, i) => (i === 5 ? 2 ** 32 : w)) }, 'state.state'],
      [{ ...good, state: good.state.map((w, i) => (i === 5 ? 1.5 : w)) }, 'state.state'],
      [{ ...good, state: good.state.map((w, i) => (i === 5 ? '7' : w)) }, 'state.state'],
      [{ ...good, state: new Array(624).fill(0) }, 'state.state'],
      [{ ...good, index: 625 }, 'state.index'],
      [{ ...good, index: -1 }, 'state.index'],
      [{ ...good, index: 1.5 }, 'state.index'],
      [{ ...good, index: '3' }, 'state.index'],
      [{ ...good, seed: 42 }, 'state.seed'],
      [{ ...good, seed: '-1' }, 'state.seed'],
      [{ ...good, seed: '18446744073709551616' }, 'state.seed'],
    ];
    const g = new Generator(1234);
    draw(g, 100);
    const reference = new Generator(1234);
    draw(reference, 100);
    for (const [value, field] of bad) {
      expectValueError(() => g.setState(value as GeneratorState), field);
    }
    expect(g.initialSeed()).toBe(1234n);
    expect(draw(g, 1000)).toEqual(draw(reference, 1000));
  });

  it('the all-zero check only ignores the low 31 bits of word 0', () => {
    const state = new Array(624).fill(0);
    state[0] = 0x80000000;
    expect(() => new Generator().setState({ state, index: 624, seed: '0' })).not.toThrow();
    state[0] = 0x7fffffff;
    expectValueError(
      () => new Generator().setState({ state, index: 624, seed: '0' }),
      'state.state',
      /all zero/,
    );
  });
});

describe('default generator', () => {
  it('setSeed seeds the default generator', () => {
    setSeed(42);
    expect(getDefaultGenerator().initialSeed()).toBe(42n);
    expect(draw(getDefaultGenerator(), 20)).toEqual(vectors.mt19937_seed42_first20_u32);
    expect(getDefaultGenerator()).toBe(getDefaultGenerator());
    setSeed(0);
    expect(draw(getDefaultGenerator(), 5)).toEqual(vectors.mt19937_seed0_first5_u32);
  });

  it('setSeed validates', () => {
    expectValueError(() => setSeed(0.25), 'seed');
  });
});

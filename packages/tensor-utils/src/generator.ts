/**
 * PyTorch's CPU random generator (`at::mt19937`, a 32-bit Mersenne Twister), reproduced bit for
 * bit so that `setSeed(s)` followed by `rand` / `linearInit` yields exactly the tensors PyTorch
 * makes after `torch.manual_seed(s)`. The algorithm follows `/spec/torch-rng.md` §1.
 */
import { ValueError } from './errors.ts';

/** Number of 32-bit words in the MT19937 state. */
const N = 624;
/** Offset of the word mixed in during regeneration. */
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;
const UINT64_MOD = 1n << 64n;
const INT64_MIN = -(1n << 63n);

/**
 * torch's `default_rng_seed_val`: the seed a freshly constructed `torch.Generator()` reports from
 * `initial_seed()`.
 */
const DEFAULT_SEED = 67280421310721n;

/**
 * A snapshot of a {@link Generator}, made only of JSON-friendly values so it can be stored or sent
 * between workers.
 *
 * @example
 * const saved = JSON.stringify(gen.getState());
 * gen.setState(JSON.parse(saved));
 */
export interface GeneratorState {
  /** The 624 state words, each an unsigned 32-bit integer. */
  state: number[];
  /** Read position in `state`, 0..624; 624 means the next draw regenerates the block first. */
  index: number;
  /** The 64-bit seed last given to `manualSeed`, as a decimal string (JSON has no bigint). */
  seed: string;
}

/**
 * Normalises a seed the way `torch.manual_seed` does: an integer in [-2^63, 2^64) stored as an
 * unsigned 64-bit value, so negative seeds wrap modulo 2^64.
 */
function toUint64Seed(seed: number | bigint, where: string): bigint {
  let big: bigint;
  if (typeof seed === 'bigint') {
    big = seed;
  } else if (typeof seed === 'number' && Number.isInteger(seed)) {
    // Every integral double converts exactly; values past 2^53 are whatever the caller's double
    // already was, so pass a bigint when such a seed must be exact.
    big = BigInt(seed);
  } else {
    throw new ValueError(`${where}: seed ${String(seed)} is not an integer`, {
      argument: 'seed',
      value: seed,
    });
  }
  // torch refuses seeds that do not fit an int64 / uint64 ("Overflow when unpacking long").
  if (big < INT64_MIN || big >= UINT64_MOD) {
    throw new ValueError(`${where}: seed ${big} is outside [-2^63, 2^64)`, {
      argument: 'seed',
      value: seed,
    });
  }
  return BigInt.asUintN(64, big);
}

/**
 * A PyTorch-compatible CPU random generator. Each instance has its own MT19937 state, like
 * `torch.Generator()`.
 *
 * @example
 * const g = new Generator(42);
 * g.random(); // 1608637542, the first output of torch's generator after manual_seed(42)
 */
export class Generator {
  /** The MT19937 state; a Uint32Array keeps every word unsigned without extra masking. */
  private readonly mt = new Uint32Array(N);
  private index = N;
  private seed = 0n;

  /**
   * @param seed Initial seed; defaults to 67280421310721, torch's `default_rng_seed_val`.
   * @example
   * new Generator().initialSeed(); // 67280421310721n, like torch.Generator().initial_seed()
   */
  constructor(seed: number | bigint = DEFAULT_SEED) {
    this.manualSeed(seed);
  }

  /**
   * Re-seeds the generator like `generator.manual_seed(seed)`. The seed is kept as an unsigned
   * 64-bit value (negative seeds wrap modulo 2^64) but only its low 32 bits reach the MT state, so
   * 42 and 2^32 + 42 give the same stream.
   *
   * @throws {ValueError} if the seed is not an integer in [-2^63, 2^64).
   * @example
   * const g = new Generator().manualSeed(-1); // same stream as manualSeed(2 ** 32 - 1)
   */
  manualSeed(seed: number | bigint): this {
    const s = toUint64Seed(seed, 'Generator.manualSeed');
    const mt = this.mt;
    mt[0] = Number(BigInt.asUintN(32, s));
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1]!;
      // Math.imul keeps the low 32 bits of the product; a plain `*` would exceed 2^53 and lose them.
      mt[i] = Math.imul(1812433253, prev ^ (prev >>> 30)) + i;
    }
    // torch starts "exhausted": the first draw regenerates the whole block before returning.
    this.index = N;
    this.seed = s;
    return this;
  }

  /**
   * The seed last passed to the constructor or `manualSeed`, as an unsigned 64-bit bigint.
   *
   * @example
   * new Generator(-1).initialSeed(); // 18446744073709551615n
   */
  initialSeed(): bigint {
    return this.seed;
  }

  /**
   * Returns the next tempered 32-bit output, an unsigned integer in [0, 2^32), identical to the
   * sequence of torch's `mt19937::operator()`.
   *
   * @example
   * const g = new Generator(0);
   * g.random(); // 2357136044
   */
  random(): number {
    if (this.index >= N) this.regenerate();
    let y = this.mt[this.index++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /**
   * Fills `out` with the next `out.length` outputs, exactly as that many `random()` calls would,
   * but in a tight loop over local variables: bulk fills (1.7M-element weight matrices) are
   * several times faster this way than through one method call per element.
   *
   * @example
   * const words = new Generator(42).fill(new Uint32Array(3)); // [1608637542, 3421126067, 4083286876]
   */
  fill(out: Uint32Array): Uint32Array {
    const mt = this.mt;
    const n = out.length;
    let index = this.index;
    let i = 0;
    while (i < n) {
      if (index >= N) {
        this.regenerate();
        index = 0;
      }
      // Temper a run of words up to the end of the block or of `out`, whichever comes first.
      const end = Math.min(n, i + (N - index));
      for (; i < end; i++) {
        let y = mt[index++]!;
        y ^= y >>> 11;
        y ^= (y << 7) & 0x9d2c5680;
        y ^= (y << 15) & 0xefc60000;
        y ^= y >>> 18;
        out[i] = y;
      }
    }
    this.index = index;
    return out;
  }

  /**
   * Copies out the full state (words, read index, seed) as a plain object.
   *
   * @example
   * const snap = g.getState();
   * const a = g.random();
   * g.setState(snap).random() === a; // true
   */
  getState(): GeneratorState {
    return { state: Array.from(this.mt), index: this.index, seed: this.seed.toString() };
  }

  /**
   * Restores a state from {@link getState}. Everything is validated before anything is copied, so
   * on error the generator is unchanged.
   *
   * @throws {ValueError} naming the bad field (`state`, `state.state`, `state.index`, `state.seed`).
   * @example
   * other.setState(g.getState()); // `other` now continues exactly where `g` is
   */
  setState(s: GeneratorState): this {
    if (typeof s !== 'object' || s === null) {
      throw new ValueError('Generator.setState: state must be an object', {
        argument: 'state',
        value: s,
      });
    }
    const words: unknown = s.state;
    if (!(Array.isArray(words) || words instanceof Uint32Array) || words.length !== N) {
      const len = (words as { length?: unknown } | null)?.length;
      throw new ValueError(
        `Generator.setState: state.state must be an array of ${N} words, got ${Array.isArray(words) ? `length ${String(len)}` : typeof words}`,
        { argument: 'state.state', value: words },
      );
    }
    let nonZero = false;
    for (let i = 0; i < N; i++) {
      const w = words[i] as unknown;
      if (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w > 0xffffffff) {
        throw new ValueError(
          `Generator.setState: state.state[${i}] = ${String(w)} is not an unsigned 32-bit integer`,
          { argument: 'state.state', value: w },
        );
      }
      if ((i === 0 ? w & UPPER_MASK : w) !== 0) nonZero = true;
    }
    // Only the top bit of word 0 and words 1..623 matter; if all are zero MT outputs zeros forever.
    if (!nonZero) {
      throw new ValueError('Generator.setState: state.state is all zero (a degenerate MT state)', {
        argument: 'state.state',
        value: words,
      });
    }
    const index: unknown = s.index;
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index > N) {
      throw new ValueError(
        `Generator.setState: state.index = ${String(index)} is not an integer in [0, ${N}]`,
        { argument: 'state.index', value: index },
      );
    }
    const seedText: unknown = s.seed;
    if (
      typeof seedText !== 'string' ||
      !/^[0-9]+$/.test(seedText) ||
      BigInt(seedText) >= UINT64_MOD
    ) {
      throw new ValueError(
        `Generator.setState: state.seed = ${String(seedText)} is not a decimal unsigned 64-bit integer`,
        { argument: 'state.seed', value: seedText },
      );
    }
    this.mt.set(words);
    this.index = index;
    this.seed = BigInt(seedText);
    return this;
  }

  /**
   * Regenerates all 624 words in place, in increasing order, so the last entries read words already
   * updated in this pass (as MT19937 and torch do). Split into three loops so that no `% N` is
   * needed in the hot path.
   */
  private regenerate(): void {
    const mt = this.mt;
    let i = 0;
    let y: number;
    for (; i < N - M; i++) {
      y = (mt[i]! & UPPER_MASK) | (mt[i + 1]! & LOWER_MASK);
      mt[i] = mt[i + M]! ^ (y >>> 1) ^ (-(y & 1) & MATRIX_A);
    }
    for (; i < N - 1; i++) {
      y = (mt[i]! & UPPER_MASK) | (mt[i + 1]! & LOWER_MASK);
      mt[i] = mt[i + M - N]! ^ (y >>> 1) ^ (-(y & 1) & MATRIX_A);
    }
    y = (mt[N - 1]! & UPPER_MASK) | (mt[0]! & LOWER_MASK);
    mt[N - 1] = mt[M - 1]! ^ (y >>> 1) ^ (-(y & 1) & MATRIX_A);
    this.index = 0;
  }
}

let defaultGenerator: Generator | undefined;

/**
 * The process-wide generator used when no `generator` option is passed, like torch's default CPU
 * generator. Unlike torch (which seeds it non-deterministically at start-up), it starts from
 * torch's `default_rng_seed_val`, so unseeded runs are reproducible too.
 *
 * @example
 * getDefaultGenerator().manualSeed(42); // same as setSeed(42)
 */
export function getDefaultGenerator(): Generator {
  defaultGenerator ??= new Generator();
  return defaultGenerator;
}

/**
 * Seeds the default generator, like `torch.manual_seed(seed)` (and minGPT's `set_seed`, whose other
 * effects do not touch torch's CPU generator).
 *
 * @throws {ValueError} if the seed is not an integer in [-2^63, 2^64).
 * @example
 * setSeed(42);
 * rand([2, 8, 6]); // bit-identical to torch.manual_seed(42); torch.rand(2, 8, 6)
 */
export function setSeed(seed: number | bigint): void {
  getDefaultGenerator().manualSeed(seed);
}

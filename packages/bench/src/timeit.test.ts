import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { ValueError } from '@kvkit/tensor-utils';
import { afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { timeit } from './timeit.ts';

// The harness's logic on a fake clock: every call of the timed function advances time by a
// known amount, so calibration and statistics are checked exactly, not timed.
let now = 0;
beforeAll(async () => {
  await tf.setBackend('cpu');
});
afterEach(() => vi.restoreAllMocks());

function fakeClock() {
  now = 0;
  vi.spyOn(performance, 'now').mockImplementation(() => now);
}

describe('timeit', () => {
  test('calibrates loops like Python timeit.autorange (1, 2, 5, 10, ... until >= 200 ms)', () => {
    fakeClock();
    const t = timeit(() => {
      now += 3;
    });
    // 3 ms per call: 1, 2, 5, 10, 20, 50 -> 50 * 3 = 150 < 200; 100 * 3 = 300 >= 200.
    expect(t.loops).toBe(100);
    expect(t.repeats).toBe(7);
    expect(t.meanMs).toBeCloseTo(3, 12);
    expect(t.stdMs).toBeCloseTo(0, 12);
    expect(t.samplesMs).toHaveLength(7);
  });

  test('mean, population std, min and median over repeats', () => {
    fakeClock();
    const perRepeat = [1, 2, 3, 4, 10];
    let call = 0;
    const t = timeit(
      () => {
        now += perRepeat[Math.max(0, call - 2)] ?? 0; // calls 0 and 1: warm-up and the loops=1 probe
        call++;
      },
      { loops: 1, repeats: 5 },
    );
    expect(t.samplesMs).toEqual([1, 2, 3, 4, 10]);
    expect(t.meanMs).toBe(4);
    expect(t.stdMs).toBeCloseTo(Math.sqrt((9 + 4 + 1 + 0 + 36) / 5), 12); // population, as %timeit
    expect(t.minMs).toBe(1);
    expect(t.medianMs).toBe(3);
  });

  test('a budget lowers the repeats, never below minRepeats', () => {
    fakeClock();
    const slow = () => {
      now += 1000;
    };
    expect(timeit(slow, { loops: 1, budgetMs: 4500 }).repeats).toBe(4);
    expect(timeit(slow, { loops: 1, budgetMs: 100 }).repeats).toBe(3);
    expect(timeit(slow, { loops: 1, budgetMs: 100, repeats: 2 }).repeats).toBe(2);
  });

  test('a leaking function fails the measurement with the count', () => {
    const kept: tf.Tensor[] = [];
    expect(() => timeit(() => kept.push(tf.zeros([1])), { loops: 2, repeats: 3 })).toThrow(
      /leaked 8 tensor\(s\) over 6 calls/,
    );
    tf.dispose(kept);
  });

  test('bad options are rejected', () => {
    expect(() => timeit(() => {}, { repeats: 0 })).toThrow(
      /repeats must be a positive integer, got 0/,
    );
    expect(() => timeit(() => {}, { loops: -1 })).toThrow(
      /loops must be a non-negative integer, got -1/,
    );
  });

  // Calibration loops until a repeat takes targetMs: NaN is never reached and Infinity never
  // ends, so both must be refused before the first call (fake clock: a hang would time out).
  test.each([
    ['targetMs', Number.NaN],
    ['targetMs', Number.POSITIVE_INFINITY],
    ['targetMs', 0],
    ['targetMs', -1],
    ['budgetMs', Number.NaN],
    ['budgetMs', 0],
    ['minRepeats', 0],
    ['minRepeats', 1.5],
    ['warmup', -1],
    ['warmup', Number.NaN],
  ])('%s = %s is a ValueError naming it, and nothing is called', (name, value) => {
    fakeClock();
    let calls = 0;
    const fn = () => {
      // Without validation the calibration never ends: stop it here instead of hanging the run.
      if (++calls > 100_000) throw new Error('timeit kept calling the function: it never returns');
      now += 1;
    };
    const call = () => timeit(fn, { [name]: value });
    expect(call).toThrow(ValueError);
    expect(call).toThrow(new RegExp(`${name} must be .*, got ${String(value)}`));
    calls = 0;
    expect(() => timeit(fn, { [name]: value })).toThrow(ValueError);
    expect(calls).toBe(0);
  });

  test('an infinite budget is allowed (no cap)', () => {
    fakeClock();
    const t = timeit(
      () => {
        now += 50;
      },
      { budgetMs: Number.POSITIVE_INFINITY },
    );
    expect(t.repeats).toBe(7);
  });
});

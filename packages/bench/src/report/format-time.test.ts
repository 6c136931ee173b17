import { ValueError } from '@kvkit/tensor-utils';
import { describe, expect, test } from 'vitest';
import { formatG, formatSpeedup, formatTime, formatTimeit, groupThousands } from './format-time.ts';
import { timing } from './test-support/sample-report.ts';

// Expected strings are IPython's own output: the seed notebook's `%timeit` lines (19.6 ms ± 1.3 ms,
// 43.9 ms ± 3.06 ms), and `_format_time` / `TimeitResult.__str__` of IPython 8.12 run on a UTF-8
// terminal for the rest. formatTime takes milliseconds; the comments give IPython's input in s.

describe('formatTime', () => {
  test.each([
    [19.6, '19.6 ms'], // 0.0196 s
    [1.3, '1.3 ms'], // 0.0013 s
    [3.06, '3.06 ms'], // 0.00306 s
    [43.9, '43.9 ms'], // 0.0439 s
    [0.0015, '1.5 µs'], // 1.5e-6 s
    [2500, '2.5 s'], // 2.5 s
    [123.456, '123 ms'], // %.3g: 3 significant digits
    [1234.5, '1.23 s'],
    [1, '1 ms'],
    [0.001, '1 µs'], // exactly on a unit boundary
    [0.125, '125 µs'],
    [0.00015, '150 ns'],
    [1.5e-7, '0.15 ns'], // ns is the smallest unit: no pico
    [0, '0 ns'],
  ])('%s ms -> %s', (ms, expected) => {
    expect(formatTime(ms)).toBe(expected);
  });

  test.each([
    [12.25, '12.2 ms'], // exact binary tie: Python rounds half to even, toPrecision would say 12.3
    [1.125, '1.12 ms'],
    [999.6, '1e+03 ms'], // the unit is chosen before rounding, so IPython prints 1e+03 ms
    [0.9995, '1e+03 µs'],
    [99.95, '100 ms'],
    [59_999.9, '60 s'],
  ])('rounds like Python %%.3g: %s ms -> %s', (ms, expected) => {
    expect(formatTime(ms)).toBe(expected);
  });

  test.each([
    [60_000, '1min'],
    [123_400, '2min 3s'],
    [7_322_500, '2h 2min 2s'],
    [90_061_000, '1d 1h 1min 1s'],
    [62_500.5, '1min 2s'],
  ])('a minute and longer: %s ms -> %s', (ms, expected) => {
    expect(formatTime(ms)).toBe(expected);
  });
});

describe('formatTime refuses what is not a duration', () => {
  // IPython prints `-5e+06 ns` for a negative time and fails on inf deep inside int(); a
  // report must never show either, so both are a ValueError naming the value.
  test.each([Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN, -5, -1e-9])(
    '%s ms',
    (ms) => {
      expect(() => formatTime(ms)).toThrow(ValueError);
      expect(() => formatTime(ms)).toThrow(`got ${String(ms)}`);
    },
  );
  test('-0 is zero', () => {
    expect(formatTime(-0)).toBe('0 ns');
  });
});

describe('formatTimeit', () => {
  test('the seed notebook lines', () => {
    expect(formatTimeit(timing(19.6, 1.3, 100, 7))).toBe(
      '19.6 ms ± 1.3 ms per loop (mean ± std. dev. of 7 runs, 100 loops each)',
    );
    expect(formatTimeit(timing(43.9, 3.06, 100, 7))).toBe(
      '43.9 ms ± 3.06 ms per loop (mean ± std. dev. of 7 runs, 100 loops each)',
    );
  });

  test('singular run and loop', () => {
    expect(formatTimeit(timing(2.5, 0, 1, 1))).toBe(
      '2.5 ms ± 0 ns per loop (mean ± std. dev. of 1 run, 1 loop each)',
    );
    expect(formatTimeit(timing(2500, 0, 1, 3))).toBe(
      '2.5 s ± 0 ns per loop (mean ± std. dev. of 3 runs, 1 loop each)',
    );
  });

  test('loops get thousands separators, as IPython formats them with {loops:,}', () => {
    expect(formatTimeit(timing(0.0016, 0.0001, 10_000, 2))).toBe(
      '1.6 µs ± 100 ns per loop (mean ± std. dev. of 2 runs, 10,000 loops each)',
    );
  });
});

describe('helpers', () => {
  test('formatG matches Python %g', () => {
    expect(formatG(0.0001234, 3)).toBe('0.000123');
    expect(formatG(0.00001234, 3)).toBe('1.23e-05');
    expect(formatG(123456, 3)).toBe('1.23e+05');
    expect(formatG(100, 3)).toBe('100');
    expect(formatG(0.5, 3)).toBe('0.5');
    expect(formatG(-2.5, 3)).toBe('-2.5');
    expect(formatG(0.125, 2)).toBe('0.12'); // tie to even
    expect(formatG(Number.NaN, 3)).toBe('nan');
  });

  test('formatSpeedup', () => {
    expect(formatSpeedup(43.9 / 19.6)).toBe('2.2x');
    expect(formatSpeedup(3.5)).toBe('3.5x');
    expect(formatSpeedup(12.34)).toBe('12.3x');
    expect(formatSpeedup(0.05)).toBe('0.05x');
  });

  test('groupThousands', () => {
    expect(groupThousands(1_234_567)).toBe('1,234,567');
    expect(groupThousands(999)).toBe('999');
    expect(groupThousands(-1000)).toBe('-1,000');
  });
});

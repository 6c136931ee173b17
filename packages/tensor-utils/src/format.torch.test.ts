import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { type FormatDType, type FormatOptions, formatValues } from './format.ts';

// Every expectation here is real PyTorch output: `repr(t)` recorded by
// tools/fixtures/torch_print_cases.py (see test/fixtures/README.md). Nothing in this file was
// derived from torch's source by hand or produced by format.ts.

interface TorchPrintCase {
  name: string;
  shape: number[];
  dtype: FormatDType;
  /** float32: 8-hex-digit bit patterns; int32: numbers; bool: booleans. Row-major. */
  values: (string | number | boolean)[];
  options: FormatOptions;
  expected: string;
}

interface TorchPrintCases {
  format: string;
  torch: string;
  cases: TorchPrintCase[];
}

const fixture = JSON.parse(
  readFileSync(new URL('../test/fixtures/torch-print-cases.json', import.meta.url), 'utf8'),
) as TorchPrintCases;

/** float32 bit patterns (`"3f800000"`) back to their values; keeps nan, inf and -0 exact. */
function decodeFloat32(hexBits: readonly string[]): Float32Array {
  const bits = new Uint32Array(hexBits.map((h) => Number.parseInt(h, 16)));
  return new Float32Array(bits.buffer);
}

function decodeValues(c: TorchPrintCase): ArrayLike<number | boolean> {
  if (c.dtype === 'float32') return decodeFloat32(c.values as string[]);
  return c.values as (number | boolean)[];
}

describe('formatValues matches real PyTorch repr()', () => {
  test('the fixture is the expected format and has unique case names', () => {
    expect(fixture.format).toBe('kvkit-torch-print-cases/1');
    expect(fixture.cases.length).toBeGreaterThanOrEqual(60);
    expect(new Set(fixture.cases.map((c) => c.name)).size).toBe(fixture.cases.length);
  });

  test('bit-pattern decoding keeps the special values', () => {
    const [one, negZero, inf, nan] = decodeFloat32([
      '3f800000',
      '80000000',
      '7f800000',
      '7fc00000',
    ]);
    expect(one).toBe(1);
    expect(Object.is(negZero, -0)).toBe(true);
    expect(inf).toBe(Number.POSITIVE_INFINITY);
    expect(nan).toBeNaN();
  });

  test.each(fixture.cases)('$name', (c) => {
    expect(formatValues(c.shape, decodeValues(c), c.dtype, c.options)).toBe(c.expected);
  });
});

/**
 * IPython-exact time formatting. `formatTime` is IPython's `_format_time` (the `19.6 ms` parts of
 * a `%timeit` line) and `formatTimeit` is `TimeitResult.__str__`, so the numbers kvbench prints
 * can be read side by side with the seed notebook's `%timeit` output:
 *
 *     19.6 ms ± 1.3 ms per loop (mean ± std. dev. of 7 runs, 100 loops each)
 *
 * IPython formats with `'%.*g' % (3, value)`. JS has no `%g`, and `toPrecision` rounds exact
 * binary ties (12.25) away from zero where Python rounds them to even, so `formatG` below works on
 * the exact decimal expansion of the double instead.
 */
import { ValueError } from '@kvkit/tensor-utils';
import type { Timing } from './schema.ts';

/** IPython's units for s, ms, µs, ns (it falls back to `us` on non-UTF-8 terminals; we do not). */
const UNITS = ['s', 'ms', 'µs', 'ns'] as const;
const SCALING = [1, 1e3, 1e6, 1e9] as const;

/**
 * Formats a duration given in milliseconds as IPython's `_format_time` formats the same duration
 * in seconds: 3 significant digits (`%.3g`) in s, ms, µs or ns chosen by magnitude, and
 * `1h 2min 5s` style from a minute up.
 *
 * @example
 * formatTime(19.6); // '19.6 ms'
 * formatTime(1234.5); // '1.23 s'
 * formatTime(0.0015); // '1.5 µs'
 *
 * A negative, infinite or NaN duration is a ValueError (IPython would print `-5e+06 ns` or fail).
 */
export function formatTime(ms: number, precision = 3): string {
  if (!(ms >= 0) || ms === Number.POSITIVE_INFINITY) {
    throw new ValueError(`formatTime: a duration must be a finite number >= 0 ms, got ${ms}`, {
      argument: 'ms',
      value: ms,
    });
  }
  // Divide once and then scale exactly as IPython does (seconds * 1e3), so float rounding matches.
  const timespan = ms === 0 ? 0 : ms / 1e3; // -0 is zero, not `-0 ns`
  if (timespan >= 60) return formatLong(timespan);
  let order = 3;
  if (timespan > 0) {
    // Python: min(-int(math.floor(math.log10(t)) // 3), 3); `//` floors, as Math.floor does.
    order = Math.min(-Math.floor(Math.floor(Math.log10(timespan)) / 3), 3);
  }
  // Between 1 s and 60 s the formula gives -0 (JS), i.e. seconds; clamp that to index 0.
  const i = Math.max(order, 0) as 0 | 1 | 2 | 3;
  return `${formatG(timespan * SCALING[i], precision)} ${UNITS[i]}`;
}

/** IPython's `_format_time` branch for a minute and longer: `1h 2min 5s`, whole units only. */
function formatLong(timespan: number): string {
  const parts: [string, number][] = [
    ['d', 60 * 60 * 24],
    ['h', 60 * 60],
    ['min', 60],
    ['s', 1],
  ];
  const out: string[] = [];
  let leftover = timespan;
  for (const [suffix, length] of parts) {
    const value = Math.trunc(leftover / length);
    if (value > 0) {
      leftover %= length;
      out.push(`${value}${suffix}`);
    }
    if (leftover < 1) break;
  }
  return out.join(' ');
}

/**
 * One `%timeit` result line exactly as IPython prints it (with `±` and `µs`, as on a UTF-8
 * terminal), e.g. `19.6 ms ± 1.3 ms per loop (mean ± std. dev. of 7 runs, 100 loops each)`.
 * Loops get thousands separators (IPython formats them with `{loops:,}`).
 */
export function formatTimeit(t: Timing): string {
  const runs = `${t.repeats} run${t.repeats === 1 ? '' : 's'}`;
  const loops = `${groupThousands(t.loops)} loop${t.loops === 1 ? '' : 's'}`;
  return (
    `${formatTime(t.meanMs)} ± ${formatTime(t.stdMs)} per loop ` +
    `(mean ± std. dev. of ${runs}, ${loops} each)`
  );
}

/**
 * A speedup factor as `3.5x`: one decimal from 1x up; below 1x (a slowdown) two significant
 * digits, so `0.05x` does not collapse to `0.1x` or `0.0x`.
 */
export function formatSpeedup(x: number): string {
  if (!Number.isFinite(x)) return `${formatG(x, 3)}x`;
  return `${Math.abs(x) >= 1 ? x.toFixed(1) : formatG(x, 2)}x`;
}

/** Python's `format(n, ',')` for integers: `1234567` -> `1,234,567`. */
export function groupThousands(n: number): string {
  if (!Number.isInteger(n)) return String(n);
  const sign = n < 0 ? '-' : '';
  return sign + String(Math.abs(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/**
 * Python's `'%.*g' % (precision, x)`: `precision` significant digits, rounded half to even on the
 * exact binary value, trailing zeros dropped, scientific (`1e+03`) when the exponent is < -4 or
 * >= precision.
 */
export function formatG(x: number, precision: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  const p = Math.max(precision, 1); // Python treats precision 0 as 1
  const sign = x < 0 || Object.is(x, -0) ? '-' : '';
  if (x === 0) return `${sign}0`;
  const { digits, exponent } = roundDigits(exactDecimal(Math.abs(x)), p);
  let out: string;
  if (exponent < -4 || exponent >= p) {
    const mantissa = stripZeros(digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits);
    const e = Math.abs(exponent);
    out = `${mantissa}e${exponent < 0 ? '-' : '+'}${e < 10 ? '0' : ''}${e}`;
  } else if (exponent >= 0) {
    const int = digits.slice(0, exponent + 1);
    out = stripZeros(`${int}.${digits.slice(exponent + 1)}`);
  } else {
    out = stripZeros(`0.${'0'.repeat(-exponent - 1)}${digits}`);
  }
  return sign + out;
}

/** `1.2300` -> `1.23`, `12.` -> `12` (only after a decimal point). */
function stripZeros(s: string): string {
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

/**
 * The exact decimal value of a positive finite double: all its significant digits (no leading
 * zeros) and the decimal exponent of the first one, so x = 0.d1d2d3... * 10^(exponent + 1).
 */
function exactDecimal(x: number): { digits: string; exponent: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const biasedExp = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  // x = mantissa * 2^e exactly (subnormals have no implicit leading 1).
  const mantissa = biasedExp === 0 ? fraction : fraction | (1n << 52n);
  const e = (biasedExp === 0 ? 1 : biasedExp) - 1075;
  let digits: string;
  let pointPos: number; // decimal point sits after this many digits of `digits`
  if (e >= 0) {
    digits = (mantissa << BigInt(e)).toString();
    pointPos = digits.length;
  } else {
    // mantissa / 2^k = mantissa * 5^k / 10^k.
    digits = (mantissa * 5n ** BigInt(-e)).toString();
    pointPos = digits.length + e;
  }
  const lead = digits.length - digits.replace(/^0+/, '').length;
  digits = digits.slice(lead).replace(/0+$/, '');
  return { digits, exponent: pointPos - lead - 1 };
}

/** Rounds a digit string to `p` digits, half to even; a carry (999 -> 1000) bumps the exponent. */
function roundDigits(
  { digits, exponent }: { digits: string; exponent: number },
  p: number,
): { digits: string; exponent: number } {
  if (digits.length <= p) return { digits: digits.padEnd(p, '0'), exponent };
  const kept = digits.slice(0, p);
  const rest = digits.slice(p);
  const first = rest.charCodeAt(0) - 48;
  // Trailing zeros were stripped, so the rest is exactly one half only when it is `5`.
  const exactHalf = rest === '5';
  const lastKept = kept.charCodeAt(p - 1) - 48;
  const up = first > 5 || (first === 5 && (!exactHalf || lastKept % 2 === 1));
  if (!up) return { digits: kept, exponent };
  const bumped = (BigInt(kept) + 1n).toString();
  if (bumped.length > p) return { digits: bumped.slice(0, p), exponent: exponent + 1 };
  return { digits: bumped, exponent };
}

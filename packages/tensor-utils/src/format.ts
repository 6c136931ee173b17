/**
 * Torch-exact tensor printing. `formatTensor(t)` returns, character for character, what
 * `print(t)` shows in PyTorch 1.13 / 2.x (`torch/_tensor_str.py`) with the default print options,
 * so kvkit results can be diffed against notebook output and reference printouts.
 *
 * The pipeline mirrors torch's (re-implemented here, not translated):
 *   1. summarise when numel > threshold: every dim longer than 2 * edgeItems keeps only its first
 *      and last edgeItems indices (`get_summarized_data`);
 *   2. build one element formatter from the visible values (`_Formatter`): int / fixed / scientific
 *      mode and one common width, so all elements right-align;
 *   3. lay out nested brackets, wrapping 1-D rows at lineWidth (`_tensor_str_with_formatter`);
 *   4. append suffixes such as `dtype=torch.int32` (`_add_suffixes`).
 * Numbers are rendered as Python's `'{:.4f}'` / `'{:.4e}'` render them: from the exact binary
 * value, rounding half to even. JS `toFixed` would round exact ties (0.03125) up instead, so the
 * rounding below is done on exact BigInt fractions.
 */
import type { Tensor } from '@tensorflow/tfjs-core';
import { DTypeError, ShapeError, ValueError } from './errors.ts';

/** Print options, named like `torch.set_printoptions` (camelCase). */
export interface FormatOptions {
  /** Digits after the decimal point (fixed) or of the mantissa (scientific). Default 4. */
  precision?: number;
  /** Summarise with `...` when the element count is above this. Default 1000; may be Infinity. */
  threshold?: number;
  /** Items kept at each end of every summarised dimension. Default 3. */
  edgeItems?: number;
  /** Characters per line before 1-D rows wrap (and suffixes move to a new line). Default 80. */
  lineWidth?: number;
  /** Force (true) or forbid (false) scientific notation; undefined lets torch's rule decide. */
  sciMode?: boolean;
}

/** The dtypes kvkit prints; they map to torch.float32, torch.int32 and torch.bool. */
export type FormatDType = 'float32' | 'int32' | 'bool';

interface ResolvedOptions {
  precision: number;
  threshold: number;
  edgeItems: number;
  lineWidth: number;
  sciMode: boolean | undefined;
}

/** One tensor element after dtype normalisation: a number for float32/int32, a boolean for bool. */
type Element = number | boolean;

/** `repr` starts with this; its length is the indent of every continuation line. */
const PREFIX = 'tensor(';

/**
 * Prints a tensor the way PyTorch's `print(tensor)` does. Synchronous: reads `t.dataSync()`.
 *
 * @example
 * formatTensor(tf.tensor([[1, 2], [3, 4.5]]));
 * // "tensor([[1.0000, 2.0000],\n        [3.0000, 4.5000]])"
 */
export function formatTensor(t: Tensor, opts?: FormatOptions): string {
  const dtype: string = t.dtype;
  checkDType(dtype); // complex64 and string tensors have no torch-style printout here
  const values = t.dataSync() as ArrayLike<number>;
  return formatValues(t.shape, values, dtype, opts);
}

/**
 * The pure core of `formatTensor`: prints row-major `values` of the given shape and dtype as
 * PyTorch would, without touching tfjs. float32 values are rounded to float32 first
 * (`Math.fround`), as storing them in a float32 tensor would.
 *
 * @example
 * formatValues([3], [1, 2, 3], 'float32');      // "tensor([1., 2., 3.])"
 * formatValues([2], [1, -2], 'int32');          // "tensor([ 1, -2], dtype=torch.int32)"
 * formatValues([], [0.5], 'float32');           // "tensor(0.5000)"
 */
export function formatValues(
  shape: readonly number[],
  values: ArrayLike<number | boolean>,
  dtype: FormatDType,
  opts?: FormatOptions,
): string {
  const options = resolveOptions(opts);
  checkDType(dtype);
  const numel = checkShape(shape, values.length);
  const elements = normalise(values, dtype);
  const indent = PREFIX.length;
  const suffixes: string[] = [];

  let body: string;
  if (numel === 0) {
    // An empty tensor has no elements to hint at its dtype or (beyond 1-D) its shape, so torch
    // spells both out.
    body = '[]';
    if (shape.length !== 1) suffixes.push(`size=${pythonTuple(shape)}`);
    if (dtype !== 'float32') suffixes.push(`dtype=${torchDTypeName(dtype)}`);
  } else {
    const visible = visibleIndices(shape, numel > options.threshold, options.edgeItems);
    const grid: Grid = { shape, strides: rowMajorStrides(shape), elements, visible };
    const formatter = makeFormatter(collectVisible(grid), dtype, options);
    body = renderBlock(grid, 0, 0, indent, formatter, options.lineWidth);
    // float32 is torch's default dtype and bool / int64 are implied by their printout; int32 is
    // not (torch's default integer is int64), so it is named.
    if (dtype === 'int32') suffixes.push(`dtype=${torchDTypeName(dtype)}`);
  }
  return addSuffixes(PREFIX + body, suffixes, indent, options.lineWidth);
}

/**
 * Prints a shape as PyTorch prints `tensor.shape`.
 *
 * @example
 * formatShape([2, 8, 6]); // "torch.Size([2, 8, 6])"
 * formatShape(tf.zeros([64, 1, 8, 6])); // "torch.Size([64, 1, 8, 6])"
 */
export function formatShape(shapeOrTensor: readonly number[] | Tensor): string {
  const shape = 'shape' in shapeOrTensor ? shapeOrTensor.shape : shapeOrTensor;
  return `torch.Size([${shape.join(', ')}])`;
}

// ---------------------------------------------------------------------------------------------
// Options and input checks
// ---------------------------------------------------------------------------------------------

function resolveOptions(opts: FormatOptions = {}): ResolvedOptions {
  const precision = opts.precision ?? 4;
  const threshold = opts.threshold ?? 1000;
  const edgeItems = opts.edgeItems ?? 3;
  const lineWidth = opts.lineWidth ?? 80;
  // A sanity bound (the same as Number.prototype.toFixed's); Python allows more digits.
  if (!Number.isInteger(precision) || precision < 0 || precision > 100) {
    throw new ValueError(`precision must be an integer in [0, 100], got ${precision}`, {
      argument: 'precision',
      value: precision,
    });
  }
  if (typeof threshold !== 'number' || Number.isNaN(threshold) || threshold < 0) {
    throw new ValueError(`threshold must be a number >= 0 (Infinity allowed), got ${threshold}`, {
      argument: 'threshold',
      value: threshold,
    });
  }
  // Python's `self[-0:]` is the whole tensor, so torch's edgeitems=0 does not summarise sensibly;
  // require at least one item per side.
  if (!Number.isInteger(edgeItems) || edgeItems < 1) {
    throw new ValueError(`edgeItems must be an integer >= 1, got ${edgeItems}`, {
      argument: 'edgeItems',
      value: edgeItems,
    });
  }
  if (!Number.isInteger(lineWidth) || lineWidth < 1) {
    throw new ValueError(`lineWidth must be an integer >= 1, got ${lineWidth}`, {
      argument: 'lineWidth',
      value: lineWidth,
    });
  }
  if (opts.sciMode !== undefined && typeof opts.sciMode !== 'boolean') {
    throw new ValueError(`sciMode must be true, false or undefined, got ${String(opts.sciMode)}`, {
      argument: 'sciMode',
      value: opts.sciMode,
    });
  }
  return { precision, threshold, edgeItems, lineWidth, sciMode: opts.sciMode };
}

function checkDType(dtype: string): asserts dtype is FormatDType {
  if (dtype !== 'float32' && dtype !== 'int32' && dtype !== 'bool') {
    throw new DTypeError(`cannot print dtype ${dtype}`, {
      expected: ['float32', 'int32', 'bool'],
      actual: dtype,
    });
  }
}

/** Validates the shape and returns its element count. */
function checkShape(shape: readonly number[], length: number): number {
  for (const size of shape) {
    if (!Number.isInteger(size) || size < 0) {
      throw new ValueError(`shape entries must be integers >= 0, got [${shape.join(', ')}]`, {
        argument: 'shape',
        value: [...shape],
      });
    }
  }
  const numel = shape.reduce((a, b) => a * b, 1);
  if (numel !== length) {
    throw new ShapeError(`shape [${shape.join(', ')}] needs ${numel} values, got ${length}`, {
      expected: `${numel} values`,
      actual: [length],
    });
  }
  return numel;
}

/** Coerces raw values to what a tensor of `dtype` would store. */
function normalise(values: ArrayLike<number | boolean>, dtype: FormatDType): Element[] {
  const out: Element[] = new Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number | boolean;
    if (dtype === 'bool') out[i] = typeof v === 'boolean' ? v : v !== 0;
    else if (dtype === 'int32')
      out[i] = Number(v) | 0; // wraps like Int32Array storage
    else out[i] = Math.fround(Number(v)); // rounds like Float32Array storage
  }
  return out;
}

function torchDTypeName(dtype: FormatDType): string {
  return dtype === 'float32' ? 'torch.float32' : dtype === 'int32' ? 'torch.int32' : 'torch.bool';
}

/** Python's `str(tuple(shape))`: `(2, 0)`, and `(0,)` for one entry. */
function pythonTuple(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

// ---------------------------------------------------------------------------------------------
// Python float formatting ('{:.Nf}', '{:.Ne}'), exact and round-half-even
// ---------------------------------------------------------------------------------------------

/** |x| as the exact fraction num / den (den a power of two), plus the sign bit (so -0 is negative). */
function exactFraction(x: number): { negative: boolean; num: bigint; den: bigint } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const negative = hi >>> 31 === 1;
  const biasedExponent = (hi >>> 20) & 0x7ff;
  let mantissa = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let exponent = -1074; // subnormal: no implicit leading bit
  if (biasedExponent !== 0) {
    mantissa |= 1n << 52n;
    exponent = biasedExponent - 1075;
  }
  return exponent >= 0
    ? { negative, num: mantissa << BigInt(exponent), den: 1n }
    : { negative, num: mantissa, den: 1n << BigInt(-exponent) };
}

/** round(num / den) with ties to even, as Python's float formatting rounds. */
function divRoundHalfEven(num: bigint, den: bigint): bigint {
  const quotient = num / den;
  const twiceRemainder = (num % den) * 2n;
  if (twiceRemainder > den || (twiceRemainder === den && (quotient & 1n) === 1n)) {
    return quotient + 1n;
  }
  return quotient;
}

/** round(num / den * 10^power), exactly, ties to even. */
function roundScaled(num: bigint, den: bigint, power: number): bigint {
  return power >= 0
    ? divRoundHalfEven(num * 10n ** BigInt(power), den)
    : divRoundHalfEven(num, den * 10n ** BigInt(-power));
}

/** floor(log10(num / den)) for num > 0, exactly (a float estimate, then corrected). */
function decimalExponent(num: bigint, den: bigint, estimate: number): number {
  // atLeast(e) is num / den >= 10^e.
  const atLeast = (e: number) =>
    e >= 0 ? num >= den * 10n ** BigInt(e) : num * 10n ** BigInt(-e) >= den;
  let e = estimate;
  while (!atLeast(e)) e -= 1;
  while (atLeast(e + 1)) e += 1;
  return e;
}

/** Python spells non-finite floats `nan`, `inf`, `-inf` in every float format. */
function nonFiniteText(x: number): string {
  return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
}

/**
 * Python's `'{:.<precision>f}'.format(x)`. Keeps the sign of -0 and of negatives that round to
 * zero (`-0.0000`), as Python does.
 */
function pythonFixed(x: number, precision: number): string {
  if (!Number.isFinite(x)) return nonFiniteText(x);
  const { negative, num, den } = exactFraction(x);
  const digits = roundScaled(num, den, precision)
    .toString()
    .padStart(precision + 1, '0');
  const split = digits.length - precision;
  const fraction = precision > 0 ? `.${digits.slice(split)}` : '';
  return `${negative ? '-' : ''}${digits.slice(0, split)}${fraction}`;
}

/** Python's `'{:.<precision>e}'.format(x)`: `1.0000e-05`, exponent at least two digits. */
function pythonExponential(x: number, precision: number): string {
  if (!Number.isFinite(x)) return nonFiniteText(x);
  const { negative, num, den } = exactFraction(x);
  let exponent = 0;
  let mantissa = 0n; // zero prints as 0.0000e+00
  if (num !== 0n) {
    exponent = decimalExponent(num, den, Math.floor(Math.log10(Math.abs(x))));
    mantissa = roundScaled(num, den, precision - exponent);
    // 9.99996 rounds to 10.0000: renormalise to 1.0000 and bump the exponent.
    if (mantissa === 10n ** BigInt(precision + 1)) {
      mantissa = 10n ** BigInt(precision);
      exponent += 1;
    }
  }
  const digits = mantissa.toString().padStart(precision + 1, '0');
  const fraction = precision > 0 ? `.${digits.slice(1)}` : '';
  const exponentText = `${exponent < 0 ? '-' : '+'}${String(Math.abs(exponent)).padStart(2, '0')}`;
  return `${negative ? '-' : ''}${digits[0]}${fraction}e${exponentText}`;
}

// ---------------------------------------------------------------------------------------------
// Element formatter (torch's _Formatter)
// ---------------------------------------------------------------------------------------------

interface ElementFormatter {
  /** Width every element is right-aligned to (elements longer than it are not cut). */
  readonly width: number;
  format(value: Element): string;
}

/**
 * Chooses how every element is printed from the values that will be visible. Like torch, only
 * nonzero finite floats decide the mode and the width: zeros, nan and inf are padded to the
 * width of the others (or stick out when they are longer, e.g. `tensor([nan, 1.])`).
 */
function makeFormatter(
  visible: readonly Element[],
  dtype: FormatDType,
  options: ResolvedOptions,
): ElementFormatter {
  const pad = (text: string, width: number) => text.padStart(width, ' ');

  if (dtype !== 'float32') {
    // int and bool print as Python's str(): `-3`, `True`, `False`.
    const text = (v: Element) => (typeof v === 'boolean' ? (v ? 'True' : 'False') : String(v));
    const width = visible.reduce<number>((w, v) => Math.max(w, text(v).length), 1);
    return { width, format: (v) => pad(text(v), width) };
  }

  const { precision } = options;
  const nonzeroFinite = (visible as number[]).filter((v) => Number.isFinite(v) && v !== 0);
  let intMode = true;
  let sciMode = false;
  let width = 1;

  if (nonzeroFinite.length > 0) {
    // A loop, not Math.max(...values): with threshold Infinity there can be millions of values.
    let max = 0;
    let min = Number.POSITIVE_INFINITY;
    for (const v of nonzeroFinite) {
      max = Math.max(max, Math.abs(v));
      min = Math.min(min, Math.abs(v));
    }
    intMode = nonzeroFinite.every(Number.isInteger);
    // Integers never trigger scientific notation for being small, only for spread or size.
    const spread = max / min > 1000 || max > 1e8;
    sciMode = intMode ? spread : spread || min < 1e-4;
    const measure = sciMode
      ? (v: number) => pythonExponential(v, precision).length
      : intMode
        ? (v: number) => pythonFixed(v, 0).length + 1 // room for the trailing '.'
        : (v: number) => pythonFixed(v, precision).length;
    for (const v of nonzeroFinite) width = Math.max(width, measure(v));
    // torch applies the user's sci_mode only here: with no nonzero finite value it returns
    // early, and such tensors always print in int mode (`tensor([0., nan])`).
    if (options.sciMode !== undefined) sciMode = options.sciMode;
  }

  const format = (value: Element): string => {
    const v = value as number;
    if (sciMode) return pad(pythonExponential(v, precision), width);
    // int mode marks floats with a trailing '.', except nan/inf which are already clearly float.
    if (intMode) return pad(pythonFixed(v, 0) + (Number.isFinite(v) ? '.' : ''), width);
    return pad(pythonFixed(v, precision), width);
  };
  return { width, format };
}

// ---------------------------------------------------------------------------------------------
// Layout (torch's _tensor_str_with_formatter / _vector_str)
// ---------------------------------------------------------------------------------------------

/** Marks where a summarised dimension shows `...` instead of its middle indices. */
const ELLIPSIS = null;

interface Grid {
  shape: readonly number[];
  strides: readonly number[];
  elements: readonly Element[];
  /** Per dimension, the indices shown in order, with ELLIPSIS where the middle is skipped. */
  visible: ReadonlyArray<ReadonlyArray<number | typeof ELLIPSIS>>;
}

function rowMajorStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length).fill(1);
  for (let d = shape.length - 2; d >= 0; d--) strides[d] = strides[d + 1]! * shape[d + 1]!;
  return strides;
}

/**
 * Which indices of each dimension are printed. Summarising cuts every dimension longer than
 * 2 * edgeItems, independently of the others, so the kept set is a per-dimension list.
 */
function visibleIndices(
  shape: readonly number[],
  summarize: boolean,
  edgeItems: number,
): (number | typeof ELLIPSIS)[][] {
  return shape.map((size) => {
    const all = Array.from({ length: size }, (_, i) => i);
    if (!summarize || size <= 2 * edgeItems) return all;
    return [...all.slice(0, edgeItems), ELLIPSIS, ...all.slice(size - edgeItems)];
  });
}

/** The printed elements in row-major order: what torch's formatter sees after summarising. */
function collectVisible(grid: Grid): Element[] {
  const out: Element[] = [];
  const walk = (dim: number, offset: number) => {
    if (dim === grid.shape.length) {
      out.push(grid.elements[offset]!);
      return;
    }
    for (const i of grid.visible[dim]!) {
      if (i !== ELLIPSIS) walk(dim + 1, offset + i * grid.strides[dim]!);
    }
  };
  walk(0, 0);
  return out;
}

/**
 * Renders the block starting at `dim` / `offset`; `indent` is the column of its opening bracket.
 * Sub-blocks sit one column further in and are separated by `,` plus one newline per remaining
 * inner dimension, which gives the blank lines between 3-D blocks (one) and 4-D blocks (two).
 */
function renderBlock(
  grid: Grid,
  dim: number,
  offset: number,
  indent: number,
  formatter: ElementFormatter,
  lineWidth: number,
): string {
  const remaining = grid.shape.length - dim;
  if (remaining === 0) return formatter.format(grid.elements[offset]!); // 0-d tensor
  const indices = grid.visible[dim]!;
  const stride = grid.strides[dim]!;
  if (remaining === 1) {
    const items = indices.map((i) =>
      i === ELLIPSIS ? ' ...' : formatter.format(grid.elements[offset + i * stride]!),
    );
    return renderRow(items, indent, formatter.width, lineWidth);
  }
  const blocks = indices.map((i) =>
    i === ELLIPSIS
      ? '...'
      : renderBlock(grid, dim + 1, offset + i * stride, indent + 1, formatter, lineWidth),
  );
  return `[${blocks.join(`,${'\n'.repeat(remaining - 1)}${' '.repeat(indent + 1)}`)}]`;
}

/**
 * A 1-D row, wrapped so each line holds as many elements as fit in lineWidth, counting each as
 * width + 2 (for `, `). The ` ...` marker counts as an element too, as in torch.
 */
function renderRow(items: string[], indent: number, width: number, lineWidth: number): string {
  const perLine = Math.max(1, Math.floor((lineWidth - indent) / (width + 2)));
  const lines: string[] = [];
  for (let i = 0; i < items.length; i += perLine) {
    lines.push(items.slice(i, i + perLine).join(', '));
  }
  return `[${lines.join(`,\n${' '.repeat(indent + 1)}`)}]`;
}

/**
 * Appends `, suffix` items and the closing parenthesis; a suffix that would pass lineWidth goes
 * on its own line at `indent`. torch measures the last line as `len - rfind('\n') + 1`, two more
 * than its real length; that quirk is kept so line breaks match.
 */
function addSuffixes(text: string, suffixes: string[], indent: number, lineWidth: number): string {
  let out = text;
  let lastLineLength = text.length - text.lastIndexOf('\n') + 1;
  for (const suffix of suffixes) {
    if (lastLineLength + suffix.length + 2 > lineWidth) {
      out += `,\n${' '.repeat(indent)}${suffix}`;
      lastLineLength = indent + suffix.length;
    } else {
      out += `, ${suffix}`;
      lastLineLength += suffix.length + 2;
    }
  }
  return `${out})`;
}

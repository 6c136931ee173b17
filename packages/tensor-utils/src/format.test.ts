import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, test } from 'vitest';
import { DTypeError, ShapeError, ValueError } from './errors.ts';
import { formatShape, formatTensor, formatValues } from './format.ts';

// Expected strings come from two independent sources:
//  - the seed notebook's printed output (test/fixtures/seed-notebook.txt), formatting the PyTorch
//    reference values (test/fixtures/a_seed_notebook.json, see test/fixtures/README.md);
//  - for edge cases, torch's `_tensor_str.py` rules worked out by hand, or printouts quoted in
//    PyTorch's own PRs and docs (cited where used). None were produced by running format.ts.
//    Every edge-case string below has since been checked against real PyTorch 1.13 output; more
//    real printouts are in format.torch.test.ts (test/fixtures/torch-print-cases.json).

const fixture = (name: string) =>
  readFileSync(new URL(`../test/fixtures/${name}`, import.meta.url), 'utf8');

// ---------------------------------------------------------------------------------------------
// The notebook export
// ---------------------------------------------------------------------------------------------

const notebook = fixture('seed-notebook.txt');

/** The text of notebook cell `n`: from its `In [n]:` line up to the next cell. */
function cell(n: number): string {
  const start = notebook.indexOf(`In [${n}]:\n`);
  if (start < 0) throw new Error(`cell ${n} not in the notebook export`);
  const next = notebook.indexOf('\nIn [', start + 1);
  return notebook.slice(start, next < 0 ? undefined : next);
}

/**
 * One printed tensor. The export cuts some printouts off mid-line (e.g. `[-0.0447,  0.0`), then
 * goes on with prose: those are `complete: false` and only their text so far can be compared.
 */
interface Printout {
  text: string;
  complete: boolean;
}

/**
 * The tensor printouts of a cell, in order. A printout starts at a line beginning `tensor(` and
 * runs until its parentheses balance; indented lines continue it, and so do blank lines followed
 * by an indented one (the gaps between 3-D / 4-D blocks). Anything else means the export
 * truncated it.
 */
function printouts(cellText: string): Printout[] {
  const lines = cellText.split('\n');
  const balance = (s: string) => (s.match(/\(/g)?.length ?? 0) - (s.match(/\)/g)?.length ?? 0);
  const found: Printout[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.startsWith('tensor(')) continue;
    const taken = [lines[i]!];
    let depth = balance(lines[i]!);
    let j = i + 1;
    for (; depth > 0 && j < lines.length; j++) {
      const line = lines[j]!;
      if (line.startsWith(' ')) {
        taken.push(line);
        depth += balance(line);
      } else if (line === '' && nextNonBlank(lines, j)?.startsWith(' ')) {
        taken.push(line);
      } else {
        break;
      }
    }
    found.push({ text: taken.join('\n'), complete: depth === 0 });
    i = j - 1;
  }
  return found;
}

const nextNonBlank = (lines: string[], from: number) => lines.slice(from).find((l) => l !== '');

/** The n-th printout of a cell, checked to be (in)complete as the test expects. */
function printout(cellNumber: number, index: number, complete: boolean): Printout {
  const p = printouts(cell(cellNumber))[index];
  if (!p) throw new Error(`cell ${cellNumber} has no printout #${index}`);
  expect(p.complete, `cell ${cellNumber} printout #${index} completeness`).toBe(complete);
  return p;
}

/** Whole-string compare for complete printouts; for truncated ones, compare the printed prefix. */
function expectPrintout(ours: string, p: Printout) {
  if (p.complete) expect(ours).toBe(p.text);
  else expect(ours.slice(0, p.text.length)).toBe(p.text);
}

/** The complete `[...]` rows of a printout, brackets included, in print order. */
const rowsOf = (text: string): string[] => text.match(/\[[^[\]]*\]/g) ?? [];

// ---------------------------------------------------------------------------------------------
// The PyTorch reference values
// ---------------------------------------------------------------------------------------------

interface Golden {
  shape: number[];
  data: number[];
}
interface Reference {
  x: Golden;
  full_output: Golden;
  schedules: { steps: { start_pos: number; T: number; output: Golden }[]; final_cache_k: Golden }[];
}
const reference = JSON.parse(fixture('a_seed_notebook.json')) as Reference;

/** The reference stores each float32 as its shortest decimal; Math.fround restores it exactly. */
const f32 = (g: Golden): Golden => ({ shape: g.shape, data: g.data.map(Math.fround) });
const print = (g: Golden) => formatValues(g.shape, g.data, 'float32');

/** `t[:, start:end]` of a [B, T, C] tensor. */
function sliceTime(g: Golden, start: number, end: number): Golden {
  const [b, t, c] = g.shape as [number, number, number];
  const data: number[] = [];
  for (let i = 0; i < b; i++) data.push(...g.data.slice((i * t + start) * c, (i * t + end) * c));
  return { shape: [b, end - start, c], data };
}

/** `torch.cat(parts, dim=1)` of [B, T_i, C] tensors. */
function catTime(parts: Golden[]): Golden {
  const [b, , c] = parts[0]!.shape as [number, number, number];
  const data: number[] = [];
  for (let i = 0; i < b; i++) {
    for (const p of parts) {
      const t = p.shape[1]!;
      data.push(...p.data.slice(i * t * c, (i + 1) * t * c));
    }
  }
  return { shape: [b, parts.reduce((n, p) => n + p.shape[1]!, 0), c], data };
}

/** The cache [B, KV, T, hs] as it was when only positions < end had been written. */
function cacheUpTo(g: Golden, end: number): Golden {
  const [, , t, hs] = g.shape as [number, number, number, number];
  const data = g.data.map((v, i) => (Math.floor(i / hs) % t < end ? v : 0));
  return { shape: g.shape, data };
}

/** Appends zero batch rows, as `cache_k[:n]` shows untouched rows of the allocation. */
function padBatch(g: Golden, batch: number): Golden {
  const per = g.data.length / g.shape[0]!;
  const data = [...g.data, ...new Array<number>((batch - g.shape[0]!) * per).fill(0)];
  return { shape: [batch, ...g.shape.slice(1)], data };
}

const x = f32(reference.x);
const fullOutput = f32(reference.full_output);
const notebookSchedule = reference.schedules[0]!; // chunks [3, 1, 1, 1, 1, 1]
const stepOutputs = notebookSchedule.steps.map((s) => f32(s.output));
const sequentialCache = f32(notebookSchedule.final_cache_k);
const wholeSequenceCache = f32(reference.schedules[2]!.final_cache_k); // one chunk of 8, as cell 6

// Known boundary, output element [0, 4, 2]: in the reference it is the float32
// 0.33945000171661376953, just above the 4-decimal tie, so Python's '{:.4f}' prints 0.3395. The
// notebook's own torch run produced a neighbouring float32 below the tie and printed 0.3394. The
// reference README says either is right, so at that one position (batch 0, row 4 of the
// attention output) either rounding is accepted: our row is mapped to the notebook's before the
// compare. Every other element must match as printed.
const ROW_0_4_REFERENCE = '[-0.1518,  0.3811,  0.3395, -0.0629, -0.0441,  0.0369]';
const ROW_0_4_NOTEBOOK = '[-0.1518,  0.3811,  0.3394, -0.0629, -0.0441,  0.0369]';
const acceptEitherAt042 = (s: string) => s.replace(ROW_0_4_REFERENCE, ROW_0_4_NOTEBOOK);

/** Cell 16 prints module outputs, which carry an autograd suffix tfjs tensors never have. */
const withGradFn = (s: string, name: string) => `${s.slice(0, -1)},\n       grad_fn=<${name}>)`;

/**
 * The printout of a [2, 1, 8, 6] key cache, written out as torch lays out a 4-D tensor: batch
 * blocks open at column 8 and are separated by `,` plus three newlines (two blank lines); rows
 * sit at column 10. `rows[b][r]` is a `[...]` row; `undefined` marks a row the export cut off,
 * and the expectation ends just before it (so it is compared as a prefix).
 */
function cachePrintout(rows: (string | undefined)[][]): Printout {
  const CUT = '\u0000';
  const blocks = rows.map((r) => `[[${r.map((row) => row ?? CUT).join(`,\n${' '.repeat(10)}`)}]]`);
  const text = `tensor([${blocks.join(`,\n\n\n${' '.repeat(8)}`)}])`;
  const cut = text.indexOf(CUT);
  return cut < 0 ? { text, complete: true } : { text: text.slice(0, cut), complete: false };
}

// ---------------------------------------------------------------------------------------------
// Tests: the seed notebook
// ---------------------------------------------------------------------------------------------

describe('seed notebook printouts', () => {
  test('cells 2, 9, 17: shapes print as torch.Size', () => {
    const sizeLine = (n: number) => cell(n).match(/^torch\.Size\(.*\)$/m)?.[0];
    expect(formatShape([2, 8, 6])).toBe(sizeLine(2));
    expect(formatShape([64, 1, 8, 6])).toBe(sizeLine(9));
    expect(formatShape([8, 64, 128])).toBe(sizeLine(17));
    expect(formatShape([2, 8, 6])).toBe('torch.Size([2, 8, 6])');
    expect(formatShape([64, 1, 8, 6])).toBe('torch.Size([64, 1, 8, 6])');
  });

  test('cells 11 and 16: input[:, :3] (complete printouts)', () => {
    const ours = print(sliceTime(x, 0, 3));
    expectPrintout(ours, printout(11, 0, true));
    expectPrintout(ours, printout(16, 0, true));
  });

  test('cell 16: input[:, :4] (cut off after `[0` in the export: prefix only)', () => {
    const p = printout(16, 2, false);
    expect(p.text.endsWith('         [0')).toBe(true);
    expectPrintout(print(sliceTime(x, 0, 4)), p);
  });

  test('cell 16: output for input[:, :3] (complete, with its grad_fn suffix)', () => {
    // forward(x[:, :3]) without cache is causal, so it is full_output[:, :3].
    const ours = withGradFn(print(sliceTime(fullOutput, 0, 3)), 'ViewBackward0');
    expectPrintout(ours, printout(16, 1, true));
  });

  test('cell 11: prefill output (not in the export; cell 16 prints the same three rows)', () => {
    const ours = withGradFn(print(stepOutputs[0]!), 'ViewBackward0');
    expectPrintout(ours, printout(16, 1, true));
  });

  test('cells 5 and 7: full output (cut off in batch 1, row 7: prefix; [0,4,2] either way)', () => {
    const ours = acceptEitherAt042(print(fullOutput));
    expectPrintout(ours, printout(5, 0, false));
    expectPrintout(ours, printout(7, 0, false));
  });

  test('cell 12: concatenated step outputs (cut off: prefix; [0,4,2] either way)', () => {
    const ours = acceptEitherAt042(print(catTime(stepOutputs)));
    expectPrintout(ours, printout(12, 0, false));
  });

  test('cell 11: each decode step output, rows taken from cell 12 ([0,4,2] either way)', () => {
    // Cell 11 printed each step's [2, 1, 6] output, but the export lost them. Cell 12 printed the
    // same rows (it concatenates those outputs). Each step tensor holds a negative value, so its
    // width is 7 as in cell 12 and the rows print identically; a [2, 1, 6] tensor is two 3-D
    // blocks separated by one blank line.
    const p = printout(12, 0, false);
    const rows = rowsOf(p.text); // batch 0 rows 0-7, batch 1 rows 0-6
    const lastRowStart = p.text.split('\n').at(-1)!.trim(); // `[-0.0447,  0.0`
    expect(rows).toHaveLength(15);
    for (let step = 1; step < stepOutputs.length; step++) {
      const r = step + 2; // steps 1..5 hold positions 3..7
      const batch1Row = rows[8 + r];
      const expected: Printout = batch1Row
        ? { text: `tensor([[${rows[r]}],\n\n        [${batch1Row}]])`, complete: true }
        : { text: `tensor([[${rows[r]}],\n\n        [${lastRowStart}`, complete: false };
      expectPrintout(acceptEitherAt042(print(stepOutputs[step]!)), expected);
    }
  });

  test('cell 10: cache_k[:3] after the whole-sequence pass (cut off in batch 1: prefix)', () => {
    const ours = print(padBatch(wholeSequenceCache, 3));
    const p = printout(10, 0, false);
    expect(ours).toContain('\n\n\n        [[[ 0.0000,  0.0000'); // the untouched third row
    expectPrintout(ours, p);
  });

  test('cell 11: cache_k[:2] after prefill, zero rows and `\\n\\n\\n` (cut off: prefix)', () => {
    const p = printout(11, 1, false);
    expect(p.text).toContain(']]],\n\n\n        [[[');
    expectPrintout(print(cacheUpTo(sequentialCache, 3)), p);
  });

  test('cell 11: cache_k[:2] after every step, rows from cells 10 and 11', () => {
    // Only the prefill cache survives in the export. The key rows are those of cell 10 (keys
    // depend only on their own token), unwritten rows are cell 11's zero row; the 4-D layout is
    // cachePrintout's, checked first against the two printouts the notebook does show.
    const keyRows = rowsOf(printout(10, 0, false).text); // batch 0 rows 0-7, batch 1 rows 0-6
    expect(keyRows).toHaveLength(15);
    const zeroRow = rowsOf(printout(11, 1, false).text)[3]!;
    expect(zeroRow).toBe('[ 0.0000,  0.0000,  0.0000,  0.0000,  0.0000,  0.0000]');
    const rowsAfter = (end: number) =>
      [0, 1].map((b) =>
        Array.from({ length: 8 }, (_, r) => (r < end ? keyRows[b * 8 + r] : zeroRow)),
      );

    const prefill = cachePrintout(rowsAfter(3));
    expect(prefill.text.startsWith(printout(11, 1, false).text)).toBe(true);

    for (const step of notebookSchedule.steps) {
      const end = step.start_pos + step.T;
      expectPrintout(print(cacheUpTo(sequentialCache, end)), cachePrintout(rowsAfter(end)));
    }
  });

  test('cell 14: the bool comparison grid (complete printout)', () => {
    const p = printout(14, 0, true);
    const values = rowsOf(p.text).flatMap((row) =>
      row
        .slice(1, -1)
        .split(',')
        .map((s) => s.trim() === 'True'),
    );
    expect(values).toHaveLength(2 * 8 * 6);
    expect(values.filter((v) => !v)).toHaveLength(13); // the grid's False count, read by eye
    expect(formatValues([2, 8, 6], values, 'bool')).toBe(p.text);
  });
});

// ---------------------------------------------------------------------------------------------
// Tests: formatTensor on real tfjs tensors
// ---------------------------------------------------------------------------------------------

describe('formatTensor', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  test('prints a float32 tfjs tensor like the notebook (cell 16, input[:, :3])', () => {
    const t = tf.tensor(sliceTime(x, 0, 3).data, [2, 3, 6], 'float32');
    expect(formatTensor(t)).toBe(printout(16, 0, true).text);
    t.dispose();
  });

  test('int32 and bool tensors', () => {
    const i = tf.tensor([1, -2], [2], 'int32');
    const b = tf.tensor([true, false, true], [3], 'bool');
    expect(formatTensor(i)).toBe('tensor([ 1, -2], dtype=torch.int32)');
    expect(formatTensor(b)).toBe('tensor([ True, False,  True])');
    expect(formatShape(tf.zeros([64, 1, 8, 6]))).toBe('torch.Size([64, 1, 8, 6])');
    tf.dispose([i, b]);
  });

  test('rejects dtypes torch-style printing does not cover', () => {
    const c = tf.complex([1], [2]);
    expect(() => formatTensor(c)).toThrow(DTypeError);
    c.dispose();
  });
});

// ---------------------------------------------------------------------------------------------
// Tests: edge cases, expectations from torch's rules
// ---------------------------------------------------------------------------------------------

const arange = (n: number, start = 0) => Array.from({ length: n }, (_, i) => start + i);

describe('torch printing rules', () => {
  test('scientific notation: smallest nonzero below 1e-4, max above 1e8, or spread above 1000', () => {
    expect(formatValues([2], [1e-5, 1], 'float32')).toBe('tensor([1.0000e-05, 1.0000e+00])');
    // integer-valued, but max > 1e8
    expect(formatValues([2], [1e9, 1], 'float32')).toBe('tensor([1.0000e+09, 1.0000e+00])');
    // quoted in pytorch/pytorch#7632: sign padding also applies in scientific mode
    expect(formatValues([2], [1e28, -1e-28], 'float32')).toBe('tensor([ 1.0000e+28, -1.0000e-28])');
    // float32 extremes: the largest finite value and the smallest subnormal
    expect(formatValues([2], [3.4028234663852886e38, 1], 'float32')).toBe(
      'tensor([3.4028e+38, 1.0000e+00])',
    );
    expect(formatValues([], [1.401298464324817e-45], 'float32')).toBe('tensor(1.4013e-45)');
  });

  test('int mode: floats that are all whole print with a trailing dot', () => {
    expect(formatValues([3], [1, 2, 3], 'float32')).toBe('tensor([1., 2., 3.])');
    // width includes the '-' and the '.', so 2. gets one space of padding
    expect(formatValues([2], [-1, 2], 'float32')).toBe('tensor([-1.,  2.])');
    expect(formatValues([2], [0, 0], 'float32')).toBe('tensor([0., 0.])');
  });

  test('fixed mode right-aligns to the widest element and leaves room for a sign', () => {
    expect(formatValues([3], [0.5, -1.25, 10], 'float32')).toBe(
      'tensor([ 0.5000, -1.2500, 10.0000])',
    );
  });

  test('summarised 1-D: edge items with ` ...` between, widths from the visible items only', () => {
    // 1000..2999: int mode (spread < 1000), width 5
    expect(formatValues([2000], arange(2000, 1000), 'float32')).toBe(
      'tensor([1000., 1001., 1002.,  ..., 2997., 2998., 2999.])',
    );
    // arange(2000.): nonzero visible values 1..1999 spread more than 1000, so torch switches to
    // scientific; 7 items of width 10 + 2 overflow 80 - 7 columns, so the last one wraps.
    expect(formatValues([2000], arange(2000), 'float32')).toBe(
      'tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n' +
        '        1.9990e+03])',
    );
    // an integer tensor never uses scientific notation
    expect(formatValues([2000], arange(2000), 'int32')).toBe(
      'tensor([   0,    1,    2,  ..., 1997, 1998, 1999], dtype=torch.int32)',
    );
    // torch.randn(1001) as quoted in pytorch/pytorch#7632; hidden middle values (here 1e9, which
    // would force scientific notation if it counted) play no part.
    const edges = [-0.5033, -0.4142, 0.7961, -0.94, -0.4431, -0.6192];
    const values = [...edges.slice(0, 3), ...new Array<number>(995).fill(1e9), ...edges.slice(3)];
    expect(formatValues([1001], values, 'float32')).toBe(
      'tensor([-0.5033, -0.4142,  0.7961,  ..., -0.9400, -0.4431, -0.6192])',
    );
  });

  test('summarised 2-D: a `...` row between the edge rows', () => {
    const zeroRow = '[0., 0., 0.,  ..., 0., 0., 0.]';
    expect(formatValues([100, 100], new Array<number>(10000).fill(0), 'float32')).toBe(
      [
        `tensor([${zeroRow},`,
        `        ${zeroRow},`,
        `        ${zeroRow},`,
        '        ...,',
        `        ${zeroRow},`,
        `        ${zeroRow},`,
        `        ${zeroRow}])`,
      ].join('\n'),
    );
    expect(formatValues([40, 50], arange(2000), 'int32')).toBe(
      [
        'tensor([[   0,    1,    2,  ...,   47,   48,   49],',
        '        [  50,   51,   52,  ...,   97,   98,   99],',
        '        [ 100,  101,  102,  ...,  147,  148,  149],',
        '        ...,',
        '        [1850, 1851, 1852,  ..., 1897, 1898, 1899],',
        '        [1900, 1901, 1902,  ..., 1947, 1948, 1949],',
        '        [1950, 1951, 1952,  ..., 1997, 1998, 1999]], dtype=torch.int32)',
      ].join('\n'),
    );
  });

  test('summarised 3-D: blank lines around the `...` block; short dims are kept whole', () => {
    // values i*4 + j*2 + k; blocks 3 and 4 (values 12..15) are hidden; int mode, width 3
    expect(formatValues([7, 2, 2], arange(28), 'float32', { threshold: 10 })).toBe(
      [
        'tensor([[[ 0.,  1.],',
        '         [ 2.,  3.]],',
        '',
        '        [[ 4.,  5.],',
        '         [ 6.,  7.]],',
        '',
        '        [[ 8.,  9.],',
        '         [10., 11.]],',
        '',
        '        ...,',
        '',
        '        [[16., 17.],',
        '         [18., 19.]],',
        '',
        '        [[20., 21.],',
        '         [22., 23.]],',
        '',
        '        [[24., 25.],',
        '         [26., 27.]]])',
      ].join('\n'),
    );
  });

  test('nan and inf: excluded from mode and width decisions, printed as nan / inf / -inf', () => {
    // Only 1. decides: int mode, width 2; the longer nan/inf/-inf are not padded.
    expect(formatValues([4], [Number.NaN, Infinity, -Infinity, 1], 'float32')).toBe(
      'tensor([nan, inf, -inf, 1.])',
    );
    expect(formatValues([2], [Number.NaN, 1.5], 'float32')).toBe('tensor([   nan, 1.5000])');
    expect(formatValues([2], [Number.NaN, Infinity], 'float32')).toBe('tensor([nan, inf])');
    expect(formatValues([2], [0, Number.NaN], 'float32')).toBe('tensor([0., nan])');
    expect(formatValues([2], [1e-5, Infinity], 'float32')).toBe('tensor([1.0000e-05,        inf])');
  });

  test('0-d tensors', () => {
    expect(formatValues([], [0.5], 'float32')).toBe('tensor(0.5000)');
    expect(formatValues([], [3], 'float32')).toBe('tensor(3.)');
    expect(formatValues([], [5], 'int32')).toBe('tensor(5, dtype=torch.int32)');
    expect(formatValues([], [true], 'bool')).toBe('tensor(True)');
  });

  test('empty tensors name their size (unless 1-D) and a non-default dtype', () => {
    expect(formatValues([0], [], 'float32')).toBe('tensor([])');
    expect(formatValues([2, 0], [], 'float32')).toBe('tensor([], size=(2, 0))');
    expect(formatValues([0], [], 'int32')).toBe('tensor([], dtype=torch.int32)');
    expect(formatValues([0], [], 'bool')).toBe('tensor([], dtype=torch.bool)');
  });

  test('long 1-D rows wrap at line width 80', () => {
    // torch.arange(30.) / 7: width 6, (80 - 7) / (6 + 2) -> 9 per line
    const values = arange(30).map((i) => Math.fround(i / 7));
    expect(formatValues([30], values, 'float32')).toBe(
      [
        'tensor([0.0000, 0.1429, 0.2857, 0.4286, 0.5714, 0.7143, 0.8571, 1.0000, 1.1429,',
        '        1.2857, 1.4286, 1.5714, 1.7143, 1.8571, 2.0000, 2.1429, 2.2857, 2.4286,',
        '        2.5714, 2.7143, 2.8571, 3.0000, 3.1429, 3.2857, 3.4286, 3.5714, 3.7143,',
        '        3.8571, 4.0000, 4.1429])',
      ].join('\n'),
    );
    // torch.randn(20) as quoted in pytorch/pytorch#7632: width 7, 8 per line
    const randn = [
      0.8574, -1.1225, 0.3135, 1.7848, -0.8342, 0.1214, -0.6393, -0.348, 1.4114, 0.5102, -0.8206,
      1.6022, 0.631, 1.9507, -1.5694, 1.3168, 0.1103, 0.5242, 0.3141, -0.0692,
    ];
    expect(formatValues([20], randn, 'float32')).toBe(
      [
        'tensor([ 0.8574, -1.1225,  0.3135,  1.7848, -0.8342,  0.1214, -0.6393, -0.3480,',
        '         1.4114,  0.5102, -0.8206,  1.6022,  0.6310,  1.9507, -1.5694,  1.3168,',
        '         0.1103,  0.5242,  0.3141, -0.0692])',
      ].join('\n'),
    );
  });

  test('bool tensors right-align True to the width of False', () => {
    expect(formatValues([3], [true, false, true], 'bool')).toBe('tensor([ True, False,  True])');
    expect(formatValues([2], [1, 1], 'bool')).toBe('tensor([True, True])');
  });

  test('int32 tensors get a dtype suffix, on its own line when the last line is full', () => {
    expect(formatValues([3], [1, 2, 3], 'int32')).toBe('tensor([1, 2, 3], dtype=torch.int32)');
    // 17 two-digit items fill 75 columns; torch's suffix rule (last line measured + 2) breaks
    expect(formatValues([17], arange(17, 10), 'int32')).toBe(
      'tensor([10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26],\n' +
        '       dtype=torch.int32)',
    );
  });

  test('negative zero keeps its sign, as Python formats it', () => {
    expect(formatValues([1], [-0], 'float32')).toBe('tensor([-0.])');
    expect(formatValues([], [-0], 'float32')).toBe('tensor(-0.)');
    // -0 is a zero, so it does not count towards the width (6, from 0.5000) and sticks out
    expect(formatValues([2], [-0, 0.5], 'float32')).toBe('tensor([-0.0000, 0.5000])');
    expect(formatValues([2], [-0, -0.5], 'float32')).toBe('tensor([-0.0000, -0.5000])');
  });

  test('rounding is half-to-even on the exact binary value', () => {
    // exact ties: 0.03125 -> 0.0312 (JS toFixed would give 0.0313), 0.09375 -> 0.0938
    expect(formatValues([2], [0.03125, 1], 'float32')).toBe('tensor([0.0312, 1.0000])');
    expect(formatValues([2], [0.09375, 1], 'float32')).toBe('tensor([0.0938, 1.0000])');
    expect(formatValues([2], [1.03125, 1.09375], 'float32', { sciMode: true })).toBe(
      'tensor([1.0312e+00, 1.0938e+00])',
    );
    // The notebook boundary value: the reference float32 is just above 0.33945, the float32 below
    // it just under, so they round to different sides.
    const above = Math.fround(0.33945);
    expect(above.toFixed(20)).toBe('0.33945000171661376953'); // exact for a double
    const bits = new Uint32Array(new Float32Array([above]).buffer);
    bits[0]! -= 1;
    const below = new Float32Array(bits.buffer)[0]!;
    expect(formatValues([], [above], 'float32')).toBe('tensor(0.3395)');
    expect(formatValues([], [below], 'float32')).toBe('tensor(0.3394)');
  });
});

describe('options', () => {
  test('precision (the set_printoptions docstring example)', () => {
    expect(formatValues([1], [1.12345], 'float32', { precision: 2 })).toBe('tensor([1.12])');
    // precision 0 is not int mode for 2.5: '{:.0f}' rounds it half-to-even
    expect(formatValues([2], [0.5, 2.5], 'float32', { precision: 0 })).toBe('tensor([0, 2])');
  });

  test('threshold and edgeItems', () => {
    // The set_printoptions docstring shows `tensor([0, 1, 2, ..., 7, 8, 9])`, but its ` ...`
    // element is joined with ', ' like any other, which gives two spaces in real output.
    expect(formatValues([10], arange(10), 'int32', { threshold: 5 })).toBe(
      'tensor([0, 1, 2,  ..., 7, 8, 9], dtype=torch.int32)',
    );
    expect(formatValues([5], [1, 2, 3, 4, 5], 'float32', { threshold: 0, edgeItems: 1 })).toBe(
      'tensor([1.,  ..., 5.])',
    );
  });

  test('lineWidth', () => {
    // width 2, (20 - 7) / 4 -> 3 per line
    expect(formatValues([4], [1, 2, 3, 4], 'float32', { lineWidth: 20 })).toBe(
      'tensor([1., 2., 3.,\n        4.])',
    );
  });

  test('sciMode overrides the choice but not the width torch measured', () => {
    expect(formatValues([2], [1, 2], 'float32', { sciMode: true })).toBe(
      'tensor([1.0000e+00, 2.0000e+00])',
    );
    // width 10 was measured in scientific form, then fixed is printed into it
    expect(formatValues([2], [1e-5, 1], 'float32', { sciMode: false })).toBe(
      'tensor([    0.0000,     1.0000])',
    );
    // torch returns before applying sci_mode when no value is nonzero and finite
    expect(formatValues([2], [0, 0], 'float32', { sciMode: true })).toBe('tensor([0., 0.])');
  });

  test('bad options and inputs throw typed errors', () => {
    const one = (opts: object) => () => formatValues([1], [1], 'float32', opts);
    expect(one({ precision: -1 })).toThrow(ValueError);
    expect(one({ precision: 1.5 })).toThrow(ValueError);
    expect(one({ threshold: Number.NaN })).toThrow(ValueError);
    expect(one({ edgeItems: 0 })).toThrow(ValueError);
    expect(one({ lineWidth: 0 })).toThrow(ValueError);
    expect(() => formatValues([2, 2], [1, 2, 3], 'float32')).toThrow(ShapeError);
    expect(() => formatValues([-1], [], 'float32')).toThrow(ValueError);
    expect(() => formatValues([1], [1], 'float64' as 'float32')).toThrow(DTypeError);
  });

  test('formatShape of a 0-d and an empty shape', () => {
    expect(formatShape([])).toBe('torch.Size([])');
    expect(formatShape([0])).toBe('torch.Size([0])');
  });
});

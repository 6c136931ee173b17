import { UnsupportedLayoutError } from '@kvkit/tensor-utils';
import { describe, expect, test } from 'vitest';
import { attentionFloat64, randomFloats } from '../../test/reference.ts';
import {
  bf16Value,
  quantizeKeyGroup,
  quantizeValueRow,
  readKeyRow,
  readValueRow,
} from '../quantize.ts';
import { attend } from './attend.ts';
import { KernelHeap } from './kernel-heap.ts';
import {
  type KVView,
  type QuantizedDType,
  quantizedFormat,
  RUN_BYTES,
  RUN_QUANTIZED,
  RUN_SINK,
} from './layout.ts';

// The kernel over hand-built views with quantized runs (no cache involved): quantized groups
// written with the quantizers, a float32 run after them, and the expectation in float64 from
// the rows the quantized groups decode to (readKeyRow / readValueRow) and from the original
// floats.

interface Case {
  dtype: QuantizedDType;
  B: number;
  nkv: number;
  group: number;
  hs: number;
  G: number;
  /** Per batch row: positions held quantized (from 0) and in float32 after them. */
  quantized: number[];
  float: number[];
  window: number | null;
  /** Quantized positions [0, sinks) flagged as a sink run of their own. */
  sinks: number;
  T: number;
}

function build(c: Case, seed: number) {
  const f = quantizedFormat(c.dtype, c.hs, c.G);
  const heap = new KernelHeap();
  const { B, nkv, hs, G } = c;
  const width = nkv * hs;
  const len = c.quantized.map((q, b) => q + c.float[b]!);
  const groups = Math.max(1, ...c.quantized.map((q) => Math.ceil(q / G))); // per batch row
  const slots = Math.max(1, ...c.float);
  // History (b, p) -> nkv*hs floats, in a (positions, width) array per batch row.
  const hk = len.map((n, b) => randomFloats(n * width, seed + b));
  const hv = len.map((n, b) => randomFloats(n * width, seed + b + 1000));
  const qk = heap.alloc(nkv * B * groups * f.keyGroupBytes);
  const qv = heap.alloc(nkv * B * groups * f.valueGroupBytes + 128); // the kernel's slack
  const fk = heap.alloc(B * nkv * slots * hs * 4);
  const fv = heap.alloc(B * nkv * slots * hs * 4);
  const maxRuns = 3;
  const runs = heap.alloc(B * maxRuns * RUN_BYTES + 4 * B);
  const src = heap.alloc(width * 4);
  const keyHeadStride = B * groups * f.keyGroupBytes;
  const valueHeadStride = B * groups * f.valueGroupBytes;
  const decoded = len.map((n) => ({
    keys: Array.from({ length: n }, () => new Float32Array(width)),
    values: Array.from({ length: n }, () => new Float32Array(width)),
  }));
  const keyScales = len.map((n) => Array.from({ length: n }, (): Float32Array | null => null));
  const valueScales = len.map((n) => Array.from({ length: n }, (): Float32Array | null => null));
  for (let b = 0; b < B; b++) {
    const Q = c.quantized[b]!;
    for (let g = 0; g * G < Q; g++) {
      for (let j = 0; j < nkv; j++) {
        const kAt = qk + j * keyHeadStride + (b * groups + g) * f.keyGroupBytes;
        const vAt = qv + j * valueHeadStride + (b * groups + g) * f.valueGroupBytes;
        // The group's G rows of head j, staged in the heap (src float index).
        const stage = heap.alloc(2 * G * hs * 4);
        for (let r = 0; r < G; r++) {
          const p = g * G + r;
          const pick = (h: Float32Array[]) =>
            h[b]!.subarray(p * width + j * hs, p * width + (j + 1) * hs);
          heap.f32().set(pick(hk), stage / 4 + r * hs);
          heap.f32().set(pick(hv), stage / 4 + (G + r) * hs);
        }
        const io = { src: heap.f32(), dst: heap.u8() };
        const rows = Array.from({ length: G }, (_, r) => stage / 4 + r * hs);
        quantizeKeyGroup(f, io, rows, hs, kAt);
        for (let r = 0; r < G; r++) quantizeValueRow(f, io, rows[r]! + G * hs, hs, vAt, r);
        heap.free(stage);
        for (let r = 0; r < G && g * G + r < Q; r++) {
          const p = g * G + r;
          const u8 = heap.u8();
          const bf = (at: number) => bf16Value(u8[at]! | (u8[at + 1]! << 8));
          keyScales[b]![p] ??= new Float32Array(width);
          valueScales[b]![p] ??= new Float32Array(nkv * 64);
          for (let ch = 0; ch < hs; ch++)
            keyScales[b]![p]![j * hs + ch] = bf(kAt + G * f.rowBytes + 2 * ch);
          for (let g2 = 0; g2 < f.valueGroups; g2++)
            valueScales[b]![p]![j * 64 + g2] = bf(vAt + G * f.rowBytes + 2 * (g2 * G + r));
          readKeyRow(f, heap.u8(), kAt, r, hs, decoded[b]!.keys[p]!, j * hs);
          readValueRow(f, heap.u8(), vAt, r, hs, decoded[b]!.values[p]!, j * hs);
        }
      }
    }
    for (let i = 0; i < c.float[b]!; i++) {
      const p = Q + i;
      for (let j = 0; j < nkv; j++) {
        const at = ((b * nkv + j) * slots + i) * hs;
        const pick = (h: Float32Array[]) =>
          h[b]!.subarray(p * width + j * hs, p * width + (j + 1) * hs);
        heap.f32().set(pick(hk), fk / 4 + at);
        heap.f32().set(pick(hv), fv / 4 + at);
        decoded[b]!.keys[p]!.set(pick(hk), j * hs);
        decoded[b]!.values[p]!.set(pick(hv), j * hs);
      }
    }
    // Runs: [sink part of the quantized run], [rest of the quantized run], [float run].
    const entries: number[][] = [];
    const S = Math.min(c.sinks, Q);
    if (S % G !== 0) throw new Error('a quantized run starts at a group boundary');
    if (S > 0) entries.push([b * groups, S, 0, RUN_QUANTIZED | RUN_SINK]);
    if (Q > S) entries.push([b * groups + S / G, Q - S, S, RUN_QUANTIZED]);
    if (c.float[b]! > 0) entries.push([b * nkv * slots * hs * 4, c.float[b]!, Q, 0]);
    for (const [i, e] of entries.entries())
      heap.i32().set(e, (runs + (b * maxRuns + i) * RUN_BYTES) / 4);
    heap.i32()[(runs + B * maxRuns * RUN_BYTES) / 4 + b] = entries.length;
  }
  heap.free(src);
  // The original floats of the quantized positions, for the quantization error.
  const original = len.map((n, b) => ({
    keys: Array.from({ length: n }, (_, p) => hk[b]!.slice(p * width, (p + 1) * width)),
    values: Array.from({ length: n }, (_, p) => hv[b]!.slice(p * width, (p + 1) * width)),
  }));
  const view: KVView = {
    heap,
    batchSize: B,
    maxKeys: Math.max(...len),
    layout: {
      kind: 'contiguous',
      dtype: 'float32',
      nKvHeads: nkv,
      headSize: hs,
      keys: fk,
      values: fv,
      headStride: slots * hs * 4,
      rowStride: hs * 4,
      runs,
      runStride: maxRuns * RUN_BYTES,
      runCounts: runs + B * maxRuns * RUN_BYTES,
      window: c.window,
      quantized: {
        dtype: c.dtype,
        groupSize: G,
        keys: qk,
        values: qv,
        keyHeadStride,
        valueHeadStride,
      },
    },
  };
  const rows = decoded.map((x, b) => ({
    ...x,
    keyScales: keyScales[b]!,
    valueScales: valueScales[b]!,
  }));
  return { heap, view, rows, original, len };
}

/**
 * How far the kernel may be from float64 attention over the decoded rows, from its two roundings.
 * Keys: it rounds the scaled query q'_c = q_c s_c of a key group to int16 against
 * A = max |q'_c|, so a score moves by at most scale * (A / 65534) * sum_c |x̂_c| / s_c, and a
 * softmax input moved by at most d moves an output by at most 2 d max |v|. Values: it rounds the
 * weights a = w_p s_p,g of a block of rows (at most 32 consecutive rows of one group and run) to
 * int16 against the block's largest, so output c moves by at most
 * sum_p (A_block / 65534) |x̂_p,c| / s_p,g / sum_p w_p. A 1% margin covers the kernel's own
 * weights differing from float64's by the first rounding; 1e-6 covers float32 arithmetic.
 */
function kernelBound(
  q: Float32Array, // (nh * hs) one query row
  P: number,
  rows: Decoded,
  d: { nh: number; nkv: number; hs: number; visibility: { window: number | null; sinks: number } },
  G: number,
): number {
  const { nh, nkv, hs, visibility } = d;
  const scale = Math.fround(1 / Math.sqrt(hs));
  const seen: number[] = [];
  for (let p = 0; p <= P && p < rows.keys.length; p++) {
    if (visibility.window === null || p < visibility.sinks || P - p < visibility.window)
      seen.push(p);
  }
  let worst = 0;
  for (let h = 0; h < nh; h++) {
    const j = Math.floor(h / (nh / nkv));
    let dMax = 0;
    let vMax = 0;
    const scores = seen.map((p) => {
      let dot = 0;
      for (let c = 0; c < hs; c++) dot += q[h * hs + c]! * rows.keys[p]![j * hs + c]!;
      return dot * scale;
    });
    const m = Math.max(...scores);
    const w = scores.map((x) => Math.exp(x - m));
    const sum = w.reduce((a, b) => a + b, 0);
    // Blocks of quantized rows as the kernel forms them.
    const blocks: number[][] = [];
    seen.forEach((p, i) => {
      for (let c = 0; c < hs; c++) vMax = Math.max(vMax, Math.abs(rows.values[p]![j * hs + c]!));
      const ks = rows.keyScales[p];
      if (!ks) return;
      let A = 0;
      let total = 0;
      for (let c = 0; c < hs; c++) {
        A = Math.max(A, Math.abs(q[h * hs + c]! * ks[j * hs + c]!));
        if (ks[j * hs + c]! > 0) total += Math.abs(rows.keys[p]![j * hs + c]!) / ks[j * hs + c]!;
      }
      dMax = Math.max(dMax, (scale * A * total) / 65534);
      const last = blocks[blocks.length - 1];
      const prev = last?.[last.length - 1];
      const fresh =
        last === undefined ||
        prev !== seen[i - 1] ||
        prev !== p - 1 ||
        p % G === 0 ||
        p === visibility.sinks ||
        last.length === 32;
      if (fresh) blocks.push([i]);
      else last.push(i);
    });
    const valueShift = new Float64Array(hs);
    for (const block of blocks) {
      let A = 0;
      for (const i of block)
        for (const s of rows.valueScales[seen[i]!]!.subarray(j * 64, j * 64 + 64))
          A = Math.max(A, w[i]! * s);
      for (const i of block) {
        const p = seen[i]!;
        for (let c = 0; c < hs; c++) {
          const s = rows.valueScales[p]![j * 64 + Math.floor(c / G)]!;
          if (s > 0) valueShift[c]! += ((A / 65534) * Math.abs(rows.values[p]![j * hs + c]!)) / s;
        }
      }
    }
    const vShift = Math.max(0, ...valueShift) / sum;
    worst = Math.max(worst, 2 * dMax * vMax + vShift);
  }
  return 1.01 * worst + 1e-6;
}

interface Decoded {
  keys: Float32Array[];
  values: Float32Array[];
  /** Per position: the key scales (nkv * hs) of its group, null for float rows. */
  keyScales: (Float32Array | null)[];
  /** Per position: its value scales (head j's at j * 64 + g), null for float rows. */
  valueScales: (Float32Array | null)[];
}

/** Runs the kernel for T query rows per batch row ending at each row's last position. */
function run(c: Case, seed: number) {
  const { heap, view, rows, original, len } = build(c, seed);
  const nh = c.nkv * c.group;
  const { B, T, hs } = c;
  const q = randomFloats(B * T * nh * hs, seed + 99);
  const qp = heap.alloc(q.byteLength);
  const op = heap.alloc(q.byteLength);
  heap.f32().set(q, qp / 4);
  const rowBytes = nh * hs * 4;
  const startPos = len.map((n) => n - T);
  attend(
    view,
    { ptr: qp, batchStride: T * rowBytes, rowStride: rowBytes, T, nHead: nh, startPos },
    { ptr: op, batchStride: T * rowBytes, rowStride: rowBytes },
  );
  const out = heap.f32().slice(op / 4, op / 4 + q.length);
  let kernelVsDecoded = 0; // relative to kernelBound: <= 1 passes
  let kernelVsOriginal = 0;
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < T; i++) {
      const at = (b * T + i) * nh * hs;
      const d = { nh, nkv: c.nkv, hs, visibility: { window: c.window, sinks: c.sinks } };
      const P = startPos[b]! + i;
      const want = attentionFloat64(
        q.subarray(at, at + nh * hs),
        P,
        rows[b]!.keys,
        rows[b]!.values,
        d,
      );
      const orig = attentionFloat64(
        q.subarray(at, at + nh * hs),
        P,
        original[b]!.keys,
        original[b]!.values,
        d,
      );
      const bound = kernelBound(q.subarray(at, at + nh * hs), P, rows[b]!, d, c.G);
      for (let e = 0; e < nh * hs; e++) {
        kernelVsDecoded = Math.max(kernelVsDecoded, Math.abs(out[at + e]! - want[e]!) / bound);
        kernelVsOriginal = Math.max(kernelVsOriginal, Math.abs(out[at + e]! - orig[e]!));
      }
    }
  }
  return { kernelVsDecoded, kernelVsOriginal, out };
}

const base = { B: 2, nkv: 2, group: 2, window: null, sinks: 0, T: 1 };

describe.each(['int8', 'int4'] as const)('quantized runs (%s)', (dtype) => {
  test.each([
    ['hs 64, groups of 32, several groups and a partial float run', 64, 32, [96, 64], [5, 17]],
    ['hs 5 (padding), groups of 4 (narrow value groups)', 5, 4, [12, 8], [3, 0]],
    ['hs 40, groups of 8', 40, 8, [16, 24], [1, 2]],
    ['hs 48 (two int4 blocks), groups of 16', 48, 16, [32, 48], [4, 4]],
  ] as const)(
    '%s: the kernel computes attention over the rows they decode to',
    (_, hs, G, quantized, float) => {
      const c: Case = { ...base, dtype, hs, G, quantized: [...quantized], float: [...float] };
      const r = run(c, 7);
      expect(r.kernelVsDecoded).toBeLessThanOrEqual(1);
      expect(r.kernelVsDecoded).toBeGreaterThan(0);
      // The quantization error itself is far larger than the kernel's own rounding.
      expect(r.kernelVsOriginal).toBeGreaterThan(dtype === 'int8' ? 1e-4 : 1e-3);
    },
  );

  test('a chunk of queries sees the causal part of each group; a window and a sink run clip them', () => {
    const c: Case = { ...base, dtype, hs: 16, G: 8, quantized: [40, 24], float: [6, 3], T: 20 };
    expect(run(c, 3).kernelVsDecoded).toBeLessThanOrEqual(1);
    const windowed: Case = { ...c, window: 13, sinks: 8 };
    expect(run(windowed, 3).kernelVsDecoded).toBeLessThanOrEqual(1);
  });
});

describe('quantized runs: errors and refusals', () => {
  test('NaN in a quantized query row gives NaN, never a trap', () => {
    const c: Case = { ...base, dtype: 'int8', hs: 16, G: 4, quantized: [8, 8], float: [0, 1] };
    const { heap, view } = build(c, 5);
    const q = heap.alloc(4 * 16 * 4);
    const o = heap.alloc(4 * 16 * 4);
    heap.f32().fill(0.5, q / 4, q / 4 + 64);
    heap.f32()[q / 4 + 3] = Number.NaN; // batch row 0, head 0
    attend(
      view,
      { ptr: q, batchStride: 128, rowStride: 128, T: 1, nHead: 4, startPos: [7, 8] },
      { ptr: o, batchStride: 128, rowStride: 128 },
    );
    const out = heap.f32().subarray(o / 4, o / 4 + 64);
    expect(Array.from(out.subarray(0, 16)).every(Number.isNaN)).toBe(true);
    expect(Array.from(out.subarray(16)).every(Number.isFinite)).toBe(true);
  });

  test.each([
    [{ dtype: 'int2' }, /quantized rows of dtype int2/],
    [{ groupSize: 12 }, /quantized rows in groups of 12/],
    [{ groupSize: 2 }, /quantized rows in groups of 2/],
  ])('refuses %o before touching memory', (patch, message) => {
    const c: Case = { ...base, dtype: 'int8', hs: 16, G: 4, quantized: [4, 4], float: [0, 0] };
    const { heap, view } = build(c, 5);
    const bad = {
      ...view,
      layout: { ...view.layout, quantized: { ...view.layout.quantized!, ...patch } },
    };
    const o = heap.alloc(256);
    heap.f32().fill(7, o / 4, o / 4 + 64);
    const call = () =>
      attend(
        bad as KVView,
        { ptr: o, batchStride: 128, rowStride: 128, T: 1, nHead: 4, startPos: [3, 3] },
        { ptr: o, batchStride: 128, rowStride: 128 },
      );
    expect(call).toThrow(UnsupportedLayoutError);
    expect(call).toThrow(message);
    expect(Array.from(heap.f32().subarray(o / 4, o / 4 + 64)).every((x) => x === 7)).toBe(true);
  });
});

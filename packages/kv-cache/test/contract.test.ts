import { CacheCapacityError, CacheOperationError, initBackend } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { beforeAll, describe, expect, test } from 'vitest';
import {
  attend,
  DynamicKVCache,
  type HeapRows,
  KernelHeap,
  type KVCache,
  loadCache,
  PagedKVCache,
  QuantizedKVCache,
  SinkKVCache,
  SlidingWindowKVCache,
  StaticKVCache,
  type Visibility,
} from '../src/index.ts';
import { attentionFloat64, randomFloats } from './reference.ts';
import { state } from './support.ts';

// One contract, every strategy: random schedules of updates (chunks of 1..window+5 positions,
// batch rows of different lengths, tensors or heap rows), crops, reorders and forks (rows
// gathered and duplicated, as beam search does), clones and save -> load round trips, each step
// checked against a float64 re-computation over the row's full history under the strategy's
// visibility rule. A new strategy joins with one line in `strategies`; a lossy one (quantized)
// names its tolerances there.

/**
 * How close a strategy must come to the float64 reference, and what it must hold exactly. The
 * default is a lossless strategy: attention within 1e-5 (max), rows read back bit for bit, and
 * `2 x slots x nkv x hs x 4` bytes in use.
 */
interface Tolerance {
  /**
   * Keys and values are uniform in [-2 scale, 2 scale). Quantization errors grow in proportion
   * to the rows' magnitude, so a lossy strategy's bounds hold at a stated scale.
   */
  scale: number;
  /** Largest and mean |attention - float64| over every output element of the run. */
  max: number;
  mean: number;
  /** Largest |row read back - row written| for positions below `exactFrom`. */
  rows: number;
  /** Batch row b's positions from here on must read back bit for bit. */
  exactFrom: (cache: KVCache, b: number) => number;
  /** Bytes in use with batch rows of these lengths. */
  bytesUsed: (cache: KVCache, d: Dims, lengths: number[]) => number;
  /** Whether `save()` writes a file (otherwise it must throw CacheOperationError). */
  saves: boolean;
}

const lossless: Tolerance = {
  scale: 1,
  max: 1e-5,
  mean: 1e-5,
  rows: 0,
  exactFrom: () => 0,
  saves: true,
  bytesUsed: (cache, d) => {
    let held = 0;
    for (let b = 0; b < d.B; b++) held += cache.slotsHeld(0, b);
    return 2 * held * d.nkv * d.hs * 4;
  },
};

/**
 * The quantized cache's line: rows in [-1, 1) (the magnitude of the PyTorch reference cases'
 * keys and values: |x| <= 1.6, rms 0.3-0.46), the attention bounds of the issue at that scale
 * (int8: max 1e-2, mean 1e-3; int4: the bounds measured and documented in
 * docs/concepts/quantized-cache.md), rows within half a quantization step of the largest
 * magnitude they can have (|x| < 1: a step is at most 1 / 127 for int8 and 2 / 15 for int4, bf16
 * rounding up included), the float32 window bit for bit, and the bytes from the format (padded
 * rows, bf16 scales, int4 zero points).
 */
function quantized(bits: 8 | 4, groupSize: number, max: number, mean: number): Tolerance {
  return {
    scale: 0.5,
    max,
    mean,
    rows: ((bits === 8 ? 1 / 127 : 2 / 15) * (1 + 2 ** -7)) / 2,
    exactFrom: (cache, b) => (cache as QuantizedKVCache).quantizedLength(0, b),
    saves: false, // the cache file (version 1) holds float32 rows only
    bytesUsed: (cache, d, lengths) => {
      const padded = Math.ceil(d.hs / (bits === 8 ? 16 : 32)) * (bits === 8 ? 16 : 32);
      const row = (padded * bits) / 8;
      const param = bits === 8 ? 2 : 3; // bf16 scale (+ int8 zero point)
      const keyGroup = groupSize * row + padded * param;
      const valueGroup = groupSize * (row + Math.ceil(padded / groupSize) * param);
      return lengths.reduce((sum, n, b) => {
        const q = (cache as QuantizedKVCache).quantizedLength(0, b);
        return sum + d.nkv * ((q / groupSize) * (keyGroup + valueGroup) + (n - q) * 2 * d.hs * 4);
      }, 0);
    },
  };
}

beforeAll(async () => {
  await initBackend('wasm');
});

interface Dims {
  B: number;
  nkv: number;
  group: number;
  hs: number;
  window: number;
  sinks: number;
}

type Strategy = [
  name: string,
  make: (d: Dims, heap: KernelHeap) => KVCache,
  rule: (d: Dims) => Visibility,
  tolerance?: Tolerance,
];

const base = (d: Dims, heap: KernelHeap) => ({ nKvHeads: d.nkv, headSize: d.hs, heap });
/** int4's bounds, as documented (docs/concepts/quantized-cache.md: this suite is their worst case). */
const INT4_MAX = 0.1;
const INT4_MEAN = 1e-2;
const causal = (): Visibility => ({ window: null, sinks: 0 });

const strategies: Strategy[] = [
  [
    'static',
    (d, heap) => new StaticKVCache({ ...base(d, heap), maxBatchSize: d.B, capacity: 160 }),
    causal,
  ],
  ['dynamic', (d, heap) => new DynamicKVCache({ ...base(d, heap), initialSlots: 1 }), causal],
  [
    'sliding-window',
    (d, heap) => new SlidingWindowKVCache({ ...base(d, heap), window: d.window }),
    (d) => ({ window: d.window, sinks: 0 }),
  ],
  [
    'sink',
    (d, heap) => new SinkKVCache({ ...base(d, heap), sinkTokens: d.sinks, window: d.window }),
    (d) => ({ window: d.window, sinks: d.sinks }),
  ],
  [
    'paged',
    (d, heap) => new PagedKVCache({ ...base(d, heap), blockSize: d.window, numBlocks: 400 }),
    causal,
  ],
  [
    'quantized int8 (groups of 4, window 2)',
    (d, heap) => new QuantizedKVCache({ ...base(d, heap), bits: 8, groupSize: 4, residual: 2 }),
    causal,
    quantized(8, 4, 1e-2, 1e-3),
  ],
  [
    'quantized int4 (groups of 4, window 2)',
    (d, heap) => new QuantizedKVCache({ ...base(d, heap), bits: 4, groupSize: 4, residual: 2 }),
    causal,
    quantized(4, 4, INT4_MAX, INT4_MEAN),
  ],
];

type Step =
  | { kind: 'update'; rows: number; T: number; heapRows: boolean }
  | { kind: 'crop'; row: number | null; fraction: number }
  | { kind: 'gather'; indices: number[]; via: 'reorder' | 'fork' }
  | { kind: 'copy'; via: 'clone' | 'save' };

const dims = fc.record({
  B: fc.integer({ min: 1, max: 3 }),
  nkv: fc.integer({ min: 1, max: 2 }),
  group: fc.integer({ min: 1, max: 2 }),
  hs: fc.constantFrom(1, 3, 4, 5, 8),
  window: fc.integer({ min: 1, max: 6 }),
  sinks: fc.integer({ min: 0, max: 2 }),
});

const steps = (d: Dims) =>
  fc.array(
    fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant('update' as const),
          rows: fc.integer({ min: 1, max: d.B }),
          T: fc.integer({ min: 1, max: d.window + 5 }),
          heapRows: fc.boolean(),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('crop' as const),
          row: fc.option(fc.integer({ min: 0, max: d.B - 1 })),
          fraction: fc.double({ min: 0, max: 1, noNaN: true }),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('gather' as const),
          indices: fc.array(fc.integer({ min: 0, max: d.B - 1 }), {
            minLength: d.B,
            maxLength: d.B,
          }),
          via: fc.constantFrom('reorder' as const, 'fork' as const),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('copy' as const),
          via: fc.constantFrom('clone' as const, 'save' as const),
        }),
      },
    ),
    { minLength: 1, maxLength: 12 },
  );

/**
 * What read() returns must be the row's own history at the positions it names, bit for bit, and
 * must include every position a query at the row's next position sees (other than itself).
 */
function checkHeld(
  cache: KVCache,
  d: Dims,
  rule: Visibility,
  history: { keys: Float32Array[]; values: Float32Array[] }[],
  tolerance: Tolerance,
): void {
  const read = cache.read(0, d.B);
  const t = read.keys.shape[2]!;
  const rk = read.keys.dataSync() as Float32Array;
  const rv = read.values.dataSync() as Float32Array;
  tf.dispose([read.keys, read.values]);
  for (let b = 0; b < d.B; b++) {
    const L = history[b]!.keys.length;
    const positions = Array.from(read.positions.subarray(b * t, (b + 1) * t)).filter((p) => p >= 0);
    const needed = Array.from({ length: L }, (_, p) => p).filter(
      (p) => rule.window === null || p < rule.sinks || L - p < rule.window,
    );
    expect(positions.filter((p) => needed.includes(p))).toEqual(needed);
    const exactFrom = tolerance.exactFrom(cache, b);
    const got: number[] = [];
    const want: number[] = [];
    let off = 0;
    positions.forEach((p, j) => {
      if (p >= L) throw new Error(`row ${b} holds position ${p}, past its length ${L}`);
      for (let h = 0; h < d.nkv; h++) {
        const at = ((b * d.nkv + h) * t + j) * d.hs;
        const k = history[b]!.keys[p]!.subarray(h * d.hs, (h + 1) * d.hs);
        const v = history[b]!.values[p]!.subarray(h * d.hs, (h + 1) * d.hs);
        if (p >= exactFrom) {
          got.push(...rk.subarray(at, at + d.hs), ...rv.subarray(at, at + d.hs));
          want.push(...k, ...v);
          continue;
        }
        for (let e = 0; e < d.hs; e++) {
          off = Math.max(off, Math.abs(rk[at + e]! - k[e]!), Math.abs(rv[at + e]! - v[e]!));
        }
      }
    });
    expect(got).toEqual(want);
    expect(off).toBeLessThanOrEqual(tolerance.rows);
  }
}

/**
 * Runs one schedule; returns the worst |kernel - float64| and |read path - float64|, and the sum
 * and count of those differences (for the mean).
 */
function run(
  strategy: Strategy,
  d: Dims,
  schedule: Step[],
  seed: number,
): { worst: number; sum: number; count: number } {
  const heap = new KernelHeap({ initialBytes: 65536 });
  let cache = strategy[1](d, heap);
  const rule = strategy[2](d);
  const tolerance = strategy[3] ?? lossless;
  let sum = 0;
  let count = 0;
  expect(cache.visibility).toEqual(rule);
  const nh = d.nkv * d.group;
  const width = d.nkv * d.hs;
  const history: { keys: Float32Array[]; values: Float32Array[] }[] = Array.from(
    { length: d.B },
    () => ({ keys: [], values: [] }),
  );
  let worst = 0;
  let salt = seed;
  try {
    for (const step of schedule) {
      if (step.kind === 'gather') {
        // Row b <- row indices[b], in place (reorder) or into a new cache (fork).
        if (step.via === 'reorder') cache.reorder(step.indices);
        else {
          const next = cache.fork(step.indices);
          cache.dispose();
          cache = next;
        }
        const before = history.map((h) => ({ keys: h.keys.slice(), values: h.values.slice() }));
        step.indices.forEach((src, b) => {
          history[b] = { keys: before[src]!.keys.slice(), values: before[src]!.values.slice() };
        });
        checkHeld(cache, d, rule, history, tolerance);
        expect(cache.bytesReserved()).toBe(heap.bytesAllocated());
        continue;
      }
      if (step.kind === 'copy') {
        if (step.via === 'save' && !tolerance.saves) {
          // A strategy that cannot be saved says so with a typed error and changes nothing.
          const before = state(cache, d.B);
          expect(() => cache.save()).toThrow(CacheOperationError);
          expect(state(cache, d.B)).toEqual(before);
          continue;
        }
        const next = step.via === 'clone' ? cache.clone() : loadCache(cache.save(), { heap });
        // Everything but bytesReserved: a copy allocates only what the held rows need.
        const { reserved: _, ...copied } = state(next, d.B) as { reserved: number };
        const { reserved: __, ...source } = state(cache, d.B) as { reserved: number };
        expect(copied).toEqual(source);
        cache.dispose();
        cache = next;
        expect(cache.bytesReserved()).toBe(heap.bytesAllocated());
        continue;
      }
      if (step.kind === 'crop') {
        const rows = step.row === null ? undefined : [step.row];
        const target =
          step.row === null
            ? Math.max(...history.map((h) => h.keys.length))
            : history[step.row]!.keys.length;
        const to = Math.floor(step.fraction * target);
        const before = state(cache, d.B);
        let refused = false;
        try {
          cache.checkCrop(to, rows ? { rows } : {});
        } catch (error) {
          expect(error).toBeInstanceOf(CacheOperationError);
          refused = true;
        }
        if (refused) {
          expect(() => cache.crop(to, rows ? { rows } : {})).toThrow(CacheOperationError);
          expect(state(cache, d.B)).toEqual(before);
          continue;
        }
        cache.crop(to, rows ? { rows } : {});
        for (const b of rows ?? history.map((_, i) => i)) {
          history[b]!.keys.length = Math.min(history[b]!.keys.length, to);
          history[b]!.values.length = Math.min(history[b]!.values.length, to);
        }
        checkHeld(cache, d, rule, history, tolerance);
        continue;
      }
      const B = step.rows;
      let starts = Array.from({ length: B }, (_, b) => cache.seqLength(0, b));
      if (step.T > cache.maxUpdateLength(0, starts, B)) {
        const before = state(cache, d.B);
        const big = tf.zeros([B, d.nkv, step.T, d.hs]);
        expect(() => cache.update(0, { keys: big, values: big }, starts)).toThrow(
          CacheCapacityError,
        );
        big.dispose();
        expect(state(cache, d.B)).toEqual(before);
      }
      for (let done = 0; done < step.T; ) {
        const T = Math.min(step.T - done, cache.maxUpdateLength(0, starts, B));
        // Rows (b, i) of [k | v], as a projection would leave them, and as (B, nkv, T, hs) tensors.
        const kv = randomFloats(B * T * 2 * width, ++salt).map((x) => x * tolerance.scale);
        const q = randomFloats(B * T * nh * d.hs, ++salt);
        const view = step.heapRows
          ? updateFromHeap(cache, heap, kv, B, T, d, starts)
          : updateFromTensors(cache, kv, B, T, d, starts);
        for (let b = 0; b < B; b++) {
          for (let i = 0; i < T; i++) {
            const row = kv.subarray((b * T + i) * 2 * width, ((b * T + i) * 2 + 2) * width);
            history[b]!.keys[starts[b]! + i] = row.slice(0, width);
            history[b]!.values[starts[b]! + i] = row.slice(width);
          }
        }
        // The kernel over the returned view.
        const qp = heap.alloc(q.byteLength);
        const op = heap.alloc(q.byteLength);
        heap.f32().set(q, qp / 4);
        const rowBytes = nh * d.hs * 4;
        attend(
          view,
          {
            ptr: qp,
            batchStride: T * rowBytes,
            rowStride: rowBytes,
            T,
            nHead: nh,
            startPos: starts,
          },
          { ptr: op, batchStride: T * rowBytes, rowStride: rowBytes },
        );
        const out = heap.f32().slice(op / 4, op / 4 + q.length);
        heap.free(qp);
        heap.free(op);
        // The read path: what read() returns, masked by the rule, in float64.
        const read = cache.read(0, B);
        const t = read.keys.shape[2]!;
        const rk = read.keys.dataSync() as Float32Array;
        const rv = read.values.dataSync() as Float32Array;
        tf.dispose([read.keys, read.values]);
        for (let b = 0; b < B; b++) {
          const heldKeys: Float32Array[] = [];
          const heldValues: Float32Array[] = [];
          for (let j = 0; j < t; j++) {
            const p = read.positions[b * t + j]!;
            if (p < 0) continue;
            const pick = (src: Float32Array) => {
              const r = new Float32Array(width);
              for (let h = 0; h < d.nkv; h++)
                r.set(
                  src.subarray(
                    ((b * d.nkv + h) * t + j) * d.hs,
                    ((b * d.nkv + h) * t + j + 1) * d.hs,
                  ),
                  h * d.hs,
                );
              return r;
            };
            heldKeys[p] = pick(rk);
            heldValues[p] = pick(rv);
          }
          for (let i = 0; i < T; i++) {
            const P = starts[b]! + i;
            const qi = q.subarray((b * T + i) * nh * d.hs, (b * T + i + 1) * nh * d.hs);
            const want = attentionFloat64(qi, P, history[b]!.keys, history[b]!.values, {
              nh,
              nkv: d.nkv,
              hs: d.hs,
              visibility: rule,
            });
            const fromRead = attentionFloat64(qi, P, heldKeys, heldValues, {
              nh,
              nkv: d.nkv,
              hs: d.hs,
              visibility: rule,
            });
            for (let e = 0; e < nh * d.hs; e++) {
              const kernel = Math.abs(out[(b * T + i) * nh * d.hs + e]! - want[e]!);
              const read = Math.abs(fromRead[e]! - want[e]!);
              worst = Math.max(worst, kernel, read);
              sum += kernel + read;
              count += 2;
            }
          }
        }
        done += T;
        starts = starts.map((s) => s + T);
      }
      // Invariants after every update: held slots bounded, bytes exact.
      for (let b = 0; b < d.B; b++) {
        const n = cache.slotsHeld(0, b);
        if (cache.maxSlots !== null) expect(n).toBeLessThanOrEqual(cache.maxSlots);
        expect(cache.seqLength(0, b)).toBe(history[b]!.keys.length);
      }
      const lengths = history.map((h) => h.keys.length);
      expect(cache.bytesUsed()).toBe(tolerance.bytesUsed(cache, d, lengths));
      checkHeld(cache, d, rule, history, tolerance);
      expect(cache.bytesReserved()).toBe(heap.bytesAllocated());
    }
  } finally {
    cache.dispose();
  }
  expect(heap.bytesAllocated()).toBe(0);
  return { worst, sum, count };
}

function updateFromTensors(
  cache: KVCache,
  kv: Float32Array,
  B: number,
  T: number,
  d: Dims,
  starts: number[],
) {
  const width = d.nkv * d.hs;
  const split = (offset: number) => {
    const out = new Float32Array(B * d.nkv * T * d.hs); // (B, nkv, T, hs)
    for (let b = 0; b < B; b++)
      for (let i = 0; i < T; i++)
        for (let j = 0; j < d.nkv; j++)
          out.set(
            kv.subarray(
              (b * T + i) * 2 * width + offset + j * d.hs,
              (b * T + i) * 2 * width + offset + (j + 1) * d.hs,
            ),
            ((b * d.nkv + j) * T + i) * d.hs,
          );
    return tf.tensor4d(out, [B, d.nkv, T, d.hs]);
  };
  const keys = split(0);
  const values = split(width);
  try {
    return cache.update(0, { keys, values }, starts);
  } finally {
    tf.dispose([keys, values]);
  }
}

function updateFromHeap(
  cache: KVCache,
  heap: KernelHeap,
  kv: Float32Array,
  B: number,
  T: number,
  d: Dims,
  starts: number[],
) {
  const ptr = heap.alloc(kv.byteLength);
  heap.f32().set(kv, ptr / 4);
  const rowBytes = 2 * d.nkv * d.hs * 4;
  const rows: HeapRows = {
    heap,
    ptr,
    batchStride: T * rowBytes,
    rowStride: rowBytes,
    keyOffset: 0,
    valueOffset: rowBytes / 2,
    batchSize: B,
    T,
  };
  try {
    return cache.update(0, rows, starts);
  } finally {
    heap.free(ptr);
  }
}

describe.each(strategies)('the KVCache contract: %s', (...strategy) => {
  const tolerance = strategy[3] ?? lossless;
  test(`1,000 random schedules equal a float64 no-cache reference under the same visibility rule (max ${tolerance.max}, mean ${tolerance.mean})`, () => {
    let worst = 0;
    let sum = 0;
    let count = 0;
    fc.assert(
      fc.property(
        dims.chain((d) => fc.tuple(fc.constant(d), steps(d), fc.integer({ min: 1, max: 1 << 30 }))),
        ([d, schedule, seed]) => {
          const r = run(strategy, d, schedule, seed);
          worst = Math.max(worst, r.worst);
          sum += r.sum;
          count += r.count;
          expect(worst).toBeLessThanOrEqual(tolerance.max);
        },
      ),
      { numRuns: 1000, seed: 20261201 },
    );
    expect(worst).toBeGreaterThan(0); // the comparison really ran on computed numbers
    expect(sum / count).toBeLessThanOrEqual(tolerance.mean);
    console.log(
      `${strategy[0]}: max ${worst.toExponential(3)}, mean ${(sum / count).toExponential(3)}`,
    );
  }, 300_000); // ~2 s alone; the full test command runs many suites at once on 2 cores
});

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
// visibility rule. A new strategy joins with one line in `strategies`.

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
];

const base = (d: Dims, heap: KernelHeap) => ({ nKvHeads: d.nkv, headSize: d.hs, heap });
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
    const got: number[] = [];
    const want: number[] = [];
    positions.forEach((p, j) => {
      if (p >= L) throw new Error(`row ${b} holds position ${p}, past its length ${L}`);
      for (let h = 0; h < d.nkv; h++) {
        const at = ((b * d.nkv + h) * t + j) * d.hs;
        got.push(...rk.subarray(at, at + d.hs), ...rv.subarray(at, at + d.hs));
        want.push(...history[b]!.keys[p]!.subarray(h * d.hs, (h + 1) * d.hs));
        want.push(...history[b]!.values[p]!.subarray(h * d.hs, (h + 1) * d.hs));
      }
    });
    expect(got).toEqual(want);
  }
}

/** Runs one schedule; returns the worst |kernel - float64| and |read path - float64|. */
function run(strategy: Strategy, d: Dims, schedule: Step[], seed: number): number {
  const heap = new KernelHeap({ initialBytes: 65536 });
  let cache = strategy[1](d, heap);
  const rule = strategy[2](d);
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
        checkHeld(cache, d, rule, history);
        expect(cache.bytesReserved()).toBe(heap.bytesAllocated());
        continue;
      }
      if (step.kind === 'copy') {
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
        checkHeld(cache, d, rule, history);
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
        const kv = randomFloats(B * T * 2 * width, ++salt);
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
              worst = Math.max(
                worst,
                Math.abs(out[(b * T + i) * nh * d.hs + e]! - want[e]!),
                Math.abs(fromRead[e]! - want[e]!),
              );
            }
          }
        }
        done += T;
        starts = starts.map((s) => s + T);
      }
      // Invariants after every update: held slots bounded, bytes exact.
      let held = 0;
      for (let b = 0; b < d.B; b++) {
        const n = cache.slotsHeld(0, b);
        if (cache.maxSlots !== null) expect(n).toBeLessThanOrEqual(cache.maxSlots);
        expect(cache.seqLength(0, b)).toBe(history[b]!.keys.length);
        held += n;
      }
      expect(cache.bytesUsed()).toBe(2 * held * width * 4);
      checkHeld(cache, d, rule, history);
      expect(cache.bytesReserved()).toBe(heap.bytesAllocated());
    }
  } finally {
    cache.dispose();
  }
  expect(heap.bytesAllocated()).toBe(0);
  return worst;
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
  test('1,000 random schedules equal a float64 no-cache reference under the same visibility rule (1e-5)', () => {
    let worst = 0;
    fc.assert(
      fc.property(
        dims.chain((d) => fc.tuple(fc.constant(d), steps(d), fc.integer({ min: 1, max: 1 << 30 }))),
        ([d, schedule, seed]) => {
          worst = Math.max(worst, run(strategy, d, schedule, seed));
          expect(worst).toBeLessThanOrEqual(1e-5);
        },
      ),
      { numRuns: 1000, seed: 20261201 },
    );
    expect(worst).toBeGreaterThan(0); // the comparison really ran on computed numbers
  }, 300_000); // ~2 s alone; the full test command runs many suites at once on 2 cores
});

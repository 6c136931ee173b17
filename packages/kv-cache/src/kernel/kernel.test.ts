import { readFileSync } from 'node:fs';
import { CacheCapacityError, UnsupportedLayoutError } from '@kvkit/tensor-utils';
import { describe, expect, test } from 'vitest';
import { assemble } from '../../scripts/build-kernels.mjs';
import { attentionFloat64, randomFloats } from '../../test/reference.ts';
import { HeapAllocator } from './allocator.ts';
import { attend } from './attend.ts';
import { attentionWasmBase64 } from './attention-wasm.ts';
import { KernelHeap } from './kernel-heap.ts';
import { type KVLayout, type KVView, RUN_BYTES } from './layout.ts';

describe('the committed kernel module', () => {
  test('is what attention.wat assembles to (run build:kernels after editing the .wat)', async () => {
    const source = readFileSync(new URL('./attention.wat', import.meta.url), 'utf8');
    expect(await assemble('attention.wat', source)).toBe(attentionWasmBase64);
  });
});

describe.each(['expNeg', 'expNeg4'] as const)('%s', (which) => {
  const heap = new KernelHeap();
  const f = (x: number) => heap[which](x);
  test('matches Math.exp within 2 float32 ulps on [-87, 0], and underflows below', () => {
    let worst = 0;
    for (let i = 0; i <= 100_000; i++) {
      const x = Math.fround(-87 * (i / 100_000));
      const want = Math.exp(x);
      const ulp = 2 ** (Math.floor(Math.log2(want)) - 23);
      worst = Math.max(worst, Math.abs(f(x) - want) / ulp);
    }
    expect(worst).toBeLessThanOrEqual(2);
    expect(f(0)).toBe(1);
    expect(f(-88)).toBeLessThan(2e-38); // 0, or e^-87 for the vector form
    expect(f(Number.NEGATIVE_INFINITY)).toBeLessThan(2e-38);
  });

  test('gives NaN for NaN and never traps', () => {
    // The scalar form used a trapping float-to-int conversion: NaN threw
    // "RuntimeError: float unrepresentable in integer range".
    expect(f(Number.NaN)).toBeNaN();
    expect(() => f(Number.POSITIVE_INFINITY)).not.toThrow();
  });
});

describe('allFinite', () => {
  test('is false exactly when one value is NaN or +-Infinity, at any length and offset', () => {
    const heap = new KernelHeap();
    const ptr = heap.alloc(64 * 4);
    for (const n of [0, 1, 3, 4, 5, 8, 13]) {
      for (const offset of [0, 1, 2]) {
        const at = ptr / 4 + offset;
        heap.f32().fill(1.5, at, at + n);
        expect(heap.allFinite(at * 4, n)).toBe(true);
        for (let i = 0; i < n; i++) {
          for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
            heap.f32()[at + i] = bad;
            expect(heap.allFinite(at * 4, n)).toBe(false);
            heap.f32()[at + i] = -3e38; // large but finite
            expect(heap.allFinite(at * 4, n)).toBe(true);
          }
        }
      }
    }
  });
});

/** Per batch row: the positions held in slot order (-1 = empty) and the runs describing them. */
interface RowSlots {
  slots: number[];
  runs: [slot: number, count: number, firstPos: number, sink: 0 | 1][];
}

/**
 * Builds a view by hand (no cache involved): keys/values `(B, nkv, S, hs)` with random rows, a
 * run table per batch row, and the float64 expectation from the positions the slots hold.
 */
function handView(d: {
  B: number;
  nkv: number;
  hs: number;
  S: number;
  rows: RowSlots[];
  window: number | null;
  kind?: KVLayout['kind'];
  dtype?: KVLayout['dtype'];
}) {
  const heap = new KernelHeap();
  const { B, nkv, hs, S } = d;
  const k = randomFloats(B * nkv * S * hs, 11);
  const v = randomFloats(B * nkv * S * hs, 12);
  const kp = heap.alloc(k.byteLength);
  const vp = heap.alloc(v.byteLength);
  const maxRuns = Math.max(1, ...d.rows.map((r) => r.runs.length));
  const runs = heap.alloc(B * maxRuns * RUN_BYTES + 4 * B);
  heap.f32().set(k, kp / 4);
  heap.f32().set(v, vp / 4);
  const rowBytes = hs * 4;
  const headStride = S * rowBytes;
  const batchStride = nkv * headStride;
  d.rows.forEach((r, b) => {
    r.runs.forEach(([slot, count, firstPos, sink], i) => {
      heap
        .i32()
        .set(
          [b * batchStride + slot * rowBytes, count, firstPos, sink],
          (runs + (b * maxRuns + i) * RUN_BYTES) / 4,
        );
    });
    heap.i32()[(runs + B * maxRuns * RUN_BYTES) / 4 + b] = r.runs.length;
  });
  const view: KVView = {
    heap,
    batchSize: B,
    maxKeys: S,
    layout: {
      kind: d.kind ?? 'ring',
      dtype: d.dtype ?? 'float32',
      nKvHeads: nkv,
      headSize: hs,
      keys: kp,
      values: vp,
      headStride,
      rowStride: rowBytes,
      runs,
      runStride: maxRuns * RUN_BYTES,
      runCounts: runs + B * maxRuns * RUN_BYTES,
      window: d.window,
    },
  };
  /** Row b's history by position (what the slots hold), for the float64 expectation. */
  const history = (b: number) => {
    const keys: Float32Array[] = [];
    const values: Float32Array[] = [];
    d.rows[b]!.slots.forEach((p, slot) => {
      if (p < 0) return;
      const pick = (src: Float32Array) => {
        const row = new Float32Array(nkv * hs);
        for (let j = 0; j < nkv; j++)
          row.set(
            src.subarray(((b * nkv + j) * S + slot) * hs, ((b * nkv + j) * S + slot + 1) * hs),
            j * hs,
          );
        return row;
      };
      keys[p] = pick(k);
      values[p] = pick(v);
    });
    return { keys, values };
  };
  return { heap, view, history };
}

function runAttend(
  h: ReturnType<typeof handView>,
  d: {
    B: number;
    T: number;
    nh: number;
    nkv: number;
    hs: number;
    startPos: number[];
    sinks: number;
    window: number | null;
  },
): { worst: number; out: Float32Array } {
  const { heap, view } = h;
  const { B, T, nh, hs } = d;
  const q = randomFloats(B * T * nh * hs, 13);
  const qp = heap.alloc(q.byteLength);
  const op = heap.alloc(q.byteLength);
  heap.f32().set(q, qp / 4);
  const rowBytes = nh * hs * 4;
  attend(
    view,
    { ptr: qp, batchStride: T * rowBytes, rowStride: rowBytes, T, nHead: nh, startPos: d.startPos },
    { ptr: op, batchStride: T * rowBytes, rowStride: rowBytes },
  );
  const out = heap.f32().slice(op / 4, op / 4 + q.length);
  let worst = 0;
  for (let b = 0; b < B; b++) {
    const { keys, values } = h.history(b);
    for (let i = 0; i < T; i++) {
      const row = (b * T + i) * nh * hs;
      // The history holds only what the slots hold: every position the rule shows must be there.
      const want = attentionFloat64(
        q.subarray(row, row + nh * hs),
        d.startPos[b]! + i,
        keys,
        values,
        {
          nh,
          nkv: d.nkv,
          hs,
          visibility: { window: d.window, sinks: d.sinks },
        },
      );
      for (let e = 0; e < nh * hs; e++) worst = Math.max(worst, Math.abs(out[row + e]! - want[e]!));
    }
  }
  return { worst, out };
}

describe('attend', () => {
  test('contiguous rows of different lengths and start positions, MHA, hs 64 and a chunk', () => {
    const rows: RowSlots[] = [
      { slots: [0, 1, 2, 3, 4, 5, 6, 7, -1, -1], runs: [[0, 8, 0, 0]] },
      { slots: [0, 1, 2, 3, 4, -1, -1, -1, -1, -1], runs: [[0, 5, 0, 0]] },
    ];
    const d = { B: 2, T: 3, nh: 2, nkv: 2, hs: 64, sinks: 0, window: null, startPos: [5, 2] };
    const h = handView({ ...d, S: 10, rows });
    expect(runAttend(h, d).worst).toBeLessThan(1e-6);
  });

  test.each([
    ['GQA, hs 16', 4, 2, 16],
    ['MQA, hs 6 (scalar tail)', 3, 1, 6],
    ['hs 5, 4-key blocks and a tail', 2, 2, 5],
  ])('a wrapped ring (%s) with a window', (_, nh, nkv, hs) => {
    // window 4: positions 6..9 held, 8 and 9 in slots 0 and 1 after the wrap.
    const rows: RowSlots[] = [
      {
        slots: [8, 9, 6, 7],
        runs: [
          [2, 2, 6, 0],
          [0, 2, 8, 0],
        ],
      },
    ];
    const d = { B: 1, T: 1, nh, nkv, hs, sinks: 0, window: 4, startPos: [9] };
    expect(runAttend(handView({ ...d, S: 4, rows }), d).worst).toBeLessThan(1e-6);
  });

  test('sinks are seen beyond the window; the window hides older non-sink keys', () => {
    // 2 sinks (positions 0, 1) + a ring of 3 holding 5, 6, 7 (7 wrapped into slot 2).
    const rows: RowSlots[] = [
      {
        slots: [0, 1, 7, 5, 6],
        runs: [
          [0, 2, 0, 1],
          [3, 2, 5, 0],
          [2, 1, 7, 0],
        ],
      },
    ];
    const d = { B: 1, T: 1, nh: 2, nkv: 1, hs: 8, sinks: 2, window: 3, startPos: [7] };
    expect(runAttend(handView({ ...d, S: 5, rows }), d).worst).toBeLessThan(1e-6);
  });

  test('a chunk sees a sliding window per query', () => {
    // positions 3..7 held; window 3: the query at 6 sees 4..6, the one at 7 sees 5..7.
    const rows: RowSlots[] = [{ slots: [-1, -1, -1, 3, 4, 5, 6, 7], runs: [[3, 5, 3, 0]] }];
    const d = { B: 1, T: 2, nh: 2, nkv: 2, hs: 4, sinks: 0, window: 3, startPos: [6] };
    expect(runAttend(handView({ ...d, S: 8, rows }), d).worst).toBeLessThan(1e-6);
  });

  test('a NaN key poisons exactly the queries that see it, and never traps', () => {
    const rows: RowSlots[] = [
      { slots: [0, 1, 2, 3], runs: [[0, 4, 0, 0]] },
      { slots: [0, 1, 2, 3], runs: [[0, 4, 0, 0]] },
    ];
    const d = { B: 2, T: 4, nh: 1, nkv: 1, hs: 4, sinks: 0, window: null, startPos: [0, 0] };
    const h = handView({ ...d, S: 4, rows });
    h.heap.f32()[h.view.layout.keys / 4 + 2 * 4] = Number.NaN; // row 0, position 2
    const { out } = runAttend(h, d);
    const rowNaN = (b: number, i: number) =>
      out.subarray((b * 4 + i) * 4, (b * 4 + i + 1) * 4).every(Number.isNaN);
    expect([0, 1, 2, 3].map((i) => rowNaN(0, i))).toEqual([false, false, true, true]);
    expect(out.subarray(16).every(Number.isFinite)).toBe(true);
  });

  test.each([
    ['paged', 'int8'],
    ['contiguous', 'int8'],
    ['ring', 'int4'],
  ] as const)('refuses a %s layout of %s rows, before touching memory', (kind, dtype) => {
    const rows: RowSlots[] = [{ slots: [0], runs: [[0, 1, 0, 0]] }];
    const h = handView({ B: 1, nkv: 1, hs: 4, S: 1, rows, window: null, kind, dtype });
    const op = h.heap.alloc(16);
    h.heap.f32().fill(7, op / 4, op / 4 + 4);
    const q = h.heap.alloc(16);
    const call = () =>
      attend(
        h.view,
        { ptr: q, batchStride: 16, rowStride: 16, T: 1, nHead: 1, startPos: [0] },
        { ptr: op, batchStride: 16, rowStride: 16 },
      );
    expect(call).toThrow(UnsupportedLayoutError);
    expect(call).toThrow(new RegExp(`does not read ${dtype} rows in a ${kind} layout`));
    expect(Array.from(h.heap.f32().subarray(op / 4, op / 4 + 4))).toEqual([7, 7, 7, 7]);
  });

  test('scratch is allocated per call and returned: the heap is where it was', () => {
    const rows: RowSlots[] = [{ slots: [0, 1, 2], runs: [[0, 3, 0, 0]] }];
    const d = { B: 1, T: 1, nh: 1, nkv: 1, hs: 4, sinks: 0, window: null, startPos: [2] };
    const h = handView({ ...d, S: 3, rows });
    const before = h.heap.bytesAllocated();
    runAttend(h, d);
    expect(h.heap.bytesAllocated()).toBe(before + 2 * 16); // only the test's own q and out
  });
});

describe('HeapAllocator', () => {
  test('aligns, reuses and coalesces freed blocks, and grows the memory', () => {
    const heap = new HeapAllocator(new WebAssembly.Memory({ initial: 1 }), 1024);
    const a = heap.alloc(10);
    const b = heap.alloc(100);
    const c = heap.alloc(16);
    expect([a, b, c]).toEqual([1024, 1040, 1152]);
    expect([heap.sizeOf(a), heap.sizeOf(b), heap.sizeOf(999)]).toEqual([16, 112, 0]);
    heap.free(a);
    heap.free(b); // coalesces with a
    expect(heap.alloc(112)).toBe(1024); // fits the merged [1024, 1152)
    const view = heap.f32();
    const big = heap.alloc(1 << 20); // beyond the first page: grows
    expect(heap.bytesTotal()).toBeGreaterThanOrEqual(big + (1 << 20));
    expect(view.buffer).not.toBe(heap.f32().buffer); // old views are detached: re-fetch
    expect(heap.bytesAllocated()).toBe(112 + 16 + (1 << 20));
    expect(() => heap.free(12345)).toThrow(/12345 is not an allocated block/);
    heap.free(big);
    heap.free(c);
    expect(heap.alloc(16)).toBe(1136); // the tail came back to the top
  });

  test('aligned blocks: from the top and from inside a free block; the gaps stay free', () => {
    const heap = new HeapAllocator(new WebAssembly.Memory({ initial: 1 }), 1024);
    const a = heap.alloc(100, 4096); // from the top: [1024, 4096) becomes a free gap
    expect(a).toBe(4096);
    expect(heap.sizeOf(a)).toBe(112); // sizes (and so bytesReserved) are what was asked for
    expect(heap.alloc(3072)).toBe(1024); // the gap is used first (first fit), exactly
    expect(heap.alloc(16, 256)).toBe(4352); // the top is 4208: [4208, 4352) becomes a gap
    expect(heap.alloc(16)).toBe(4208); // from that gap; [4224, 4352) stays free
    const hole = heap.alloc(2048); // [4368, 6416) from the top
    expect(heap.alloc(200)).toBe(6416); // keeps the hole below the top once freed
    heap.free(hole);
    const c = heap.alloc(64, 1024); // inside the hole, at 5120: both sides stay free
    expect(c).toBe(5120);
    expect(heap.alloc(700)).toBe(4368); // [4368, 5072): the part before c
    expect(heap.alloc(1000)).toBe(5184); // the part after c
    heap.free(c);
    expect(heap.alloc(128)).toBe(4224); // [4224, 4352), left from the second gap
    expect(heap.alloc(112)).toBe(5072); // c's block merged with the 48 bytes before it
    expect(heap.bytesAllocated()).toBe(112 + 3072 + 16 + 16 + 208 + 704 + 1008 + 128 + 112);
    for (const bad of [0, 8, 24, 100, Number.NaN]) {
      expect(() => heap.alloc(16, bad)).toThrow(/alignment must be a power of two >= 16/);
    }
  });

  test('falls back to growing by exactly what is needed near its limit; a typed error past it', () => {
    const heap = new HeapAllocator(
      new WebAssembly.Memory({ initial: 81, maximum: 100 }),
      81 * 65536,
    );
    expect(() => heap.alloc(65536)).not.toThrow(); // a quarter (21 pages) would not fit; 1 does
    expect(() => heap.alloc(20 * 65536)).toThrow(CacheCapacityError);
    expect(() => heap.alloc(20 * 65536)).toThrow(/cannot grow by 1280 KiB/);
    expect(() => heap.alloc(Number.NaN)).toThrow(/non-negative integer, got NaN/);
    expect(() => heap.alloc(2 ** 40)).toThrow(CacheCapacityError);
  });

  test('a KernelHeap honours its maximum', () => {
    const heap = new KernelHeap({ initialBytes: 65536, maximumBytes: 4 << 20 });
    expect(() => heap.alloc(3 << 20)).not.toThrow();
    expect(() => heap.alloc(2 << 20)).toThrow(CacheCapacityError);
  });
});

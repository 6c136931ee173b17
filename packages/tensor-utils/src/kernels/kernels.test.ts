import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { assemble } from '../../scripts/build-kernels.mjs';
import { attentionWasmBase64 } from './attention-wasm.ts';
import { KernelHeap } from './heap.ts';
import { Kernels } from './kernels.ts';

describe('the committed kernel module', () => {
  test('is what attention.wat assembles to (run build:kernels after editing the .wat)', async () => {
    const source = readFileSync(new URL('./attention.wat', import.meta.url), 'utf8');
    expect(await assemble('attention.wat', source)).toBe(attentionWasmBase64);
  });
});

describe.each(['exp_neg', 'exp_neg4'] as const)('%s', (which) => {
  test('matches Math.exp within 2 float32 ulps on [-87, 0], and underflows below', () => {
    const k = new Kernels();
    let worst = 0;
    for (let i = 0; i <= 100_000; i++) {
      const x = Math.fround(-87 * (i / 100_000));
      const want = Math.exp(x);
      const got = which === 'exp_neg' ? k.expNeg(x) : k.expNeg4(x);
      const ulp = 2 ** (Math.floor(Math.log2(want)) - 23);
      worst = Math.max(worst, Math.abs(got - want) / ulp);
    }
    expect(worst).toBeLessThanOrEqual(2);
    const f = (x: number) => (which === 'exp_neg' ? k.expNeg(x) : k.expNeg4(x));
    expect(f(0)).toBe(1);
    expect(f(-88)).toBeLessThan(2e-38); // 0, or e^-87 for the vector form
    expect(f(Number.NEGATIVE_INFINITY)).toBeLessThan(2e-38);
  });
});

/** Float64 attention from the definition, for one layout: the independent expectation. */
function reference(
  q: Float32Array,
  kv: { k: Float32Array; v: Float32Array },
  d: { B: number; T: number; nh: number; nkv: number; hs: number; startPos: number; tKeys: number },
): Float64Array {
  const { B, T, nh, nkv, hs, startPos, tKeys } = d;
  const out = new Float64Array(B * T * nh * hs);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < nh; h++) {
      const j = Math.floor(h / (nh / nkv));
      for (let i = 0; i < T; i++) {
        const n = Math.min(startPos + i + 1, tKeys);
        const s = new Float64Array(n);
        for (let p = 0; p < n; p++) {
          let dot = 0;
          for (let e = 0; e < hs; e++)
            dot +=
              q[((b * T + i) * nh + h) * hs + e]! * kv.k[((b * nkv + j) * tKeys + p) * hs + e]!;
          s[p] = dot / Math.sqrt(hs);
        }
        const m = Math.max(...s);
        let sum = 0;
        for (let p = 0; p < n; p++) sum += s[p] = Math.exp(s[p]! - m);
        for (let e = 0; e < hs; e++) {
          let acc = 0;
          for (let p = 0; p < n; p++)
            acc += (s[p]! / sum) * kv.v[((b * nkv + j) * tKeys + p) * hs + e]!;
          out[((b * T + i) * nh + h) * hs + e] = acc;
        }
      }
    }
  return out;
}

function random(n: number, seed: number): Float32Array {
  let x = seed;
  return Float32Array.from({ length: n }, () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return (x / 2 ** 32) * 4 - 2;
  });
}

describe('attend', () => {
  test.each([
    ['decode, MHA, hs 64', { B: 1, T: 1, nh: 4, nkv: 4, hs: 64, startPos: 37 }],
    ['decode at t=1000 (4-key blocks only)', { B: 1, T: 1, nh: 2, nkv: 2, hs: 32, startPos: 1023 }],
    ['decode, GQA, batch 3', { B: 3, T: 1, nh: 6, nkv: 2, hs: 16, startPos: 9 }],
    ['prefill from 0, MQA, hs 6 (scalar tail)', { B: 2, T: 8, nh: 3, nkv: 1, hs: 6, startPos: 0 }],
    ['chunk at startPos > 0, hs 5', { B: 2, T: 4, nh: 2, nkv: 2, hs: 5, startPos: 7 }],
  ])('%s matches a float64 re-computation within 1e-6', (_, d) => {
    const k = new Kernels();
    const { B, T, nh, nkv, hs, startPos } = d;
    const tKeys = startPos + T;
    const q = random(B * T * nh * hs, 1);
    const kv = { k: random(B * nkv * tKeys * hs, 2), v: random(B * nkv * tKeys * hs, 3) };
    const heap = k.heap;
    const qp = heap.alloc(q.byteLength);
    const kp = heap.alloc(kv.k.byteLength);
    const vp = heap.alloc(kv.v.byteLength);
    const op = heap.alloc(q.byteLength);
    const f32 = heap.f32();
    f32.set(q, qp / 4);
    f32.set(kv.k, kp / 4);
    f32.set(kv.v, vp / 4);
    k.attend({
      q: qp,
      qRow: nh * hs * 4,
      k: kp,
      v: vp,
      kvBatch: nkv * tKeys * hs * 4,
      kvHead: tKeys * hs * 4,
      kvRow: hs * 4,
      out: op,
      outRow: nh * hs * 4,
      B,
      T,
      nh,
      group: nh / nkv,
      hs,
      startPos,
      tKeys,
      scale: Math.fround(1 / Math.sqrt(hs)),
    });
    const got = heap.f32().slice(op / 4, op / 4 + q.length);
    const want = reference(q, kv, { ...d, tKeys });
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    expect(worst).toBeLessThan(1e-6);
  });
});

describe('KernelHeap', () => {
  test('aligns, reuses and coalesces freed blocks, and grows the memory', () => {
    const heap = new KernelHeap(new WebAssembly.Memory({ initial: 1 }), 1024);
    const a = heap.alloc(10);
    const b = heap.alloc(100);
    const c = heap.alloc(16);
    expect([a, b, c]).toEqual([1024, 1040, 1152]);
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
});

describe('allocation failures', () => {
  test('the heap falls back to growing by exactly what is needed near its limit', () => {
    const heap = new KernelHeap(new WebAssembly.Memory({ initial: 81, maximum: 100 }), 81 * 65536);
    expect(() => heap.alloc(65536)).not.toThrow(); // a quarter (21 pages) would not fit; 1 does
    expect(() => heap.alloc(20 * 65536)).toThrow(/cannot grow by 1280 KiB/);
  });

  test('a failed score-scratch allocation leaves the old scratch in place', () => {
    const k = new Kernels();
    k.reserve(2000);
    const alloc = k.heap.alloc.bind(k.heap);
    k.heap.alloc = () => {
      throw new Error('out of memory');
    };
    expect(() => k.reserve(50_000)).toThrow(/out of memory/);
    k.heap.alloc = alloc;
    // The scratch still belongs to the kernels: a new block must not overlap it.
    const victim = k.heap.alloc(2000 * 4);
    k.heap.f32().fill(7, victim / 4, victim / 4 + 2000);
    const q = k.heap.alloc(16);
    const out = k.heap.alloc(16);
    k.attend({
      q,
      qRow: 16,
      k: victim,
      v: victim,
      kvBatch: 0,
      kvHead: 0,
      kvRow: 16,
      out,
      outRow: 16,
      B: 1,
      T: 1,
      nh: 1,
      group: 1,
      hs: 4,
      startPos: 499,
      tKeys: 500,
      scale: 1,
    });
    expect(
      Array.from(k.heap.f32().subarray(victim / 4, victim / 4 + 2000)).every((x) => x === 7),
    ).toBe(true);
  });
});

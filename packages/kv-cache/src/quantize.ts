import type { QuantizedFormat } from './kernel/layout.ts';

/**
 * Quantizing float32 rows into the kernel's format (`QuantizedFormat` in kernel/layout.ts) and
 * reading them back. Keys are quantized per channel over a group of G positions, values per
 * position over groups of G channels (KIVI's grouping). Scales are bfloat16 rounded up, and the
 * integers are computed against the stored scale, so the error of every element is at most half
 * a step of the scale actually stored: |x - x̂| <= s / 2.
 * - int8: x̂ = s * q, q = round(x / s) in [-127, 127], s >= max|x| / 127.
 * - int4: x̂ = s * (u - z), u = round(x / s + z) in [0, 15], z = round(-min / s) an int8, with
 *   s >= (max - min) / 15 and s >= |min| / 127 (so z fits in an int8).
 * A non-finite element makes its whole group non-finite (NaN) when read.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The bits of the smallest bfloat16 >= x, for x >= 0 (NaN stays NaN, overflow is +Infinity). */
export function bf16Up(x: number): number {
  if (Number.isNaN(x)) return 0x7fc0;
  f32[0] = x;
  if (f32[0]! < x) u32[0] = u32[0]! + 1; // float32 rounded down: the next one up
  const bits = u32[0]!;
  return (bits & 0xffff) === 0 ? bits >>> 16 : (bits >>> 16) + 1;
}

/** The number a bfloat16's bits stand for. */
export function bf16Value(bits: number): number {
  u32[0] = bits << 16;
  return f32[0]!;
}

/** The bytes a group's parameters and rows go to, and the float rows it comes from. */
interface GroupIO {
  /** Float32 elements, e.g. the heap's f32 view. */
  src: Float32Array;
  /** Bytes, e.g. the heap's u8 view (the same memory is fine). */
  dst: Uint8Array;
}

/**
 * Byte addressing of one row's elements: element byte i of the row is at `base + stride * i`
 * (keys: rows one after another, stride 1; values: rows in interleaved pairs, stride 2).
 */
interface RowAt {
  base: number;
  stride: number;
}

function keyRow(f: QuantizedFormat, at: number, r: number): RowAt {
  return { base: at + r * f.rowBytes, stride: 1 };
}

function valueRow(f: QuantizedFormat, at: number, r: number): RowAt {
  return { base: at + (r >> 1) * 2 * f.rowBytes + (r & 1), stride: 2 };
}

/** Byte of the row holding channel c: int8 byte c; int4 byte k of c's 32-channel block. */
function byteOf(f: QuantizedFormat, c: number): number {
  return f.bits === 8 ? c : (c >> 5) * 16 + (c & 15);
}

/** The integer of channel c (int8 signed, int4 0..15). */
function get(f: QuantizedFormat, bytes: Uint8Array, row: RowAt, c: number): number {
  const b = bytes[row.base + row.stride * byteOf(f, c)]!;
  if (f.bits === 8) return (b << 24) >> 24;
  return c & 16 ? b >> 4 : b & 0x0f;
}

/** Scale bits and zero point of elements in [lo, hi] with max |x| = amax. */
function params(f: QuantizedFormat, lo: number, hi: number, amax: number): [number, number] {
  if (f.bits === 8) return [bf16Up(amax / 127), 0];
  const bits = bf16Up(Math.max((hi - lo) / 15, Math.abs(lo) / 127));
  const s = bf16Value(bits);
  const z = s > 0 && Number.isFinite(s) ? Math.round(-lo / s) : 0;
  return [bits, z];
}

function storeParam(dst: Uint8Array, scaleAt: number, zeroAt: number, bits: number, z: number) {
  dst[scaleAt] = bits & 0xff;
  dst[scaleAt + 1] = bits >>> 8;
  if (zeroAt >= 0) dst[zeroAt] = z & 0xff;
}

/** Stores element x of channel c at byte `at`, against scale s and zero point z. */
function store(
  f: QuantizedFormat,
  dst: Uint8Array,
  at: number,
  c: number,
  x: number,
  s: number,
  z: number,
): void {
  const usable = s > 0 && Number.isFinite(s); // 0: all zero; NaN or Infinity: non-finite input
  if (f.bits === 8) {
    const q = usable ? Math.round(x / s) : 0;
    dst[at] = (q > 127 ? 127 : q < -127 ? -127 : q || 0) & 0xff; // NaN -> 0
    return;
  }
  let u = usable ? Math.round(x / s) + z : z;
  u = u > 15 ? 15 : u < 0 ? 0 : u || 0;
  dst[at] = c & 16 ? (dst[at]! & 0x0f) | (u << 4) : (dst[at]! & 0xf0) | u;
}

/** [lo, hi, max |x|] of n values; all NaN when one is NaN. */
function range(values: Float64Array, n: number): [number, number, number] {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const x = values[i]!;
    if (Number.isNaN(x)) return [Number.NaN, Number.NaN, Number.NaN];
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  return [lo, hi, Math.max(Math.abs(lo), Math.abs(hi))];
}

/**
 * Quantizes G key rows of `hs` channels (row r at float index `rows[r]` of `src`) into the key
 * group at byte `at` of `dst`: per channel, one scale (and zero point) over the G positions.
 */
export function quantizeKeyGroup(
  f: QuantizedFormat,
  io: GroupIO,
  rows: ArrayLike<number>,
  hs: number,
  at: number,
): void {
  const { src, dst } = io;
  const G = f.groupSize;
  const scales = at + G * f.rowBytes;
  const zeros = f.bits === 4 ? scales + 2 * f.paddedSize : -1;
  dst.fill(0, at, at + f.keyGroupBytes);
  const bases = Int32Array.from({ length: G }, (_, r) => at + r * f.rowBytes);
  const column = new Float64Array(G);
  for (let c = 0; c < hs; c++) {
    for (let r = 0; r < G; r++) column[r] = src[rows[r]! + c]!;
    const [lo, hi, amax] = range(column, G);
    const [bits, z] = params(f, lo, hi, amax);
    storeParam(dst, scales + 2 * c, zeros >= 0 ? zeros + c : -1, bits, z);
    const s = bf16Value(bits);
    const byte = byteOf(f, c);
    for (let r = 0; r < G; r++) store(f, dst, bases[r]! + byte, c, column[r]!, s, z);
  }
}

/**
 * Quantizes one value row of `hs` channels (at float index `from` of `src`) into row r of the
 * value group at byte `at` of `dst`: one scale (and zero point) per G channels.
 */
export function quantizeValueRow(
  f: QuantizedFormat,
  io: GroupIO,
  from: number,
  hs: number,
  at: number,
  r: number,
): void {
  const { src, dst } = io;
  const G = f.groupSize;
  const { base } = valueRow(f, at, r); // rows in interleaved pairs: stride 2
  const scales = at + G * f.rowBytes;
  const zeros = f.bits === 4 ? scales + 2 * G * f.valueGroups : -1;
  for (let i = 0; i < f.rowBytes; i++) dst[base + 2 * i] = 0;
  if (scratch.length < hs) scratch = new Float64Array(hs);
  const part = scratch;
  for (let g = 0; g < f.valueGroups; g++) {
    const n = Math.max(0, Math.min(hs, (g + 1) * G) - g * G);
    for (let i = 0; i < n; i++) part[i] = src[from + g * G + i]!;
    const [bits, z] = n > 0 ? params(f, ...range(part, n)) : [0, 0];
    storeParam(dst, scales + 2 * (g * G + r), zeros >= 0 ? zeros + g * G + r : -1, bits, z);
    const s = bf16Value(bits);
    for (let i = 0; i < n; i++) {
      const c = g * G + i;
      store(f, dst, base + 2 * byteOf(f, c), c, part[i]!, s, z);
    }
  }
}

/** Reused by quantizeValueRow (one row at a time, called G times per group). */
let scratch = new Float64Array(64);

function scaleAt(bytes: Uint8Array, at: number): number {
  return bf16Value(bytes[at]! | (bytes[at + 1]! << 8));
}

function zeroAt(bytes: Uint8Array, at: number): number {
  return (bytes[at]! << 24) >> 24;
}

/** Row r of the key group at byte `at`, dequantized into `out` at float index `to` (hs floats). */
export function readKeyRow(
  f: QuantizedFormat,
  bytes: Uint8Array,
  at: number,
  r: number,
  hs: number,
  out: Float32Array,
  to: number,
): void {
  const scales = at + f.groupSize * f.rowBytes;
  const zeros = scales + 2 * f.paddedSize;
  const row = keyRow(f, at, r);
  for (let c = 0; c < hs; c++) {
    const z = f.bits === 4 ? zeroAt(bytes, zeros + c) : 0;
    out[to + c] = scaleAt(bytes, scales + 2 * c) * (get(f, bytes, row, c) - z);
  }
}

/** Row r of the value group at byte `at`, dequantized into `out` at float index `to`. */
export function readValueRow(
  f: QuantizedFormat,
  bytes: Uint8Array,
  at: number,
  r: number,
  hs: number,
  out: Float32Array,
  to: number,
): void {
  const G = f.groupSize;
  const scales = at + G * f.rowBytes;
  const zeros = scales + 2 * G * f.valueGroups;
  const row = valueRow(f, at, r);
  for (let c = 0; c < hs; c++) {
    const g = Math.floor(c / G);
    const z = f.bits === 4 ? zeroAt(bytes, zeros + g * G + r) : 0;
    out[to + c] = scaleAt(bytes, scales + 2 * (g * G + r)) * (get(f, bytes, row, c) - z);
  }
}

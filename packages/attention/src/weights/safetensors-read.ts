/**
 * A small, strict safetensors reader (no npm parser fits: the `safetensors` package is an
 * unmaintained 0.0.1, and `@huggingface/hub` reads files on the Hub, not bytes you hold). The
 * format: an 8-byte little-endian header length N, N bytes of UTF-8 JSON (`{"name": {"dtype",
 * "shape", "data_offsets": [begin, end]}, "__metadata__": {string: string}}`), then the data;
 * offsets are relative to the data's start. Every check of the reference implementation is made
 * here, each a FormatError before anything large is allocated: N at most 100 MB and inside the
 * file, valid JSON, known dtypes, shapes whose size matches their byte range, byte ranges that
 * tile the data exactly (no overlap, no gap, nothing past the end, nothing after it).
 */
import { FormatError } from '@kvkit/tensor-utils';

/** The safetensors dtypes and their sizes in bytes. */
export const DTYPE_BYTES = Object.freeze({
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
} as const);

export type SafetensorsDType = keyof typeof DTYPE_BYTES;

/** One tensor's entry in a safetensors header, checked. */
export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Byte range in the data section: [begin, end). */
  begin: number;
  end: number;
}

/** A checked safetensors header: where each tensor's bytes are, and the metadata. */
export interface SafetensorsHeader {
  /** Bytes before the data: 8 + the JSON header's length. */
  dataStart: number;
  /** Bytes of data the tensors tile exactly. */
  dataLength: number;
  entries: SafetensorsEntry[];
  metadata: Record<string, string>;
}

/** The reference implementation's limit on the JSON header. */
export const MAX_HEADER_BYTES = 100_000_000;

function fail(reason: string, message: string, cause?: unknown): never {
  throw new FormatError(`safetensors: ${message}`, { format: 'safetensors', reason }, { cause });
}

/**
 * The JSON header's length from a file's first 8 bytes, checked against the file's size and
 * the 100 MB limit. Read this first to know how much more to read.
 *
 * @example
 * const n = headerLength(first8Bytes, fileSize); // then read bytes [8, 8 + n)
 */
export function headerLength(prefix: Uint8Array, fileSize: number): number {
  if (prefix.length < 8 || fileSize < 8) {
    fail('too-short', `the file has ${fileSize} bytes, fewer than the 8 of its header length`);
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    fail('header-too-large', `header length ${n} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
  }
  if (8n + n > BigInt(fileSize)) {
    fail(
      'header-out-of-bounds',
      `header length ${n} runs past the end of the ${fileSize}-byte file`,
    );
  }
  return Number(n);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function entry(name: string, info: unknown, dataLength: number): SafetensorsEntry {
  if (name.length === 0 || name in Object.prototype) {
    fail('bad-name', `tensor name '${name}' is empty or names an Object.prototype member`);
  }
  if (!isPlainObject(info)) fail('bad-entry', `'${name}' is not an object`);
  const { dtype, shape, data_offsets: offsets } = info;
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype)) {
    fail('unknown-dtype', `'${name}' has unknown dtype ${JSON.stringify(dtype)}`);
  }
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    fail('bad-shape', `'${name}' has shape ${JSON.stringify(shape)}, not non-negative integers`);
  }
  const numel = (shape as number[]).reduce((a, d) => a * d, 1);
  if (!Number.isSafeInteger(numel)) fail('bad-shape', `'${name}' has too many elements`);
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    offsets.some((o) => !Number.isSafeInteger(o) || o < 0) ||
    offsets[0] > offsets[1]
  ) {
    fail(
      'bad-offsets',
      `'${name}' has data_offsets ${JSON.stringify(offsets)}, not [begin <= end]`,
    );
  }
  const [begin, end] = offsets as [number, number];
  const bytes = numel * DTYPE_BYTES[dtype as SafetensorsDType];
  if (end - begin !== bytes) {
    fail(
      'size-mismatch',
      `'${name}' (${dtype}, shape [${shape.join(', ')}]) needs ${bytes} bytes, its data_offsets [${begin}, ${end}] hold ${end - begin}`,
    );
  }
  if (end > dataLength) {
    fail(
      'truncated',
      `'${name}' ends at byte ${end} of the data, which has ${dataLength} bytes: the file is truncated or its offsets point outside it`,
    );
  }
  return { name, dtype: dtype as SafetensorsDType, shape: [...(shape as number[])], begin, end };
}

/**
 * Parses and checks a safetensors header, given the JSON bytes and the file's size. Throws a
 * FormatError naming the first problem; allocates nothing proportional to the tensors.
 *
 * @example
 * const header = parseHeader(bytes.subarray(8, 8 + n), bytes.length);
 */
export function parseHeader(json: Uint8Array, fileSize: number): SafetensorsHeader {
  const dataStart = 8 + json.length;
  const dataLength = fileSize - dataStart;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(json);
  } catch (e) {
    fail('not-utf8', 'the header is not valid UTF-8', e);
  }
  if (!text.startsWith('{')) fail('bad-header', 'the header does not start with {');
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail('bad-header', `the header is not valid JSON (${(e as Error).message})`, e);
  }
  if (!isPlainObject(header)) fail('bad-header', 'the header is not a JSON object');
  let metadata: Record<string, string> = Object.create(null);
  const entries: SafetensorsEntry[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (info === null) continue;
      if (!isPlainObject(info) || Object.values(info).some((v) => typeof v !== 'string')) {
        fail('bad-metadata', '__metadata__ must map strings to strings');
      }
      metadata = Object.assign(Object.create(null), info as Record<string, string>);
      continue;
    }
    entries.push(entry(name, info, dataLength));
  }
  // The byte ranges must tile [0, dataLength) exactly, as the reference implementation requires.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const e of sorted) {
    if (e.begin < expected)
      fail(
        'overlap',
        `'${e.name}' starts at ${e.begin}, inside the previous tensor (which ends at ${expected})`,
      );
    if (e.begin > expected)
      fail(
        'gap',
        `'${e.name}' starts at ${e.begin}, leaving bytes [${expected}, ${e.begin}) unused`,
      );
    expected = e.end;
  }
  if (expected !== dataLength) {
    fail(
      'trailing-bytes',
      `the tensors hold ${expected} bytes of data, the file has ${dataLength} after the header`,
    );
  }
  return { dataStart, dataLength, entries, metadata };
}

/** A tensor read from a safetensors file. */
export interface SafetensorsTensor {
  dtype: SafetensorsDType;
  shape: number[];
  /** The values as float32 for F32, F64, F16 and BF16; null for the integer, bool and F8 dtypes. */
  data: Float32Array | null;
}

/** A whole safetensors file, read and checked. */
export interface SafetensorsFile {
  metadata: Record<string, string>;
  /** In the header's order. */
  tensors: Map<string, SafetensorsTensor>;
}

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** IEEE half precision to float32 (exact: every half is a float32). */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** A float tensor's little-endian bytes as float32 values (a new array). */
export function decodeFloats(bytes: Uint8Array, dtype: SafetensorsDType): Float32Array | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.byteLength / DTYPE_BYTES[dtype];
  const out = new Float32Array(n);
  switch (dtype) {
    case 'F32':
      if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) {
        out.set(new Float32Array(bytes.buffer, bytes.byteOffset, n)); // one memcpy
      } else {
        for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
      }
      return out;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
      return out;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
      return out;
    case 'BF16': {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = view.getUint16(2 * i, true) << 16;
      return out;
    }
    default:
      return null;
  }
}

/**
 * Reads a whole safetensors file held in memory: the header is checked completely (see the
 * module notes) before any tensor is decoded, so a hostile file costs nothing but its header.
 * Float tensors are decoded to float32; others are listed with `data: null`.
 *
 * @throws {FormatError} naming the first problem (`reason`: too-short, header-too-large,
 *   header-out-of-bounds, not-utf8, bad-header, bad-metadata, bad-name, bad-entry, unknown-dtype,
 *   bad-shape, bad-offsets, size-mismatch, truncated, overlap, gap, trailing-bytes).
 * @example
 * const { tensors, metadata } = readSafetensors(new Uint8Array(await file.arrayBuffer()));
 */
export function readSafetensors(source: Uint8Array | ArrayBuffer): SafetensorsFile {
  const bytes = source instanceof Uint8Array ? source : new Uint8Array(source);
  const n = headerLength(bytes.subarray(0, 8), bytes.length);
  const header = parseHeader(bytes.subarray(8, 8 + n), bytes.length);
  const tensors = new Map<string, SafetensorsTensor>();
  for (const e of header.entries) {
    const raw = bytes.subarray(header.dataStart + e.begin, header.dataStart + e.end);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: decodeFloats(raw, e.dtype) });
  }
  return { metadata: header.metadata, tensors };
}

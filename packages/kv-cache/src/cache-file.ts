import { FormatError, ValueError } from '@kvkit/tensor-utils';
import CRC32 from 'crc-32';
import { MAX_POSITION } from './checks.ts';
import type { CacheConfig } from './kv-cache.ts';

/**
 * The kvkit cache file (docs/operations/save-format.md), version 1, all numbers little-endian:
 *
 * | bytes | what |
 * | --- | --- |
 * | 8 | magic `89 4B 56 4B 49 54 0D 0A` (`\x89KVKIT\r\n`) |
 * | 4 | u32 format version (1) |
 * | 4 | u32 H: bytes of the header |
 * | 8 | u64 N: bytes of the body |
 * | H | header: UTF-8 JSON `{ strategy, dtype, config, rows, lengths, slots }`, space-padded so the body starts at a multiple of 8 |
 * | 4 | u32 CRC-32 of every byte before it (preamble and header) |
 * | N | body: for each layer, each batch row: its keys `(nkv, slots, hs)`, then its values, in position order |
 * | 4 | u32 CRC-32 of the body |
 *
 * This module reads and writes that layout and checks everything a reader can check without
 * knowing the strategy; the cache checks the rest (its strategy, config and held-slot rule).
 */

/** The `format` of every FormatError about a cache file. */
export const CACHE_FILE_FORMAT = 'kvkit-kv-cache';
/** The format version this release writes and reads. */
export const CACHE_FILE_VERSION = 1;
export const CACHE_FILE_MAGIC = Uint8Array.from([0x89, 0x4b, 0x56, 0x4b, 0x49, 0x54, 0x0d, 0x0a]);
const PREAMBLE = 24;
/** Headers are small JSON: a longer one is damage, not data. */
const MAX_HEADER = 1 << 24;
/** Bytes per stored element, by row dtype (the only one version 1 knows). */
const ELEMENT_BYTES: Readonly<Record<string, number>> = { float32: 4 };

/** The header of a cache file. */
export interface CacheFileHeader {
  strategy: string;
  dtype: string;
  config: CacheConfig;
  /** Batch rows saved (rows past them have seqLength 0). */
  rows: number;
  /** seqLength of each saved row, per layer: `lengths[layer][row]`. */
  lengths: number[][];
  /** Slots each saved row holds, per layer (how many positions its body part has). */
  slots: number[][];
}

/** A checked file: its header and a view of its body. */
export interface CacheFile extends CacheFileHeader {
  version: number;
  body: Uint8Array;
}

/** Bytes of one row's keys (or values): `nkv x slots x hs x element bytes`. */
export function rowBytes(header: Pick<CacheFileHeader, 'config' | 'dtype'>, slots: number): number {
  const { nKvHeads, headSize } = header.config;
  return nKvHeads * slots * headSize * ELEMENT_BYTES[header.dtype]!;
}

/**
 * Writes a cache file: the header, then a body of `bodyBytes` that `writeBody` fills (it gets
 * the body's bytes, zeroed), then both checksums.
 */
export function writeCacheFile(
  header: CacheFileHeader,
  writeBody: (body: Uint8Array) => void,
): Uint8Array {
  let json = JSON.stringify(header);
  const encoded = () => new TextEncoder().encode(json);
  while ((PREAMBLE + encoded().length + 4) % 8 !== 0) json += ' ';
  const text = encoded();
  const H = text.length;
  let N = 0;
  for (const layer of header.slots) for (const n of layer) N += 2 * rowBytes(header, n);
  const out = new Uint8Array(PREAMBLE + H + 4 + N + 4);
  const view = new DataView(out.buffer);
  out.set(CACHE_FILE_MAGIC, 0);
  view.setUint32(8, CACHE_FILE_VERSION, true);
  view.setUint32(12, H, true);
  view.setUint32(16, N % 2 ** 32, true);
  view.setUint32(20, Math.floor(N / 2 ** 32), true);
  out.set(text, PREAMBLE);
  view.setUint32(PREAMBLE + H, crc32(out.subarray(0, PREAMBLE + H)), true);
  const body = out.subarray(PREAMBLE + H + 4, PREAMBLE + H + 4 + N);
  writeBody(body);
  view.setUint32(PREAMBLE + H + 4 + N, crc32(body), true);
  return out;
}

/**
 * Reads and checks a cache file without allocating anything in a heap: the magic, the version,
 * the sizes, both checksums and the header's structure. Throws FormatError (reason `magic`,
 * `version`, `truncated`, `trailing-bytes`, `header-checksum`, `header`, `dtype`, `config`,
 * `lengths` or `body-checksum`).
 */
export function readCacheFile(bytes: Uint8Array): CacheFile {
  if (!(bytes instanceof Uint8Array)) {
    throw new ValueError(`a cache file must be a Uint8Array, got ${describe(bytes)}`, {
      argument: 'bytes',
      value: bytes,
    });
  }
  const size = bytes.length;
  if (size < PREAMBLE)
    fail('truncated', `the file is ${size} bytes, shorter than its ${PREAMBLE}-byte preamble`);
  if (CACHE_FILE_MAGIC.some((b, i) => bytes[i] !== b)) {
    fail(
      'magic',
      `not a kvkit cache file: it starts with ${hex(bytes.subarray(0, 8))}, not ${hex(CACHE_FILE_MAGIC)}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== CACHE_FILE_VERSION) {
    fail(
      'version',
      `format version ${version}: this release reads version ${CACHE_FILE_VERSION} only`,
    );
  }
  const H = view.getUint32(12, true);
  const N = view.getUint32(16, true) + view.getUint32(20, true) * 2 ** 32;
  if (H > MAX_HEADER) fail('header', `its header length ${H} exceeds ${MAX_HEADER} bytes`);
  const bodyAt = PREAMBLE + H + 4;
  const total = bodyAt + N + 4;
  if (size < total) {
    const where =
      size < PREAMBLE + H
        ? 'the header'
        : size < bodyAt
          ? 'the header checksum'
          : size < bodyAt + N
            ? 'the body'
            : 'the body checksum';
    fail(
      'truncated',
      `the file is ${size} bytes but its preamble says ${total}: it ends inside ${where}`,
    );
  }
  if (size > total)
    fail('trailing-bytes', `the file is ${size} bytes but its preamble says ${total}`);
  checkSum(
    view,
    0,
    PREAMBLE + H,
    'header-checksum',
    "the header's CRC-32",
    'the header is damaged',
  );
  const header = parseHeader(bytes.subarray(PREAMBLE, PREAMBLE + H));
  let needed = 0;
  for (const layer of header.slots) for (const n of layer) needed += 2 * rowBytes(header, n);
  if (needed !== N) fail('lengths', `the body is ${N} bytes but the held slots need ${needed}`);
  checkSum(view, bodyAt, bodyAt + N, 'body-checksum', "the body's CRC-32", 'the rows are damaged');
  const body = bytes.subarray(bodyAt, bodyAt + N);
  return { version, ...header, body };
}

function parseHeader(text: Uint8Array): CacheFileHeader {
  let h: unknown;
  try {
    h = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(text));
  } catch (cause) {
    fail('header', `the header is not UTF-8 JSON (${String(cause)})`, cause);
  }
  if (!isObject(h)) fail('header', 'the header is not a JSON object');
  const { strategy, dtype, config, rows, lengths, slots } = h;
  if (typeof strategy !== 'string' || strategy.length === 0 || strategy.length > 64) {
    fail('header', `the header's strategy must be a name, got ${JSON.stringify(strategy)}`);
  }
  if (typeof dtype !== 'string')
    fail('header', `the header's dtype must be a string, got ${JSON.stringify(dtype)}`);
  if (!(dtype in ELEMENT_BYTES))
    fail('dtype', `rows of dtype '${dtype}': this release reads float32 rows`);
  if (!isObject(config)) fail('header', "the header's config is not an object");
  for (const [key, value] of Object.entries(config)) {
    if (value !== null && !Number.isSafeInteger(value)) {
      fail('config', `config.${key} must be an integer or null, got ${JSON.stringify(value)}`);
    }
  }
  for (const key of ['nLayers', 'nKvHeads', 'headSize'] as const) {
    const v = config[key];
    if (typeof v !== 'number' || v < 1 || v > 65536)
      fail('config', `config.${key} must be an integer in [1, 65536], got ${JSON.stringify(v)}`);
  }
  if (!('maxBatchSize' in config)) fail('config', 'config.maxBatchSize is missing');
  if (!Number.isSafeInteger(rows) || (rows as number) < 0 || (rows as number) > 1 << 20) {
    fail(
      'header',
      `the header's rows must be an integer in [0, 2^20], got ${JSON.stringify(rows)}`,
    );
  }
  const table = (name: string, t: unknown): number[][] => {
    const nLayers = config.nLayers as number;
    if (!Array.isArray(t) || t.length !== nLayers)
      fail('lengths', `${name} must list ${nLayers} layer(s)`);
    return t.map((layer: unknown, l: number) => {
      if (!Array.isArray(layer) || layer.length !== rows)
        fail('lengths', `${name}[${l}] must list ${rows} row(s)`);
      for (const n of layer) {
        if (!Number.isSafeInteger(n) || n < 0 || n > MAX_POSITION)
          fail('lengths', `${name}[${l}] holds ${JSON.stringify(n)}, not a position count`);
      }
      return layer as number[];
    });
  };
  const lengthTable = table('lengths', lengths);
  const slotTable = table('slots', slots);
  for (const [l, layer] of slotTable.entries()) {
    for (const [b, n] of layer.entries()) {
      if (n > lengthTable[l]![b]!)
        fail(
          'lengths',
          `row ${b} of layer ${l} holds ${n} slots but has seen ${lengthTable[l]![b]} positions`,
        );
    }
  }
  return {
    strategy,
    dtype,
    config: config as unknown as CacheConfig,
    rows: rows as number,
    lengths: lengthTable,
    slots: slotTable,
  };
}

/** Throws the FormatError for a failed check. */
export function fail(reason: string, message: string, cause?: unknown): never {
  throw new FormatError(
    `kvkit cache file: ${message}`,
    { format: CACHE_FILE_FORMAT, reason },
    cause === undefined ? undefined : { cause },
  );
}

/** Fails unless the CRC-32 of bytes [from, to) equals the u32 stored right after them. */
function checkSum(
  view: DataView,
  from: number,
  to: number,
  reason: string,
  what: string,
  damage: string,
): void {
  const sum = crc32(new Uint8Array(view.buffer, view.byteOffset + from, to - from));
  const stored = view.getUint32(to, true);
  if (sum !== stored)
    fail(reason, `${what} is ${hex32(sum)}, the file says ${hex32(stored)}: ${damage}`);
}

function hex32(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function crc32(bytes: Uint8Array): number {
  return CRC32.buf(bytes) >>> 0;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
}

function describe(x: unknown): string {
  return x === null
    ? 'null'
    : typeof x === 'object'
      ? (x.constructor?.name ?? 'an object')
      : typeof x;
}

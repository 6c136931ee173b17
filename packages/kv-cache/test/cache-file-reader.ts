// An independent reader and writer of the kvkit cache file, written from the format page
// (docs/operations/save-format.md) with nothing from src/: what another program would do. The
// save/load tests check the library's files against it, and use it to make well-formed files
// with chosen defects (a header that a writer got wrong, re-checksummed so only that is wrong).

/** CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), bit by bit: slow and obviously right. */
export function crc32Bitwise(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

export interface ParsedFile {
  magic: number[];
  version: number;
  headerBytes: number;
  bodyBytes: number;
  header: {
    strategy: string;
    dtype: string;
    config: Record<string, number | null>;
    rows: number;
    lengths: number[][];
    slots: number[][];
  };
  headerChecksum: { stored: number; computed: number };
  bodyChecksum: { stored: number; computed: number };
  /** rows[layer][row] = { keys, values }, each (nkv, slots, hs) float32 in position order. */
  rows: { keys: Float32Array; values: Float32Array }[][];
  /** Byte offsets of each section: what truncation tests cut at. */
  sections: {
    header: number;
    headerChecksum: number;
    body: number;
    bodyChecksum: number;
    end: number;
  };
}

/** Reads a well-formed file by the format page, trusting it (no checks but the layout). */
export function parseFile(bytes: Uint8Array): ParsedFile {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const H = view.getUint32(12, true);
  const N = view.getUint32(16, true) + view.getUint32(20, true) * 2 ** 32;
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(24, 24 + H)));
  const bodyAt = 24 + H + 4;
  const { nKvHeads: nkv, headSize: hs } = header.config;
  let at = bodyAt;
  const take = (n: number) => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = view.getFloat32(at + 4 * i, true);
    at += 4 * n;
    return out;
  };
  const rows = (header.slots as number[][]).map((layer) =>
    layer.map((slots) => ({ keys: take(nkv * slots * hs), values: take(nkv * slots * hs) })),
  );
  return {
    magic: Array.from(bytes.subarray(0, 8)),
    version: view.getUint32(8, true),
    headerBytes: H,
    bodyBytes: N,
    header,
    headerChecksum: {
      stored: view.getUint32(24 + H, true),
      computed: crc32Bitwise(bytes.subarray(0, 24 + H)),
    },
    bodyChecksum: {
      stored: view.getUint32(bodyAt + N, true),
      computed: crc32Bitwise(bytes.subarray(bodyAt, bodyAt + N)),
    },
    rows,
    sections: {
      header: 24,
      headerChecksum: 24 + H,
      body: bodyAt,
      bodyChecksum: bodyAt + N,
      end: bodyAt + N + 4,
    },
  };
}

/**
 * Writes a file by the format page from a header object (any JSON: it may be wrong on
 * purpose; `{ raw: text or bytes }` for a header that is not JSON at all) and body bytes, with correct
 * sizes and checksums.
 */
export function writeFile(header: unknown, body: Uint8Array, version = 1): Uint8Array {
  const raw = typeof header === 'object' && header !== null && 'raw' in header;
  const given = raw ? (header as { raw: string | Uint8Array }).raw : JSON.stringify(header);
  const text = typeof given === 'string' ? new TextEncoder().encode(given) : given;
  const json = new Uint8Array(text.length + ((8 - ((24 + text.length + 4) % 8)) % 8)).fill(0x20);
  json.set(text);
  const H = json.length;
  const out = new Uint8Array(24 + H + 4 + body.length + 4);
  const view = new DataView(out.buffer);
  out.set([0x89, 0x4b, 0x56, 0x4b, 0x49, 0x54, 0x0d, 0x0a], 0);
  view.setUint32(8, version, true);
  view.setUint32(12, H, true);
  view.setUint32(16, body.length, true);
  view.setUint32(20, 0, true);
  out.set(json, 24);
  view.setUint32(24 + H, crc32Bitwise(out.subarray(0, 24 + H)), true);
  out.set(body, 28 + H);
  view.setUint32(28 + H + body.length, crc32Bitwise(body), true);
  return out;
}

/** A file's header and body, re-written with `edit` applied to a copy of its header. */
export function rewrite(
  bytes: Uint8Array,
  edit: (header: Record<string, unknown>) => unknown,
  body?: Uint8Array,
): Uint8Array {
  const f = parseFile(bytes);
  const copy = structuredClone(f.header) as unknown as Record<string, unknown>;
  const edited = edit(copy); // edits the copy in place, or returns a replacement
  const header = edited === undefined ? copy : edited;
  return writeFile(header, body ?? bytes.slice(f.sections.body, f.sections.bodyChecksum));
}

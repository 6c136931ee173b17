import { ValueError } from '@kvkit/tensor-utils';
import { headerLength, parseHeader } from './safetensors-read.ts';

/**
 * Where weights come from: a file path (Node), a URL (fetched; `file:` URLs read from disk in
 * Node), or bytes already in memory.
 */
export type WeightsSource = string | URL | ArrayBuffer | ArrayBufferView;

const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

/** A string with a URL scheme (`https://`, `file:`, `data:`, `blob:`), as opposed to a path. */
function looksLikeUrl(s: string): boolean {
  return /^[a-z][a-z\d+.-]*:\/\//i.test(s) || /^(data|blob|file):/i.test(s);
}

// Node's modules, loaded only when a path is read (so bundlers for browsers never see them).
const fsModule = 'node:fs/promises';
const urlModule = 'node:url';

/**
 * Reads a file's bytes, checking a safetensors header before the body is read: a file whose
 * header length is hostile (past the end, above 100 MB) or whose header does not describe the
 * file exactly costs 8 bytes plus its header, never an allocation of the file's size.
 */
async function readFileChecked(path: string): Promise<Uint8Array> {
  const fs = (await import(/* @vite-ignore */ fsModule)) as typeof import('node:fs/promises');
  const file = await fs.open(path, 'r');
  try {
    const { size } = await file.stat();
    const prefix = new Uint8Array(8);
    await file.read(prefix, 0, Math.min(8, size), 0);
    const n = headerLength(prefix, size);
    const json = new Uint8Array(n);
    await file.read(json, 0, n, 8);
    parseHeader(json, size); // throws before the body is allocated
    const bytes = new Uint8Array(size);
    const { bytesRead } = await file.read(bytes, 0, size, 0);
    if (bytesRead !== size) {
      throw new ValueError(`weights: read ${bytesRead} of ${size} bytes of ${path}`, {
        argument: 'source',
        value: path,
      });
    }
    return bytes;
  } finally {
    await file.close();
  }
}

async function fetchBytes(url: string, signal: AbortSignal | undefined): Promise<Uint8Array> {
  const response = await fetch(url, signal ? { signal } : {});
  if (!response.ok) {
    throw new ValueError(
      `weights: fetching ${url} failed with HTTP ${response.status} ${response.statusText}`,
      {
        argument: 'source',
        value: url,
      },
    );
  }
  return new Uint8Array(await response.arrayBuffer());
}

/**
 * The bytes of a weights file from a path, URL or buffer (a buffer is used in place, not copied).
 *
 * @throws {ValueError} for a source of the wrong kind, a failed fetch, or a path outside Node.
 * @example
 * const bytes = await readWeightsBytes(new URL('./model.safetensors', import.meta.url));
 */
export async function readWeightsBytes(
  source: WeightsSource,
  options: { signal?: AbortSignal } = {},
): Promise<Uint8Array> {
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (ArrayBuffer.isView(source)) {
    return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  }
  let href: string;
  if (source instanceof URL) href = source.href;
  else if (typeof source === 'string' && source.length > 0) href = source;
  else {
    throw new ValueError(
      `weights: source must be a path, URL or ArrayBuffer, got ${typeof source}`,
      {
        argument: 'source',
        value: source,
      },
    );
  }
  if (isNode && (source instanceof URL || looksLikeUrl(href)) && /^file:/i.test(href)) {
    const { fileURLToPath } = (await import(
      /* @vite-ignore */ urlModule
    )) as typeof import('node:url');
    return readFileChecked(fileURLToPath(href));
  }
  if (source instanceof URL || looksLikeUrl(href) || !isNode)
    return fetchBytes(href, options.signal);
  return readFileChecked(href);
}

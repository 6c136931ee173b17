import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DTypeError, FormatError, ValueError } from '@kvkit/tensor-utils';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { gptWeightsFromTensors, loadGPT, MAX_HEADER_BYTES, readSafetensors } from '../src/index.ts';
import { setupBackend } from './support.ts';

// A safetensors file is an input: each damaged or hostile one is a FormatError naming the check,
// found from the first 8 bytes and the header alone, before anything the size of the tensors is
// allocated (the file reader reads the body only after the header passed; see source.ts). Each
// case runs on the bytes in memory and through a file path.

beforeAll(setupBackend);

/** A file from a header (object or raw text) and data bytes, with an optional forged length. */
function file(
  header: object | string | Uint8Array,
  data: Uint8Array | number = 0,
  length?: bigint,
): Uint8Array {
  const json =
    header instanceof Uint8Array
      ? header
      : new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

const f32 = (shape: number[], begin: number, end: number) => ({
  dtype: 'F32',
  shape,
  data_offsets: [begin, end],
});
const valid = readFileSync(new URL('./fixtures/gpt_hf_tiny.safetensors', import.meta.url));

const hostile: [string, Uint8Array, string][] = [
  ['fewer than 8 bytes', new Uint8Array(5), 'too-short'],
  ['a header length past the end of the file', file({}, 0, 1000n), 'header-out-of-bounds'],
  ['a header length above 100 MB', file({}, 0, BigInt(MAX_HEADER_BYTES + 1)), 'header-too-large'],
  ['a header length of 2^63', file({}, 0, 2n ** 63n), 'header-too-large'],
  ['a header that is not JSON', file('{"a": [1, 2', 0), 'bad-header'],
  [
    'a header that is not UTF-8',
    file(Uint8Array.of(0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d)),
    'not-utf8',
  ],
  ['a header that is a JSON array', file('[1, 2]'), 'bad-header'],
  ['__metadata__ with a non-string value', file({ __metadata__: { format: 1 } }), 'bad-metadata'],
  [
    'an unknown dtype',
    file({ w: { dtype: 'F33', shape: [2], data_offsets: [0, 8] } }, 8),
    'unknown-dtype',
  ],
  ['a negative dimension', file({ w: f32([-2], 0, 8) }, 8), 'bad-shape'],
  ['a non-integer offset', file({ w: f32([2], 0, 8.5) }, 8), 'bad-offsets'],
  ['offsets in reverse', file({ w: f32([0], 8, 0) }, 8), 'bad-offsets'],
  [
    'a shape whose size disagrees with its byte range',
    file({ w: f32([3], 0, 8) }, 8),
    'size-mismatch',
  ],
  [
    'offsets outside the data (a 4 GB tensor in a small file)',
    file({ w: f32([1e9], 0, 4e9) }, 64),
    'truncated',
  ],
  ['overlapping offsets', file({ a: f32([2], 0, 8), b: f32([2], 4, 12) }, 12), 'overlap'],
  ['a gap between tensors', file({ a: f32([1], 0, 4), b: f32([1], 8, 12) }, 12), 'gap'],
  ['bytes after the last tensor', file({ a: f32([1], 0, 4) }, 8), 'trailing-bytes'],
  ['a truncated body', new Uint8Array(valid.subarray(0, valid.length - 100)), 'truncated'],
  ['a tensor named constructor', file({ constructor: f32([1], 0, 4) }, 4), 'bad-name'],
  [
    'a tensor named __proto__',
    file('{"__proto__": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}', 4),
    'bad-name',
  ],
];

describe('hostile safetensors files', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kvkit-safetensors-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test.each(hostile)('%s: FormatError (%s) from the bytes', (_, bytes, reason) => {
    let caught: unknown;
    try {
      readSafetensors(bytes);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(FormatError);
    expect((caught as FormatError).reason).toBe(reason);
    expect((caught as FormatError).format).toBe('safetensors');
  });

  test.each(hostile)('%s: FormatError (%s) from a file path', async (name, bytes, reason) => {
    const path = join(dir, `${name.replace(/\W+/g, '-')}.safetensors`);
    writeFileSync(path, bytes);
    await expect(loadGPT(path, { config: { nHead: 2 } })).rejects.toMatchObject({
      name: 'FormatError',
      reason,
    });
  });

  test('the valid file still reads (the cases above are the only damage)', () => {
    expect(readSafetensors(valid).tensors.size).toBe(28);
  });
});

describe('files that parse but are not GPT weights', () => {
  const { tensors } = readSafetensors(valid);

  test('an integer dtype for a parameter is a DTypeError', () => {
    const bad = new Map(tensors);
    bad.set('transformer.ln_f.bias', { dtype: 'I32', shape: [16], data: null });
    expect(() => gptWeightsFromTensors(bad)).toThrow(DTypeError);
  });

  test('an unknown name is a ValueError naming it', () => {
    const bad = new Map(tensors);
    bad.set('transformer.h.0.attn.rotary.weight', tensors.get('transformer.ln_f.bias')!);
    expect(() => gptWeightsFromTensors(bad)).toThrow(
      /unexpected tensors \[transformer\.h\.0\.attn\.rotary\.weight\]/,
    );
  });

  test('a missing parameter is a ValueError naming it', () => {
    const bad = new Map(tensors);
    bad.delete('transformer.h.1.mlp.c_fc.bias');
    expect(() => gptWeightsFromTensors(bad)).toThrow(
      /missing tensors \[transformer\.h\.1\.mlp\.c_fc\.bias\]/,
    );
  });

  test('names mixing the two layouts are rejected', () => {
    const bad = new Map(tensors);
    bad.set('wte.weight', tensors.get('transformer.wte.weight')!);
    expect(() => gptWeightsFromTensors(bad)).toThrow(ValueError);
  });

  test('a prototype-named key in a Map is a ValueError', () => {
    const bad = new Map(tensors);
    bad.set('toString', tensors.get('transformer.ln_f.bias')!);
    expect(() => gptWeightsFromTensors(bad)).toThrow(/toString/);
  });

  test('without nHead (not in HF weights) loadGPT asks for it', async () => {
    await expect(loadGPT(new Uint8Array(valid))).rejects.toThrow(/nHead/);
  });

  test('a config that disagrees with the shapes is rejected before any model exists', async () => {
    await expect(loadGPT(new Uint8Array(valid), { config: { modelType: 'gpt2' } })).rejects.toThrow(
      /disagrees with modelType 'gpt2'/,
    );
  });
});

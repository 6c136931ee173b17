import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  type GPT,
  gptWeightsFromTensors,
  loadGPT,
  readSafetensors,
  writeSafetensors,
} from '../src/index.ts';
import hf from './fixtures/gpt_hf_tiny.json' with { type: 'json' };
import { ids, maxDiff, rows, tiny, tinyModel } from './gpt-support.ts';
import { setupBackend } from './support.ts';

// gpt_hf_tiny.json and the two .safetensors files (see fixtures/README.md): the gpt_tiny model
// with lm_head tied to wte, as GPT2LMHeadModel.save_pretrained writes it and in the older Hub
// layout. Either file must import to expected_mingpt_state_dict bit for bit and give
// expected_logits and the greedy tokens.

type FileName = keyof typeof hf.files;
const files = Object.keys(hf.files) as FileName[];
const fixtureUrl = (name: string) => new URL(`./fixtures/${name}`, import.meta.url);
const bytesOf = (name: string) => new Uint8Array(readFileSync(fixtureUrl(name)));
const bits = (a: ArrayLike<number>) => Array.from(new Uint32Array(Float32Array.from(a).buffer));
const measured: Record<string, number> = {};

beforeAll(setupBackend);
afterAll(() => console.log('gpt_hf_tiny max |logits - PyTorch|:', JSON.stringify(measured)));

describe.each(files)('%s', (name) => {
  const info = hf.files[name];

  test('is the file the reference describes (size, sha256, tensor list)', () => {
    const bytes = bytesOf(name);
    expect(bytes.length).toBe(info.bytes);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(info.sha256);
    const { tensors, metadata } = readSafetensors(bytes);
    expect({ ...metadata }).toEqual({ format: 'pt' });
    expect([...tensors].map(([n, t]) => [n, t.shape])).toEqual(
      info.tensors.map((t) => [t.name, t.shape]),
    );
  });

  test('imports to the expected minGPT state dict bit for bit', () => {
    const weights = gptWeightsFromTensors(readSafetensors(bytesOf(name)).tensors);
    expect(weights.layout).toBe(info.variant === 'legacy' ? 'hf-gpt2-legacy' : 'hf-gpt2');
    expect(weights.tiedLmHead).toBe(true);
    expect(weights.ignored).toEqual(
      info.tensors.filter((t) => t.mingpt_name === null).map((t) => t.name),
    );
    const expected = hf.expected_mingpt_state_dict as Record<
      string,
      { shape: number[]; data: number[] }
    >;
    expect(Object.keys(weights.stateDict).sort()).toEqual(Object.keys(expected).sort());
    for (const [key, want] of Object.entries(expected)) {
      const got = weights.stateDict[key]!;
      expect(got.shape, key).toEqual(want.shape);
      expect(bits(got.data), key).toEqual(bits(want.data));
    }
  });

  test.each(['path', 'file URL', 'ArrayBuffer'] as const)(
    'loadGPT from a %s: logits within 1e-5, greedy tokens',
    async (kind) => {
      const source =
        kind === 'path'
          ? fileURLToPath(fixtureUrl(name))
          : kind === 'file URL'
            ? fixtureUrl(name)
            : bytesOf(name).slice().buffer;
      const gpt = await loadGPT(source, { config: { nHead: hf.mingpt_config.n_head } });
      try {
        expect(gpt.training).toBe(false);
        expect(gpt.dims).toMatchObject({
          nLayer: 2,
          nHead: 2,
          nKvHeads: 2,
          nEmbd: 16,
          vocabSize: 11,
          blockSize: 16,
        });
        const idx = ids(hf.prompt);
        const logits = gpt.forward(idx);
        const d = maxDiff(logits, hf.expected_logits);
        measured[`${name} (${kind})`] = d;
        expect(d).toBeLessThan(1e-5);
        tf.dispose([idx, logits]);
        for (const useKvCache of [true, false]) {
          const { tokens } = await gpt.generate(rows(hf.prompt), { maxNewTokens: 6, useKvCache });
          expect(tokens).toEqual(rows(hf.greedy.tokens));
        }
      } finally {
        gpt.dispose();
      }
    },
  );
});

test('writeSafetensors writes the save_pretrained file byte for byte', () => {
  const { tensors } = readSafetensors(bytesOf('gpt_hf_tiny.safetensors'));
  const out = writeSafetensors(
    new Map([...tensors].map(([n, t]) => [n, { shape: t.shape, data: t.data! }])),
    { format: 'pt' },
  );
  expect(Buffer.from(out).equals(Buffer.from(bytesOf('gpt_hf_tiny.safetensors')))).toBe(true);
});

describe('minGPT / PyTorch state_dict names', () => {
  let gpt: GPT;
  beforeAll(() => {
    gpt = tinyModel();
  });
  afterAll(() => gpt.dispose());

  /** gpt_tiny's PyTorch state dict as safetensors, plus any extra tensors. */
  function minGPTFile(extra: Record<string, { shape: number[]; data: Float32Array }> = {}) {
    const sd = tiny.state_dict as Record<string, { shape: number[]; data: number[] }>;
    const tensors = Object.fromEntries(
      Object.entries(sd).map(([n, t]) => [n, { shape: t.shape, data: Float32Array.from(t.data) }]),
    );
    return writeSafetensors({ ...tensors, ...extra }, { format: 'pt' });
  }

  test('load as they are (untied lm_head), and give PyTorch logits', async () => {
    const loaded = await loadGPT(minGPTFile(), { config: { nHead: 2 } });
    const idx = ids(tiny.full_forward.idx);
    const logits = loaded.forward(idx);
    expect(maxDiff(logits, tiny.full_forward.logits)).toBeLessThan(1e-5);
    tf.dispose([idx, logits]);
    loaded.dispose();
  });

  test("the fork's causal-mask buffers transformer.h.{i}.attn.bias are skipped", () => {
    const mask = { shape: [1, 1, 16, 16], data: new Float32Array(256).fill(1) };
    const file = minGPTFile({
      'transformer.h.0.attn.bias': mask,
      'transformer.h.1.attn.bias': mask,
    });
    const weights = gptWeightsFromTensors(readSafetensors(file).tensors);
    expect(weights.layout).toBe('mingpt');
    expect(weights.tiedLmHead).toBe(false);
    expect(weights.ignored).toEqual(['transformer.h.0.attn.bias', 'transformer.h.1.attn.bias']);
    expect(weights.stateDict['transformer.h.0.attn.c_attn.bias']!.shape).toEqual([48]);
  });

  test('a model saved by writeSafetensors from stateDict() round-trips bit for bit', async () => {
    const sd = gpt.stateDict();
    const file = writeSafetensors(
      Object.fromEntries(
        Object.entries(sd).map(([n, t]) => [
          n,
          { shape: t.shape, data: t.dataSync() as Float32Array },
        ]),
      ),
      { 'kvkit.gpt.config': JSON.stringify({ nHead: 2 }) },
    );
    const loaded = await loadGPT(file); // nHead from the metadata
    const again = loaded.stateDict();
    for (const [n, t] of Object.entries(sd))
      expect(bits(again[n]!.dataSync()), n).toEqual(bits(t.dataSync()));
    tf.dispose([...Object.values(sd), ...Object.values(again)]);
    loaded.dispose();
  });
});

describe('loadGPT from an http URL (fetch)', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/model.safetensors') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(Buffer.from(bytesOf('gpt_hf_tiny.safetensors')));
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((done) => server.close(() => done())));

  test('fetches the file and imports it', async () => {
    const gpt = await loadGPT(`${base}/model.safetensors`, { config: { nHead: 2 } });
    const idx = ids(hf.prompt);
    const logits = gpt.forward(idx);
    expect(maxDiff(logits, hf.expected_logits)).toBeLessThan(1e-5);
    tf.dispose([idx, logits]);
    gpt.dispose();
  });

  test('an HTTP error is a ValueError naming the status', async () => {
    await expect(loadGPT(new URL(`${base}/missing.safetensors`))).rejects.toThrow(/HTTP 404/);
  });
});

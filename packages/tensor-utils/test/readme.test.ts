import { readFileSync } from 'node:fs';
import { beforeAll, expect, test } from 'vitest';
import { initBackend } from '../src/backend.ts';
import { formatShape, formatTensor } from '../src/format.ts';
import { setSeed } from '../src/generator.ts';
import { linearInit } from '../src/linear-init.ts';
import { rand } from '../src/random.ts';

// The README's samples cannot rot: its output blocks (printed by PyTorch 1.13) must be exactly
// what the same calls print here.
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const outputs = [...readme.matchAll(/```text\n([\s\S]*?)\n```/g)].map((m) => m[1]);

beforeAll(async () => {
  await initBackend('wasm');
});

test('setSeed(42); rand([2, 8, 6]) prints as in the README', () => {
  setSeed(42);
  const input = rand([2, 8, 6]);
  expect(`${formatShape(input)}\n${formatTensor(input)}`).toBe(outputs[0]);
  input.dispose();
});

test('linearInit(6, 18) bias prints as in the README', () => {
  setSeed(42);
  const { weight, bias } = linearInit(6, 18);
  expect(formatTensor(bias!)).toBe(outputs[1]);
  weight.dispose();
  bias!.dispose();
});

test('every README table row has as many cells as its header (GFM splits at every unescaped |)', () => {
  const cells = (row: string) =>
    row
      .trim()
      .replace(/^\||\|$/g, '')
      .split(/(?<!\\)\|/).length;
  const tables = [...readme.matchAll(/(?:^\|.*\n)+/gm)].map((m) => m[0]);
  expect(tables.length).toBeGreaterThan(0);
  for (const table of tables) {
    const [header, ...rows] = table.trim().split('\n');
    for (const row of rows) expect(cells(row), row).toBe(cells(header!));
  }
});

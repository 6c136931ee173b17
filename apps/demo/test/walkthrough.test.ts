import { initBackend } from '@kvkit/tensor-utils';
import { expectNoLeak } from '@kvkit/tensor-utils/testing';
import { beforeAll, describe, expect, test } from 'vitest';
import { Notebook, notebookCells } from '../src/notebook.ts';
import { runWalkthrough } from '../src/walkthrough.ts';
import { comparedCells, linesMatchingNotebook } from './notebook-text.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

// The walkthrough prints the notebook's cells in order; spot-check what the notebook printed.
test('the walkthrough runs every cell and prints the notebook values', async () => {
  const lines: string[] = [];
  await runWalkthrough({ print: (line) => lines.push(line) });
  const text = lines.join('\n');
  for (let n = 1; n <= 20; n++) expect(text).toContain(`In [${n}]:`);
  expect(text).toContain('torch.Size([2, 8, 6])');
  expect(text).toContain('tensor([[[-0.2179,  0.4357,  0.3333,  0.0294, -0.0310, -0.0278],');
  expect(text).toContain('torch.Size([64, 1, 8, 6])');
  expect(text).toContain('torch.Size([8, 64, 128])');
  const cell = (n: number) =>
    text.slice(text.indexOf(`In [${n}]:`), text.indexOf(`In [${n + 1}]:`));
  expect(cell(8)).toMatch(/\nTrue\n/);
  expect(cell(15)).toMatch(/\nTrue\n/);
  expect(cell(11)).toContain(
    'prefill input\ntensor([[[0.8823, 0.9150, 0.3829, 0.9593, 0.3904, 0.6009],',
  );
});

describe('the notebook cells the demo page runs', () => {
  test.each(comparedCells)('cell $n prints what the notebook printed', async ({ n, lines }) => {
    const notebook = new Notebook();
    const out: string[] = [];
    await notebook.run(n, (line) => out.push(line));
    notebook.dispose();
    expect(linesMatchingNotebook(n, out.join('\n'))).toBeGreaterThanOrEqual(lines);
  });

  test('a changed digit is caught', () => {
    expect(() =>
      linesMatchingNotebook(5, 'tensor([[[-0.2179,  0.4357,  0.3333,  0.0294, -0.0310, -0.0279],'),
    ).toThrow(/never prints/);
    expect(() => linesMatchingNotebook(8, 'False')).toThrow(/never prints/);
  });

  test('running every cell, in any order and again, then disposing leaves no tensor behind', async () => {
    await expectNoLeak(async () => {
      const notebook = new Notebook();
      const quiet = () => {};
      await notebook.run(12, quiet); // runs 1..12 first
      for (const cell of notebookCells) if (!cell.slow) await notebook.run(cell.n, quiet);
      await notebook.run(4, quiet); // again
      notebook.dispose();
    });
  });
});

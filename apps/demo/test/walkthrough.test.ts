import { expect, test } from 'vitest';
import { runWalkthrough } from '../src/walkthrough.ts';

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

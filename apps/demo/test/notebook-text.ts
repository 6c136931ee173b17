// The seed notebook's saved outputs (packages/tensor-utils/test/fixtures/seed-notebook.txt,
// the notebook's text as committed), and a comparison of an output with the notebook's.
// The notebook file is the independent source: PyTorch printed it.
import { readFileSync } from 'node:fs';

const notebookFile = new URL(
  '../../../packages/tensor-utils/test/fixtures/seed-notebook.txt',
  import.meta.url,
);
export const notebookText = readFileSync(notebookFile, 'utf8');

/** Cell n's text in the notebook: its code, its output and the prose after it. */
export function notebookCell(n: number): string {
  const start = notebookText.indexOf(`In [${n}]:\n`);
  if (start < 0) throw new Error(`no cell ${n} in the notebook`);
  const end = notebookText.indexOf(`In [${n + 1}]:\n`, start);
  // torch prints `grad_fn=` after a tensor that needs grad (cell 16); kvkit has no autograd.
  return notebookText
    .slice(start, end < 0 ? undefined : end)
    .replace(/,\n\s+grad_fn=<\w+>\)/g, ')');
}

/**
 * How many lines of `output` the notebook printed for cell n, the same, in order, from the
 * notebook line equal to output's first line. The notebook's saved outputs are cut short in
 * places; a cut line counts when it is the start of ours, and ends the comparison. Throws on
 * the first line that differs.
 */
export function linesMatchingNotebook(n: number, output: string): number {
  const ours = output.split('\n');
  const theirs = notebookCell(n).split('\n');
  const from = theirs.indexOf(ours[0]!);
  if (from < 0) throw new Error(`cell ${n}: the notebook never prints ${JSON.stringify(ours[0])}`);
  let matched = 0;
  for (let i = 0; i < ours.length && from + i < theirs.length; i++) {
    const nb = theirs[from + i]!;
    if (nb === ours[i]) {
      matched++;
      continue;
    }
    if (nb !== '' && ours[i]!.startsWith(nb)) return matched + 1; // the notebook's output stops here
    if (nb === '' && from + i === theirs.length - 1) break;
    throw new Error(
      `cell ${n}, line ${i + 1}: the notebook printed ${JSON.stringify(nb)}, this printed ${JSON.stringify(ours[i])}`,
    );
  }
  return matched;
}

/** The cells whose output is compared with the notebook's, and lines that must match. */
export const comparedCells: readonly { n: number; lines: number }[] = [
  { n: 2, lines: 1 },
  { n: 5, lines: 17 },
  { n: 7, lines: 17 },
  { n: 8, lines: 1 },
  { n: 9, lines: 1 },
  { n: 10, lines: 10 },
  { n: 11, lines: 10 },
  { n: 12, lines: 17 },
  { n: 15, lines: 1 },
  { n: 16, lines: 10 },
  { n: 17, lines: 1 },
];

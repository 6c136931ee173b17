// Build-time data for the Seed notebook page (a VitePress data loader): the notebook's text as
// committed (packages/tensor-utils/test/fixtures/seed-notebook.txt, what the tests compare
// kvkit's printouts with), split into prose and cells, each cell into code and saved output.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineLoader } from 'vitepress';

const notebookFile = join(
  resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'),
  'packages/tensor-utils/test/fixtures/seed-notebook.txt',
);

export type NotebookBlock =
  | { kind: 'prose'; text: string }
  | { kind: 'cell'; n: number; code: string; output: string };

/** A first line of printed output (after a blank line in a cell), not code. */
const outputStart =
  /^(tensor\(|torch\.Size|True$|False$|prefill input$|input:?$|[\d.]+ (ms|µs|ns) ± )/;

/** A paragraph of prose: one long line of words, not code or a printout. */
function isProse(paragraph: string): boolean {
  return (
    !paragraph.includes('\n') &&
    paragraph.length > 50 &&
    /^[A-Z]/.test(paragraph) &&
    !/^(True|False|In \[)/.test(paragraph) &&
    / [a-z]+ /.test(paragraph)
  );
}

/** The notebook's text as prose paragraphs and cells, in order. */
export function parseNotebook(text: string): NotebookBlock[] {
  const blocks: NotebookBlock[] = [];
  const parts = text.split(/^In \[(\d+)\]:\n/m);
  const prose = (chunk: string) => {
    for (const p of chunk.split(/\n{2,}/).map((s) => s.trim())) {
      if (p) blocks.push({ kind: 'prose', text: p });
    }
  };
  prose(parts[0] ?? '');
  for (let i = 1; i < parts.length; i += 2) {
    const n = Number(parts[i]);
    const body = parts[i + 1] ?? '';
    // Prose paragraphs at the end of the cell's text belong after it.
    const paragraphs = body.replace(/\s+$/, '').split(/\n{2,}/);
    let end = paragraphs.length;
    while (end > 0 && isProse(paragraphs[end - 1]!.trim())) end--;
    const lines = paragraphs.slice(0, end).join('\n\n').split('\n');
    let split = lines.length;
    for (let j = 1; j < lines.length; j++) {
      if (lines[j - 1] === '' && outputStart.test(lines[j]!)) {
        split = j;
        break;
      }
    }
    blocks.push({
      kind: 'cell',
      n,
      code: lines.slice(0, split).join('\n').trim(),
      output: lines.slice(split).join('\n').replace(/\s+$/, ''),
    });
    prose(paragraphs.slice(end).join('\n\n'));
  }
  return blocks;
}

export interface NotebookData {
  blocks: NotebookBlock[];
}

declare const data: NotebookData;

export { data };

export default defineLoader({
  watch: [notebookFile],
  load(): NotebookData {
    return { blocks: parseNotebook(readFileSync(notebookFile, 'utf8')) };
  },
});

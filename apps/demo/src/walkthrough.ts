// The seed notebook as a program: every cell, in order, printing what the notebook printed,
// the torch way. Run it with `pnpm --filter @kvkit/demo walkthrough` (add `--timeit` for the
// timing cells 19-20, which take a while on the full sizes). The cells are in notebook.ts,
// shared with the demo page's notebook panel.
import { Notebook, notebookCells, type Print } from './notebook.ts';

export interface WalkthroughOptions {
  /** Run cells 19-20's timing (slow); otherwise they are described and skipped. */
  timeit?: boolean;
  /** Where lines go (default console.log). */
  print?: Print;
}

export async function runWalkthrough(options: WalkthroughOptions = {}): Promise<void> {
  const print = options.print ?? ((line: string) => console.log(line));
  const notebook = new Notebook();
  try {
    for (const cell of notebookCells) {
      print(`\nIn [${cell.n}]:\n${cell.code}\n`);
      await notebook.run(cell.n, print, { timeit: options.timeit ?? false });
    }
  } finally {
    notebook.dispose();
  }
}

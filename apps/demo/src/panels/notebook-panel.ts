// The seed notebook as runnable cells: each cell's code in kvkit's TypeScript, a Run button,
// and its output printed the torch way, as the notebook printed it. A cell runs the cells
// before it first when they have not run (notebook.ts keeps their shared state).
import { Notebook, notebookCells } from '../notebook.ts';
import type { Panel, PanelContext } from '../panels.ts';
import { action, h, nextFrame } from '../ui/dom.ts';

export const notebookPanel: Panel = {
  id: 'notebook',
  title: 'Notebook',
  summary:
    'The PyTorch notebook kvkit reproduces, cell by cell, in TypeScript: run a cell and compare ' +
    'its output with the notebook’s, digit for digit.',
  mount,
};

function mount(root: HTMLElement, context: PanelContext): void {
  const notebook = new Notebook();
  const runAll = h(
    'button',
    { class: 'primary', 'data-testid': 'notebook-run-all' },
    'Run cells 1–18',
  );
  const outputs = new Map<number, HTMLElement>();
  const run = async (n: number) => {
    const out = outputs.get(n)!;
    out.textContent = 'running…';
    out.dataset.state = 'running';
    await nextFrame(); // show "running…" before a cell that takes seconds
    const lines: string[] = [];
    await notebook.run(n, (line) => lines.push(line), { timeit: true });
    out.textContent = lines.length > 0 ? lines.join('\n') : '(no output)';
    out.dataset.state = 'done';
  };
  const list = h('ol', { class: 'cells' });
  for (const cell of notebookCells) {
    const button = h(
      'button',
      { 'data-testid': `cell-run-${cell.n}` },
      cell.slow ? 'Run (a few seconds)' : 'Run',
    );
    const out = h('pre', { class: 'output', 'data-testid': `cell-output-${cell.n}` });
    outputs.set(cell.n, out);
    action(button, () => run(cell.n), context.fail);
    list.append(
      h(
        'li',
        { class: 'cell', 'data-cell': cell.n },
        h('div', { class: 'cell-head' }, h('span', { class: 'prompt' }, `In [${cell.n}]:`), button),
        h('pre', { class: 'code' }, cell.code),
        out,
      ),
    );
  }
  action(
    runAll,
    async () => {
      for (const cell of notebookCells) if (!cell.slow) await run(cell.n);
    },
    context.fail,
  );
  root.append(
    h(
      'div',
      { class: 'controls' },
      runAll,
      h('span', { class: 'hint' }, 'Cells 19–20 time the notebook’s loops; run them on their own.'),
    ),
    list,
  );
}

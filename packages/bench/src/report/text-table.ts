import type { TableView } from './view.ts';

/**
 * A table for the terminal: columns padded to their widest cell, numbers right-aligned.
 *
 * @example
 * console.log(textTable({ columns: [{ label: 'n', numeric: true }], rows: [['1'], ['10']] }));
 */
export function textTable(t: TableView): string {
  const widths = t.columns.map((c, i) =>
    Math.max(c.label.length, ...t.rows.map((r) => (r[i] ?? '').length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, i) =>
        t.columns[i]!.numeric ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!),
      )
      .join('  ')
      .trimEnd();
  return [line(t.columns.map((c) => c.label)), ...t.rows.map(line)].join('\n');
}

/**
 * Writes a report to disk in the layout the Markdown links assume:
 *
 *     <dir>/latest.json
 *     <dir>/latest.md
 *     <dir>/charts/<name>.svg
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderCharts } from './charts.ts';
import { renderMarkdown } from './markdown.ts';
import type { Report } from './schema.ts';

/** Paths `writeReport` wrote. */
export interface WrittenReport {
  json: string;
  markdown: string;
  /** One path per chart, in render order; charts of missing or skipped scenarios are absent. */
  charts: string[];
}

/**
 * Writes `latest.json` (2-space indented), `latest.md` and `charts/*.svg` into `dir`, creating
 * the directories as needed, and returns the paths written. Existing files are overwritten;
 * stale charts from an earlier run are left alone (the Markdown links only the current ones).
 */
export async function writeReport(report: Report, dir: string): Promise<WrittenReport> {
  // Render first, so a rendering failure leaves the previous report intact.
  const charts = await renderCharts(report);
  const markdown = renderMarkdown(report);
  const chartsDir = join(dir, 'charts');
  await mkdir(chartsDir, { recursive: true });

  const jsonPath = join(dir, 'latest.json');
  const markdownPath = join(dir, 'latest.md');
  await writeFile(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(markdownPath, markdown);
  const chartPaths: string[] = [];
  for (const [name, svg] of Object.entries(charts)) {
    const path = join(chartsDir, name);
    await writeFile(path, svg);
    chartPaths.push(path);
  }
  return { json: jsonPath, markdown: markdownPath, charts: chartPaths };
}

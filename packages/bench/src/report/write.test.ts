import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { renderCharts } from './charts.ts';
import { renderMarkdown } from './markdown.ts';
import type { Report } from './schema.ts';
import { sampleReport } from './test-support/sample-report.ts';
import { writeReport } from './write.ts';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kvkit-report-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('writeReport', () => {
  test('writes latest.json, latest.md and charts/*.svg, creating the directories', async () => {
    const report = sampleReport();
    // A directory that does not exist yet, two levels deep.
    const dir = join(await tempDir(), 'reports', 'run');
    const written = await writeReport(report, dir);

    expect(written.json).toBe(join(dir, 'latest.json'));
    expect(written.markdown).toBe(join(dir, 'latest.md'));
    for (const p of written.charts) expect(p.startsWith(join(dir, 'charts'))).toBe(true);
    expect(written.charts.map((p) => basename(p)).sort()).toEqual([
      'batch.svg',
      'capacity.svg',
      'context-step-time.svg',
      'heads.svg',
      'speedup.svg',
    ]);

    const json = await readFile(written.json, 'utf8');
    expect(json).toBe(`${JSON.stringify(report, null, 2)}\n`);
    expect(JSON.parse(json) as Report).toEqual(report);
    expect(json).toContain('\n  "schemaVersion": 2,');

    expect(await readFile(written.markdown, 'utf8')).toBe(renderMarkdown(report));
    const charts = await renderCharts(report);
    for (const path of written.charts) {
      expect(await readFile(path, 'utf8')).toBe(charts[basename(path)]);
    }
    expect((await readdir(join(dir, 'charts'))).sort()).toEqual(Object.keys(charts).sort());
  });

  test('every chart the Markdown links exists on disk', async () => {
    const dir = await tempDir();
    const written = await writeReport(sampleReport(), dir);
    const md = await readFile(written.markdown, 'utf8');
    const links = [...md.matchAll(/!\[[^\]]*\]\((charts\/[^)]+)\)/g)].map((m) => m[1]!);
    expect(links.length).toBe(written.charts.length);
    for (const link of links) expect(written.charts).toContain(join(dir, link));
  });

  test('skipped scenarios write no chart; rewriting a directory overwrites the files', async () => {
    const dir = await tempDir();
    await writeReport(sampleReport(), dir);
    const report = sampleReport();
    for (const s of report.scenarios) if (s.id !== 'seed') s.skipped = 'not run';
    const written = await writeReport(report, dir);
    expect(written.charts).toEqual([join(dir, 'charts', 'speedup.svg')]);
    expect(JSON.parse(await readFile(written.json, 'utf8'))).toEqual(report);
    expect(await readFile(written.markdown, 'utf8')).not.toContain('context-step-time.svg');
  });
});

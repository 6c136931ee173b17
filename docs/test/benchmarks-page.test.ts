// The Benchmarks page and latest.md are one formatter's output: for the same report, every
// number the page shows is the string the Markdown report prints. The fixture is a real run's
// report (packages/bench/reports/history/2026-11-26-kernel.json, once baseline.json) with a few values replaced by exact binary ties
// (1.125, 12.25, 0.375, 1152 bytes = 1.125 KiB), which Python's %g rounds to even and
// Number.prototype.toPrecision rounds away from zero.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readReport, renderMarkdown } from '@kvkit/bench';
import { afterEach, describe, expect, test } from 'vitest';
import { benchmarkData, reportEnvVar } from '../benchmarks/load-report.ts';

const fixture = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'report-ties.json');
const saved = process.env[reportEnvVar];
afterEach(() => {
  if (saved === undefined) delete process.env[reportEnvVar];
  else process.env[reportEnvVar] = saved;
});

async function pageData() {
  process.env[reportEnvVar] = fixture;
  const data = await benchmarkData();
  if (!data.report) throw new Error('the page found no report');
  return data.report;
}

describe('the Benchmarks page and latest.md', () => {
  test('every table row of the page is a row of the Markdown report', async () => {
    const page = await pageData();
    const md = renderMarkdown(readReport(fixture));
    for (const s of page.scenarios) {
      for (const row of s.rows) expect(md).toContain(`| ${row.join(' | ')} |`);
    }
    expect(md).toContain('| 12.2 |'); // the tie, rounded to even
  });

  test('every derived number of the page is the one the Markdown report prints', async () => {
    const page = await pageData();
    const md = renderMarkdown(readReport(fixture));
    const derived = page.scenarios.flatMap((s) => s.derived);
    expect(derived.length).toBeGreaterThan(3);
    for (const d of derived) expect(md).toContain(`- ${d.label}: ${d.value}\n`);
    expect(md).toContain('- uncachedProjectionShare: 1.12\n');
  });
});

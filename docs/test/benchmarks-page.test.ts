// The Benchmarks page and latest.md are one formatter's output: for the same report, every
// number the page shows is the string the Markdown report prints. The fixture is a real run's
// report (packages/bench/reports/history/2026-11-26-kernel.json, once baseline.json) with a few values replaced by exact binary ties
// (1.125, 12.25, 0.375, 1152 bytes = 1.125 KiB), which Python's %g rounds to even and
// Number.prototype.toPrecision rounds away from zero.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

  test("the in-browser run's baseline is the report's seed timings, as latest.md prints them", async () => {
    process.env[reportEnvVar] = fixture;
    const { browserBaseline: b } = await benchmarkData();
    const md = renderMarkdown(readReport(fixture));
    // The fixture's seed: cached 5.4159 ± 0.0452 ms, uncached 84.660 ± 1.303 ms, speedup 15.63.
    expect(b).toMatchObject({
      file: expect.stringMatching(/report-ties\.json$/),
      sizes: 'B=8, T=64, C=128, 8 heads',
      quick: false,
      cached: '5.42 ms ± 45.2 µs',
      uncached: '84.7 ms ± 1.3 ms',
    });
    expect(b!.where).toBe('Node.js v20.20.2, wasm simd, AMD EPYC (2 CPUs), 2026-11-26');
    expect(md).toContain(`cached:   ${b!.cached} per loop`);
    expect(md).toContain(`uncached: ${b!.uncached} per loop`);
    expect(md).toContain(`speedup: ${b!.speedup}`);
  });

  test("the in-browser gpt run's baseline is the report's gpt scenario: each step, the forward, their ratio", async () => {
    const timing = (meanMs: number, stdMs: number) => ({
      meanMs,
      stdMs,
      minMs: meanMs - stdMs,
      medianMs: meanMs,
      loops: 1,
      repeats: 3,
      samplesMs: [meanMs - stdMs, meanMs, meanMs + stdMs],
    });
    const m = (variant: string, t: number, meanMs: number, stdMs: number) => ({
      key: `${variant}/t=${t}`,
      labels: { variant, t },
      timing: timing(meanMs, stdMs),
    });
    const report = JSON.parse(readFileSync(fixture, 'utf8'));
    report.scenarios.push({
      id: 'gpt',
      title: 'GPT decode',
      params: { nLayer: 12, nHead: 12, C: 768, vocabSize: 50257, blockSize: 1024, B: 1 },
      measurements: [
        m('cached', 1023, 16, 1),
        m('cached', 128, 10, 0.5),
        m('cached', 512, 12.5, 0.25),
        { ...m('part', 512, 3, 0.1), key: 'part/attention' },
        m('uncached', 512, 3000, 30),
      ],
      derived: {},
    });
    const file = join(mkdtempSync(join(tmpdir(), 'kvkit-docs-')), 'with-gpt.json');
    writeFileSync(file, JSON.stringify(report));
    process.env[reportEnvVar] = file;
    const { browserBaseline: b } = await benchmarkData();
    expect(b!.gpt).toEqual({
      sizes: 'GPT-2 small: 12 layers, C=768, 12 heads, vocab 50257',
      steps: [
        { t: 128, time: '10 ms ± 500 µs' },
        { t: 512, time: '12.5 ms ± 250 µs' },
        { t: 1023, time: '16 ms ± 1 ms' },
      ],
      uncached: { t: 512, time: '3 s ± 30 ms' },
      speedup: '240.0x', // 3000 / 12.5
    });
    // Without a gpt scenario (the fixture as it is), nothing to stand beside the browser's run.
    process.env[reportEnvVar] = fixture;
    expect((await benchmarkData()).browserBaseline!.gpt).toBeNull();
  });
});

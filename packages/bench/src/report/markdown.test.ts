import { describe, expect, test } from 'vitest';
import { renderMarkdown } from './markdown.ts';
import type { Scenario } from './schema.ts';
import { sampleReport } from './test-support/sample-report.ts';

/** The text of the `## ...` section whose heading contains `(\`id\`)`, up to the next section. */
function section(md: string, id: string): string {
  const start = md.indexOf(`(\`${id}\`)\n`);
  if (start < 0) throw new Error(`no section for ${id}`);
  const next = md.indexOf('\n## ', start);
  return md.slice(start, next < 0 ? undefined : next);
}

describe('renderMarkdown', () => {
  const md = renderMarkdown(sampleReport());

  test('header lists the environment', () => {
    expect(md.startsWith('# kvkit benchmark report\n')).toBe(true);
    expect(md).toContain('- **Date:** 2025-01-02T03:04:05.000Z');
    expect(md).toContain('- **Mode:** quick');
    expect(md).toContain('- **Node:** v20.19.0 on linux x64');
    expect(md).toContain('- **Backend:** wasm (simd binary)');
    expect(md).toContain('- **tfjs:** 4.22.0');
    expect(md).toContain('- **CPU:** AMD EPYC 7B13 (8 CPUs)');
    expect(md).toContain('- **Git commit:** `0123456789abcdef0123456789abcdef01234567`');
  });

  test('header without wasm binary or git commit, full mode', () => {
    const report = sampleReport();
    Object.assign(report.environment, { backend: 'cpu', wasmBinary: null, gitCommit: null });
    report.environment.quick = false;
    const out = renderMarkdown(report);
    expect(out).toContain('- **Backend:** cpu\n');
    expect(out).toContain('- **Git commit:** unknown');
    expect(out).toContain('- **Mode:** full');
  });

  test('seed section starts with the %timeit lines and the speedup', () => {
    const seed = section(md, 'seed');
    expect(seed).toContain(
      [
        '```text',
        'cached:   19.6 ms ± 1.3 ms per loop (mean ± std. dev. of 7 runs, 100 loops each)',
        'uncached: 43.9 ms ± 3.06 ms per loop (mean ± std. dev. of 7 runs, 100 loops each)',
        'speedup: 2.2x',
        '```',
      ].join('\n'),
    );
    expect(seed.indexOf('```text')).toBeLessThan(seed.indexOf('| variant |'));
  });

  test('one table row per measurement: labels, timings, extras', () => {
    const heads = section(md, 'heads');
    expect(heads).toContain(
      '| nKvHeads | kind | mean ± std | min | median | loops × repeats | cacheBytes |',
    );
    expect(heads).toContain('| --: | :-- | --: | --: | --: | --: | --: |');
    expect(heads).toContain('| 1 | MQA | 340 µs ± 20 µs | 320 µs | 340 µs | 50 × 7 | 16 KiB |');
    expect(heads.match(/^\| \d+ \| /gm)).toHaveLength(4);

    const batch = section(md, 'batch');
    expect(batch).toContain('| 8 | 1.36 ms ± 30 µs | 1.33 ms | 1.36 ms | 50 × 7 | 5,882 |');

    const context = section(md, 'context');
    expect(context.match(/^\| (cached|uncached) \| /gm)).toHaveLength(12);
    expect(context).toContain('| uncached | 512 | 29.4 ms ± 10 µs |');
  });

  test('derived numbers as a list, speedups with x', () => {
    const context = section(md, 'context');
    expect(context).toContain(
      '- cachedExponent: 0.87\n- uncachedExponent: 1.71\n- maxSpeedup: 44.1x',
    );
    expect(section(md, 'seed')).toContain('- speedup: 2.2x');
  });

  test('skipped scenarios show the reason and nothing else', () => {
    const torch = section(md, 'torch');
    expect(torch).toBe('(`torch`)\n\nskipped: PyTorch not found\n');
  });

  test('charts are embedded with relative links in their sections', () => {
    expect(md).toContain('![Speedups across scenarios](charts/speedup.svg)');
    expect(section(md, 'context')).toMatch(/!\[[^\]]+\]\(charts\/context-step-time\.svg\)/);
    expect(section(md, 'capacity')).toContain('(charts/capacity.svg)');
    expect(section(md, 'heads')).toContain('(charts/heads.svg)');
    expect(section(md, 'batch')).toContain('(charts/batch.svg)');
  });

  test('no chart link for a skipped scenario', () => {
    const report = sampleReport();
    const context = report.scenarios.find((s) => s.id === 'context') as Scenario;
    context.skipped = 'not run';
    const out = renderMarkdown(report);
    expect(out).not.toContain('context-step-time.svg');
    expect(out).toContain('skipped: not run');
  });

  test('pipes in labels do not break the table', () => {
    const report = sampleReport();
    report.scenarios[1]!.measurements[0]!.labels.variant = 'a|b';
    expect(renderMarkdown(report)).toContain('| a\\|b | 16 |');
  });

  test('is deterministic and ends with one newline', () => {
    expect(renderMarkdown(sampleReport())).toBe(md);
    expect(md.endsWith('\n')).toBe(true);
    expect(md.endsWith('\n\n')).toBe(false);
  });
});

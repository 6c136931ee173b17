import { describe, expect, test } from 'vitest';
import { planCharts, renderCharts } from './charts.ts';
import type { Report } from './schema.ts';
import { sampleReport } from './test-support/sample-report.ts';

/** Every `<text>` content of an SVG, entities decoded. */
function texts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) =>
    m[1]!.replace(/&gt;/g, '>').replace(/&lt;/g, '<').replace(/&amp;/g, '&'),
  );
}

/** How many items of a kind (`point`, `bar`) the SVG draws, by their ARIA role description. */
function markItems(svg: string, role: string): number {
  return svg.split(`aria-roledescription="${role}"`).length - 1;
}

function without(report: Report, id: string): Report {
  return { ...report, scenarios: report.scenarios.filter((s) => s.id !== id) };
}

function skipping(report: Report, id: string): Report {
  return {
    ...report,
    scenarios: report.scenarios.map((s) => (s.id === id ? { ...s, skipped: 'not run' } : s)),
  };
}

describe('renderCharts', () => {
  const rendered = renderCharts(sampleReport());

  test('renders every chart of the sample report as SVG', async () => {
    const charts = await rendered;
    expect(Object.keys(charts).sort()).toEqual([
      'batch.svg',
      'capacity.svg',
      'context-step-time.svg',
      'heads.svg',
      'speedup.svg',
    ]);
    for (const svg of Object.values(charts)) {
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg).toContain('xmlns="http://www.w3.org/2000/svg"');
      expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
      // Readable at ~640 px: not squeezed, not sprawling.
      const width = Number(svg.match(/^<svg[^>]* width="(\d+(?:\.\d+)?)"/)?.[1]);
      expect(width).toBeGreaterThan(500);
      expect(width).toBeLessThan(700);
    }
  });

  test('context chart: axis titles, both series, one point per measurement', async () => {
    const svg = (await rendered)['context-step-time.svg']!;
    const t = texts(svg);
    expect(t).toContain('context length t (tokens)');
    expect(t).toContain('time per decode step (ms)');
    expect(t).toContain('cached');
    expect(t).toContain('uncached');
    expect(t).toContain('Decode step time vs context length');
    // Base-2 log axis, ticks at the measured contexts.
    for (const ctx of ['16', '32', '64', '128', '256', '512']) expect(t).toContain(ctx);
    expect(markItems(svg, 'point')).toBe(12);
    expect(svg.match(/class="mark-line role-mark/g)).toHaveLength(2); // one line per variant
  });

  test('speedup chart: one bar per derived speedup, labelled by scenario', async () => {
    const svg = (await rendered)['speedup.svg']!;
    const t = texts(svg);
    for (const label of [
      'seed: speedup',
      'context: maxSpeedup',
      'heads: mqaVsMhaSpeedup',
      'batch: batch8Speedup',
    ]) {
      expect(t).toContain(label);
    }
    expect(t).toContain('44.1x');
    expect(t.some((s) => s.startsWith('speedup (×'))).toBe(true);
    expect(t.join('\n')).not.toContain('Exponent'); // not a speedup
    expect(markItems(svg, 'bar')).toBe(4);
  });

  test('bar charts: titles with units and one bar per measurement', async () => {
    const charts = await rendered;
    const capacity = texts(charts['capacity.svg']!);
    expect(capacity).toContain('block size (tokens)');
    expect(capacity).toContain('time per step (ms)');
    expect(markItems(charts['capacity.svg']!, 'bar')).toBe(3);

    const heads = texts(charts['heads.svg']!);
    expect(heads).toContain('KV heads (n_kv_heads)');
    expect(heads).toContain('time per step (ms)');
    expect(heads).toContain('KV cache size (KiB)');
    for (const kind of ['MQA', 'GQA', 'MHA']) expect(heads).toContain(kind);

    const batch = texts(charts['batch.svg']!);
    expect(batch).toContain('batch size B');
    expect(batch).toContain('throughput (tokens/s)');
    expect(batch).toContain('5,882');
    expect(markItems(charts['batch.svg']!, 'bar')).toBe(4);
  });

  test('deterministic: the same report gives the same SVG, also when rendered concurrently', async () => {
    const first = await rendered;
    const [a, b] = await Promise.all([renderCharts(sampleReport()), renderCharts(sampleReport())]);
    expect(a).toEqual(first);
    expect(b).toEqual(first);
    // Nothing time- or run-dependent leaks in (the report date is not drawn).
    for (const svg of Object.values(first)) expect(svg).not.toContain('2025-01-02');
  });

  test('omits charts of missing or skipped scenarios', async () => {
    const report = sampleReport();
    expect(Object.keys(await renderCharts(without(report, 'context')))).not.toContain(
      'context-step-time.svg',
    );
    const skipped = await renderCharts(skipping(skipping(report, 'heads'), 'batch'));
    expect(Object.keys(skipped).sort()).toEqual([
      'capacity.svg',
      'context-step-time.svg',
      'speedup.svg',
    ]);
    // Their speedups go too: a skipped scenario has no numbers to show.
    expect(texts(skipped['speedup.svg']!)).not.toContain('batch: batch8Speedup');
  });

  test('no speedup chart without speedups, no charts at all for an empty report', async () => {
    const report = sampleReport();
    for (const s of report.scenarios) s.derived = {};
    expect(Object.keys(await renderCharts(report))).not.toContain('speedup.svg');
    expect(await renderCharts({ ...report, scenarios: [] })).toEqual({});
  });

  test('planCharts names the same files renderCharts renders', async () => {
    const names = planCharts(sampleReport()).map((p) => p.file);
    expect(names.sort()).toEqual(Object.keys(await rendered).sort());
  });
});

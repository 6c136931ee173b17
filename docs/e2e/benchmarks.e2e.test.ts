// The Benchmarks page of the BUILT docs site in Debian's Chromium: it shows its report as
// latest.md does (one formatter), with the noise verdict, the machine's limits, kvkit beside its
// peers with the floors, and the history chart; and "Run it in your browser" times the seed
// scenario's two loops in the page, beside the report's numbers (compared with latest.md's
// rendering of the report the page names, read here, not from the page), and on request the gpt
// scenario's schedule at its quick sizes, after checking its cached step's logits against the
// no-cache forward's. Serves
// docs/.vitepress/dist with site.ts.
import { resolve } from 'node:path';
import { readReport, renderMarkdown } from '@kvkit/bench';
import type { Page } from 'playwright-core';
import { describe, expect, test } from 'vitest';
import { docsDir, useSite } from './site.ts';

const site = useSite();
const openPage = () => site.openPage();

/** `mean ± std` as kvbench's %timeit line writes it. */
const meanStd = /^[\d.]+ (s|ms|µs|ns) ± [\d.]+ (s|ms|µs|ns)$/;

/** The cells of a table's body rows, with each row's raw `data-value`. */
async function rows(page: Page, testId: string) {
  return page
    .getByTestId(testId)
    .locator('tbody tr')
    .evaluateAll((trs) =>
      trs.map((tr) => ({
        cells: [...tr.querySelectorAll('td')].map((td) => td.textContent!.trim()),
        value: Number(tr.getAttribute('data-value')),
      })),
    );
}

/** Waits for the run the click started to end, and fails with the page's error if it failed. */
async function settled(page: Page): Promise<void> {
  const bench = page.getByTestId('browser-bench');
  await expect
    .poll(() => bench.getAttribute('data-status'), { timeout: 110_000, interval: 500 })
    .not.toBe('running');
  const error = await page.getByTestId('browser-bench-error').count();
  expect(
    await bench.getAttribute('data-status'),
    error ? await page.getByTestId('browser-bench-error').textContent() : '',
  ).toBe('done');
}

describe('the Benchmarks page', () => {
  test('shows its report as latest.md does: noise verdict, machine, peers with floors, history', async () => {
    const { page, problems } = await openPage();
    await page.goto(`${site.origin}/benchmarks/`, { waitUntil: 'load' });
    const source = page.getByTestId('benchmark-source');
    const file = (await source.locator('code').last().textContent())!.trim();
    const report = readReport(resolve(docsDir, '..', file));
    const md = renderMarkdown(report);

    const noise = page.getByTestId('benchmark-noise');
    expect(await noise.getAttribute('data-noisy')).toBe(String(report.noise!.noisy));
    expect(await noise.textContent()).toContain(report.noise!.noisy ? 'Noisy run' : 'Quiet run');
    expect(await page.getByTestId('benchmark-machine').textContent()).toMatch(/read bandwidth \d/);

    const rows = async (testId: string) =>
      page
        .getByTestId(testId)
        .locator('tbody tr')
        .evaluateAll((trs) =>
          trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent!.trim())),
        );
    const peers = await rows('benchmark-peers');
    expect(peers.length).toBeGreaterThanOrEqual(2);
    expect(peers[0]![0]).toBe('seed cached loop');
    const seed = await rows('benchmark-table-seed');
    for (const row of [...peers, ...seed]) expect(md).toContain(`| ${row.join(' | ')} |`);
    expect(seed.some((r) => r.some((c) => /\((bandwidth|flops)\)$/.test(c)))).toBe(true); // floors shown

    const history = page.getByTestId('benchmark-history');
    expect(await history.locator('svg').count()).toBe(1);
    expect(await page.locator('figure[data-chart="peers.svg"] svg').count()).toBe(1);
    expect(problems).toEqual([]);
    await page.close();
  });

  test("Run it in your browser: times the seed scenario here, beside the report's numbers, and the gpt scenario (quick sizes) on request", async () => {
    const { page, problems } = await openPage();
    await page.goto(`${site.origin}/benchmarks/`, { waitUntil: 'load' });
    const file = (await page
      .getByTestId('benchmark-source')
      .locator('code')
      .last()
      .textContent())!.trim();
    const report = readReport(resolve(docsDir, '..', file));
    const md = renderMarkdown(report);

    await page.getByTestId('browser-bench-seed').click();
    await settled(page);
    const seed = await rows(page, 'browser-bench-seed-table');
    expect(seed.map((r) => r.cells[0])).toEqual(['cached loop', 'uncached loop', 'speedup']);
    const [cached, uncached, speedup] = seed as [
      (typeof seed)[0],
      (typeof seed)[0],
      (typeof seed)[0],
    ];
    // The report's column: latest.md's %timeit lines of the same report.
    expect(md).toContain(`cached:   ${cached.cells[1]} per loop`);
    expect(md).toContain(`uncached: ${uncached.cells[1]} per loop`);
    expect(md).toContain(`speedup: ${speedup.cells[1]}`);
    // The browser's column: real timings, and the speedup is their ratio.
    for (const r of [cached, uncached]) {
      expect(r.cells[2]).toMatch(meanStd);
      expect(r.value).toBeGreaterThan(0);
    }
    expect(speedup.value).toBeCloseTo(uncached.value / cached.value, 10);
    expect(speedup.value).toBeGreaterThan(1); // the cached loop does a fraction of the work
    expect(await page.getByTestId('browser-bench-backend').textContent()).toMatch(
      /^tfjs wasm (simd|threaded-simd)$/,
    );

    await page.getByTestId('browser-bench-gpt').click();
    await settled(page);
    const check = (await page.getByTestId('browser-bench-gpt-check').textContent()) ?? '';
    const diff = Number(/max \|difference\| (\d(?:\.\d+)?e[+-]\d+)/.exec(check)?.[1]);
    expect(diff).toBeLessThan(1e-5);
    const gpt = await rows(page, 'browser-bench-gpt-table');
    // The quick sizes' contexts (gptSizes.quick: t = 16, 32, 63; the forward at t = 32).
    expect(gpt.map((r) => r.cells[0])).toEqual([
      'cached step',
      'cached step',
      'cached step',
      'no-cache forward',
      'speedup (no-cache forward / cached step, same t)',
    ]);
    expect(gpt.slice(0, 3).map((r) => /\(t=(\d+),/.exec(r.cells[2]!)?.[1])).toEqual([
      '16',
      '32',
      '63',
    ]);
    expect(gpt[3]!.cells[2]).toMatch(/ \(t=32\)$/);
    for (const r of gpt.slice(0, 4)) expect(r.cells[2]!.split(' (')[0]).toMatch(meanStd);
    expect(gpt[4]!.value).toBeCloseTo(gpt[3]!.value / gpt[1]!.value, 10);
    // The report's column: its own gpt run where it has one, else nothing to stand beside.
    const reportGpt = report.scenarios.find((sc) => sc.id === 'gpt' && !sc.skipped);
    if (reportGpt) {
      for (const r of gpt.slice(0, 4)) expect(md).toContain(r.cells[1]!.split(' (')[0]);
    } else {
      expect(gpt.map((r) => r.cells[1])).toEqual(['—', '—', '—', '—', '—']);
      expect(check).toContain('has no gpt scenario run');
    }
    expect(problems).toEqual([]);
    await page.close();
  });
});

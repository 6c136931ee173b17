// The Benchmarks page of the BUILT docs site in Debian's Chromium: it shows its report as
// latest.md does (one formatter), with the noise verdict, the machine's limits, kvkit beside its
// peers with the floors, and the history chart. Serves docs/.vitepress/dist with site.ts.
import type { Server } from 'node:http';
import { resolve } from 'node:path';
import { readReport, renderMarkdown } from '@kvkit/bench';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { docsDir, launchBrowser, openPage as open, startServer, stopServer } from './site.ts';

let server: Server | undefined;
let origin = '';
let browser: Browser | undefined;

beforeAll(async () => {
  browser = await launchBrowser();
  ({ server, origin } = await startServer());
});

afterAll(async () => {
  await browser?.close();
  await stopServer(server);
});

const openPage = () => open(browser);

describe('the Benchmarks page', () => {
  test('shows its report as latest.md does: noise verdict, machine, peers with floors, history', async () => {
    const { page, problems } = await openPage();
    await page.goto(`${origin}/benchmarks/`, { waitUntil: 'load' });
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
});

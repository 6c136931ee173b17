// Smoke test of the BUILT docs site in Debian's Chromium: the home page renders, and the
// getting-started page runs the seed notebook's first forward pass on the tfjs wasm backend.
// Serves docs/.vitepress/dist with the static server in site.ts.
import type { Page } from 'playwright-core';
import { describe, expect, test } from 'vitest';
import { useSite } from './site.ts';

/** The first row the seed notebook prints for `mha.forward(input)` (cell 5). */
const expectedFirstRow = 'tensor([[[-0.2179,  0.4357,  0.3333,  0.0294, -0.0310, -0.0278],';

const site = useSite();
const openPage = () => site.openPage();

/** Waits until the live example finishes (or fails) and returns its root's status. */
async function liveStatus(page: Page): Promise<string | null> {
  const root = page.getByTestId('live-attention');
  await page.waitForFunction(
    () =>
      ['done', 'error'].includes(
        document.querySelector('[data-testid="live-attention"]')?.getAttribute('data-status') ?? '',
      ),
    undefined,
    { timeout: 90_000 },
  );
  return root.getAttribute('data-status');
}

async function expectLiveOutput(page: Page, problems: string[], urls: string[]): Promise<void> {
  const status = await liveStatus(page);
  const error = status === 'error' ? await page.getByTestId('live-error').textContent() : '';
  expect(status, `LiveAttention failed: ${error}\n${problems.join('\n')}`).toBe('done');
  const output = (await page.getByTestId('live-output').textContent()) ?? '';
  expect(output.startsWith(expectedFirstRow), `live output:\n${output}`).toBe(true);
  expect(output.split('\n')).toHaveLength(17); // 2 batches of 8 rows, and the blank line between
  expect(await page.getByTestId('live-cached').textContent()).toContain(
    'allclose to the full pass: true',
  );
  expect(await page.getByTestId('live-attention').textContent()).toContain('wasm');
  expect(
    urls.some((u) => /\/tfjs-wasm\/tfjs-backend-wasm[-a-z]*\.wasm$/.test(u)),
    urls.join('\n'),
  ).toBe(true);
}

describe('the built docs site', () => {
  test('home page: title and hero', async () => {
    const { page, problems } = await openPage();
    await page.goto(`${site.origin}/`, { waitUntil: 'load' });
    expect(await page.title()).toContain('kvkit');
    await expect.poll(() => page.locator('.VPHero .name').textContent()).toContain('kvkit');
    expect(await page.locator('.VPHero .text').textContent()).toContain(
      'KV caching for transformer attention on TensorFlow.js',
    );
    expect(await page.locator('.VPFeature').count()).toBeGreaterThanOrEqual(3);
    expect(await page.locator('a.VPButton[href$="/guide/getting-started.html"]').count()).toBe(1);
    await page.waitForLoadState('networkidle');
    expect(problems).toEqual([]);
    await page.close();
  });

  test('getting started: the live example reproduces the notebook on the wasm backend', async () => {
    const { page, problems, urls } = await openPage();
    await page.goto(`${site.origin}/guide/getting-started.html`, { waitUntil: 'load' });
    expect(await page.title()).toContain('Getting started');
    await expectLiveOutput(page, problems, urls);
    expect(problems).toEqual([]);
    await page.close();
  });

  test('client-side navigation from the hero button runs the live example too', async () => {
    const { page, problems, urls } = await openPage();
    await page.goto(`${site.origin}/`, { waitUntil: 'load' });
    await page.locator('a.VPButton', { hasText: 'Get started' }).click();
    await page.waitForURL('**/guide/getting-started.html');
    await expectLiveOutput(page, problems, urls);
    expect(problems).toEqual([]);
    await page.close();
  });

  test("the demo's copy in the site runs, and links back to the docs", async () => {
    const { page, problems } = await openPage();
    await page.goto(`${site.origin}/demo/`, { waitUntil: 'load' });
    await page.waitForSelector('body[data-status="ready"], body[data-status="error"]', {
      state: 'attached',
      timeout: 60_000,
    });
    expect(await page.getAttribute('body', 'data-status')).toBe('ready');
    // No COOP/COEP headers here: the page is not cross-origin isolated, so no threads.
    expect(await page.getByTestId('backend').getAttribute('data-binary')).toBe('simd');
    expect(await page.getByRole('link', { name: 'Docs' }).getAttribute('href')).toBe('../');
    expect(await page.getByRole('link', { name: 'Seed notebook' }).getAttribute('href')).toBe(
      '../guide/seed-notebook.html',
    );
    await page.getByTestId('cache-step').click();
    expect(await page.getByTestId('cache-length-0').getAttribute('data-length')).toBe('3');
    expect(problems).toEqual([]);
    await page.close();
  });

  test('the seed notebook page shows all 20 cells, with their saved outputs', async () => {
    const { page, problems } = await openPage();
    await page.goto(`${site.origin}/guide/seed-notebook.html`, { waitUntil: 'load' });
    const cells = page.locator('[data-testid="seed-notebook"] [data-cell]');
    expect(await cells.count()).toBe(20);
    expect(await cells.nth(4).locator('.seed-notebook__output').textContent()).toContain(
      expectedFirstRow,
    );
    expect(problems).toEqual([]);
    await page.close();
  });
});

// The built docs site, every page of it, in Debian's headless Chromium:
// - no dead internal link: the crawl starts at the home page and follows every internal <a href>
//   it renders (nav, sidebar, content, footer); each one must reach a file of the build, and a
//   `#fragment` must name an element of the page it points to;
// - at 1280 px, no code block and no table overflows: a code block's lines fit its box (no
//   sideways scrolling inside a sample), a table fits or scrolls inside its own box, neither
//   runs past the content column, charts keep readable text, and no page scrolls sideways;
// - at 390 px (a phone), no page scrolls sideways, and the benchmark charts keep their text at
//   a readable size (they scroll inside their own box instead of shrinking).
import type { Server } from 'node:http';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fileFor, launchBrowser, openPage, startServer, stopServer } from './site.ts';

/** Smallest on-screen size, in CSS px, of a chart's text at 390 px. */
const minChartTextPx = 10;

let server: Server | undefined;
let origin = '';
let browser: Browser | undefined;

interface PageScan {
  /** Internal links: the href as written and the URL it resolves to. */
  links: { href: string; url: string }[];
  ids: string[];
  /** Code blocks and tables that do not fit (only meaningful at 1280 px). */
  overflows: string[];
  /** Sideways page scrolling and charts with unreadable text (checked at both widths). */
  layout: string[];
  blocks: number;
  tables: number;
  /** Tables wider than the column that scroll inside their own box. */
  scrolling: number;
}

/** Runs in the page: links, ids, every code block or table that does not fit, layout problems. */
function scan(minPx: number): PageScan {
  const layout = [...document.querySelectorAll('.benchmark-chart svg')].flatMap((svg) => {
    const viewBox = (svg as SVGSVGElement).viewBox.baseVal;
    const scale = svg.getBoundingClientRect().width / (viewBox?.width || 1);
    const sizes = [...svg.querySelectorAll('text')].map(
      (t) => Number.parseFloat(getComputedStyle(t).fontSize) * scale,
    );
    const smallest = Math.min(...sizes);
    const chart = svg.closest('[data-chart]')?.getAttribute('data-chart');
    return smallest < minPx
      ? [`chart ${chart}: text ${smallest.toFixed(1)}px on screen (< ${minPx}px)`]
      : [];
  });
  const overflows: string[] = [];
  const column = document.querySelector('.vp-doc');
  const colRight = column ? column.getBoundingClientRect().right : window.innerWidth;
  const label = (el: Element) =>
    (el.textContent ?? '').trim().split('\n')[0]!.slice(0, 70).replace(/\s+/g, ' ');
  const blocks = [...document.querySelectorAll('.vp-doc div[class*="language-"]')];
  for (const block of blocks) {
    const pre = block.querySelector('pre');
    if (!pre) continue;
    const right = block.getBoundingClientRect().right;
    if (pre.scrollWidth > pre.clientWidth + 1 || right > colRight + 1) {
      overflows.push(
        `code block "${label(pre)}": content ${pre.scrollWidth}px in a ${pre.clientWidth}px box` +
          (right > colRight + 1 ? `, ${Math.round(right - colRight)}px past the column` : ''),
      );
    }
  }
  // A table fits, or scrolls sideways inside its own box (VitePress makes tables scroll
  // containers); it never runs past the column, and never hides columns without a scrollbar.
  const tables = [...document.querySelectorAll('.vp-doc table')] as HTMLTableElement[];
  let scrolling = 0;
  for (const table of tables) {
    const right = table.getBoundingClientRect().right;
    const wider = table.scrollWidth > table.clientWidth + 1;
    const scrolls = ['auto', 'scroll'].includes(getComputedStyle(table).overflowX);
    if (wider && scrolls) scrolling++;
    if ((wider && !scrolls) || right > colRight + 1) {
      overflows.push(
        `table "${label(table.rows[0] ?? table)}": ${table.scrollWidth}px of columns in a ` +
          `${table.clientWidth}px box` +
          (right > colRight + 1 ? `, ${Math.round(right - colRight)}px past the column` : ''),
      );
    }
  }
  const doc = document.documentElement;
  if (doc.scrollWidth > window.innerWidth + 1) {
    layout.push(`the page is ${doc.scrollWidth}px wide in a ${window.innerWidth}px window`);
  }
  const links = [...document.querySelectorAll('a[href]')]
    .map((a) => ({ href: a.getAttribute('href')!, url: (a as HTMLAnchorElement).href }))
    .filter((l) => new URL(l.url).origin === location.origin);
  const ids = [...document.querySelectorAll('[id]')].map((e) => e.id);
  return { links, ids, overflows, layout, blocks: blocks.length, tables: tables.length, scrolling };
}

/** Loads a page and lets VitePress hydrate it (and client components render). */
async function load(page: Page, url: string): Promise<number> {
  const response = await page.goto(url, { waitUntil: 'load' });
  await page.waitForSelector('#app .VPContent', { timeout: 30_000 });
  await page.waitForLoadState('networkidle');
  return response?.status() ?? 0;
}

/** VitePress pages to crawl; the demo (a copy of apps/demo at /demo/) has its own test. */
const isPage = (path: string) =>
  (path.endsWith('/') || path.endsWith('.html')) && !path.startsWith('/demo/');

interface Crawl {
  pages: Map<string, PageScan>;
  dead: string[];
  /** Console errors, uncaught exceptions and failed requests while crawling. */
  errors: string[];
}

let crawl: Crawl;

beforeAll(async () => {
  browser = await launchBrowser();
  ({ server, origin } = await startServer());
  const { page, problems } = await openPage(browser, { width: 1280, height: 900 });
  const pages = new Map<string, PageScan>();
  const dead: string[] = [];
  const queue = ['/'];
  const seen = new Set(queue);
  const anchors: { from: string; href: string; path: string; id: string }[] = [];
  while (queue.length > 0) {
    const path = queue.shift()!;
    const status = await load(page, `${origin}${path}`);
    if (status !== 200) {
      dead.push(`${path}: HTTP ${status}`);
      continue;
    }
    const result = await page.evaluate(scan, minChartTextPx);
    pages.set(path, result);
    for (const { href, url } of result.links) {
      const target = new URL(url);
      if (!fileFor(target.pathname)) {
        dead.push(`${path}: "${href}" -> ${target.pathname} is not in the build`);
        continue;
      }
      if (target.hash.length > 1) {
        anchors.push({ from: path, href, path: target.pathname, id: target.hash.slice(1) });
      }
      if (isPage(target.pathname) && !seen.has(target.pathname)) {
        seen.add(target.pathname);
        queue.push(target.pathname);
      }
    }
  }
  for (const a of anchors) {
    const target = pages.get(a.path);
    if (target && !target.ids.includes(decodeURIComponent(a.id))) {
      dead.push(`${a.from}: "${a.href}" -> no element #${a.id} on ${a.path}`);
    }
  }
  await page.close();
  // Going to the next page aborts VitePress's prefetches of linked pages: not a failure.
  crawl = { pages, dead, errors: problems.filter((p) => !p.endsWith('(net::ERR_ABORTED)')) };
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await stopServer(server);
});

describe('every page of the built docs site', () => {
  test('the crawl reaches every section', () => {
    const paths = [...crawl.pages.keys()];
    for (const section of ['/guide/', '/concepts/', '/api/', '/benchmarks/', '/decisions/']) {
      expect(
        paths.some((p) => p.startsWith(section)),
        paths.join('\n'),
      ).toBe(true);
    }
  });

  test('the docs link the demo and the seed notebook, from the home page and the guide', () => {
    const linksOf = (path: string) =>
      crawl.pages.get(path)?.links.map((l) => new URL(l.url).pathname) ?? [];
    for (const path of ['/', '/guide/getting-started.html']) {
      expect(linksOf(path), path).toContain('/demo/');
    }
    expect(linksOf('/guide/getting-started.html')).toContain('/guide/seed-notebook.html');
    expect(crawl.pages.has('/guide/seed-notebook.html')).toBe(true);
  });

  test('no internal link is dead', () => {
    console.log(`docs crawl: ${crawl.pages.size} pages, ${crawl.dead.length} dead links`);
    expect(crawl.dead).toEqual([]);
  });

  test('no page logs an error or fails a request', () => {
    expect(crawl.errors).toEqual([]);
  });

  test('at 1280 px every code block and table fits its column, charts readable', () => {
    let blocks = 0;
    let tables = 0;
    let scrolling = 0;
    const overflows: string[] = [];
    for (const [path, result] of crawl.pages) {
      blocks += result.blocks;
      tables += result.tables;
      scrolling += result.scrolling;
      overflows.push(...[...result.overflows, ...result.layout].map((o) => `${path}: ${o}`));
    }
    console.log(
      `docs at 1280 px: ${overflows.length} overflowing of ${blocks} code blocks and ${tables} ` +
        `tables (${scrolling} wide tables scroll inside their own box)`,
    );
    expect(blocks).toBeGreaterThan(0);
    expect(overflows).toEqual([]);
  });

  test('at 390 px no page scrolls sideways and charts stay readable', async () => {
    const { page } = await openPage(browser, { width: 390, height: 844 });
    const problems: string[] = [];
    for (const path of crawl.pages.keys()) {
      await load(page, `${origin}${path}`);
      problems.push(
        ...(await page.evaluate(scan, minChartTextPx)).layout.map((p) => `${path}: ${p}`),
      );
    }
    await page.close();
    console.log(`docs at 390 px: ${problems.length} problems`);
    expect(problems).toEqual([]);
  }, 300_000);
});

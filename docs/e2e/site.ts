// What the docs browser tests share: a static server for the built site (docs/.vitepress/dist,
// served as a static host serves a VitePress build, on 127.0.0.1 and a free port), and Debian's
// headless Chromium. Nothing here is downloaded.
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { chromiumArgs, findChromium } from '../../scripts/browser.mjs';

export const docsDir = dirname(dirname(fileURLToPath(import.meta.url)));
export const distDir = join(docsDir, '.vitepress', 'dist');

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
};

/** Maps a URL path to a file in dist, as a static host serves a VitePress build; null if none. */
export function fileFor(urlPath: string): string | null {
  let path: string;
  try {
    path = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  const base = resolve(distDir, `.${path}`);
  if (base !== distDir && !base.startsWith(distDir + sep)) return null;
  const candidates = path.endsWith('/')
    ? [join(base, 'index.html')]
    : [base, `${base}.html`, join(base, 'index.html')];
  return candidates.find((f) => existsSync(f) && statSync(f).isFile()) ?? null;
}

/** Serves dist; unknown paths get 404.html with status 404. */
export function startServer(): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    const urlPath = new URL(req.url ?? '/', 'http://localhost').pathname;
    const file = fileFor(urlPath);
    const notFound = join(distDir, '404.html');
    const served = file ?? (existsSync(notFound) ? notFound : null);
    if (!served || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(served ? 405 : 404).end();
      return;
    }
    res.writeHead(file ? 200 : 404, {
      'Content-Type': contentTypes[extname(served)] ?? 'application/octet-stream',
      'Content-Length': statSync(served).size,
      'Cache-Control': 'no-cache',
    });
    if (req.method === 'HEAD') res.end();
    else createReadStream(served).pipe(res);
  });
  return new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      done({ server, origin: `http://127.0.0.1:${port}` });
    });
  });
}

export function stopServer(server: Server | undefined): Promise<void> {
  return new Promise<void>((done) => (server ? server.close(() => done()) : done()));
}

/** Checks the site is built and Chromium is there, then launches it headless. */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(join(distDir, 'index.html'))) {
    throw new Error(
      `${distDir}/index.html not found: build the site first (pnpm --dir docs build)`,
    );
  }
  const executablePath = findChromium();
  if (!executablePath) {
    throw new Error(
      'Chromium not found (looked for KVKIT_CHROMIUM, /usr/bin/chromium, /usr/bin/chromium-browser, ' +
        '/usr/bin/google-chrome). On Debian/Ubuntu: sudo apt-get install -y chromium',
    );
  }
  return chromium.launch({ executablePath, args: chromiumArgs, headless: true });
}

/** A new page that records console errors, uncaught exceptions and failed requests. */
export async function openPage(
  browser: Browser | undefined,
  viewport?: { width: number; height: number },
): Promise<{ page: Page; problems: string[]; urls: string[] }> {
  if (!browser) throw new Error('the browser did not start');
  const page = await browser.newPage(viewport ? { viewport } : {});
  const problems: string[] = [];
  const urls: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console.error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.stack ?? e.message}`));
  page.on('requestfailed', (r) =>
    problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`),
  );
  page.on('response', (r) => {
    urls.push(r.url());
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  return { page, problems, urls };
}

/**
 * The built site and Chromium for one test file: started before its tests, stopped after them.
 * `site.origin` is the server's address once they run; `site.openPage()` opens a page that
 * records problems (see `openPage`).
 */
export function useSite(): {
  readonly origin: string;
  openPage: (viewport?: { width: number; height: number }) => ReturnType<typeof openPage>;
} {
  let server: Server | undefined;
  let browser: Browser | undefined;
  const site = {
    origin: '',
    openPage: (viewport?: { width: number; height: number }) => openPage(browser, viewport),
  };
  beforeAll(async () => {
    browser = await launchBrowser();
    ({ server, origin: site.origin } = await startServer());
  });
  afterAll(async () => {
    await browser?.close();
    await stopServer(server);
  });
  return site;
}

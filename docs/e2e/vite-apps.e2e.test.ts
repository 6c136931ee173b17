// A fresh Vite 7 app and a fresh Vite 8 app, made outside the repository by following the
// "Install from a clone" page (docs/guide/install-from-a-clone.md) and nothing else: its
// shell block of setup commands, its `<!-- vite-app: <file> -->` blocks as the app's files,
// and its `<!-- vite-app: output -->` block as what the page must show. Each app gets the
// packed tarballs (scripts/pack.mjs, what `npm run pack` makes) and Vite from the npm registry,
// a minified `vite build`, and `vite preview` with the page's COOP/COEP headers; Debian's
// Chromium then has to show `setSeed(42); rand([1])` = 0.8823 on the threaded wasm build.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { packPackages, publishedPackages } from '../../scripts/pack.mjs';
import { cleanEnv, run, tail } from '../../scripts/smoke-lib.mjs';
import { docsDir, launchBrowser, openPage } from './site.ts';

/** The Vite versions the app is built with: the last 7.x and the workspace's 8.x. */
const viteVersions = ['7.3.8', '8.3.8'];

const guide = readFileSync(join(docsDir, 'guide', 'install-from-a-clone.md'), 'utf8');

/** The fenced blocks of the page marked `<!-- vite-app: <name> -->`, by name. */
function markedBlocks(source: string): Map<string, string> {
  const blocks = new Map<string, string>();
  const re = /<!-- vite-app: (\S+) -->\n```\w*\n([\s\S]*?)\n```/g;
  for (const m of source.matchAll(re)) blocks.set(m[1]!, `${m[2]!}\n`);
  return blocks;
}

/** The page's shell block right after "In a Vite app": the commands that make the app. */
function setupCommands(source: string): string[] {
  const section = source.slice(source.indexOf('## In a Vite app'));
  const block = /```sh\n([\s\S]*?)\n```/.exec(section)?.[1] ?? '';
  return block.split('\n').filter((line) => line.trim() !== '');
}

const blocks = markedBlocks(guide);
const files = [...blocks].filter(([name]) => name !== 'output');
const expectedOutput = blocks.get('output')?.trimEnd();

let browser: Browser | undefined;
let tmp = '';
let tarballDir = '';

beforeAll(async () => {
  const unbuilt = publishedPackages().filter((p) => !p.built);
  if (unbuilt.length > 0) {
    throw new Error(`build the packages first: ${unbuilt.map((p) => p.name).join(', ')}`);
  }
  tmp = mkdtempSync(join(tmpdir(), 'kvkit-vite-apps-'));
  tarballDir = join(tmp, 'tarballs');
  const packed = packPackages(tarballDir);
  const failed = packed.filter((p) => !p.tarball);
  if (failed.length > 0) throw new Error(failed.map((p) => p.error).join('\n'));
  browser = await launchBrowser();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the "Install from a clone" page', () => {
  test('has the setup commands, the three files and the output', () => {
    expect(setupCommands(guide)).toEqual([
      'npm init -y',
      'npm pkg set type=module',
      'npm install --save-dev vite',
      'npm install ../kvkit/tarballs/kvkit-tensor-utils-0.0.0.tgz',
    ]);
    expect(files.map(([name]) => name).sort()).toEqual([
      'index.html',
      'src/main.ts',
      'vite.config.ts',
    ]);
    expect(expectedOutput).toBe('tensor([0.8823])\nthreaded-simd binary');
  });

  test.each(viteVersions)(
    'a fresh Vite %s app built from it prints 0.8823 on the threaded build',
    async (viteVersion) => {
      const app = join(tmp, `vite-${viteVersion}`);
      mkdirSync(app);
      const env = cleanEnv();
      for (const line of setupCommands(guide)) {
        // The page's commands, with Vite pinned and the tarballs where this test packed them.
        const args = line
          .replace('../kvkit/tarballs/', `${tarballDir}/`)
          .replace(/ vite$/, ` vite@${viteVersion}`)
          .split(/\s+/);
        if (args[1] === 'install') args.push('--no-audit', '--no-fund');
        const r = run(args[0]!, args.slice(1), { cwd: app, env, timeout: 180_000 });
        expect(r.ok, `${line}\n${tail(r.stderr || String(r.error))}`).toBe(true);
      }
      for (const [name, text] of files) {
        mkdirSync(dirname(join(app, name)), { recursive: true });
        writeFileSync(join(app, name), text);
      }
      const vite = join(app, 'node_modules', '.bin', 'vite');
      expect(run(vite, ['--version'], { cwd: app, env }).stdout).toContain(`vite/${viteVersion}`);

      const build = run(vite, ['build'], { cwd: app, env, timeout: 120_000 });
      expect(build.ok, tail(build.stderr || build.stdout)).toBe(true);
      expect(`${build.stdout}${build.stderr}`).not.toContain('kvkitWasm:'); // no version warning
      expect(build.stdout).toMatch(/tfjs-wasm\/tfjs-backend-wasm-threaded-simd\.wasm/);

      const { origin, stop } = await preview(vite, app, env);
      try {
        const { page, problems } = await openPage(browser, { width: 800, height: 600 });
        await page.goto(`${origin}/`);
        await page.waitForFunction(
          () => document.querySelector('#out')?.textContent !== 'loading…',
          undefined,
          {
            timeout: 60_000,
          },
        );
        const shown = await page.textContent('#out');
        expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
        expect(shown).toBe(expectedOutput);
        expect(problems).toEqual([]);
        await page.close();
      } finally {
        await stop();
      }
    },
    300_000,
  );
});

/** `vite preview` on a free port of 127.0.0.1, as the page says (plus host and port flags). */
async function preview(
  vite: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<{ origin: string; stop: () => Promise<void> }> {
  const { spawn } = await import('node:child_process');
  const child = spawn(vite, ['preview', '--host', '127.0.0.1', '--port', '0'], {
    cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const origin = await new Promise<string>((done, fail) => {
    const timer = setTimeout(
      () => fail(new Error(`vite preview did not start:\n${output}`)),
      30_000,
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      // biome-ignore lint/suspicious/noControlCharactersInRegex: vite colours its output
      const url = /http:\/\/127\.0\.0\.1:\d+/.exec(output.replace(/\x1b\[[0-9;]*m/g, ''));
      if (url) {
        clearTimeout(timer);
        done(url[0]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => fail(new Error(`vite preview exited (${code}):\n${output}`)));
  });
  const stop = () =>
    new Promise<void>((done) => {
      if (child.exitCode !== null) return done();
      child.once('exit', () => done());
      child.kill('SIGTERM');
    });
  return { origin, stop };
}

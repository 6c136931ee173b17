#!/usr/bin/env node
// Packs every published @kvkit package into one folder of tarballs, the way npm would get them
// from the registry: `pnpm pack` rewrites `workspace:^` to real versions. Until the packages are
// published, this is how to install kvkit in a project of your own ("Install from a clone" in the
// docs):
//
//   npm run pack                  build the packages, then pack them into ./tarballs/
//   npm run pack -- <folder>      ... into <folder>
//
// then, in your project: npm install <folder>/*.tgz
//
// The smoke tests (scripts/pack-smoke.mjs, scripts/vite-apps-smoke.mjs) import packPackages()
// from here, so they install exactly what this command produces.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = dirname(dirname(fileURLToPath(import.meta.url)));

/** The published packages, bottom layer first. */
export const packageDirs = ['tensor-utils', 'kv-cache', 'attention', 'bench'];

/** `pnpm` from PATH, else the one scripts/kvkit.mjs installs into .tools/. */
export function pnpmEnv() {
  const toolsBin = join(root, '.tools', 'node_modules', '.bin');
  return { ...process.env, PATH: `${process.env.PATH ?? ''}${delimiter}${toolsBin}` };
}

/** name, version, folder and whether dist/ is built, for each published package. */
export function publishedPackages() {
  return packageDirs.map((dir) => {
    const pkgDir = join(root, 'packages', dir);
    const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
    return {
      dir: pkgDir,
      name: pkg.name,
      version: pkg.version,
      isPublic: pkg.private !== true,
      built: existsSync(join(pkgDir, 'dist', 'index.js')),
    };
  });
}

/**
 * Packs every published package (already built) into `destDir`, which is emptied of old
 * tarballs first. Returns one entry per package: its tarball path, or the error text.
 */
export function packPackages(destDir) {
  mkdirSync(destDir, { recursive: true });
  for (const f of readdirSync(destDir).filter((n) => n.endsWith('.tgz'))) {
    rmSync(join(destDir, f));
  }
  return publishedPackages().map((p) => {
    const before = new Set(readdirSync(destDir));
    const r = spawnSync('pnpm', ['pack', '--pack-destination', destDir], {
      cwd: p.dir,
      env: pnpmEnv(),
      encoding: 'utf8',
    });
    const made = readdirSync(destDir).filter((f) => f.endsWith('.tgz') && !before.has(f));
    if (r.error || r.status !== 0 || made.length !== 1) {
      const why = r.error ? String(r.error) : (r.stderr || r.stdout).trim().split('\n').slice(-20);
      return { ...p, tarball: null, error: `pnpm pack failed: ${[why].flat().join('\n')}` };
    }
    return { ...p, tarball: join(destDir, made[0]), error: null };
  });
}

function main() {
  const dest = resolve(process.argv[2] ?? join(root, 'tarballs'));
  console.log('\n$ pnpm exec turbo run build --filter=./packages/*');
  const build = spawnSync(
    'pnpm',
    ['exec', 'turbo', 'run', 'build', '--filter=./packages/*', '--output-logs=errors-only'],
    { cwd: root, env: pnpmEnv(), stdio: 'inherit' },
  );
  if (build.status !== 0) {
    console.error('kvkit pack: the build failed');
    process.exit(build.status ?? 1);
  }
  const packed = packPackages(dest);
  for (const p of packed) console.log(p.tarball ? `  ${p.tarball}` : `  ${p.name}: ${p.error}`);
  if (packed.some((p) => !p.tarball)) process.exit(1);
  const names = packed.map((p) => p.tarball.slice(dest.length + 1));
  console.log(
    `\nkvkit pack: ${packed.length} packages in ${dest}\n` +
      `Install them in your project with:\n  npm install ${names.map((n) => join(dest, n)).join(' ')}`,
  );
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();

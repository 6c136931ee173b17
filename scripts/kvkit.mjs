#!/usr/bin/env node
// The README's commands: `npm run bench` and `npm test` on a machine with only Node.js 20 and npm.
// Sets up the pinned pnpm (from the npm registry, into .tools/ when it is not on PATH already),
// installs the workspace from the lockfile, then hands over to turbo.
//
//   node scripts/kvkit.mjs setup   install only
//   node scripts/kvkit.mjs bench   + turbo run bench
//   node scripts/kvkit.mjs pack    + build the packages and pack them into tarballs/ (scripts/pack.mjs)
//   node scripts/kvkit.mjs test    + every test, gate and smoke test; ends with `N passed, N failed`
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureChromium } from './browser.mjs';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const pnpmVersion = pkg.packageManager.replace(/^pnpm@/, '');

function run(cmd, args, opts = {}) {
  console.log(`\n$ ${[cmd, ...args].join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    console.error(`kvkit: '${[cmd, ...args].join(' ')}' failed with exit code ${r.status}`);
    process.exit(r.status ?? 1);
  }
}

function versionOf(cmd, env) {
  const r = spawnSync(cmd, ['--version'], { encoding: 'utf8', env });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Puts pnpm@<pinned> on PATH (turbo needs a real `pnpm` binary there), installing it if needed. */
function ensurePnpm() {
  const toolsBin = join(root, '.tools', 'node_modules', '.bin');
  const env = { ...process.env, PATH: `${toolsBin}${delimiter}${process.env.PATH ?? ''}` };
  if (versionOf('pnpm', env) !== pnpmVersion) {
    run('npm', [
      'install',
      '--prefix',
      join(root, '.tools'),
      '--no-save',
      '--no-audit',
      '--no-fund',
      '--no-package-lock',
      `pnpm@${pnpmVersion}`,
    ]);
  }
  if (versionOf('pnpm', env) !== pnpmVersion) {
    console.error(`kvkit: could not set up pnpm ${pnpmVersion}`);
    process.exit(1);
  }
  // Corepack must not try to fetch pnpm itself (it fails on Node 20 without integrity keys).
  env.COREPACK_ENABLE_STRICT = '0';
  return env;
}

/** Sums the vitest JSON reports the test tasks wrote (turbo restores them on cache hits). */
function summarise() {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const reports = [];
  const dirs = [
    root,
    ...['packages', 'apps'].flatMap((d) => listDirs(join(root, d))),
    join(root, 'docs'),
  ];
  for (const dir of dirs) {
    const reportDir = join(dir, '.vitest-reports');
    if (!existsSync(reportDir)) continue;
    for (const f of readdirSync(reportDir).filter((n) => n.endsWith('.json'))) {
      const r = JSON.parse(readFileSync(join(reportDir, f), 'utf8'));
      passed += r.numPassedTests;
      failed += r.numFailedTests;
      skipped += r.numPendingTests + (r.numTodoTests ?? 0);
      reports.push(
        `${join(dir, '.vitest-reports', f).slice(root.length + 1)}: ${r.numPassedTests} passed`,
      );
    }
  }
  console.log(`\n${reports.join('\n')}`);
  console.log(
    `\nkvkit: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`,
  );
  return { passed, failed, skipped };
}

function listDirs(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => join(dir, e.name));
}

const command = process.argv[2] ?? 'test';
const env = ensurePnpm();
const frozen = process.env.CI ? ['--frozen-lockfile'] : ['--frozen-lockfile', '--prefer-offline'];
run('pnpm', ['install', ...frozen], { env });

if (command === 'bench') {
  run('pnpm', ['exec', 'turbo', 'run', 'bench', ...process.argv.slice(3)], { env });
} else if (command === 'pack') {
  run(process.execPath, [join(root, 'scripts', 'pack.mjs'), ...process.argv.slice(3)], { env });
} else if (command === 'test') {
  ensureChromium();
  run(
    'pnpm',
    [
      'exec',
      'turbo',
      'run',
      'build',
      'typecheck',
      'lint',
      'test',
      'check-package',
      'smoke',
      'smoke:pack',
      'e2e',
      '--output-logs=errors-only',
      '--continue=dependencies-successful',
      ...process.argv.slice(3),
    ],
    { env },
  );
  const { failed, passed } = summarise();
  if (failed > 0 || passed === 0) process.exit(1);
} else if (command !== 'setup') {
  console.error(`kvkit: unknown command '${command}' (expected setup, bench, pack or test)`);
  process.exit(2);
}

// Finds Debian's Chromium for the browser smoke tests; never downloads a browser.
// When it is missing and we are root, installs it with apt-get; otherwise says how to.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const chromiumCandidates = [
  process.env.KVKIT_CHROMIUM,
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
].filter(Boolean);

/** The path of a Chromium executable, or null. */
export function findChromium() {
  return chromiumCandidates.find((p) => existsSync(p)) ?? null;
}

export function ensureChromium() {
  if (findChromium()) return findChromium();
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !existsSync('/usr/bin/apt-get')) {
    console.error(
      'kvkit: the browser smoke tests need Chromium, which is not installed.\n' +
        '  On Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y chromium\n' +
        '  Elsewhere: install Chromium or Chrome and set KVKIT_CHROMIUM=/path/to/the/executable',
    );
    process.exit(1);
  }
  console.log('\nkvkit: installing Debian chromium for the browser smoke tests (apt-get)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [
    ['update', '-qq'],
    ['install', '-y', '-qq', '--no-install-recommends', 'chromium'],
  ]) {
    const r = spawnSync('apt-get', args, { stdio: 'inherit', env });
    if (r.status !== 0) {
      console.error(`kvkit: apt-get ${args.join(' ')} failed (exit ${r.status})`);
      process.exit(1);
    }
  }
  const found = findChromium();
  if (!found) {
    console.error('kvkit: chromium was installed but no executable was found');
    process.exit(1);
  }
  return found;
}

/** Flags for headless Chromium as root on a machine with no outside network. */
export const chromiumArgs = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

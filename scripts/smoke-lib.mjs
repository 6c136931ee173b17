// What the install smoke tests share (scripts/pack-smoke.mjs, scripts/vite-apps-smoke.mjs):
// a check recorder that writes a vitest-shaped JSON report (scripts/kvkit.mjs sums it into the
// closing `N passed, N failed` line), a command runner, and a clean environment for npm in a
// project outside the workspace.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Records checks and writes them to `reportPath` as one test each. */
export function createRecorder(label, reportPath) {
  const started = Date.now();
  const results = [];
  return {
    results,
    seconds: () => ((Date.now() - started) / 1000).toFixed(1),
    record(name, ok, detail = '') {
      results.push({ name, ok, detail });
      console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` — ${detail}` : ''}`);
      return ok;
    },
    step(title) {
      console.log(`\n[${label} ${((Date.now() - started) / 1000).toFixed(1)}s] ${title}`);
    },
    writeReport() {
      const passed = results.filter((r) => r.ok).length;
      const failed = results.length - passed;
      mkdirSync(dirname(reportPath), { recursive: true });
      const report = {
        numTotalTests: results.length,
        numPassedTests: passed,
        numFailedTests: failed,
        numPendingTests: 0,
        numTodoTests: 0,
        success: failed === 0 && passed > 0,
        checks: results.map((r) => ({
          name: r.name,
          status: r.ok ? 'passed' : 'failed',
          message: r.detail,
        })),
      };
      writeFileSync(reportPath, `${JSON.stringify(report, null, 2)}\n`);
      return { passed, failed };
    },
  };
}

/** Runs a command, echoing it; returns { ok, stdout, stderr, status, error }. */
export function run(cmd, args, opts = {}) {
  console.log(`  $ ${[cmd, ...args].join(' ')}${opts.cwd ? `   (in ${opts.cwd})` : ''}`);
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  const ok = !r.error && r.status === 0;
  return { ok, status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
}

export function tail(text, lines = 30) {
  return text.trim().split('\n').slice(-lines).join('\n');
}

/**
 * The environment for npm in a temporary project: without the npm_* and pnpm variables the
 * calling `pnpm run`/turbo set (they describe the workspace, not the new project), keeping the
 * settings a user may rely on to reach the registry. The npm cache stays npm's default.
 */
export function cleanEnv() {
  const keep = new Set([
    'npm_config_cache',
    'npm_config_registry',
    'npm_config_userconfig',
    'npm_config_globalconfig',
    'npm_config_proxy',
    'npm_config_https_proxy',
    'npm_config_noproxy',
    'npm_config_strict_ssl',
    'npm_config_cafile',
    'npm_config_prefer_offline',
    'npm_config_offline',
  ]);
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    const lower = k.toLowerCase();
    if ((lower.startsWith('npm_') || lower.startsWith('pnpm_')) && !keep.has(lower)) continue;
    env[k] = v;
  }
  return env;
}

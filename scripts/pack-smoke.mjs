#!/usr/bin/env node
// Pack-and-install smoke test: what a user gets from npm, not what the workspace resolves.
//
// Packs every public package with `pnpm pack` (which rewrites `workspace:^` to real versions),
// installs the tarballs with plain npm into a fresh project under os.tmpdir() (npm adds the
// tfjs peer dependencies from the registry), then runs an ESM script there that imports the
// packages, selects the wasm backend and reproduces the seed notebook's first numbers.
//
// Needs the packages' dist/ (turbo builds them first: `//#smoke:pack` depends on their build).
// Every check counts as one test in .vitest-reports/pack-smoke.json, which scripts/kvkit.mjs
// sums with the vitest reports. Exits non-zero on any failure and keeps the temporary folder.
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const reportPath = join(root, '.vitest-reports', 'pack-smoke.json');
const packageDirs = ['tensor-utils', 'kv-cache', 'attention', 'bench'];

/** torch.rand's first value after torch.manual_seed(42): float32 0x3f61dc66. */
const expectedFirstRand = 0.8822692632675171;
/** The first row the seed notebook prints for CausalSelfAttention's output (cell 5). */
const expectedFirstRow = 'tensor([[[-0.2179,  0.4357,  0.3333,  0.0294, -0.0310, -0.0278],';

/** PyTorch's text for the shipped model, seed 42 (packages/attention/test/fixtures/genesis_char_generation.json). */
const expectedGenesisText = 'And God said unto Jacob.\nAnd Abraham said, Lot I am gave be thee';

const started = Date.now();
const results = [];

function record(name, ok, detail = '') {
  results.push({ name, ok, detail });
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` — ${detail}` : ''}`);
  return ok;
}

function step(title) {
  console.log(`\n[pack-smoke ${((Date.now() - started) / 1000).toFixed(1)}s] ${title}`);
}

/** Runs a command, echoing it; returns { ok, stdout, stderr, status }. */
function run(cmd, args, opts = {}) {
  console.log(`  $ ${[cmd, ...args].join(' ')}${opts.cwd ? `   (in ${opts.cwd})` : ''}`);
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  const ok = !r.error && r.status === 0;
  return { ok, status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
}

function tail(text, lines = 30) {
  return text.trim().split('\n').slice(-lines).join('\n');
}

/**
 * The environment for npm in the temporary project: without the npm_* and pnpm variables the
 * calling `pnpm run`/turbo set (they describe the workspace, not the new project), keeping the
 * settings a user may rely on to reach the registry. The npm cache stays npm's default.
 */
function cleanEnv() {
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

/** `pnpm` from PATH, else the one scripts/kvkit.mjs installs into .tools/. */
function pnpmEnv() {
  const toolsBin = join(root, '.tools', 'node_modules', '.bin');
  return { ...process.env, PATH: `${process.env.PATH ?? ''}${delimiter}${toolsBin}` };
}

function writeReport() {
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
}

// The ESM program run inside the temporary project. It prints one `CHECK <json>` line per check.
const smokeProgram = `
const checks = [];
function check(name, ok, detail = '') {
  checks.push(name);
  console.log('CHECK ' + JSON.stringify({ name, ok: Boolean(ok), detail: String(detail) }));
  return Boolean(ok);
}
async function attempt(name, fn) {
  try {
    const value = await fn();
    check(name, true);
    return value;
  } catch (e) {
    check(name, false, (e && e.stack) || e);
    return undefined;
  }
}

const expectedFirstRand = ${JSON.stringify(expectedFirstRand)};
const expectedFirstRow = ${JSON.stringify(expectedFirstRow)};
const expectedGenesisText = ${JSON.stringify(expectedGenesisText)};

const tu = await attempt('import @kvkit/tensor-utils', () => import('@kvkit/tensor-utils'));
const kv = await attempt('import @kvkit/kv-cache', () => import('@kvkit/kv-cache'));
const att = await attempt('import @kvkit/attention', () => import('@kvkit/attention'));
const bench = await attempt('import @kvkit/bench', () => import('@kvkit/bench'));
const tf = await attempt('import @tensorflow/tfjs-core (peer dependency)', () => import('@tensorflow/tfjs-core'));
for (const [name, mod] of [['@kvkit/kv-cache', kv], ['@kvkit/bench', bench]]) {
  if (mod) check(name + ' has exports', Object.keys(mod).length > 0, Object.keys(mod).join(', '));
}

if (tu && tf) {
  const info = await attempt("initBackend('wasm')", () => tu.initBackend('wasm'));
  if (info) {
    check('backend is wasm', info.backend === 'wasm' && tf.getBackend() === 'wasm',
      'initBackend said ' + JSON.stringify(info) + ", tf.getBackend() is '" + tf.getBackend() + "'");
  }
  tu.setSeed(42);
  const x = tu.rand([2, 8, 6]);
  const first = x.dataSync()[0];
  check('setSeed(42); rand([2, 8, 6]) starts with torch.rand\\'s ' + expectedFirstRand,
    first === expectedFirstRand, 'got ' + first);
  check('rand shape is [2, 8, 6]', JSON.stringify(x.shape) === '[2,8,6]', JSON.stringify(x.shape));

  if (att) {
    check('@kvkit/attention exports CausalSelfAttention and GPT',
      typeof att.CausalSelfAttention === 'function' && typeof att.GPT === 'function',
      Object.keys(att).join(', '));
    // The Getting started page, step by step (docs/guide/getting-started.md).
    const config = { ...att.GPT.getDefaultConfig(), nHead: 1, nEmbd: 6, blockSize: 8 };
    tu.setSeed(42);
    const mha = new att.CausalSelfAttention(config);
    mha.eval();
    const y = await attempt('mha.forward(x) without the cache', () => mha.forward(x));
    if (y) {
      const text = tu.formatTensor(y);
      check('forward output shape is [2, 8, 6]', JSON.stringify(y.shape) === '[2,8,6]', JSON.stringify(y.shape));
      check("formatTensor(y)'s first row is the notebook's", text.startsWith(expectedFirstRow),
        'got\\n  ' + text.split('\\n')[0] + '\\nexpected\\n  ' + expectedFirstRow);
      const outputs = await attempt('prefill 3 tokens, then decode 5 one at a time with the KV cache', () => {
        const outs = [mha.forward(tf.slice(x, [0, 0, 0], [2, 3, 6]), { useKvCache: true, startPos: 0 })];
        for (let i = 3; i < 8; i++) {
          outs.push(mha.forward(tf.slice(x, [0, i, 0], [2, 1, 6]), { useKvCache: true, startPos: i }));
        }
        return outs;
      });
      if (outputs) {
        check('prefill returns [2, 3, 6], each decode step [2, 1, 6]',
          outputs.map((o) => o.shape.join('x')).join(' ') === '2x3x6 2x1x6 2x1x6 2x1x6 2x1x6 2x1x6',
          outputs.map((o) => JSON.stringify(o.shape)).join(' '));
        const joined = tf.concat(outputs, 1);
        check('cached outputs allclose to the full forward pass', tu.allclose(joined, y));
        const cacheK = mha.cacheK;
        check("mha.cacheK shape is [64, 1, 8, 6], the notebook's cache_k shape",
          JSON.stringify(cacheK?.shape) === '[64,1,8,6]', JSON.stringify(cacheK?.shape));
      }
    }
    // The Generating text page: the shipped model (a file under the package's models/ export)
    // and GPT-2's tokenizer (the js-tiktoken dependency), as installed from the tarball.
    const loaded = await attempt('loadCharModel(the shipped models/genesis-char.safetensors)', () =>
      att.loadCharModel(import.meta.resolve('@kvkit/attention/models/genesis-char.safetensors')));
    if (loaded) {
      const prompt = loaded.tokenizer.encode('And God said');
      const result = await attempt('generate 52 sampled tokens with the cache (seed 42)', () =>
        loaded.model.generate([prompt], { maxNewTokens: 52, doSample: true, temperature: 0.8, topK: 10, seed: 42 }));
      if (result) {
        const text = loaded.tokenizer.decode(result.tokens[0]);
        check("the generated text is PyTorch's for the same seed", text === expectedGenesisText,
          'got ' + JSON.stringify(text));
      }
    }
    const gpt2 = await attempt('loadGpt2Tokenizer()', () => att.loadGpt2Tokenizer());
    if (gpt2) {
      const ids = gpt2.encode('Hello, world!');
      check("GPT-2's BPE encodes 'Hello, world!' as [15496, 11, 995, 0]", ids.join() === '15496,11,995,0', ids.join());
    }
  }
}
`;

let tmp;
let failedHard = false;
try {
  step('checking the built packages');
  const packages = [];
  for (const dir of packageDirs) {
    const pkgDir = join(root, 'packages', dir);
    const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
    const built = existsSync(join(pkgDir, 'dist', 'index.js'));
    record(
      `${pkg.name} is public and built`,
      pkg.private !== true && built,
      built
        ? ''
        : `${relative(root, join(pkgDir, 'dist', 'index.js'))} is missing: run \`pnpm exec turbo run build\``,
    );
    packages.push({ dir: pkgDir, name: pkg.name, version: pkg.version });
  }
  if (results.some((r) => !r.ok)) throw new Error('a package is not built');

  tmp = mkdtempSync(join(tmpdir(), 'kvkit-pack-smoke-'));
  const tarballDir = join(tmp, 'tarballs');
  const projectDir = join(tmp, 'project');
  mkdirSync(tarballDir);
  mkdirSync(projectDir);

  step(`packing ${packages.length} packages into ${tarballDir}`);
  const tarballs = [];
  for (const p of packages) {
    const before = new Set(readdirSync(tarballDir));
    const r = run('pnpm', ['pack', '--pack-destination', tarballDir], {
      cwd: p.dir,
      env: pnpmEnv(),
    });
    const made = readdirSync(tarballDir).filter((f) => f.endsWith('.tgz') && !before.has(f));
    if (
      !record(
        `pnpm pack ${p.name}`,
        r.ok && made.length === 1,
        r.ok ? made.join(', ') : tail(r.stderr || r.stdout || String(r.error)),
      )
    ) {
      continue;
    }
    const tarball = join(tarballDir, made[0]);
    tarballs.push(tarball);
    // What npm will see: the manifest inside the tarball, and the files it ships.
    const manifest = run('tar', ['-xzOf', tarball, 'package/package.json']);
    const listing = run('tar', ['-tzf', tarball]);
    const packed = manifest.ok ? JSON.parse(manifest.stdout) : {};
    const deps = { ...packed.dependencies, ...packed.peerDependencies };
    const workspaceDeps = Object.entries(deps).filter(([, v]) =>
      String(v).startsWith('workspace:'),
    );
    const files = listing.stdout.split('\n').filter(Boolean);
    const problems = [
      !manifest.ok && `cannot read package/package.json: ${tail(manifest.stderr)}`,
      workspaceDeps.length > 0 &&
        `workspace: specifiers left: ${JSON.stringify(Object.fromEntries(workspaceDeps))}`,
      !files.includes('package/dist/index.js') && 'package/dist/index.js is missing',
      ...files.filter((f) => /\.test\.ts$/.test(f)).map((f) => `ships a test file: ${f}`),
    ].filter(Boolean);
    record(
      `${p.name} tarball: real versions, dist/index.js, no test files`,
      problems.length === 0,
      problems.join('; '),
    );
  }
  if (tarballs.length !== packages.length) throw new Error('packing failed');

  step(`creating a fresh project in ${projectDir}`);
  const env = cleanEnv();
  let r = run('npm', ['init', '-y'], { cwd: projectDir, env });
  if (!record('npm init -y', r.ok, r.ok ? '' : tail(r.stderr))) throw new Error('npm init failed');
  const projectPkgPath = join(projectDir, 'package.json');
  const projectPkg = JSON.parse(readFileSync(projectPkgPath, 'utf8'));
  projectPkg.type = 'module';
  projectPkg.private = true;
  writeFileSync(projectPkgPath, `${JSON.stringify(projectPkg, null, 2)}\n`);

  step('installing the tarballs with npm (tfjs peer dependencies come from the registry)');
  r = run('npm', ['install', '--no-audit', '--no-fund', ...tarballs], {
    cwd: projectDir,
    env,
    timeout: 150_000,
  });
  if (r.stdout.trim()) console.log(tail(r.stdout, 10).replace(/^/gm, '    '));
  if (
    !record('npm install <the four tarballs>', r.ok, r.ok ? '' : tail(r.stderr || String(r.error)))
  ) {
    throw new Error('npm install failed');
  }
  // Every @kvkit package must come from our tarballs, never from the registry.
  const lock = JSON.parse(readFileSync(join(projectDir, 'package-lock.json'), 'utf8'));
  const kvkitEntries = Object.entries(lock.packages ?? {}).filter(([k]) =>
    /(^|\/)node_modules\/@kvkit\//.test(k),
  );
  const fromRegistry = kvkitEntries.filter(
    ([, v]) => !String(v.resolved ?? '').startsWith('file:'),
  );
  record(
    '@kvkit packages installed once each, from the tarballs',
    kvkitEntries.length === packages.length && fromRegistry.length === 0,
    `${kvkitEntries.map(([k, v]) => `${k} <- ${v.resolved}`).join('; ')}`,
  );
  const peers = ['tfjs-core', 'tfjs-backend-wasm', 'tfjs-backend-cpu'];
  const missingPeers = peers.filter(
    (n) => !existsSync(join(projectDir, 'node_modules', '@tensorflow', n, 'package.json')),
  );
  record(
    'npm installed the tfjs peer dependencies',
    missingPeers.length === 0,
    missingPeers.length ? `missing: ${missingPeers.join(', ')}` : '',
  );

  step('running the installed kvbench command');
  r = run(join(projectDir, 'node_modules', '.bin', 'kvbench'), ['--help'], {
    cwd: projectDir,
    env,
    timeout: 60_000,
  });
  record(
    'the installed `kvbench --help` runs and lists the scenarios',
    r.ok && r.stdout.includes('Usage: kvbench') && r.stdout.includes('peer-torch'),
    r.ok ? tail(r.stdout) : tail(r.stderr || String(r.error)),
  );

  step('running the ESM smoke program with node');
  writeFileSync(join(projectDir, 'smoke.mjs'), smokeProgram);
  r = run(process.execPath, ['smoke.mjs'], { cwd: projectDir, env, timeout: 90_000 });
  let checks = 0;
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('CHECK ')) continue;
    const c = JSON.parse(line.slice(6));
    checks++;
    record(c.name, c.ok, c.ok ? '' : c.detail);
  }
  if (!r.ok || checks === 0) {
    record(
      'smoke program ran to the end',
      false,
      `exit ${r.status}${r.error ? ` (${r.error.message})` : ''}\n${tail(r.stderr)}`,
    );
  }
} catch (e) {
  failedHard = true;
  if (!results.some((x) => !x.ok))
    record('pack smoke test', false, e instanceof Error ? e.message : String(e));
  else console.error(`\npack-smoke: stopped: ${e instanceof Error ? e.message : String(e)}`);
} finally {
  const { passed, failed } = writeReport();
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(
    `\npack-smoke: ${passed} passed, ${failed} failed in ${seconds}s (report: ${relative(root, reportPath)})`,
  );
  if (failed > 0 || failedHard || passed === 0) {
    for (const f of results.filter((x) => !x.ok)) console.error(`\nFAILED ${f.name}\n${f.detail}`);
    if (tmp) console.error(`\npack-smoke: kept the temporary folder for inspection: ${tmp}`);
    process.exitCode = 1;
  } else if (tmp) {
    rmSync(tmp, { recursive: true, force: true });
  }
}

#!/usr/bin/env node
// Pack-and-install smoke test: what a user gets from npm, not what the workspace resolves.
//
// Packs every public package with scripts/pack.mjs (`pnpm pack`, which rewrites `workspace:^` to
// real versions; what `npm run pack` gives users), installs the tarballs with plain npm into a fresh project under os.tmpdir() (npm adds the
// tfjs peer dependencies from the registry), then runs an ESM script there that imports the
// packages, selects the wasm backend and reproduces the seed notebook's first numbers.
//
// Needs the packages' dist/ (turbo builds them first: `//#smoke:pack` depends on their build).
// Every check counts as one test in .vitest-reports/pack-smoke.json, which scripts/kvkit.mjs
// sums with the vitest reports. Exits non-zero on any failure and keeps the temporary folder.
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
import { join, relative } from 'node:path';
import ts from 'typescript';
import { packPackages, publishedPackages, root } from './pack.mjs';
import { cleanEnv, createRecorder, run, tail } from './smoke-lib.mjs';

const reportPath = join(root, '.vitest-reports', 'pack-smoke.json');

/** torch.rand's first value after torch.manual_seed(42): float32 0x3f61dc66. */
const expectedFirstRand = 0.8822692632675171;
/** The first row the seed notebook prints for CausalSelfAttention's output (cell 5). */
const expectedFirstRow = 'tensor([[[-0.2179,  0.4357,  0.3333,  0.0294, -0.0310, -0.0278],';

const { record, step, writeReport, seconds, results } = createRecorder('pack-smoke', reportPath);

/** The .js files under `dir` with an `await` outside every function (parsed by TypeScript). */
function topLevelAwaits(dir) {
  const found = [];
  const visit = (node) => {
    if (ts.isFunctionLike(node) || ts.isClassStaticBlockDeclaration(node)) return false;
    if (ts.isAwaitExpression(node) || (ts.isForOfStatement(node) && node.awaitModifier)) {
      return true;
    }
    return ts.forEachChild(node, visit) === true;
  };
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.js')) continue;
    const file = join(entry.parentPath, entry.name);
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest);
    if (ts.forEachChild(source, visit) === true) found.push(file);
  }
  return found;
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
  }
}
`;

let tmp;
let failedHard = false;
try {
  step('checking the built packages');
  const packages = publishedPackages();
  for (const p of packages) {
    record(
      `${p.name} is public and built`,
      p.isPublic && p.built,
      p.built
        ? ''
        : `${relative(root, join(p.dir, 'dist', 'index.js'))} is missing: run \`pnpm exec turbo run build\``,
    );
  }
  if (results.some((r) => !r.ok)) throw new Error('a package is not built');

  tmp = mkdtempSync(join(tmpdir(), 'kvkit-pack-smoke-'));
  const tarballDir = join(tmp, 'tarballs');
  const projectDir = join(tmp, 'project');
  mkdirSync(projectDir);

  step(`packing ${packages.length} packages into ${tarballDir} (scripts/pack.mjs)`);
  const tarballs = [];
  for (const p of packPackages(tarballDir)) {
    if (!record(`pnpm pack ${p.name}`, p.tarball !== null, p.error ?? '')) continue;
    const tarball = p.tarball;
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

  step('looking for top-level await in the installed packages');
  const withTopLevelAwait = [];
  for (const p of packages) {
    const dist = join(projectDir, 'node_modules', ...p.name.split('/'), 'dist');
    withTopLevelAwait.push(...topLevelAwaits(dist).map((f) => relative(projectDir, f)));
  }
  record(
    'no top-level await in any shipped .js (Vite 6 and older reject it in dependencies)',
    withTopLevelAwait.length === 0,
    withTopLevelAwait.join(', '),
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
  console.log(
    `\npack-smoke: ${passed} passed, ${failed} failed in ${seconds()}s (report: ${relative(root, reportPath)})`,
  );
  if (failed > 0 || failedHard || passed === 0) {
    for (const f of results.filter((x) => !x.ok)) console.error(`\nFAILED ${f.name}\n${f.detail}`);
    if (tmp) console.error(`\npack-smoke: kept the temporary folder for inspection: ${tmp}`);
    process.exitCode = 1;
  } else if (tmp) {
    rmSync(tmp, { recursive: true, force: true });
  }
}

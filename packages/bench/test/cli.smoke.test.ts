import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';

// Runs the built `kvbench` the way a user does, with --quick: every scenario must run and the
// report files must be written in the documented shape. No timing is asserted.
const cli = fileURLToPath(new URL('../bin/kvbench.js', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'kvbench-smoke-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('kvbench --quick', () => {
  let stdout = '';
  test('runs every scenario and prints the seed comparison in %timeit form', () => {
    stdout = execFileSync(
      'node',
      [cli, '--quick', '--out', out, '--json', join(out, 'copy.json')],
      {
        encoding: 'utf8',
        timeout: 110_000,
      },
    );
    expect(stdout).toMatch(
      /cached: {3}\d[\d.]* (ns|µs|ms|s) ± \d[\d.]* (ns|µs|ms|s) per loop \(mean ± std\. dev\. of 3 runs, \d+ loops? each\)/,
    );
    expect(stdout).toMatch(/speedup: {2}\d+\.\d\dx/);
  });

  test('writes latest.json with the documented seed entry, latest.md and SVG charts', () => {
    const report = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
    expect(report.schemaVersion).toBe(2);
    expect(report.environment).toMatchObject({ backend: 'wasm', wasmBinary: 'simd', quick: true });
    const ids = report.scenarios.map((s: { id: string }) => s.id);
    expect(ids).toEqual([
      'seed',
      'context',
      'capacity',
      'heads',
      'batch',
      'prefill',
      'steady',
      'strategies',
      'paged',
      'quantized',
      'backends',
      'gpt',
      'peer-torch',
      'peer-ort-web',
      'peer-ort-node',
    ]);
    const seed = report.scenarios[0];
    for (const side of ['cached', 'uncached']) {
      expect(seed[side]).toMatchObject({
        meanMs: expect.any(Number),
        stdMs: expect.any(Number),
        loops: expect.any(Number),
        repeats: 3,
      });
    }
    expect(seed.speedup).toBeCloseTo(seed.uncached.meanMs / seed.cached.meanMs, 10);
    expect(readFileSync(join(out, 'latest.md'), 'utf8')).toContain(
      'per loop (mean ± std. dev. of 3 runs',
    );
    expect(readFileSync(join(out, 'charts', 'context-step-time.svg'), 'utf8')).toMatch(/^<svg/);
    expect(JSON.parse(readFileSync(join(out, 'copy.json'), 'utf8'))).toEqual(report);
  });

  test('every title gives the sizes the quick run used, not the full run ones', () => {
    const report = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
    for (const s of report.scenarios as {
      id: string;
      title: string;
      params: Record<string, unknown>;
    }[]) {
      for (const [name, v] of Object.entries(s.params)) {
        if (['B', 'C', 'T', 't'].includes(name)) expect(s.title, s.id).toContain(`${name}=${v}`);
        if (name === 'nHead') expect(s.title, s.id).toMatch(new RegExp(`\\b${v} (query )?heads`));
      }
      expect(s.title, s.id).not.toMatch(/C=768|T=1024|t=(128|512)\b|12 (query )?heads|2,000/);
    }
  });

  test('--compare on two reports prints ratios and names the noise', () => {
    // A quick run is usually flagged noisy (3 short repeats), and compare then calls every
    // metric noise: this test is about the CLI's output, so both copies are marked quiet.
    const report = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
    report.noise = { ...report.noise, noisy: false, reasons: [] };
    for (const s of report.scenarios) {
      if (s.noise) s.noise.reasons = [];
      for (const m of s.measurements) m.cv = 0;
    }
    writeFileSync(join(out, 'quiet.json'), JSON.stringify(report));
    // A copy whose seed cached samples are all shifted by 100x the slowest one: far beyond the
    // run's spread, so a real change whatever the noise of this machine.
    const slower = structuredClone(report);
    const c = slower.scenarios[0].measurements[0].timing;
    const shift = 100 * Math.max(...c.samplesMs);
    c.samplesMs = c.samplesMs.map((x: number) => x + shift);
    c.meanMs += shift;
    writeFileSync(join(out, 'slower.json'), JSON.stringify(slower));
    const text = execFileSync(
      'node',
      [cli, '--compare', join(out, 'quiet.json'), '--against', join(out, 'slower.json')],
      {
        encoding: 'utf8',
      },
    );
    expect(text).toMatch(/seed\s+cached\s+.*slower \(t=/);
    expect(text).toMatch(/seed\s+uncached\s+.*1\.000\s+noise/);
    expect(text).toMatch(/1 of \d+ metrics changed beyond the noise/);
  });

  test('bad arguments fail with a message', () => {
    expect(() =>
      execFileSync('node', [cli, '--scenario', 'nope'], { encoding: 'utf8', stdio: 'pipe' }),
    ).toThrow(/argument 'nope' is invalid/);
    expect(existsSync(join(out, 'latest.json'))).toBe(true);
  });
});

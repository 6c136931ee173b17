import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '@kvkit/tensor-utils';
import { expectNoLeak } from '@kvkit/tensor-utils/testing';
import { beforeAll, describe, expect, test } from 'vitest';
import { smallGptSizes, smallGptWorkload, timeit } from './browser.ts';

const srcDir = dirname(fileURLToPath(import.meta.url));

/** The packages a browser page may load through `@kvkit/bench/browser`. */
const browserSafe = [
  '@kvkit/attention',
  '@kvkit/tensor-utils',
  '@tensorflow/tfjs-core',
  'simple-statistics',
];

/** Every module `file` loads at run time (type-only imports are erased), followed through relative imports. */
function runtimeImports(
  file: string,
  seen = new Set<string>(),
): { files: Set<string>; bare: Set<string> } {
  const bare = new Set<string>();
  const visit = (path: string) => {
    if (seen.has(path)) return;
    seen.add(path);
    const source = readFileSync(path, 'utf8');
    const re =
      /^\s*(import|export)\s+(type\s+)?[^'";]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)/gm;
    for (const m of source.matchAll(re)) {
      if (m[2]) continue; // `import type` / `export type`
      const spec = m[3] ?? m[4]!;
      if (spec.startsWith('.')) visit(resolve(dirname(path), spec));
      else bare.add(spec);
    }
  };
  visit(file);
  return { files: seen, bare };
}

describe('@kvkit/bench/browser', () => {
  test('imports nothing of Node: only the kvkit packages below it, tfjs-core and simple-statistics', () => {
    const { files, bare } = runtimeImports(join(srcDir, 'browser.ts'));
    // The walk really follows the entry's modules (timeit, the seed workload, the formatters).
    expect([...files].map((f) => f.slice(srcDir.length + 1)).sort()).toEqual([
      'browser.ts',
      'report/format-time.ts',
      'scenarios/seed-workload.ts',
      'small-gpt-workload.ts',
      'timeit.ts',
    ]);
    expect([...bare].filter((s) => !browserSafe.includes(s))).toEqual([]);
  });

  test('the walk would see a Node import', () => {
    // cli.ts reads files and parses arguments: the same walk finds node: and commander there.
    const { bare } = runtimeImports(join(srcDir, 'cli.ts'));
    expect([...bare].some((s) => s.startsWith('node:'))).toBe(true);
  });
});

describe('smallGptWorkload', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  test('the cached decode gives the uncached logits, and the loops leak nothing', async () => {
    await expectNoLeak(() => {
      const w = smallGptWorkload();
      try {
        expect(w.newTokens).toBe(smallGptSizes.blockSize - smallGptSizes.prompt);
        expect(w.maxAbsDiff()).toBeLessThan(1e-5);
        const t = timeit(() => w.cached(), { loops: 1, repeats: 2, warmup: 0 });
        expect(t.repeats).toBe(2);
        w.uncached();
      } finally {
        w.dispose();
      }
    });
  });
});

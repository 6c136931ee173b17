import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

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
    // The walk really follows the entry's modules (timeit, the seed and gpt workloads, the
    // formatters); the gpt workload's step = no-cache forward check is gpt-workload.test.ts.
    expect([...files].map((f) => f.slice(srcDir.length + 1)).sort()).toEqual([
      'browser.ts',
      'peers/gpt-reference.ts',
      'report/format-time.ts',
      'scenarios/gpt-workload.ts',
      'scenarios/seed-workload.ts',
      'scenarios/titles.ts',
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

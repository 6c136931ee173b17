// `engines` must be honest: every Node.js version @kvkit/bench accepts must be one that each of
// its installed runtime dependencies (and their dependencies) accepts too. npm warns EBADENGINE
// otherwise, and the promise is not kept. Reads the installed packages' package.json files.
import { readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import semver from 'semver';
import { expect, test } from 'vitest';

const packageDir = dirname(dirname(fileURLToPath(import.meta.url)));

interface Manifest {
  name: string;
  version: string;
  engines?: { node?: string };
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

function manifest(dir: string): Manifest {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
}

/** Where Node would resolve `name` from `dir` (node_modules upwards), or null if absent. */
function resolvePackage(dir: string, name: string): string | null {
  for (let d = realpathSync(dir); ; d = dirname(d)) {
    const candidate = join(d, 'node_modules', name);
    try {
      readFileSync(join(candidate, 'package.json'));
      return realpathSync(candidate);
    } catch {
      if (dirname(d) === d) return null;
    }
  }
}

/** Every installed package the bench needs at run time, with its engines.node range. */
function runtimeTree(): Map<string, string | undefined> {
  const seen = new Map<string, string | undefined>();
  const visit = (dir: string, withPeers: boolean) => {
    const m = manifest(dir);
    const id = `${m.name}@${m.version}`;
    if (seen.has(id)) return;
    seen.set(id, m.engines?.node);
    const names = Object.keys({
      ...m.dependencies,
      ...m.optionalDependencies,
      ...(withPeers ? m.peerDependencies : {}),
    });
    for (const name of names) {
      const found = resolvePackage(dir, name);
      if (found) visit(found, false);
    }
  };
  visit(packageDir, true);
  return seen;
}

test('every runtime dependency accepts every Node.js version @kvkit/bench accepts', () => {
  const ours = manifest(packageDir).engines?.node;
  expect(ours).toBeTypeOf('string');
  const tree = runtimeTree();
  expect(tree.size).toBeGreaterThan(10); // the walk found the dependencies at all
  const narrower = [...tree]
    .filter(([, range]) => range !== undefined && !semver.subset(ours!, range))
    .map(([id, range]) => `${id} needs node ${range}`);
  expect(narrower, `@kvkit/bench declares node ${ours}`).toEqual([]);
});

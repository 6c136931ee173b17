#!/usr/bin/env node
// Enforces the layering tensor-utils <- kv-cache <- attention <- bench (apps and docs on top):
// a package may import only the @kvkit packages below it, and must declare each one it imports
// in its package.json. Run from a package folder: `node ../../scripts/check-layers.mjs .`
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

export const layers = [
  '@kvkit/tensor-utils',
  '@kvkit/kv-cache',
  '@kvkit/attention',
  '@kvkit/bench',
];

/** Every `@kvkit/<name>` a source file imports, with its line number. */
export function kvkitImports(source) {
  const found = [];
  const re =
    /(?:import|export)\s[^'"]*?from\s*['"](@kvkit\/[^/'"]+)[^'"]*['"]|import\s*\(\s*['"](@kvkit\/[^/'"]+)[^'"]*['"]\s*\)/g;
  for (const m of source.matchAll(re)) {
    const line = source.slice(0, m.index).split('\n').length;
    found.push({ name: m[1] ?? m[2], line });
  }
  return found;
}

/** Violations for one package folder: wrong-way imports and undeclared ones. */
export function checkPackage(dir) {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const own = layers.indexOf(pkg.name);
  const declared = new Set(
    Object.keys({ ...pkg.dependencies, ...pkg.devDependencies, ...pkg.peerDependencies }),
  );
  const problems = [];
  for (const file of sourceFiles(dir)) {
    for (const { name, line } of kvkitImports(readFileSync(file, 'utf8'))) {
      const where = `${relative(process.cwd(), file)}:${line}`;
      if (name === pkg.name) continue;
      const theirs = layers.indexOf(name);
      if (own >= 0 && theirs >= own) {
        problems.push(
          `${where}: ${pkg.name} must not import ${name} (layers: ${layers.join(' <- ')})`,
        );
      } else if (!declared.has(name)) {
        problems.push(
          `${where}: imports ${name}, which ${pkg.name}'s package.json does not declare`,
        );
      }
    }
  }
  return problems;
}

function sourceFiles(dir) {
  const out = [];
  for (const entry of readdirSync(dir)) {
    if (
      ['node_modules', 'dist', '.turbo', 'cache', 'reports'].includes(entry) ||
      entry.startsWith('.vitest')
    )
      continue;
    const p = join(dir, entry);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (/\.(m?[jt]s|vue)$/.test(entry)) out.push(p);
  }
  return out;
}

if (import.meta.url === `file://${resolve(process.argv[1] ?? '')}`) {
  const dir = resolve(process.argv[2] ?? '.');
  const problems = checkPackage(dir);
  if (problems.length > 0) {
    console.error(problems.join('\n'));
    process.exit(1);
  }
}

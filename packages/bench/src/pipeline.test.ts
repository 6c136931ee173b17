// The `npm run bench` pipeline is quiet by construction: in turbo's task graph for
// `turbo run bench`, every task that does something is either before the timed scenarios
// (the builds they need) or after them (the docs site rebuilt from the fresh report), so turbo
// cannot run any of our tasks while a scenario is timed. Read from `turbo run bench --dry=json`.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

interface DryTask {
  taskId: string;
  command: string;
  dependencies: string[];
  dependents: string[];
}

function benchGraph(): Map<string, DryTask> {
  const out = execFileSync('pnpm', ['exec', 'turbo', 'run', 'bench', '--dry=json'], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const tasks = (JSON.parse(out) as { tasks: DryTask[] }).tasks;
  return new Map(tasks.map((t) => [t.taskId, t]));
}

/** Every task reachable from `id` along `edge` (dependencies: before it; dependents: after). */
function closure(graph: Map<string, DryTask>, id: string, edge: 'dependencies' | 'dependents') {
  const seen = new Set<string>();
  const stack = [...(graph.get(id)?.[edge] ?? [])];
  while (stack.length > 0) {
    const next = stack.pop()!;
    if (seen.has(next)) continue;
    seen.add(next);
    stack.push(...(graph.get(next)?.[edge] ?? []));
  }
  return seen;
}

test('turbo run bench: builds, then the timed scenarios alone, then the docs site', () => {
  const graph = benchGraph();
  const timed = '@kvkit/bench#bench';
  expect(graph.get(timed)?.command).toBe('node dist/cli.js');
  const before = closure(graph, timed, 'dependencies');
  const after = closure(graph, timed, 'dependents');
  const real = [...graph.values()].filter((t) => t.command !== '<NONEXISTENT>');
  const concurrent = real
    .map((t) => t.taskId)
    .filter((id) => id !== timed && !before.has(id) && !after.has(id));
  expect(concurrent, 'tasks turbo could run while the scenarios are timed').toEqual([]);
  expect([...before].every((id) => id.endsWith('#build'))).toBe(true);
  expect(before).toContain('@kvkit/bench#build');
  expect([...after]).toEqual(['@kvkit/docs#bench']);
  expect(graph.get('@kvkit/docs#bench')?.command).toBe('typedoc && vitepress build');
});

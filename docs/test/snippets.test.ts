// The docs' code samples cannot rot: every ```ts block marked runnable in docs/guide,
// docs/concepts, docs/api and docs/operations is run here, and its console.log output is compared with the
// ```text block that shows it, when there is one.
//
// Markers (an HTML comment on the line just before the fence, at any indentation):
//   <!-- snippet: run -->       a ```ts block that is a program of its own
//   <!-- snippet: continue -->  a ```ts block that continues the page's previous program: it is
//                               appended to it and sees its bindings (like a notebook's next cell)
//   <!-- snippet: output -->    a ```text block: exactly what the marked ```ts block just before
//                               it prints with console.log (lines joined with '\n')
// A program passes when it runs without throwing and every output block matches.
//
// Each program is transpiled with TypeScript's transpileModule (syntax only, no type check) to
// an ES module under test/.snippets/ and run by Node in a process of its own, not through Vite:
// its imports resolve from docs/node_modules the way a user's code resolves them, so `@kvkit/*`
// is each package's built dist/ (build the packages first), and no program sees another's
// tfjs state. A program that throws leaves its transpiled file there for a look; the others are
// deleted. (test/.snippets/ belongs in .gitignore.)
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const docsDir = dirname(dirname(fileURLToPath(import.meta.url)));
const outDir = join(docsDir, 'test', '.snippets');
const sections = ['guide', 'concepts', 'api', 'operations'];

type Marker = 'run' | 'continue' | 'output';

interface Fence {
  /** Page path relative to docs/, e.g. `guide/getting-started.md`. */
  page: string;
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  /** The block's text, dedented by the fence's indentation. */
  text: string;
  marker: Marker | null;
}

interface Part {
  fence: Fence;
  /** The output block shown after this part, if any. */
  expected?: Fence;
}

interface Program {
  page: string;
  line: number;
  parts: Part[];
}

const markerRe = /^\s*<!--\s*snippet:\s*(\S+)\s*-->\s*$/;
const openRe = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/;

/** Every fenced block of a page, with the snippet marker on the line just before it. */
function fences(page: string, source: string, problems: string[]): Fence[] {
  const lines = source.split(/\r?\n/);
  const out: Fence[] = [];
  let pendingMarker: { marker: string; line: number } | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const marker = markerRe.exec(line);
    if (marker) {
      if (pendingMarker)
        problems.push(`${page}:${pendingMarker.line}: marker not followed by a fence`);
      pendingMarker = { marker: marker[1]!, line: i + 1 };
      continue;
    }
    const open = openRe.exec(line);
    if (!open) {
      if (pendingMarker) {
        problems.push(`${page}:${pendingMarker.line}: marker not followed by a fence`);
        pendingMarker = null;
      }
      continue;
    }
    const [, indent = '', fence = '```', lang = ''] = open;
    const body: string[] = [];
    let j = i + 1;
    const closeRe = new RegExp(`^\\s*${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`);
    while (j < lines.length && !closeRe.test(lines[j]!)) {
      const text = lines[j]!;
      // Drop the fence's own indentation (blocks inside list items are indented).
      const strip = Math.min(indent.length, text.length - text.trimStart().length);
      body.push(text.slice(strip));
      j++;
    }
    if (j === lines.length) problems.push(`${page}:${i + 1}: fence never closed`);
    let kind: Marker | null = null;
    if (pendingMarker) {
      const m = pendingMarker.marker;
      if (m !== 'run' && m !== 'continue' && m !== 'output') {
        problems.push(`${page}:${pendingMarker.line}: unknown snippet marker '${m}'`);
      } else if (m === 'output' ? lang !== 'text' : lang !== 'ts') {
        problems.push(
          `${page}:${pendingMarker.line}: 'snippet: ${m}' must precede a \`\`\`${m === 'output' ? 'text' : 'ts'} fence, not \`\`\`${lang}`,
        );
      } else {
        kind = m;
      }
      pendingMarker = null;
    }
    out.push({ page, line: i + 1, lang, text: body.join('\n'), marker: kind });
    i = j;
  }
  if (pendingMarker) problems.push(`${page}:${pendingMarker.line}: marker not followed by a fence`);
  return out;
}

/** The runnable programs of a page, in order. */
function programs(page: string, source: string, problems: string[]): Program[] {
  const out: Program[] = [];
  let last: Part | null = null;
  for (const fence of fences(page, source, problems)) {
    if (fence.marker === 'run') {
      last = { fence };
      out.push({ page, line: fence.line, parts: [last] });
    } else if (fence.marker === 'continue') {
      const program = out[out.length - 1];
      if (!program) {
        problems.push(`${page}:${fence.line}: 'snippet: continue' with no program before it`);
        continue;
      }
      last = { fence };
      program.parts.push(last);
    } else if (fence.marker === 'output') {
      if (!last)
        problems.push(`${page}:${fence.line}: 'snippet: output' with no snippet before it`);
      else if (last.expected)
        problems.push(
          `${page}:${fence.line}: a second output block for the snippet at line ${last.fence.line}`,
        );
      else last.expected = fence;
    }
  }
  return out;
}

function pages(): string[] {
  return sections.flatMap((section) => {
    let names: string[];
    try {
      names = readdirSync(join(docsDir, section));
    } catch {
      return [];
    }
    return names
      .filter((n) => n.endsWith('.md'))
      .sort()
      .map((n) => `${section}/${n}`);
  });
}

const problems: string[] = [];
const all = pages().flatMap((page) =>
  programs(page, readFileSync(join(docsDir, page), 'utf8'), problems),
);

/** Called between parts, so console.log output can be told apart per part. */
const markGlobal = '__kvkitSnippetPart';

/**
 * Loaded with `node --import` before a program: collects console.log output per part and writes
 * it as JSON to the file named by KVKIT_SNIPPET_OUTPUT when the process exits.
 */
const preamble = `import { writeFileSync } from 'node:fs';
import { format } from 'node:util';
const parts = [[]];
let current = 0;
globalThis.${markGlobal} = (i) => { current = i; while (parts.length <= i) parts.push([]); };
console.log = (...args) => { parts[current].push(format(...args)); };
process.on('exit', () => {
  writeFileSync(process.env.KVKIT_SNIPPET_OUTPUT, JSON.stringify(parts.map((p) => p.join('\\n'))));
});
`;

/** Runs a Node process; resolves with its exit code and stderr. */
function node(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, args, {
      cwd: docsDir,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', fail);
    child.on('close', (code) => done({ code, stderr }));
  });
}

/** Transpiles a program, runs it in its own Node process and returns each part's output. */
async function run(program: Program): Promise<string[]> {
  const source = program.parts
    .map((part, i) => `${i === 0 ? '' : `;globalThis.${markGlobal}(${i});\n`}${part.fence.text}`)
    .join('\n');
  const { outputText, diagnostics = [] } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    fileName: 'snippet.ts',
    reportDiagnostics: true,
  });
  if (diagnostics.length > 0) {
    const text = diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    throw new Error(`does not parse as TypeScript:\n${text.join('\n')}`);
  }
  const name = `${basename(program.page, '.md')}-${program.line}`;
  const file = join(outDir, `${name}.mjs`);
  const outputFile = join(outDir, `${name}.output.json`);
  writeFileSync(file, `// ${program.page}:${program.line}\n${outputText}`);
  const { code, stderr } = await node(['--import', pathToFileURL(preambleFile).href, file], {
    KVKIT_SNIPPET_OUTPUT: outputFile,
  });
  if (code !== 0) {
    throw new Error(`${program.page}:${program.line} failed (exit code ${code}):\n${stderr}`);
  }
  const output = JSON.parse(readFileSync(outputFile, 'utf8')) as string[];
  rmSync(file);
  rmSync(outputFile);
  return program.parts.map((_, i) => output[i] ?? '');
}

const preambleFile = join(outDir, 'preamble.mjs');

beforeAll(() => {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  writeFileSync(preambleFile, preamble);
});

afterAll(() => {
  rmSync(preambleFile, { force: true });
  // Keep the folder only when a failing program left its files there.
  if (readdirSync(outDir).length === 0) rmSync(outDir, { recursive: true, force: true });
});

describe('docs snippets', () => {
  test('markers are well formed', () => {
    expect(problems).toEqual([]);
  });

  test('getting started: the printed tensor is compared with the notebook', () => {
    const first = all.find((p) => p.page === 'guide/getting-started.md');
    expect(first, 'no runnable snippet in guide/getting-started.md').toBeDefined();
    expect(first!.parts[0]!.expected?.text.split('\n')[0]).toBe(
      'tensor([[[-0.2179,  0.4357,  0.3333,  0.0294, -0.0310, -0.0278],',
    );
  });

  test.each(all.map((p) => [`${p.page}:${p.line}`, p] as const))('%s', async (_, program) => {
    const output = await run(program);
    program.parts.forEach((part, i) => {
      if (!part.expected) return;
      const where = `${program.page}:${part.fence.line} printed (expected: ${program.page}:${part.expected.line})`;
      expect(output[i], where).toBe(part.expected.text);
    });
  });
});

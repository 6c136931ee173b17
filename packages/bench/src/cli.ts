#!/usr/bin/env node
import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { compareReports, formatComparison } from './compare.ts';
import { formatTimeit } from './report/format-time.ts';
import { readReport } from './report/read.ts';
import type { SeedScenario } from './report/schema.ts';
import { textTable } from './report/text-table.ts';
import { reportView } from './report/view.ts';
import { writeReport } from './report/write.ts';
import { runBenchmarks } from './run.ts';
import { scenarios } from './scenarios/index.ts';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const positiveInt = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`expected a positive integer, got '${value}'`);
  return n;
};

const program = new Command()
  .name('kvbench')
  .description('Benchmarks kvkit: cached vs uncached decoding, and how a KV cache scales.')
  .addOption(
    new Option('-s, --scenario <ids...>', 'scenarios to run (default: all)').choices(
      scenarios.map((s) => s.id),
    ),
  )
  .option('-q, --quick', 'small sizes and few repeats: a smoke run, not numbers to quote', false)
  .addOption(
    new Option('-b, --backend <name>', 'tfjs backend').choices(['wasm', 'cpu']).default('wasm'),
  )
  .option('-r, --repeats <n>', 'timed repeats per measurement (default 7, quick 3)', positiveInt)
  .option('-n, --loops <n>', 'calls per repeat (default: calibrated like %timeit)', positiveInt)
  .option(
    '-o, --out <dir>',
    'where latest.json, latest.md and charts/ go (default: reports/, or reports/quick/ with --quick)',
  )
  .option('--json <file>', 'also write the JSON report to this file')
  .option(
    '--compare <base.json>',
    'compare with an earlier report: ratios per metric, and which differences are noise',
  )
  .option(
    '--against <new.json>',
    'with --compare: compare this report instead of running the benchmarks',
  )
  .addHelpText(
    'after',
    `\nScenarios:\n${scenarios.map((s) => `  ${s.id.padEnd(11)} ${s.title}`).join('\n')}\n\nExamples:\n  kvbench                         every scenario, report in reports/\n  kvbench -s seed context         two scenarios\n  kvbench --compare base.json     run, then compare with an earlier run\n  kvbench --compare a.json --against b.json`,
  );

async function main(): Promise<void> {
  program.parse();
  const opts = program.opts<{
    scenario?: string[];
    quick: boolean;
    backend: 'wasm' | 'cpu';
    repeats?: number;
    loops?: number;
    out?: string;
    json?: string;
    compare?: string;
    against?: string;
  }>();
  if (opts.against && !opts.compare) program.error('--against needs --compare <base.json>');
  if (opts.compare && opts.against) {
    console.log(
      formatComparison(compareReports(readReport(opts.compare), readReport(opts.against))),
    );
    return;
  }

  const tty = process.stdout.isTTY === true;
  let transientShown = false;
  const onProgress = (line: string, transient: boolean) => {
    if (tty) {
      process.stdout.write(`\r\x1b[K${line}${transient ? '' : '\n'}`);
      transientShown = transient;
    } else if (!transient || !line.includes('(repeat')) {
      console.log(line);
    }
  };
  const report = await runBenchmarks({
    ...(opts.scenario ? { only: opts.scenario } : {}),
    quick: opts.quick,
    backend: opts.backend,
    timing: {
      ...(opts.repeats ? { repeats: opts.repeats } : {}),
      ...(opts.loops ? { loops: opts.loops } : {}),
    },
    onProgress,
  });
  if (transientShown) process.stdout.write('\n');

  const seed = report.scenarios.find((s): s is SeedScenario => s.id === 'seed');
  if (seed) {
    console.log(
      `\nseed scenario (${report.environment.backend}, ${report.environment.wasmBinary ?? 'no wasm'}):`,
    );
    console.log(`  cached:   ${formatTimeit(seed.cached)}`);
    console.log(`  uncached: ${formatTimeit(seed.uncached)}`);
    console.log(`  speedup:  ${seed.speedup.toFixed(2)}x`);
  }
  const view = reportView(report);
  for (const s of view.scenarios.filter((x) => x.id !== 'seed')) {
    const derived = s.derived.map((d) => `${d.label} ${d.value}`);
    console.log(`${s.id}: ${s.skipped ? `skipped: ${s.skipped}` : derived.join(', ')}`);
  }
  if (view.peers) console.log(`\nkvkit and its peers (mean per call):\n${textTable(view.peers)}`);
  for (const skip of view.peerSkips) console.log(`skipped: ${skip}`);
  if (view.noise) {
    console.log(`\n${view.noise.noisy ? 'NOISY RUN' : 'Quiet run'}: ${view.noise.headline}`);
    for (const r of view.noise.reasons) console.log(`  ${r}`);
  }
  const out = resolve(opts.out ?? resolve(packageDir, opts.quick ? 'reports/quick' : 'reports'));
  const written = await writeReport(report, out);
  console.log(
    `\nreport: ${written.json}\n        ${written.markdown}\n        ${written.charts.length} chart(s) in ${dirname(written.charts[0] ?? `${out}/charts/`)}`,
  );
  if (opts.json) {
    writeFileSync(opts.json, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`        ${opts.json}`);
  }
  if (opts.compare) {
    console.log(`\ncompared with ${opts.compare}:`);
    console.log(formatComparison(compareReports(readReport(opts.compare), report)));
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? `kvbench: ${error.message}` : error);
  process.exit(1);
});

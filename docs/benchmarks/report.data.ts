// The Benchmarks page's data loader (VitePress): everything is in load-report.ts, which the
// docs tests import without VitePress.
import { defineLoader } from 'vitepress';
import { type BenchmarkData, benchmarkData } from './load-report.ts';

export type { BenchmarkData } from './load-report.ts';

declare const data: BenchmarkData;

export { data };

export default defineLoader({
  // Rebuild the page in `vitepress dev` when a report is written or replaced. (Not the
  // $KVKIT_BENCH_REPORT file: VitePress globs these patterns, and a pattern outside the
  // repository would make the glob crawl from their common root, `/` at worst.)
  watch: [
    '../../packages/bench/reports/latest.json',
    '../../packages/bench/reports/history/*.json',
  ],
  load: benchmarkData,
});

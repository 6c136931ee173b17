// `@kvkit/bench/browser`: the part of @kvkit/bench that runs in a browser page, with nothing
// of Node in its import graph (no CLI, no files, no PyTorch or ONNX Runtime peers, no chart
// rendering). The docs' Benchmarks page times the seed scenario's workload and the gpt
// scenario's (at its quick sizes) with it, by the same `timeit` rules as `kvbench`.
// `browser.test.ts` walks its imports to keep it that way.
export { type GptReference, runGptSchedule } from './peers/gpt-reference.ts';
export { formatSpeedup, formatTime, formatTimeit } from './report/format-time.ts';
export type { Timing } from './report/schema.ts';
export {
  type GptSizes,
  type GptWorkload,
  gptSizes,
  gptWorkload,
  slowCallTiming,
} from './scenarios/gpt-workload.ts';
export { type SeedSizes, seedSizes, seedWorkload } from './scenarios/seed-workload.ts';
export { gptDims } from './scenarios/titles.ts';
export { type TimeitOptions, timeit, timeitAsync } from './timeit.ts';

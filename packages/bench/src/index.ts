// Public API of @kvkit/bench: the harness, the scenarios and the report, for programmatic use.
// The `kvbench` command is cli.ts.
export {
  type ComparedMetric,
  type CompareOptions,
  compareReports,
  formatComparison,
} from './compare.ts';
export { environment } from './environment.ts';
export { renderCharts } from './report/charts.ts';
export { formatSpeedup, formatTime, formatTimeit } from './report/format-time.ts';
export { renderMarkdown } from './report/markdown.ts';
export { ReportSchemaError, readableVersions, readReport, upgradeReport } from './report/read.ts';
export type {
  Environment,
  Floor,
  LoadSample,
  Measurement,
  Report,
  RunNoise,
  Scenario,
  ScenarioBase,
  ScenarioNoise,
  SeedScenario,
  Timing,
} from './report/schema.ts';
export { schemaVersion } from './report/schema.ts';
export {
  type LabelledValue,
  type NoiseView,
  type ReportView,
  reportView,
  type ScenarioView,
  type SeedView,
  type TableView,
} from './report/view.ts';
export { type RunOptions, runBenchmarks } from './run.ts';
export type { ScenarioContext, ScenarioDefinition } from './scenario.ts';
export { growthExponent } from './scenarios/context.ts';
export { scenarios } from './scenarios/index.ts';
export { findTorchPython, peerTorchScript } from './scenarios/peer-torch.ts';
export { seedSizes, seedWorkload } from './scenarios/seed-workload.ts';
export { type TimeitOptions, timeit } from './timeit.ts';

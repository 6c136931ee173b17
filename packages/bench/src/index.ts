// Public API of @kvkit/bench: the harness, the scenarios and the report, for programmatic use.
// The `kvbench` command is cli.ts.
export {
  type ComparedMetric,
  type CompareOptions,
  compareReports,
  formatComparison,
} from './compare.ts';
export { environment } from './environment.ts';
export {
  applyFloors,
  forwardWork,
  type GptModelSizes,
  gptForwardWork,
  type Work,
} from './floors.ts';
export { maxCv, maxOthersCpu } from './noise.ts';
export {
  type AttentionLayerWeights,
  attentionLayer,
  attentionModel,
  onnxNames,
} from './peers/onnx-attention.ts';
export { type GptGraphSizes, gptModel, gptOnnxNames } from './peers/onnx-gpt.ts';
export { OnnxGraph } from './peers/onnx-graph.ts';
export { loadOrtEngine, type OrtEngine, type OrtEngineName } from './peers/ort-engines.ts';
export { PastPresentRunner } from './peers/ort-runner.ts';
export { type ChartPlan, planCharts, renderCharts, renderSvg } from './report/charts.ts';
export { formatSpeedup, formatTime, formatTimeit } from './report/format-time.ts';
export {
  type HistoryEntry,
  type HistoryPoint,
  type HistorySeries,
  historyChartSpec,
  historyPoints,
  historySeries,
  readHistory,
} from './report/history.ts';
export { renderMarkdown } from './report/markdown.ts';
export { peerTableView } from './report/peer-table.ts';
export { ReportSchemaError, readableVersions, readReport, upgradeReport } from './report/read.ts';
export type {
  Environment,
  Floor,
  LoadSample,
  Machine,
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
  type MachineView,
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
export { type GptSizes, type GptTensor, gptSizes, gptWeights } from './scenarios/gpt-workload.ts';
export { scenarios } from './scenarios/index.ts';
export { findTorchPython, peerTorchScript } from './scenarios/peer-torch.ts';
export { seedSizes, seedWorkload } from './scenarios/seed-workload.ts';
export { type TimeitOptions, timeit, timeitAsync } from './timeit.ts';

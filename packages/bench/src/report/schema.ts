/**
 * The report every `kvbench` run writes (`reports/latest.json`). Other tools read it, so the
 * shape is versioned: bump `schemaVersion` on any incompatible change.
 */
export const schemaVersion = 1;

/** One `%timeit`-style measurement: `repeats` runs of `loops` calls each. */
export interface Timing {
  /** Mean over repeats of the per-call time, in milliseconds. */
  meanMs: number;
  /** Population standard deviation over repeats (IPython's %timeit), ms. */
  stdMs: number;
  minMs: number;
  medianMs: number;
  loops: number;
  repeats: number;
  /** Per-call time of each repeat, ms (the raw samples). */
  samplesMs: number[];
}

export interface Environment {
  node: string;
  /** The tfjs backend the run defaulted to (`wasm` unless `--backend cpu`). */
  backend: string;
  /** Which wasm binary tfjs loaded (`simd`, `threaded-simd`, `plain`), null off wasm. */
  wasmBinary: string | null;
  tfjsVersion: string;
  cpuModel: string;
  cpuCount: number;
  platform: string;
  gitCommit: string | null;
  date: string;
  quick: boolean;
}

/** A measured point of a scenario: what was varied (`labels`) and how long it took. */
export interface Measurement {
  /** Unique within the scenario, stable across runs (used by --compare), e.g. `cached/t=512`. */
  key: string;
  labels: Record<string, string | number>;
  timing: Timing;
  /** Other numbers measured at this point: cache bytes, tokens per second, ... */
  extra?: Record<string, number>;
}

export interface ScenarioBase {
  id: string;
  title: string;
  /** Set when the scenario did not run, with the reason (e.g. `PyTorch not found`). */
  skipped?: string;
  params: Record<string, unknown>;
  measurements: Measurement[];
  /** Numbers derived from the measurements: speedups, fitted exponents, ratios. */
  derived: Record<string, number>;
}

/** The seed scenario also carries the fixed top-level fields other tools read. */
export interface SeedScenario extends ScenarioBase {
  id: 'seed';
  cached: Timing;
  uncached: Timing;
  speedup: number;
}

export type Scenario = ScenarioBase | SeedScenario;

export interface Report {
  schemaVersion: typeof schemaVersion;
  environment: Environment;
  scenarios: Scenario[];
}

/**
 * The report every `kvbench` run writes (`reports/latest.json`). Other tools read it, so the
 * shape is versioned: bump `schemaVersion` on any incompatible change, and teach
 * `upgradeReport` (read.ts) to read the old version.
 *
 * Version 2 added the noise record (load average, CPU count, other processes' CPU time, the
 * coefficient of variation of every measurement, the run's `noisy` flag), the floors and the
 * peers' engines. Version 1 reports are read as version 2 with `noise: null` (not measured).
 */
export const schemaVersion = 2;

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

/** The machine's load at one moment: `os.loadavg()` and the CPUs the process may use. */
export interface LoadSample {
  load1: number;
  load5: number;
  load15: number;
  cpuCount: number;
}

/** How disturbed one scenario's measurements were. */
export interface ScenarioNoise {
  before: LoadSample;
  after: LoadSample;
  /**
   * CPU time that other processes used while the scenario ran, in cores (1 = one core busy the
   * whole time), from /proc/stat minus this process and its children; null where unknown.
   */
  othersCpu: number | null;
  /** Why the scenario's numbers are unreliable; empty when it ran undisturbed. */
  reasons: string[];
}

/** The run's verdict on its own noise, with the thresholds it used. */
export interface RunNoise {
  /** True when any scenario's noise makes its ratios unreliable. */
  noisy: boolean;
  /** One line per noisy scenario: `seed: other processes used 1.02 cores`. */
  reasons: string[];
  /** A scenario is noisy when other processes used at least this many cores meanwhile. */
  maxOthersCpu: number;
  /** A measurement is noisy when its coefficient of variation exceeds this. */
  maxCv: number;
}

/**
 * The physical limit under a measurement: the time to read its bytes at the run's measured
 * memory bandwidth (decode), or to do its FLOPs at the run's measured matMul rate (prefill).
 */
export interface Floor {
  kind: 'bandwidth' | 'flops';
  /** Bytes read (bandwidth) or floating-point operations (flops) per call. */
  amount: number;
  /** The rate it is divided by: GB/s or GFLOP/s, measured in the same run. */
  rate: number;
  /** The floor time per call, ms. */
  ms: number;
  /** Measured mean / floor: 1 is at the limit. */
  ratio: number;
}

/** A measured point of a scenario: what was varied (`labels`) and how long it took. */
export interface Measurement {
  /** Unique within the scenario, stable across runs (used by --compare), e.g. `cached/t=512`. */
  key: string;
  labels: Record<string, string | number>;
  timing: Timing;
  /** Other numbers measured at this point: cache bytes, tokens per second, ... */
  extra?: Record<string, number>;
  /** stdMs / meanMs over the repeats; null with fewer than two repeats (no spread measured). */
  cv?: number | null;
  /** The floor under this measurement, when the run could compute one. */
  floor?: Floor;
}

export interface ScenarioBase {
  id: string;
  title: string;
  /** Set when the scenario did not run, with the reason (e.g. `PyTorch not found`). */
  skipped?: string;
  /**
   * Parts of a scenario that ran that did not, each with its reason: a peer whose GPT outputs
   * differ from kvkit's keeps its seed and context timings (`{ gpt: 'outputs differ ...' }`).
   */
  partsSkipped?: Record<string, string>;
  params: Record<string, unknown>;
  measurements: Measurement[];
  /** Numbers derived from the measurements: speedups, fitted exponents, ratios. */
  derived: Record<string, number>;
  /** How disturbed the run was meanwhile; null in reports from before it was recorded. */
  noise?: ScenarioNoise | null;
}

/** The seed scenario also carries the fixed top-level fields other tools read. */
export interface SeedScenario extends ScenarioBase {
  id: 'seed';
  cached: Timing;
  uncached: Timing;
  speedup: number;
}

export type Scenario = ScenarioBase | SeedScenario;

/** The machine's limits, measured at the start of the run: the floors' rates. */
export interface Machine {
  /** Read-only memory bandwidth, GB/s (1e9 bytes), from the fastest repeat. */
  readGBps: number;
  /** matMul rate on the run's backend (XNNPACK on wasm), GFLOP/s, from the fastest repeat. */
  matmulGflops: number;
  /** The two measurements: `read` and `matmul`. */
  measurements: Measurement[];
  noise: ScenarioNoise | null;
}

export interface Report {
  schemaVersion: typeof schemaVersion;
  environment: Environment;
  /** The floors' rates; null in reports from before it was measured, or when not measured. */
  machine: Machine | null;
  /** The run's noise verdict; null in reports from before it was recorded (version 1). */
  noise: RunNoise | null;
  scenarios: Scenario[];
}

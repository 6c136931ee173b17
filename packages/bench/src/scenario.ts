import type { Scenario } from './report/schema.ts';
import type { TimeitOptions } from './timeit.ts';

/** What every scenario gets from the runner. */
export interface ScenarioContext {
  /** Small sizes and few repeats: a smoke run for CI, not numbers to quote. */
  quick: boolean;
  /** The backend the run defaults to. */
  backend: 'wasm' | 'cpu';
  /** Timing options shared by every measurement (repeats, loops). */
  timing: TimeitOptions;
  /** Progress for humans: a short message about what is being measured now. */
  progress: (message: string) => void;
  /** The seed scenario's result, once it has run (peer-torch and backends compare with it). */
  results: Map<string, Scenario>;
}

/** A benchmark scenario: one file under `scenarios/`, one `run`. */
export interface ScenarioDefinition {
  id: string;
  title: string;
  run(ctx: ScenarioContext): Promise<Scenario>;
}

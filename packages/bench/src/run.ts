import { initBackend, ValueError } from '@kvkit/tensor-utils';
import { environment } from './environment.ts';
import { applyFloors } from './floors.ts';
import { coefficientOfVariation, runNoise, watchNoise } from './noise.ts';
import type { Report, Scenario } from './report/schema.ts';
import { schemaVersion } from './report/schema.ts';
import type { ScenarioContext } from './scenario.ts';
import { scenarios } from './scenarios/index.ts';
import type { TimeitOptions } from './timeit.ts';

export interface RunOptions {
  /** Scenario ids to run (default: all, in order); `machine` (the floors' rates) always runs. */
  only?: string[];
  quick?: boolean;
  backend?: 'wasm' | 'cpu';
  timing?: TimeitOptions;
  /** Receives a line of progress; `transient` lines may be overwritten by the next one. */
  onProgress?: (line: string, transient: boolean) => void;
}

/** Runs the chosen scenarios on one backend and returns the report (writes nothing). */
export async function runBenchmarks(options: RunOptions = {}): Promise<Report> {
  const { quick = false, backend = 'wasm' } = options;
  const known = scenarios.map((s) => s.id);
  if (options.only && options.only.length === 0) {
    throw new ValueError(
      'runBenchmarks: only: [] names no scenario (leave `only` out to run them all)',
      { argument: 'only', value: [] },
    );
  }
  const unknown = (options.only ?? []).filter((id) => !known.includes(id));
  if (unknown.length > 0) {
    throw new ValueError(`unknown scenario(s) ${unknown.join(', ')} (known: ${known.join(', ')})`, {
      argument: 'scenario',
      value: unknown,
    });
  }
  // The machine's limits are measured in every run: every floor needs them.
  const chosen = options.only
    ? scenarios.filter((s) => s.id === 'machine' || options.only!.includes(s.id))
    : scenarios;
  const info = await initBackend(backend);
  const report: Report = {
    schemaVersion,
    environment: environment(info, quick),
    noise: null,
    scenarios: [],
  };
  const results = new Map<string, Scenario>();
  const say = options.onProgress ?? (() => {});
  const quickTiming: TimeitOptions = quick ? { repeats: 3, targetMs: 20 } : {};
  for (const [i, def] of chosen.entries()) {
    const prefix = `[${i + 1}/${chosen.length}]`;
    let current = def.id;
    const ctx: ScenarioContext = {
      quick,
      backend,
      timing: {
        ...quickTiming,
        ...options.timing,
        onRepeat: (done, total) => say(`${prefix} ${current} (repeat ${done}/${total})`, true),
      },
      progress: (message) => {
        current = message;
        say(`${prefix} ${message}`, true);
      },
      results,
    };
    const started = performance.now();
    const watch = watchNoise();
    const result = await def.run(ctx);
    for (const m of result.measurements) m.cv = coefficientOfVariation(m);
    result.noise = result.skipped ? null : watch.stop(result.measurements);
    results.set(def.id, result);
    report.scenarios.push(result);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    say(
      `${prefix} ${def.id}: ${result.skipped ? `skipped: ${result.skipped}` : `done in ${seconds} s`}`,
      false,
    );
  }
  applyFloors(report);
  report.noise = runNoise(report.scenarios);
  return report;
}

import { initBackend, ValueError } from '@kvkit/tensor-utils';
import { environment } from './environment.ts';
import { applyFloors } from './floors.ts';
import { addGptRatios } from './gpt-targets.ts';
import { measureMachine } from './machine.ts';
import { coefficientOfVariation, runNoise, watchNoise } from './noise.ts';
import type { Report, Scenario } from './report/schema.ts';
import { schemaVersion } from './report/schema.ts';
import type { ScenarioContext } from './scenario.ts';
import { scenarios } from './scenarios/index.ts';
import type { TimeitOptions } from './timeit.ts';

export interface RunOptions {
  /** Scenario ids to run (default: all, in order). */
  only?: string[];
  quick?: boolean;
  backend?: 'wasm' | 'cpu';
  timing?: TimeitOptions;
  /** Measure the machine's limits first, for the floors (default true). */
  machine?: boolean;
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
  const chosen = options.only ? scenarios.filter((s) => options.only!.includes(s.id)) : scenarios;
  const info = await initBackend(backend);
  const report: Report = {
    schemaVersion,
    environment: environment(info, quick),
    noise: null,
    machine: null,
    scenarios: [],
  };
  const results = new Map<string, Scenario>();
  const say = options.onProgress ?? (() => {});
  const quickTiming: TimeitOptions = quick ? { repeats: 3, targetMs: 20 } : {};
  if (options.machine ?? true) {
    const watch = watchNoise();
    const machine = measureMachine({
      quick,
      backend,
      timing: { ...quickTiming, ...options.timing },
      progress: (m) => say(`[machine] ${m}`, true),
    });
    for (const m of machine.measurements) m.cv = coefficientOfVariation(m);
    machine.noise = watch.stop(machine.measurements);
    report.machine = machine;
    say(
      `[machine] read ${machine.readGBps.toFixed(1)} GB/s, matMul ${machine.matmulGflops.toFixed(1)} GFLOP/s`,
      false,
    );
  }
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
  addGptRatios(report);
  report.noise = runNoise(report.scenarios, report.machine);
  return report;
}

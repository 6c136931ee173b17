/**
 * Noise, measured rather than hidden: what else the machine was doing while each scenario ran
 * (load average and CPU count before and after, and the CPU time other processes used), the
 * coefficient of variation of every measurement, and the run's verdict on whether its ratios
 * can be trusted.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import type {
  LoadSample,
  Machine,
  Measurement,
  RunNoise,
  Scenario,
  ScenarioNoise,
} from './report/schema.ts';

/**
 * A scenario is noisy when other processes used at least this many cores while it ran.
 *
 * @example
 * if ((scenario.noise?.othersCpu ?? 0) >= maxOthersCpu) console.log('disturbed');
 */
export const maxOthersCpu = 0.5;
/**
 * A measurement is noisy when its standard deviation exceeds this fraction of its mean.
 *
 * @example
 * const wide = scenario.measurements.filter((m) => (m.cv ?? 0) > maxCv);
 */
export const maxCv = 0.1;

/** The load average now, and the CPUs this process may use. */
export function loadSample(): LoadSample {
  const [load1 = 0, load5 = 0, load15 = 0] = loadavg();
  return { load1, load5, load15, cpuCount: availableParallelism() };
}

/** Clock ticks so far: the whole machine's (busy and all) and this process's with its children. */
export interface CpuTicks {
  busy: number;
  total: number;
  cpus: number;
  self: number;
}

/**
 * Parses /proc/stat and /proc/self/stat. In /proc/stat's first line (`cpu user nice system
 * idle iowait irq softirq steal ...`) steal is time the hypervisor gave to someone else, so it
 * counts as busy, like everything but idle and iowait. In /proc/self/stat, utime, stime, cutime
 * and cstime are fields 14-17 (children: those already waited for, e.g. a finished Python peer);
 * the command name in parentheses may hold spaces, so fields are counted after its `)`.
 */
export function parseCpuTicks(procStat: string, selfStat: string): CpuTicks | null {
  const lines = procStat.split('\n');
  const first = lines[0]!.trim().split(/\s+/);
  if (first[0] !== 'cpu') return null;
  const [user, nice, system, idle, iowait, irq, softirq, steal = 0] = first.slice(1, 9).map(Number);
  const busy = user! + nice! + system! + irq! + softirq! + steal;
  const cpus = lines.filter((l) => /^cpu\d+ /.test(l)).length;
  const fields = selfStat.slice(selfStat.lastIndexOf(')') + 2).split(' ');
  const self = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
  if (![busy, idle, iowait, self].every(Number.isFinite) || cpus === 0) return null;
  return { busy, total: busy + idle! + iowait!, cpus, self };
}

/** Cores' worth of CPU time others used between two readings: (busy - ours) / all * CPUs. */
export function othersCores(start: CpuTicks, end: CpuTicks): number | null {
  const total = end.total - start.total;
  if (!(total > 0)) return null;
  const others = end.busy - start.busy - (end.self - start.self);
  return Math.max(0, (others / total) * end.cpus);
}

function cpuTicks(): CpuTicks | null {
  try {
    return parseCpuTicks(
      readFileSync('/proc/stat', 'utf8'),
      readFileSync('/proc/self/stat', 'utf8'),
    );
  } catch {
    return null; // not Linux: only the load average is recorded
  }
}

/**
 * Starts watching the machine; `stop()` returns the scenario's noise record. Other processes'
 * CPU is (machine busy ticks - ours) / all ticks * CPUs, in cores.
 *
 * @example
 * const watch = watchNoise();
 * const scenario = await def.run(ctx);
 * scenario.noise = watch.stop(scenario.measurements);
 */
export function watchNoise(): { stop(measurements: Measurement[]): ScenarioNoise } {
  const before = loadSample();
  const start = cpuTicks();
  return {
    stop(measurements) {
      const end = cpuTicks();
      const after = loadSample();
      const othersCpu = start && end ? othersCores(start, end) : null;
      return { before, after, othersCpu, reasons: noiseReasons(othersCpu, measurements) };
    },
  };
}

/** stdMs / meanMs over repeats, or null with fewer than two repeats (no spread measured). */
export function coefficientOfVariation(m: Measurement): number | null {
  const { samplesMs, stdMs, meanMs } = m.timing;
  if (samplesMs.length < 2 || !(meanMs > 0)) return null;
  return stdMs / meanMs;
}

/** Why a scenario's numbers are unreliable: other processes' CPU time, or a wide spread. */
export function noiseReasons(othersCpu: number | null, measurements: Measurement[]): string[] {
  const reasons: string[] = [];
  if (othersCpu !== null && othersCpu >= maxOthersCpu)
    reasons.push(`other processes used ${othersCpu.toFixed(2)} cores`);
  const wide = measurements.filter((m) => (m.cv ?? coefficientOfVariation(m) ?? 0) > maxCv);
  if (wide.length > 0) {
    const worst = wide.reduce((a, b) => ((a.cv ?? 0) >= (b.cv ?? 0) ? a : b));
    reasons.push(
      `${wide.length} measurement(s) vary by more than ${maxCv * 100}% (worst: ${worst.key}, ` +
        `${((worst.cv ?? 0) * 100).toFixed(0)}%)`,
    );
  }
  return reasons;
}

/** The run's verdict from its scenarios' noise records (and the machine measurement's). */
export function runNoise(scenarios: Scenario[], machine: Machine | null = null): RunNoise {
  const reasons = [
    ...(machine?.noise?.reasons ?? []).map((r) => `machine: ${r}`),
    ...scenarios.flatMap((s) => (s.noise?.reasons ?? []).map((r) => `${s.id}: ${r}`)),
  ];
  return { noisy: reasons.length > 0, reasons, maxOthersCpu, maxCv };
}

/**
 * The gpt scenario's ratios that need other parts of the run: kvkit's cached step at
 * uncachedT over PyTorch's fastest eager form (the peer-torch scenario runs after it) and over
 * its own floor (set once every scenario ran). Added to the gpt scenario's `derived` beside the
 * ratios it computes itself, so the report holds every ratio the targets name in one place.
 */
import type { Report } from './report/schema.ts';

/**
 * Adds `overTorchAddmvAtT<t>` and `overFloorAtT<t>` to the gpt scenario's derived numbers,
 * each when its inputs are in the report (PyTorch ran and passed its check; the run measured
 * the machine). Call after `applyFloors`.
 *
 * @example
 * applyFloors(report);
 * addGptRatios(report);
 */
export function addGptRatios(report: Report): void {
  const gpt = report.scenarios.find((s) => s.id === 'gpt' && !s.skipped);
  if (!gpt) return;
  const u = gpt.params.uncachedT as number;
  const ours = gpt.measurements.find((m) => m.key === `cached/t=${u}`);
  if (!ours) return;
  const torch = report.scenarios
    .find((s) => s.id === 'peer-torch' && !s.skipped)
    ?.measurements.find((m) => m.key === `torch-addmv/gpt/cached/t=${u}`);
  if (torch) gpt.derived[`overTorchAddmvAtT${u}`] = ours.timing.meanMs / torch.timing.meanMs;
  if (ours.floor) gpt.derived[`overFloorAtT${u}`] = ours.floor.ratio;
}

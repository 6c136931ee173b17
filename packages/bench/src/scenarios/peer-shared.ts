/**
 * What the peer scenarios share: the sizes they run (the seed, and the context scenario's layer
 * at a few contexts), and the ratios to kvkit's own numbers from the same run. A ratio's key
 * names the peer and its form: `oursOverTorchAddmvSeedCached` is kvkit's time over PyTorch's
 * addmv form's, on the seed's cached loop (below 1: kvkit is faster).
 */
import type { Measurement, Scenario } from '../report/schema.ts';
import type { ScenarioContext } from '../scenario.ts';
import { gptSizes } from './gpt-workload.ts';
import { gpt2Small, quickLayer } from './layer-workload.ts';
import { seedSizes } from './seed-workload.ts';

/** The sizes every peer runs in this run. */
export function peerSizes(quick: boolean) {
  return {
    seed: quick ? seedSizes.quick : seedSizes.full,
    layer: quick ? quickLayer : gpt2Small,
    /** A subset of the context scenario's contexts, so kvkit's numbers are in the same run. */
    contexts: quick ? [16, 64] : [128, 512, 2048],
    /** The gpt scenario's model and contexts, all of them. */
    gpt: quick ? gptSizes.quick : gptSizes.full,
  };
}

/** The workloads a peer runs, each beside the kvkit scenario of the same id. */
export type PeerWorkload = 'seed' | 'context' | 'gpt';

/** Keys of kvkit's own measurements that a peer measurement stands beside. */
export function kvkitKey(workload: PeerWorkload, variant: string, t?: number): string {
  return workload === 'seed' ? variant : `${variant}/t=${t}`;
}

/**
 * kvkit / peer for every peer measurement whose kvkit counterpart ran in this run: the seed's
 * `cached`/`uncached` (and, for engines timed without construction, `cached-loop-only`), the
 * context scenario's `cached/t=..`/`uncached/t=..` and the gpt scenario's.
 */
export function ratiosToKvkit(
  ctx: ScenarioContext,
  peer: string,
  measurements: Measurement[],
  seedCachedKey: 'cached' | 'cached-loop-only' = 'cached',
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of measurements) {
    const { workload, variant, t } = m.labels as {
      workload: PeerWorkload;
      variant: string;
      t?: number;
    };
    const source = ctx.results.get(workload) as Scenario | undefined;
    if (!source || source.skipped) continue;
    const key =
      workload === 'seed' && variant === 'cached' ? seedCachedKey : kvkitKey(workload, variant, t);
    const ours = source.measurements.find((x) => x.key === key);
    if (!ours) continue;
    const name = `${cap(workload)}${cap(variant)}${t === undefined ? '' : `T${t}`}`;
    out[`oursOver${peer}${name}`] = ours.timing.meanMs / m.timing.meanMs;
  }
  return out;
}

function cap(s: string): string {
  return s[0]!.toUpperCase() + s.slice(1);
}

/**
 * The physical floor under each measurement: the bytes it must read (every weight once per
 * forward call, plus the keys and values it attends over) at the run's measured read
 * bandwidth, or the FLOPs it must do at the run's measured XNNPACK matMul rate, whichever takes
 * longer (a roofline). Decode steps land on the bandwidth side, prefills on the FLOP side. The
 * model is computed from each scenario's parameters and each measurement's labels, so the
 * scenarios themselves need not know about floors.
 */
import type { Floor, Measurement, Report, Scenario } from './report/schema.ts';

/** One layer's sizes. */
export interface LayerSizes {
  C: number;
  nHead: number;
  nKvHeads?: number;
}

/** Bytes and FLOPs of some work. */
export interface Work {
  bytes: number;
  flops: number;
}

const add = (a: Work, b: Work): Work => ({ bytes: a.bytes + b.bytes, flops: a.flops + b.flops });

/**
 * One forward call of an attention layer: B sequences of T new rows, attending over L keys
 * (L - T cached before the call). Reads every weight once and the L keys and values of every
 * key/value head; FLOPs of both projections and of q.k and p.v over the causal rows.
 *
 * @example
 * forwardWork({ C: 768, nHead: 12 }, 1, 1, 513); // one GPT-2 small decode step at t = 512
 */
export function forwardWork(l: LayerSizes, B: number, T: number, L: number): Work {
  const hs = l.C / l.nHead;
  const nkv = l.nKvHeads ?? l.nHead;
  const qkv = l.C + 2 * nkv * hs;
  const weights = (l.C * qkv + qkv + l.C * l.C + l.C) * 4;
  const kv = 2 * B * nkv * L * hs * 4;
  // Row r (0-based) of the T new rows sits at L - T + r and sees L - T + r + 1 keys.
  const keysSeen = T * (L - T) + (T * (T + 1)) / 2;
  const projections = 2 * B * T * l.C * qkv + 2 * B * T * l.C * l.C;
  const attention = 2 * 2 * B * l.nHead * hs * keysSeen;
  return { bytes: weights + kv, flops: projections + attention };
}

/** A GPT's sizes (minGPT's: the MLP is 4C wide, lm_head has no bias). */
export interface GptModelSizes extends LayerSizes {
  nLayer: number;
  vocabSize: number;
}

/** Bytes and FLOPs of one MLP (c_fc C -> 4C, c_proj 4C -> C, with biases) over N rows. */
function mlpWork(C: number, N: number): Work {
  return { bytes: (C * 4 * C + 4 * C + 4 * C * C + C) * 4, flops: 2 * N * 2 * 4 * C * C };
}

/**
 * One forward call of a GPT with `lastPositionOnly`: B sequences of T new tokens attending
 * over L positions. Reads every block's weights once (attention as `forwardWork`, both layer
 * norms, the MLP), the final norm and lm_head once, the T embedding rows of tokens and
 * positions, and the keys and values of every layer; lm_head's FLOPs are for the last
 * position only.
 *
 * @example
 * gptForwardWork({ nLayer: 12, C: 768, nHead: 12, vocabSize: 50257 }, 1, 1, 513).bytes; // ~0.52e9
 */
export function gptForwardWork(g: GptModelSizes, B: number, T: number, L: number): Work {
  const { C, nLayer, vocabSize: V } = g;
  const norms = 2 * 2 * C * 4; // ln_1 and ln_2: weight and bias
  const block = add(add(forwardWork(g, B, T, L), mlpWork(C, B * T)), { bytes: norms, flops: 0 });
  const ends: Work = {
    bytes: (2 * C + V * C + 2 * B * T * C) * 4, // ln_f, lm_head, the embedding rows
    flops: 2 * B * V * C,
  };
  return { bytes: nLayer * block.bytes + ends.bytes, flops: nLayer * block.flops + ends.flops };
}

/**
 * One part of a GPT decode step at t, as the gpt scenario times it alone (gpt-parts.ts): what
 * it reads and computes for all layers; null for the elementwise part (too small to have a
 * bandwidth floor worth the name).
 */
export function gptPartWork(g: GptModelSizes, part: string, t: number): Work | null {
  const { C, nLayer, vocabSize: V } = g;
  const hs = C / g.nHead;
  const nkv = g.nKvHeads ?? g.nHead;
  const qkv = C + 2 * nkv * hs;
  if (part.startsWith('projections'))
    return {
      bytes: nLayer * (C * qkv + qkv + C * C + C) * 4,
      flops: nLayer * 2 * (C * qkv + C * C),
    };
  if (part.startsWith('MLP')) {
    const m = mlpWork(C, 1);
    return { bytes: nLayer * m.bytes, flops: nLayer * m.flops };
  }
  if (part === 'attention kernel')
    return {
      bytes: nLayer * 2 * nkv * (t + 1) * hs * 4,
      flops: nLayer * 2 * 2 * g.nHead * hs * (t + 1),
    };
  if (part === 'lm_head') return { bytes: V * C * 4, flops: 2 * V * C };
  return null;
}

/** The seed's cached loop: prefill `prefill` rows, then one row at each later position. */
export function seedCachedWork(s: LayerSizes & { B: number; T: number; prefill: number }): Work {
  let w = forwardWork(s, s.B, s.prefill, s.prefill);
  for (let i = s.prefill; i < s.T; i++) w = add(w, forwardWork(s, s.B, 1, i + 1));
  return w;
}

/** The seed's uncached loop: the full forward of every prefix prefill..T. */
export function seedUncachedWork(s: LayerSizes & { B: number; T: number; prefill: number }): Work {
  let w: Work = { bytes: 0, flops: 0 };
  for (let i = s.prefill; i <= s.T; i++) w = add(w, forwardWork(s, s.B, i, i));
  return w;
}

type Params = Record<string, unknown>;
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

/** The work of one call of a measurement, or null when the bench has no model for it. */
export function measurementWork(s: Scenario, m: Measurement): Work | null {
  const p = s.params as Params;
  const l = m.labels;
  const variant = String(l.variant ?? '');
  const seedLike = (sizes: Params): Work | null => {
    const z = sizes as unknown as LayerSizes & { B: number; T: number; prefill: number };
    if (variant.startsWith('cached')) return seedCachedWork(z);
    if (variant === 'uncached') return seedUncachedWork(z);
    return null;
  };
  const layer = { C: num(p.C)!, nHead: num(p.nHead)! };
  switch (s.id) {
    case 'seed':
      return seedLike(p);
    case 'backends':
      return seedLike(p);
    case 'context': {
      const t = num(l.t)!;
      if (variant === 'cached') return forwardWork(layer, 1, 1, t + 1);
      if (variant === 'uncached') return forwardWork(layer, 1, t + 1, t + 1);
      if (variant === 'attention') return { bytes: m.extra!.bytes!, flops: 0 };
      if (variant === 'copy') return { bytes: 2 * m.extra!.bytes!, flops: 0 };
      return null;
    }
    case 'capacity':
      return forwardWork(layer, 1, 1, num(p.t)! + 1);
    case 'heads':
      return forwardWork({ ...layer, nKvHeads: num(l.nKvHeads)! }, 1, 1, num(p.t)! + 1);
    case 'batch':
      return forwardWork(layer, num(l.B)!, 1, num(p.t)! + 1);
    case 'prefill': {
      const T = num(p.T)!;
      if (m.key === 'forward') return forwardWork(layer, 1, T, T);
      if (m.key === 'matmul')
        return {
          bytes: (T * layer.C + 3 * layer.C * layer.C) * 4,
          flops: 2 * T * layer.C * 3 * layer.C,
        };
      return null;
    }
    case 'strategies': {
      // A windowed cache (sliding window, or sinks plus a window: `window` slots in all)
      // attends over at most its window; static and dynamic over every position.
      const t = num(l.t)!;
      const windowed = l.strategy === 'sliding-window' || l.strategy === 'sink';
      const keys = windowed ? Math.min(t + 1, num(p.window)!) : t + 1;
      return forwardWork(layer, 1, 1, keys);
    }
    case 'gpt': {
      const g = p as unknown as GptModelSizes;
      const t = num(l.t)!;
      if (variant === 'part') return gptPartWork(g, String(l.part), t);
      return gptWork(g, variant, t);
    }
    case 'steady': {
      // Steps at positions warm+1 .. warm+steps: the mean step attends over the middle one.
      const mid = 1 + num(p.warmupSteps)! + num(p.steps)! / 2;
      return forwardWork(layer, 1, 1, mid + 1);
    }
    default:
      return peerWork(p, l.workload, variant, num(l.t));
  }
}

/** A GPT decode step at t (t cached, one new) or the no-cache forward of t + 1 tokens. */
function gptWork(g: GptModelSizes, variant: string, t: number): Work | null {
  if (variant === 'cached') return gptForwardWork(g, 1, 1, t + 1);
  if (variant === 'uncached') return gptForwardWork(g, 1, t + 1, t + 1);
  return null;
}

/** Peer scenarios: their labels say which workload (the seed, the context layer, the GPT) they ran. */
function peerWork(
  p: Params,
  workload: unknown,
  variant: string,
  t: number | undefined,
): Work | null {
  if (workload === 'seed' && p.seed) {
    const z = p.seed as LayerSizes & { B: number; T: number; prefill: number };
    return variant === 'cached'
      ? seedCachedWork(z)
      : variant === 'uncached'
        ? seedUncachedWork(z)
        : null;
  }
  if (workload === 'gpt' && p.gpt && t !== undefined)
    return gptWork(p.gpt as GptModelSizes, variant, t);
  if (workload === 'context' && p.layer && t !== undefined) {
    const z = p.layer as LayerSizes;
    return variant === 'cached'
      ? forwardWork(z, 1, 1, t + 1)
      : variant === 'uncached'
        ? forwardWork(z, 1, t + 1, t + 1)
        : null;
  }
  return null;
}

/** The run's rates from its machine measurement: GB/s (1e9 bytes) and GFLOP/s. */
export function machineRates(report: Report): { readGBps: number; gflops: number } | null {
  const m = report.machine;
  return m && m.readGBps > 0 && m.matmulGflops > 0
    ? { readGBps: m.readGBps, gflops: m.matmulGflops }
    : null;
}

/** The floor of one call: the slower of reading its bytes and doing its FLOPs. */
export function floorOf(
  work: Work,
  rates: { readGBps: number; gflops: number },
  meanMs: number,
): Floor {
  const bandwidthMs = work.bytes / rates.readGBps / 1e6;
  const flopsMs = work.flops / rates.gflops / 1e6;
  const floor: Floor =
    bandwidthMs >= flopsMs
      ? { kind: 'bandwidth', amount: work.bytes, rate: rates.readGBps, ms: bandwidthMs, ratio: 0 }
      : { kind: 'flops', amount: work.flops, rate: rates.gflops, ms: flopsMs, ratio: 0 };
  floor.ratio = meanMs / floor.ms;
  return floor;
}

/**
 * Sets `floor` on every measurement the model covers, from the run's own machine measurement.
 * Does nothing when the run has none.
 *
 * @example
 * applyFloors(report);
 * report.scenarios[0].measurements[0].floor?.ratio; // measured mean / floor
 */
export function applyFloors(report: Report): void {
  const rates = machineRates(report);
  if (!rates) return;
  for (const s of report.scenarios) {
    if (s.skipped) continue;
    for (const m of s.measurements) {
      const work = measurementWork(s, m);
      if (work && (work.bytes > 0 || work.flops > 0))
        m.floor = floorOf(work, rates, m.timing.meanMs);
    }
  }
}

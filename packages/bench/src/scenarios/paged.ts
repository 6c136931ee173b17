import {
  type CacheShape,
  type CacheSpec,
  KernelHeap,
  PagedKVCache,
  StaticKVCache,
} from '@kvkit/kv-cache';
import * as tf from '@tensorflow/tfjs-core';
import type { Measurement, Scenario } from '../report/schema.ts';
import type { ScenarioDefinition } from '../scenario.ts';
import { timeit } from '../timeit.ts';
import { gpt2Small, layerWorkload, quickLayer } from './layer-workload.ts';
import { layerDims } from './titles.ts';

const sizes = {
  full: { t: 2048, sequences: 64, maxLength: 2048, prompt: 512, samples: 8 },
  quick: { t: 64, sequences: 64, maxLength: 128, prompt: 48, samples: 8 },
} as const;
const BLOCK = 16; // positions per block: vLLM's default

/** A paged cache as a module's own cache: one sequence per batch row, a pool for `positions`. */
const paged =
  (positions: number, prefixCaching = true) =>
  (s: CacheShape): PagedKVCache =>
    new PagedKVCache({
      nLayers: s.nLayers,
      nKvHeads: s.nKvHeads,
      headSize: s.headSize,
      blockSize: BLOCK,
      numBlocks: s.maxBatchSize * Math.ceil(positions / BLOCK),
      prefixCaching,
      ...(s.heap ? { heap: s.heap } : {}),
    });

/** Lengths 1..max from a fixed generator, so every run measures the same sequences. */
function lengths(n: number, max: number): number[] {
  let x = 20261210;
  return Array.from({ length: n }, () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return 1 + (x % max);
  });
}

/**
 * Caches positions [0, t) of the module's sequence (batch row 0) in every other block of the
 * pool: a second sequence takes the blocks in between, as when sequences decode side by side.
 */
function fillFragmented(w: ReturnType<typeof layerWorkload>, t: number): void {
  w.cachedStep(0); // builds the module's cache; row 0 is its sequence
  const cache = w.mha.kvCache as PagedKVCache;
  const [own] = cache.boundSequences();
  const other = cache.addSequence().id;
  cache.crop(0);
  const { nKvHeads: nkv, headSize: hs } = w.mha.dims;
  for (let p = 0; p < t; p += BLOCK) {
    const n = Math.min(BLOCK, t - p);
    for (const seq of [own!, other]) {
      cache.bind([seq]);
      const rows = tf.randomUniform([1, nkv, n, hs], -1, 1, 'float32', p);
      cache.update(w.mha.layer, { keys: rows, values: rows }, p);
      rows.dispose();
    }
  }
  cache.bind([own!]);
}

/**
 * The paged cache against the static cache, GPT-2-small layer, one sequence per batch row:
 * (1) a decode step at context t, and the attention part alone (the kernel walks one run per
 * block); (2) the memory of 64 sequences of random lengths against 64 static caches of the
 * longest length; (3) one prompt prefilled for 8 sequences (8 samples of a prompt) with and
 * without prefix caching: the time and the key/value bytes the 8 sequences hold.
 */
export const pagedScenario: ScenarioDefinition = {
  id: 'paged',
  title: 'Paged cache: step time, memory, shared-prompt prefill (GPT-2 small layer, B=1)',
  async run(ctx) {
    const dims = ctx.quick ? quickLayer : gpt2Small;
    const size = ctx.quick ? sizes.quick : sizes.full;
    const measurements: Measurement[] = [];

    // (1) One decode step at context t, and its attention part alone. `paged`: the sequence's
    // blocks are neighbours in the pool, so the kernel reads one run; `paged-fragmented`: its
    // blocks alternate with another sequence's, one run per block.
    const { t } = size;
    for (const [name, cache] of [
      ['static', 'static'],
      ['paged', paged(t + 1)],
      ['paged-fragmented', paged(2 * (t + 1))],
    ] as [string, CacheSpec][]) {
      const w = layerWorkload({ ...dims, B: 1, blockSize: t + 1, cache });
      try {
        if (name === 'paged-fragmented') fillFragmented(w, t);
        else w.fillDirect(t);
        ctx.progress(`paged: ${name} step at t=${t}`);
        const step = timeit(() => w.cachedStep(t), { budgetMs: 8_000, ...ctx.timing });
        const c = w.mha.kvCache!;
        const extra = { bytesUsed: c.bytesUsed(), bytesReserved: c.bytesReserved() };
        measurements.push({ key: `step/${name}`, labels: { cache: name, t }, timing: step, extra });
        const attention = w.attentionOnly(t);
        try {
          const timing = timeit(attention.run, { budgetMs: 4_000, ...ctx.timing });
          measurements.push({ key: `attention/${name}`, labels: { cache: name, t }, timing });
        } finally {
          attention.dispose();
        }
      } finally {
        w.dispose();
      }
    }

    // (2) Memory: 64 sequences of random lengths, in one pool sized for them, against 64
    // static caches of the longest length (one is built; the 64 are identical).
    const { nHead } = dims;
    const hs = dims.C / nHead;
    const lens = lengths(size.sequences, size.maxLength);
    const heap = new KernelHeap();
    const pool = new PagedKVCache({
      nKvHeads: nHead,
      headSize: hs,
      blockSize: BLOCK,
      numBlocks: lens.reduce((n, L) => n + Math.ceil(L / BLOCK), 0),
      heap,
    });
    const one = new StaticKVCache({
      maxBatchSize: 1,
      nKvHeads: nHead,
      headSize: hs,
      capacity: size.maxLength,
      heap,
    });
    ctx.progress(`paged: memory of ${size.sequences} sequences`);
    const memory: Record<string, number> = {};
    try {
      for (const L of lens) {
        const { id } = pool.addSequence();
        pool.bind([id]);
        const rows = tf.zeros([1, nHead, L, hs]);
        pool.update(0, { keys: rows, values: rows }, 0);
        rows.dispose();
      }
      const row = tf.zeros([1, nHead, 1, hs]);
      one.update(0, { keys: row, values: row }, 0);
      row.dispose();
      const s = pool.stats();
      const tokens = lens.reduce((a, b) => a + b, 0);
      Object.assign(memory, {
        tokens,
        pagedBytesReserved: pool.bytesReserved(),
        pagedBytesAllocated: s.bytesAllocated,
        pagedBytesUsed: s.bytesUsed,
        pagedWaste: s.waste,
        staticBytesReserved: size.sequences * one.bytesReserved(),
        staticWaste: 1 - (tokens * pool.bytesPerToken()) / (size.sequences * one.bytesReserved()),
      });
    } finally {
      pool.dispose();
      one.dispose();
    }

    // (3) One prompt, 8 sequences: with prefix caching the first prefills it and the others
    // reuse its full blocks, prefilling only the tail (at least the last token).
    const P = size.prompt;
    const ids = Array.from({ length: P }, (_, i) => i);
    const prefill: Record<string, number> = {};
    for (const prefix of [true, false]) {
      const name = prefix ? 'prefix-cache' : 'no-prefix-cache';
      const w = layerWorkload({ ...dims, B: 1, blockSize: P });
      const prompt = w.prefix(P - 1); // (1, P, C)
      // What a sequence prefills: all of it, or the tail after the reused full blocks.
      const reusable = Math.floor((P - 1) / BLOCK) * BLOCK;
      const tails = new Map(
        [0, reusable].map((from) => [from, tf.slice(prompt, [0, from, 0], [1, P - from, dims.C])]),
      );
      const last = { bytes: 0, hits: 0, recomputed: 0 }; // what the last run left
      const run = () => {
        const cache = paged(
          P,
          prefix,
        )({
          nLayers: 1,
          nKvHeads: nHead,
          headSize: hs,
          maxBatchSize: size.samples,
          blockSize: P,
        });
        try {
          w.mha.useCache(cache);
          let recomputed = 0;
          for (let i = 0; i < size.samples; i++) {
            const { id, reused } = cache.addSequence(ids);
            cache.bind([id]);
            w.mha.forward(tails.get(reused)!, { useKvCache: true, startPos: reused }).dispose();
            recomputed += P - reused;
          }
          const s = cache.stats();
          Object.assign(last, { bytes: s.bytesAllocated, hits: s.prefixHits, recomputed });
        } finally {
          cache.dispose();
        }
      };
      try {
        ctx.progress(`paged: ${size.samples} x ${P}-token prompt prefill, ${name}`);
        const timing = timeit(run, { budgetMs: 10_000, ...ctx.timing });
        const r = last;
        measurements.push({
          key: `prefill/${name}`,
          labels: { prefixCaching: String(prefix), prompt: P, samples: size.samples },
          timing,
          extra: { bytesAllocated: r.bytes, prefixHits: r.hits, positionsPrefilled: r.recomputed },
        });
        prefill[name] = timing.meanMs;
        prefill[`${name}Bytes`] = r.bytes;
      } finally {
        tf.dispose([prompt, ...tails.values()]);
        w.dispose();
      }
    }

    const get = (key: string) => measurements.find((m) => m.key === key)!.timing;
    const result: Scenario = {
      id: 'paged',
      title: `Paged cache: step time, memory, shared-prompt prefill (${layerDims(dims)}, B=1): t=${t}, ${size.sequences} sequences of 1..${size.maxLength}, ${size.samples} x ${P}-token prompt`,
      params: { ...dims, B: 1, blockSize: BLOCK, ...size, backend: ctx.backend },
      measurements,
      derived: {
        stepPagedOverStatic: get('step/paged').meanMs / get('step/static').meanMs,
        stepPagedOverStaticMin: get('step/paged').minMs / get('step/static').minMs,
        attentionPagedOverStatic: get('attention/paged').meanMs / get('attention/static').meanMs,
        stepFragmentedOverStatic: get('step/paged-fragmented').meanMs / get('step/static').meanMs,
        attentionFragmentedOverStatic:
          get('attention/paged-fragmented').meanMs / get('attention/static').meanMs,
        ...memory,
        memoryPagedOverStatic: memory.pagedBytesReserved! / memory.staticBytesReserved!,
        prefillWithOverWithout: prefill['prefix-cache']! / prefill['no-prefix-cache']!,
        prefillBytesWithOverWithout:
          prefill['prefix-cacheBytes']! / prefill['no-prefix-cacheBytes']!,
      },
    };
    return result;
  },
};

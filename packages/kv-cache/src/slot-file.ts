import { type CacheFile, fail, readCacheFile, writeCacheFile } from './cache-file.ts';
import type { CacheConfig } from './kv-cache.ts';
import type { LayerStorage, SlotRun } from './layer-storage.ts';

/** What `save` reads of a slot cache. */
export interface SlotFileSource {
  strategy: string;
  dtype: string;
  config: CacheConfig;
  layers: readonly LayerStorage[];
  lengths: readonly number[][];
  /** Slots a row holds after `length` positions (always slots [0, held)). */
  held: (length: number) => number;
  /** Where those slots' positions are, in position order. */
  runsOf: (length: number) => SlotRun[];
}

/** What `load` needs of a slot cache: its storage to write, and a way to grow it first. */
export interface SlotFileTarget extends SlotFileSource {
  lengths: number[][];
  maxPosition: number | null;
  /** Makes room for `rows` rows of each layer reaching `maxLengths[layer]`, all or nothing. */
  grow: (rows: number, maxLengths: readonly number[]) => void;
}

/**
 * A slot cache as a cache file: every row's held positions, in position order (runs in the
 * order `runsOf` gives them), keys `(nkv, slots, hs)` then values, layer after layer, row
 * after row. Rows past the last one ever written are left out.
 */
export function saveRows(src: SlotFileSource): Uint8Array {
  const rows = Math.max(0, ...src.lengths.map((l) => l.length));
  const lengths = src.lengths.map((l) => Array.from({ length: rows }, (_, b) => l[b] ?? 0));
  const slots = lengths.map((l) => l.map(src.held));
  const { nKvHeads: nkv } = src.config;
  const header = {
    strategy: src.strategy,
    dtype: src.dtype,
    config: src.config,
    rows,
    lengths,
    slots,
  };
  return writeCacheFile(header, (body) => {
    let at = 0;
    lengths.forEach((layer, l) => {
      layer.forEach((n, b) => {
        const runs = src.runsOf(n).filter((r) => r.count > 0);
        for (const which of ['keys', 'values'] as const) {
          for (let j = 0; j < nkv; j++) {
            for (const r of runs) {
              const bytes = src.layers[l]!.slotBytes(which, b, j, r.slot, r.count);
              body.set(bytes, at);
              at += bytes.length;
            }
          }
        }
      });
    });
  });
}

/**
 * Replaces a slot cache's contents with a file's: checks the whole file first (readCacheFile,
 * then that it was written by a cache of this strategy, dtype and config, with the held-slot
 * rule of this strategy), then grows the storage (which may fail, changing nothing), and only
 * then writes. Throws FormatError or CacheCapacityError.
 */
export function loadRows(bytes: Uint8Array, target: SlotFileTarget): void {
  const file = readCacheFile(bytes);
  checkFits(file, target);
  target.grow(
    file.rows,
    file.lengths.map((l) => Math.max(0, ...l)),
  );
  const { nKvHeads: nkv, headSize: hs } = target.config;
  let at = 0;
  target.layers.forEach((s, l) => {
    s.clear();
    const lengths = target.lengths[l]!;
    lengths.length = 0;
    file.lengths[l]!.forEach((n, b) => {
      lengths[b] = n;
      const runs = target.runsOf(n).filter((r) => r.count > 0);
      for (const which of ['keys', 'values'] as const) {
        for (let j = 0; j < nkv; j++) {
          for (const r of runs) {
            const size = r.count * hs * 4;
            s.setSlotBytes(which, b, j, r.slot, file.body.subarray(at, at + size));
            at += size;
          }
        }
      }
    });
  });
}

/** The checks only the cache can make: its strategy, dtype, config and held-slot rule. */
export function checkFits(
  file: CacheFile,
  target: Pick<SlotFileTarget, 'strategy' | 'dtype' | 'config' | 'maxPosition' | 'held'>,
): void {
  if (file.strategy !== target.strategy) {
    fail('strategy', `the file holds a ${file.strategy} cache; this is a ${target.strategy} cache`);
  }
  if (file.dtype !== target.dtype) {
    fail('dtype', `the file holds ${file.dtype} rows; this cache keeps ${target.dtype} rows`);
  }
  const keys = new Set([...Object.keys(file.config), ...Object.keys(target.config)]);
  const differ = [...keys].filter((k) => file.config[k] !== target.config[k]);
  if (differ.length > 0) {
    const list = differ.map((k) => `${k} ${file.config[k]} (file) vs ${target.config[k]} (cache)`);
    fail('config', `the file was written by a cache of another config: ${list.join(', ')}`);
  }
  const { maxBatchSize } = target.config;
  if (maxBatchSize !== null && file.rows > maxBatchSize) {
    fail('lengths', `the file holds ${file.rows} rows; the cache holds at most ${maxBatchSize}`);
  }
  for (const [l, layer] of file.lengths.entries()) {
    for (const [b, n] of layer.entries()) {
      if (target.maxPosition !== null && n > target.maxPosition) {
        fail(
          'lengths',
          `row ${b} of layer ${l} has seen ${n} positions, past the capacity ${target.maxPosition}`,
        );
      }
      const slots = file.slots[l]![b]!;
      if (slots !== target.held(n)) {
        fail(
          'lengths',
          `row ${b} of layer ${l} has seen ${n} positions, so a ${target.strategy} cache holds ${target.held(n)} slots, not ${slots}`,
        );
      }
    }
  }
}

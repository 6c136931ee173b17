import * as tf from '@tensorflow/tfjs-core';
import type { KVReadResult } from '../kv-cache.ts';
import type { BlockPool } from './block-pool.ts';
import type { Sequence } from './sequence.ts';

/**
 * What batch rows hold in one layer, in position order, gathered block by block into new
 * tensors `(B, nkv, t, hs)` (t = the longest row) with each key's position (-1 for padding).
 * A null row holds nothing. O(rows held): the reference path, tests and inspection.
 */
export function readRows(
  pool: BlockPool,
  layer: number,
  rows: readonly (Sequence | null)[],
): KVReadResult {
  const { nKvHeads: nkv, headSize: hs, blockSize: bs } = pool.dims;
  const B = rows.length;
  const t = Math.max(0, ...rows.map((s) => s?.lengths[layer] ?? 0));
  const k = new Float32Array(B * nkv * t * hs);
  const v = new Float32Array(k.length);
  const positions = new Int32Array(B * t).fill(-1);
  rows.forEach((seq, b) => {
    const n = seq?.lengths[layer] ?? 0;
    for (let p = 0; p < n; p += bs) {
      const count = Math.min(bs, n - p);
      const block = seq!.table[p / bs]!;
      for (let j = 0; j < nkv; j++) {
        const dst = ((b * nkv + j) * t + p) * hs;
        for (const [which, out] of [
          ['keys', k],
          ['values', v],
        ] as const) {
          const bytes = pool.slotBytes(which, layer, block, j, 0, count); // 4-byte aligned
          out.set(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4), dst);
        }
      }
    }
    for (let p = 0; p < n; p++) positions[b * t + p] = p;
  });
  const shape: [number, number, number, number] = [B, nkv, t, hs]; // (B, nkv, t, hs)
  return { keys: tf.tensor4d(k, shape), values: tf.tensor4d(v, shape), positions };
}

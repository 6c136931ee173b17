import type { KVCache, RowSpans } from '@kvkit/kv-cache';
import { getDefaultGenerator } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { cachePieces } from './chunk-pieces.ts';
import type { AttentionDims } from './config.ts';
import { dropout } from './dropout.ts';
import type { Linear } from './linear.ts';
import { chunkPositions, visibilityMask } from './mask.ts';

export interface ReferenceForwardArgs {
  x: tf.Tensor; // (B, T, C)
  dims: AttentionDims;
  cAttn: Linear;
  cProj: Linear;
  cache: KVCache | null;
  layer: number;
  /** Each batch row's first (real) position. */
  startPos: readonly number[];
  /** Ragged batches: each row's real columns; null when nothing is padding. */
  spans: RowSpans | null;
  training: boolean;
  /** Reserves the cache's memory and rewinds it: called once, right before the cache first changes. */
  beforeWrite: () => void;
}

/**
 * The reference path, in plain tfjs ops: what the kernel path is tested against, and the path
 * for training mode (dropout on the attention weights) and for non-finite chunks. With a cache,
 * it stores the chunk through `update` and attends over what `read` returns, masked by the
 * cache's visibility rule; a cache that takes a chunk only in pieces is fed piece by piece.
 * Ragged batches (`spans`): padding columns are never written to the cache and never attended;
 * their query rows see every key (so nothing becomes NaN) and the caller zeroes their output.
 */
export function forwardReference(a: ReferenceForwardArgs): tf.Tensor3D {
  const [B, T, C] = a.x.shape as [number, number, number];
  const { nHead: nh, nKvHeads: nkv, headSize: hs } = a.dims;
  const g = nh / nkv; // query heads per key/value head; they share one score matrix
  return tf.tidy(() => {
    const qkv = a.cAttn.apply(tf.reshape(a.x, [B * T, C])); // (B*T, C + 2*nkv*hs)
    const [q, k, v] = tf.split(qkv, [C, nkv * hs, nkv * hs], 1);
    const qh = tf.transpose(tf.reshape(q!, [B, T, nh, hs]), [0, 2, 1, 3]); // (B, nh, T, hs)
    const kh = tf.transpose(tf.reshape(k!, [B, T, nkv, hs]), [0, 2, 1, 3]); // (B, nkv, T, hs)
    const vh = tf.transpose(tf.reshape(v!, [B, T, nkv, hs]), [0, 2, 1, 3]); // (B, nkv, T, hs)
    const attendOver = (
      queries: tf.Tensor, // (B, nh, n, hs)
      queryPositions: Int32Array, // (B, n): -1 for padding
      keys: tf.Tensor, // (B, nkv, t, hs)
      values: tf.Tensor,
      positions: Int32Array, // (B, t)
    ): tf.Tensor => {
      const n = queries.shape[2]!;
      const qg = tf.reshape(queries, [B, nkv, g * n, hs]); // (B, nkv, g*n, hs)
      let att = tf.mul(tf.matMul(qg, keys, false, true), Math.fround(1 / Math.sqrt(hs))); // (B, nkv, g*n, t)
      const visibility = a.cache?.visibility ?? { window: null, sinks: 0 };
      const mask = visibilityMask(queryPositions, positions, B, g, visibility); // (B, 1, g*n, t)
      if (mask) att = tf.where(tf.broadcastTo(mask, att.shape), att, tf.fill(att.shape, -Infinity));
      att = tf.softmax(att, -1);
      if (a.training) att = dropout(att, a.dims.attnPdrop, getDefaultGenerator());
      return tf.reshape(tf.matMul(att, values), [B, nh, n, hs]); // (B, nh, n, hs)
    };
    let y: tf.Tensor; // (B, nh, T, hs)
    if (a.cache) {
      a.beforeWrite();
      const pieces: tf.Tensor[] = [];
      for (const p of cachePieces(a.cache, a.layer, a.startPos, T, a.spans)) {
        const piece = (t: tf.Tensor) => tf.slice(t, [0, 0, p.from, 0], [B, -1, p.T, hs]);
        const spans = p.spans ? { spans: p.spans } : {};
        a.cache.update(a.layer, { keys: piece(kh), values: piece(vh) }, p.startPos, spans);
        const read = a.cache.read(a.layer, B);
        const queryPositions = chunkPositions(p.startPos, p.T, p.spans);
        pieces.push(attendOver(piece(qh), queryPositions, read.keys, read.values, read.positions));
      }
      y = pieces.length === 1 ? pieces[0]! : tf.concat(pieces, 2);
    } else {
      // Each row's real columns are positions 0, 1, ... among themselves; padding is -1.
      const positions = chunkPositions(new Array(B).fill(0), T, a.spans);
      y = attendOver(qh, positions, kh, vh, positions);
    }
    const rows = tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B * T, C]) as tf.Tensor2D; // (B*T, C)
    let out: tf.Tensor = tf.reshape(a.cProj.apply(rows), [B, T, C]); // (B, T, C)
    if (a.training) out = dropout(out, a.dims.residPdrop, getDefaultGenerator());
    return out as tf.Tensor3D;
  });
}

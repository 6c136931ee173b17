import type { KVCache } from '@kvkit/kv-cache';
import { getDefaultGenerator } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import type { AttentionDims } from './config.ts';
import { dropout } from './dropout.ts';
import type { Linear } from './linear.ts';
import { visibilityMask } from './mask.ts';

export interface ReferenceForwardArgs {
  x: tf.Tensor; // (B, T, C)
  dims: AttentionDims;
  cAttn: Linear;
  cProj: Linear;
  cache: KVCache | null;
  layer: number;
  startPos: number;
  training: boolean;
  /** Reserves the cache's memory and rewinds it: called once, right before the cache first changes. */
  beforeWrite: () => void;
}

/**
 * The reference path, in plain tfjs ops: what the kernel path is tested against, and the path
 * for training mode (dropout on the attention weights) and for non-finite chunks. With a cache,
 * it stores the chunk through `update` and attends over what `read` returns, masked by the
 * cache's visibility rule; a cache that takes a chunk only in pieces is fed piece by piece.
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
      start: number,
      keys: tf.Tensor, // (B, nkv, t, hs)
      values: tf.Tensor,
      positions: Int32Array, // (B, t)
    ): tf.Tensor => {
      const n = queries.shape[2]!;
      const qg = tf.reshape(queries, [B, nkv, g * n, hs]); // (B, nkv, g*n, hs)
      let att = tf.mul(tf.matMul(qg, keys, false, true), Math.fround(1 / Math.sqrt(hs))); // (B, nkv, g*n, t)
      const visibility = a.cache?.visibility ?? { window: null, sinks: 0 };
      const mask = visibilityMask(start, n, positions, B, g, visibility); // (B, 1, g*n, t)
      if (mask) att = tf.where(tf.broadcastTo(mask, att.shape), att, tf.fill(att.shape, -Infinity));
      att = tf.softmax(att, -1);
      if (a.training) att = dropout(att, a.dims.attnPdrop, getDefaultGenerator());
      return tf.reshape(tf.matMul(att, values), [B, nh, n, hs]); // (B, nh, n, hs)
    };
    let y: tf.Tensor; // (B, nh, T, hs)
    if (a.cache) {
      a.beforeWrite();
      const pieces: tf.Tensor[] = [];
      for (let done = 0; done < T; ) {
        const s = a.startPos + done;
        const n = Math.min(T - done, a.cache.maxUpdateLength(a.layer, s, B));
        const piece = (t: tf.Tensor) => tf.slice(t, [0, 0, done, 0], [B, -1, n, hs]);
        a.cache.update(a.layer, { keys: piece(kh), values: piece(vh) }, s);
        const read = a.cache.read(a.layer, B);
        pieces.push(attendOver(piece(qh), s, read.keys, read.values, read.positions));
        done += n;
      }
      y = pieces.length === 1 ? pieces[0]! : tf.concat(pieces, 2);
    } else {
      const positions = Int32Array.from({ length: B * T }, (_, i) => i % T);
      y = attendOver(qh, 0, kh, vh, positions);
    }
    const rows = tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B * T, C]) as tf.Tensor2D; // (B*T, C)
    let out: tf.Tensor = tf.reshape(a.cProj.apply(rows), [B, T, C]); // (B, T, C)
    if (a.training) out = dropout(out, a.dims.residPdrop, getDefaultGenerator());
    return out as tf.Tensor3D;
  });
}

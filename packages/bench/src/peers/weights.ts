/**
 * The same weights and inputs for every peer: read from kvkit's own module (torch names and
 * layouts), handed to the ONNX graph builder as arrays and to the Python peer as a file.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CausalSelfAttention } from '@kvkit/attention';
import * as tf from '@tensorflow/tfjs-core';
import type { AttentionLayerWeights } from './onnx-attention.ts';

/**
 * One attention layer's parameters as float32 arrays (copies; the module is not changed).
 *
 * @example
 * const bytes = attentionModel([layerWeights(mha)]);
 */
export function layerWeights(mha: CausalSelfAttention): AttentionLayerWeights {
  const dict = mha.stateDict();
  try {
    const read = (name: keyof typeof dict) => dict[name].dataSync() as Float32Array;
    return {
      C: mha.dims.nEmbd,
      nHead: mha.dims.nHead,
      nKvHeads: mha.dims.nKvHeads,
      cAttnWeight: Float32Array.from(read('c_attn.weight')),
      cAttnBias: Float32Array.from(read('c_attn.bias')),
      cProjWeight: Float32Array.from(read('c_proj.weight')),
      cProjBias: Float32Array.from(read('c_proj.bias')),
    };
  } finally {
    tf.dispose(Object.values(dict));
  }
}

/** A named float32 array with its shape. */
export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

/**
 * Writes tensors to a fresh temporary directory as `tensors.json` (a manifest: each tensor's
 * shape and offset in floats, plus `meta`) and `tensors.bin` (raw little-endian float32), the
 * format python/peer_torch.py reads. Returns the manifest path and a function removing both.
 */
export function writeTensorFile(
  tensors: Record<string, NamedTensor>,
  meta: Record<string, unknown>,
): { manifest: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'kvbench-tensors-'));
  let offset = 0;
  const entries: Record<string, { shape: number[]; offset: number }> = {};
  for (const [name, t] of Object.entries(tensors)) {
    entries[name] = { shape: t.shape, offset };
    offset += t.data.length;
  }
  const remove = () => rmSync(dir, { recursive: true, force: true });
  const manifest = join(dir, 'tensors.json');
  try {
    // One tensor at a time, so half a gigabyte of GPT weights is never copied into one buffer.
    const fd = openSync(join(dir, 'tensors.bin'), 'w');
    try {
      for (const t of Object.values(tensors)) {
        const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
        for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done);
      }
    } finally {
      closeSync(fd);
    }
    writeFileSync(manifest, JSON.stringify({ ...meta, data: 'tensors.bin', tensors: entries }));
  } catch (e) {
    remove(); // a full disk leaves no half-written directory behind
    throw e;
  }
  return { manifest, remove };
}

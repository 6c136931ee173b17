import { ShapeError, ValueError } from '@kvkit/tensor-utils';

/** A float32 tensor to write: its shape and row-major values. */
export interface TensorToWrite {
  shape: readonly number[];
  data: Float32Array;
}

/**
 * Serialises float32 tensors as a safetensors file, as the reference library writes them: the
 * header JSON (`__metadata__` first, then the tensors sorted by name with their `F32` dtype,
 * shape and `data_offsets`) padded with spaces to a multiple of 8 bytes, then the little-endian
 * data in the same order. `readSafetensors` reads it back; so do PyTorch's `safetensors` and
 * Hugging Face's loaders.
 *
 * @throws {ValueError} for a bad name or metadata; {@link ShapeError} when a shape and its data disagree.
 * @example
 * const bytes = writeSafetensors({ 'lm_head.weight': { shape: [65, 48], data } }, { format: 'pt' });
 */
export function writeSafetensors(
  tensors: Record<string, TensorToWrite> | ReadonlyMap<string, TensorToWrite>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const list: [string, TensorToWrite][] =
    tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  list.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') {
      throw new ValueError(`writeSafetensors: metadata '${key}' must be a string`, {
        argument: 'metadata',
        value,
      });
    }
  }
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of list) {
    if (name.length === 0 || name === '__metadata__' || name in Object.prototype) {
      throw new ValueError(`writeSafetensors: '${name}' cannot name a tensor`, {
        argument: 'name',
        value: name,
      });
    }
    const numel = t.shape.reduce((a, d) => a * d, 1);
    if (!(t.data instanceof Float32Array) || t.data.length !== numel) {
      throw new ShapeError(
        `writeSafetensors: '${name}' has ${t.data?.length} float32 values for shape [${t.shape.join(', ')}]`,
        { expected: t.shape, actual: [t.data?.length ?? 0] },
      );
    }
    header[name] = {
      dtype: 'F32',
      shape: [...t.shape],
      data_offsets: [offset, offset + 4 * numel],
    };
    offset += 4 * numel;
  }
  let json = JSON.stringify(header);
  const encoder = new TextEncoder();
  const pad = (8 - (encoder.encode(json).length % 8)) % 8;
  json += ' '.repeat(pad);
  const headerBytes = encoder.encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const [, t] of list) {
    for (let i = 0; i < t.data.length; i++) view.setFloat32(at + 4 * i, t.data[i]!, true);
    at += 4 * t.data.length;
  }
  return out;
}

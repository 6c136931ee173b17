// Helpers shared by the generator, random and linear-init tests: fixtures, float32 bit patterns,
// SHA-256 of float32 bytes, and checks against the PyTorch-made descriptions of big tensors.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { ValueError } from '../src/errors.ts';

/** A JSON fixture from test/fixtures/ (see its README for where each came from). */
export function fixture<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8')) as T;
}

/** How a PyTorch-made tensor too big to store is described: size, hash, first and last bits. */
export interface Described {
  count: number;
  sha256: string;
  first8_hex: string[];
  last8_hex: string[];
}

/** The float32 bit patterns of values, as 8-digit hex strings. */
export function hexBits(values: Float32Array): string[] {
  return Array.from(new Uint32Array(Float32Array.from(values).buffer), (b) =>
    b.toString(16).padStart(8, '0'),
  );
}

/** SHA-256 of the little-endian float32 bytes, independent of the host's byte order. */
export function sha256(values: Float32Array): string {
  let bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  if (new Uint8Array(Uint32Array.of(1).buffer)[0] !== 1) {
    const view = new DataView(new ArrayBuffer(values.length * 4));
    for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i]!, true);
    bytes = new Uint8Array(view.buffer);
  }
  return createHash('sha256').update(bytes).digest('hex');
}

export function expectDescribed(values: Float32Array, ref: Described): void {
  expect(values.length).toBe(ref.count);
  expect(hexBits(values.subarray(0, 8))).toEqual(ref.first8_hex);
  expect(hexBits(values.subarray(values.length - 8))).toEqual(ref.last8_hex);
  expect(sha256(values)).toBe(ref.sha256);
}

/** Expects `fn` to throw a ValueError about `argument` (and matching `message`, if given). */
export function expectValueError(fn: () => unknown, argument: string, message?: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(ValueError);
  expect((caught as ValueError).argument).toBe(argument);
  if (message) expect((caught as ValueError).message).toMatch(message);
}

// The bytes a quantized cache holds, by the formula of docs/concepts/quantized-cache.md
// ("Memory"), written out here so the demo's tests check the cache's bytesUsed() against the
// documentation rather than against the cache's own arithmetic.

/**
 * Bytes per batch row, layer and key/value head of a quantized cache holding L positions of
 * head size hs (no crops), with groups of G and the last `residual` positions in float32; and Q,
 * how many of the L are quantized.
 *
 * @example
 * quantizedBytes(63, 16, 16, 16, 8); // { Q: 32, bytes: 5120 }
 */
export function quantizedBytes(L: number, G: number, residual: number, hs: number, bits: 8 | 4) {
  const Q = G * Math.floor(Math.max(L - residual, 0) / G);
  const lanes = bits === 8 ? 16 : 32;
  const hsPad = Math.ceil(hs / lanes) * lanes;
  const row = (hsPad * bits) / 8;
  const p = bits === 8 ? 2 : 3; // a bf16 scale, and for int4 an int8 zero point
  const keyGroup = G * row + hsPad * p;
  const valueGroup = G * (row + Math.ceil(hsPad / G) * p);
  return { Q, bytes: (Q / G) * (keyGroup + valueGroup) + (L - Q) * 2 * hs * 4 };
}

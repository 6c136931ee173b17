/**
 * Before a peer's timing is reported, its outputs must equal kvkit's on the same weights and
 * input: a peer that computes something else is not a peer.
 */

/** The tolerance: float32 results of differently ordered sums agree far closer than this. */
export const peerTolerance = 1e-5;

/** The tolerance on a GPT's logits (see the README's Peers section for why this one). */
export const gptTolerance = 1e-5;

/** The largest |a[i] - b[i]|; Infinity when the lengths differ or a value is not finite. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return worst;
}

/**
 * Null when every named output matches kvkit's within the tolerance, else why not (the first
 * mismatch, with its difference): the reason a peer's timings are withheld.
 *
 * @example
 * const problem = mismatch({ cachedLast: [ours, theirs] });
 * if (problem) return skipped(`outputs differ from kvkit's: ${problem}`);
 */
export function mismatch(
  pairs: Record<string, [ArrayLike<number>, ArrayLike<number>]>,
  tolerance = peerTolerance,
): string | null {
  for (const [name, [ours, theirs]] of Object.entries(pairs)) {
    if (ours.length !== theirs.length)
      return `${name}: ${theirs.length} values, kvkit has ${ours.length}`;
    const d = maxAbsDiff(ours, theirs);
    if (!(d <= tolerance)) return `${name}: max |difference| ${d} > ${tolerance}`;
  }
  return null;
}

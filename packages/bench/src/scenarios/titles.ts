/**
 * Scenario titles name the sizes a run really used: a quick run's report must not carry the
 * full run's sizes in its headings. The definitions' static titles (for `kvbench --help`)
 * describe full runs.
 */

/** `GPT-2 small layer: C=768, 12 heads` at full size, `C=64, 4 heads` otherwise. */
export function layerDims(d: { C: number; nHead: number }): string {
  const gpt2 = d.C === 768 && d.nHead === 12 ? 'GPT-2 small layer: ' : '';
  return `${gpt2}C=${d.C}, ${d.nHead} heads`;
}

/** The seed notebook's sizes: `B=8, T=64, C=128, 8 heads`. */
export function seedDims(s: { B: number; T: number; C: number; nHead: number }): string {
  return `B=${s.B}, T=${s.T}, C=${s.C}, ${s.nHead} heads`;
}

/**
 * `GPT-2 small: 12 layers, C=768, 12 heads, vocab 50257` at full size, the tiny model's otherwise.
 *
 * @example
 * gptDims(gptSizes.quick); // '2 layers, C=64, 4 heads, vocab 512'
 */
export function gptDims(s: {
  nLayer: number;
  C: number;
  nHead: number;
  vocabSize: number;
}): string {
  const gpt2 = s.nLayer === 12 && s.C === 768 && s.nHead === 12 && s.vocabSize === 50257;
  return `${gpt2 ? 'GPT-2 small: ' : ''}${s.nLayer} layers, C=${s.C}, ${s.nHead} heads, vocab ${s.vocabSize}`;
}

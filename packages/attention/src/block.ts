import { getDefaultGenerator } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { CausalSelfAttention, type ForwardOptions } from './causal-self-attention.ts';
import type { GPTDimensions } from './config.ts';
import { dropout } from './dropout.ts';
import { LayerNorm } from './layer-norm.ts';
import { MLP } from './mlp.ts';

/** The tensors of one block under its minGPT names (`ln_1.weight`, `attn.c_attn.weight`, ...). */
export type BlockValues = ReadonlyMap<string, Float32Array>;

/**
 * minGPT's transformer block, pre-norm: `x = x + attn(ln_1(x))`, then
 * `x = x + dropout(mlp(ln_2(x)))`. `attn` is a {@link CausalSelfAttention} writing layer `layer`
 * of the cache the model shares between its blocks.
 *
 * @example
 * const block = new Block(dims, 0, values, 'kernel');
 * const y = block.forward(x, { useKvCache: true, startPos: 0 }, false); // (B, T, C)
 */
export class Block {
  readonly ln1: LayerNorm;
  readonly attn: CausalSelfAttention;
  readonly ln2: LayerNorm;
  readonly mlp: MLP;
  readonly #residPdrop: number;

  constructor(
    dims: GPTDimensions,
    layer: number,
    values: BlockValues,
    implementation: 'kernel' | 'reference',
  ) {
    const C = dims.nEmbd;
    const v = (name: string) => values.get(name)!;
    this.#residPdrop = dims.residPdrop;
    const made: { dispose(): void }[] = [];
    const track = <M extends { dispose(): void }>(m: M): M => {
      made.push(m);
      return m;
    };
    try {
      this.ln1 = track(new LayerNorm(C));
      this.attn = track(new CausalSelfAttention(dims, { layer, implementation }));
      this.ln2 = track(new LayerNorm(C));
      this.mlp = track(
        new MLP(C, {
          cFc: { weight: v('mlp.c_fc.weight'), bias: v('mlp.c_fc.bias') },
          cProj: { weight: v('mlp.c_proj.weight'), bias: v('mlp.c_proj.bias') },
        }),
      );
      this.#loadNorms(values);
      this.#loadAttention(values);
    } catch (e) {
      for (const m of made) m.dispose();
      throw e;
    }
  }

  /** x `(B, T, C)` -> `(B, T, C)`; `training` turns the residual dropout on. */
  forward(x: tf.Tensor3D, options: ForwardOptions, training: boolean): tf.Tensor3D {
    const [B, T, C] = x.shape;
    return tf.tidy(() => {
      const h = tf.add(x, this.attn.forward(this.ln1.apply(x), options)) as tf.Tensor3D; // (B, T, C)
      let m: tf.Tensor = this.mlp.apply(tf.reshape(this.ln2.apply(h), [B * T, C])); // (B*T, C)
      if (training) m = dropout(m, this.#residPdrop, getDefaultGenerator());
      return tf.add(h, tf.reshape(m, [B, T, C])) as tf.Tensor3D;
    });
  }

  /** The block's parameters under their minGPT names, as new tensors the caller owns. */
  stateDict(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    const ln1 = this.ln1.state();
    out.set('ln_1.weight', ln1.weight).set('ln_1.bias', ln1.bias);
    for (const [name, t] of Object.entries(this.attn.stateDict())) out.set(`attn.${name}`, t);
    const ln2 = this.ln2.state();
    out.set('ln_2.weight', ln2.weight).set('ln_2.bias', ln2.bias);
    const fc = this.mlp.cFc.state();
    const proj = this.mlp.cProj.state();
    out.set('mlp.c_fc.weight', fc.weight).set('mlp.c_fc.bias', fc.bias);
    out.set('mlp.c_proj.weight', proj.weight).set('mlp.c_proj.bias', proj.bias);
    return out;
  }

  /** Replaces the parameters with already-validated values (minGPT's names within the block). */
  load(values: BlockValues): void {
    const v = (name: string) => values.get(name)!;
    this.#loadNorms(values);
    this.#loadAttention(values);
    this.mlp.cFc.load(v('mlp.c_fc.weight'), v('mlp.c_fc.bias'));
    this.mlp.cProj.load(v('mlp.c_proj.weight'), v('mlp.c_proj.bias'));
  }

  #loadNorms(values: BlockValues): void {
    this.ln1.load(values.get('ln_1.weight')!, values.get('ln_1.bias')!);
    this.ln2.load(values.get('ln_2.weight')!, values.get('ln_2.bias')!);
  }

  #loadAttention(values: BlockValues): void {
    const C = this.ln1.size;
    const qkv = values.get('attn.c_attn.bias')!.length; // C + 2 * nkv * hs
    this.attn.loadStateDict({
      'c_attn.weight': { shape: [qkv, C], data: values.get('attn.c_attn.weight')! },
      'c_attn.bias': { shape: [qkv], data: values.get('attn.c_attn.bias')! },
      'c_proj.weight': { shape: [C, C], data: values.get('attn.c_proj.weight')! },
      'c_proj.bias': { shape: [C], data: values.get('attn.c_proj.bias')! },
    });
  }

  dispose(): void {
    this.ln1.dispose();
    this.attn.dispose();
    this.ln2.dispose();
    this.mlp.dispose();
  }
}

/** Block i's values under the block's own names (`ln_1.weight`, `attn.c_attn.weight`, ...). */
export function blockValues(
  values: ReadonlyMap<string, Float32Array>,
  i: number,
): Map<string, Float32Array> {
  const prefix = `transformer.h.${i}.`;
  const out = new Map<string, Float32Array>();
  for (const [name, v] of values) {
    if (name.startsWith(prefix)) out.set(name.slice(prefix.length), v);
  }
  return out;
}

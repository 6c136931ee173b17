import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Described, expectDescribed, fixture, hexBits } from '../test/rng-support.ts';
import { ValueError } from './errors.ts';
import { Generator, getDefaultGenerator, setSeed } from './generator.ts';
import {
  kaimingUniformBound,
  linearBiasBound,
  linearInit,
  linearInitValues,
} from './linear-init.ts';
import type { RoundingMode } from './random.ts';

interface LayerRef {
  in_features: number;
  out_features: number;
  weight: Described;
  bias: Described;
}
interface FirstValues {
  weight_first24_hex: string[];
  bias_first8_hex: string[];
  equals_this_torch: boolean;
}
type TensorFixture = { shape: number[]; data: number[] };
interface AttentionCase {
  config: { n_embd: number; n_kv_heads: number; head_size: number };
  seeds: { seed: number };
  generator: { init_rounding: string };
  weights: Record<'c_attn.weight' | 'c_attn.bias' | 'c_proj.weight' | 'c_proj.bias', TensorFixture>;
}

const vectors = fixture<{
  linear_bounds_by_fan_in: Record<
    string,
    {
      weight_bound_binary64: string;
      weight_bound_f32_hex: string;
      bias_bound_binary64: string;
      bias_bound_f32_hex: string;
    }
  >;
  linear_6_18_seed42: { fused: FirstValues; two_roundings: FirstValues };
  linear_128_384_seed42: { fused: FirstValues; two_roundings: FirstValues };
}>('rng_vectors.json');
const torchRef = fixture<{
  seed: number;
  cpu_capability: string;
  layers: Record<string, LayerRef>;
  baseline_kernel: { cpu_capability: string; layers: Record<string, LayerRef> };
}>('torch-linear-init.json');

function hex32(v: number): string {
  return hexBits(Float32Array.of(v))[0]!;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('bounds', () => {
  for (const [fanIn, ref] of Object.entries(vectors.linear_bounds_by_fan_in)) {
    it(`fan_in ${fanIn}: binary64 bounds and their float32 bits match torch`, () => {
      const w = kaimingUniformBound(Number(fanIn));
      const b = linearBiasBound(Number(fanIn));
      expect(w).toBe(Number(ref.weight_bound_binary64));
      expect(b).toBe(Number(ref.bias_bound_binary64));
      expect(hex32(w)).toBe(ref.weight_bound_f32_hex);
      expect(hex32(b)).toBe(ref.bias_bound_f32_hex);
    });
  }

  it('fan_in 0 gives a zero bias bound', () => {
    expect(linearBiasBound(0)).toBe(0);
  });
});

describe('first weights and biases in both rounding modes', () => {
  const cases = [
    [6, 18, vectors.linear_6_18_seed42],
    [128, 384, vectors.linear_128_384_seed42],
  ] as const;
  for (const [inF, outF, ref] of cases) {
    for (const [mode, expected] of [
      ['fused', ref.fused],
      ['two-roundings', ref.two_roundings],
    ] as Array<[RoundingMode, FirstValues]>) {
      it(`Linear(${inF}, ${outF}) seed 42, ${mode}`, () => {
        const { weight, bias } = linearInitValues(inF, outF, {
          generator: new Generator(42),
          rounding: mode,
        });
        expect(hexBits(weight.subarray(0, 24))).toEqual(expected.weight_first24_hex);
        expect(hexBits(bias!.subarray(0, 8))).toEqual(expected.bias_first8_hex);
      });
    }

    it(`Linear(${inF}, ${outF}): the default rounding is fused (torch on AVX2)`, () => {
      expect(ref.fused.equals_this_torch).toBe(true);
      const { weight, bias } = linearInitValues(inF, outF, { generator: new Generator(42) });
      expect(hexBits(weight.subarray(0, 24))).toEqual(ref.fused.weight_first24_hex);
      expect(hexBits(bias!.subarray(0, 8))).toEqual(ref.fused.bias_first8_hex);
      // The modes really differ for these sizes, so this test can tell them apart.
      expect(ref.fused.weight_first24_hex).not.toEqual(ref.two_roundings.weight_first24_hex);
    });
  }
});

describe('whole layers against torch 1.13 hashes (tools/fixtures/linear_init_hashes.py)', () => {
  it('the fixture came from an AVX2 torch and a NO AVX baseline run', () => {
    expect(torchRef.cpu_capability).toBe('AVX2');
    expect(torchRef.baseline_kernel.cpu_capability).toBe('NO AVX');
    expect(Object.keys(torchRef.layers)).toEqual(['6x18', '128x384', '768x2304']);
  });

  for (const [name, ref] of Object.entries(torchRef.layers)) {
    it(`Linear(${ref.in_features}, ${ref.out_features}) fused (default) matches AVX2 torch`, () => {
      setSeed(torchRef.seed);
      const { weight, bias } = linearInitValues(ref.in_features, ref.out_features);
      expectDescribed(weight, ref.weight);
      expectDescribed(bias!, ref.bias);
    });

    const base = torchRef.baseline_kernel.layers[name]!;
    it(`Linear(${base.in_features}, ${base.out_features}) two-roundings matches torch's baseline kernel`, () => {
      const { weight, bias } = linearInitValues(base.in_features, base.out_features, {
        generator: new Generator(torchRef.seed),
        rounding: 'two-roundings',
      });
      expectDescribed(weight, base.weight);
      expectDescribed(bias!, base.bias);
    });
  }

  it('Linear(768, 2304) initialises quickly', () => {
    const g = new Generator(42);
    linearInitValues(768, 2304, { generator: g }); // warm-up (JIT)
    const start = performance.now();
    linearInitValues(768, 2304, { generator: g });
    const ms = performance.now() - start;
    // The target is well under 100 ms; the bound is loose so a busy CI machine does not flake.
    expect(ms).toBeLessThan(1000);
  });
});

describe('attention module weights from the reference cases', () => {
  for (const file of ['a_seed_notebook.init.json', 'b_mha_b3_t16_c32_h4.init.json']) {
    it(`${file}: setSeed, c_attn then c_proj, bit for bit`, () => {
      const ref = fixture<AttentionCase>(file);
      expect(ref.generator.init_rounding).toBe('fused');
      const { n_embd: c, n_kv_heads: kv, head_size: hs } = ref.config;
      setSeed(ref.seeds.seed);
      const cAttn = linearInit(c, c + 2 * kv * hs);
      const cProj = linearInit(c, c);
      const pairs: Array<[tf.Tensor, TensorFixture]> = [
        [cAttn.weight, ref.weights['c_attn.weight']],
        [cAttn.bias!, ref.weights['c_attn.bias']],
        [cProj.weight, ref.weights['c_proj.weight']],
        [cProj.bias!, ref.weights['c_proj.bias']],
      ];
      for (const [t, expected] of pairs) {
        expect(t.dtype).toBe('float32');
        expect(t.shape).toEqual(expected.shape);
        expect(hexBits(t.dataSync() as Float32Array)).toEqual(
          hexBits(Float32Array.from(expected.data)),
        );
      }
      tf.dispose([cAttn.weight, cAttn.bias!, cProj.weight, cProj.bias!]);
    });
  }
});

describe('linearInit API', () => {
  it('returns [out, in] and [out] tensors equal to linearInitValues', () => {
    const { weight, bias } = linearInit(6, 18, { generator: new Generator(42) });
    const values = linearInitValues(6, 18, { generator: new Generator(42) });
    expect(weight.shape).toEqual([18, 6]);
    expect(bias!.shape).toEqual([18]);
    expect(hexBits(weight.dataSync() as Float32Array)).toEqual(hexBits(values.weight));
    expect(hexBits(bias!.dataSync() as Float32Array)).toEqual(hexBits(values.bias!));
    tf.dispose([weight, bias!]);
  });

  it('draws the weight first, then the bias, from one stream', () => {
    const g = new Generator(42);
    const { weight, bias } = linearInitValues(6, 18, { generator: g });
    expect(weight.length).toBe(108);
    expect(bias!.length).toBe(18);
    expect(g.getState().index).toBe(126);
  });

  it('bias: false gives null and draws only the weight', () => {
    const g = new Generator(42);
    const values = linearInitValues(6, 18, { generator: g, bias: false });
    expect(values.bias).toBeNull();
    expect(g.getState().index).toBe(108);
    const t = linearInit(6, 18, { generator: new Generator(42), bias: false });
    expect(t.bias).toBeNull();
    expect(hexBits(t.weight.dataSync() as Float32Array)).toEqual(hexBits(values.weight));
    t.weight.dispose();
  });

  it('zero-size layers follow torch: no weight draws, bias still drawn with bound 0', () => {
    const g = new Generator(42);
    const a = linearInitValues(0, 5, { generator: g });
    expect(a.weight.length).toBe(0);
    expect(Array.from(a.bias!)).toEqual([0, 0, 0, 0, 0]);
    expect(g.getState().index).toBe(5);
    const b = linearInitValues(5, 0, { generator: g });
    expect(b.weight.length).toBe(0);
    expect(b.bias!.length).toBe(0);
    expect(g.getState().index).toBe(5);
  });

  it('uses the default generator unless one is passed', () => {
    setSeed(42);
    linearInitValues(6, 18, { generator: new Generator(1) });
    expect(getDefaultGenerator().getState().index).toBe(624);
    const { weight } = linearInitValues(6, 18);
    expect(hexBits(weight.subarray(0, 24))).toEqual(
      vectors.linear_6_18_seed42.fused.weight_first24_hex,
    );
  });

  it('validates feature counts with a ValueError naming the value', () => {
    const bad: Array<[number, number, string, RegExp]> = [
      [-1, 4, 'inFeatures', /inFeatures = -1/],
      [1.5, 4, 'inFeatures', /inFeatures = 1\.5/],
      [4, -2, 'outFeatures', /outFeatures = -2/],
      [4, Number.NaN, 'outFeatures', /NaN/],
    ];
    const g = new Generator(42);
    for (const [inF, outF, argument, message] of bad) {
      let caught: unknown;
      try {
        linearInit(inF, outF, { generator: g });
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(ValueError);
      expect((caught as ValueError).argument).toBe(argument);
      expect((caught as ValueError).message).toMatch(message);
    }
    expect(g.getState().index).toBe(624);
  });
});

import * as tf from '@tensorflow/tfjs-core';
import { initBackend, rand, setSeed, kernels } from '@kvkit/tensor-utils';
await initBackend('wasm');
setSeed(42);
const B = 8, C = 128, W = 384;
const wT = rand([C, W]); const bias = rand([W]);
function time(name: string, f: () => void, n = 300) {
  for (let i = 0; i < 20; i++) f();
  const ts: number[] = [];
  for (let r = 0; r < 5; r++) { const t0 = performance.now(); for (let i = 0; i < n; i++) f(); ts.push((performance.now() - t0) / n); }
  console.log(name.padEnd(40), (Math.min(...ts) * 1000).toFixed(1), 'us (min of 5)');
}
for (const T of [1, 34, 64]) {
  const x = rand([B * T, C]);
  time(`fused c_attn T=${T}`, () => tf.fused.matMul({ a: x as tf.Tensor2D, b: wT as tf.Tensor2D, bias }).dispose());
  time(`matMul only c_attn T=${T}`, () => tf.matMul(x as tf.Tensor2D, wT as tf.Tensor2D).dispose());
  const q = tf.fused.matMul({ a: x as tf.Tensor2D, b: wT as tf.Tensor2D, bias });
  time(`dataSync qkv T=${T}`, () => { q.dataSync(); });
  const k = kernels(); const io = k.heap.alloc(B*T*W*4); const out = k.heap.alloc(B*T*C*4);
  time(`attend uncached T=${T}`, () => k.attend({ q: io, qRow: W*4, k: io + C*4, v: io + 2*C*4, kvBatch: T*W*4, kvHead: 16*4, kvRow: W*4, out, outRow: C*4, B, T, nh: 8, group: 1, hs: 16, startPos: 0, tKeys: T, scale: 0.25 }));
  k.heap.free(io); k.heap.free(out);
  x.dispose(); q.dispose();
}

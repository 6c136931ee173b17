// The demo page: the seed notebook's first attention example, run in the browser on the tfjs
// wasm backend (whose binaries the kvkitWasm() Vite plugin serves).
import { CausalSelfAttention, GPT } from '@kvkit/attention';
import {
  allclose,
  formatTensor,
  initBackend,
  maxAbsDiff,
  rand,
  setSeed,
} from '@kvkit/tensor-utils';

function show(id: string, text: string): void {
  const element = document.getElementById(id);
  if (element) element.textContent = text;
}

async function main(): Promise<void> {
  const { backend, wasmBinary } = await initBackend('wasm');
  show('backend', `${backend} (${wasmBinary} binary)`);

  setSeed(42);
  const x = rand([2, 8, 6]);
  const config = { ...GPT.getDefaultConfig(), nHead: 1, nEmbd: 6, blockSize: 8 };
  setSeed(42);
  const mha = new CausalSelfAttention(config);
  mha.eval();

  const y = mha.forward(x);
  const yCached = mha.forward(x, { useKvCache: true, startPos: 0 });
  show('output', formatTensor(y));
  const agree = allclose(y, yCached);
  show(
    'cache',
    `${agree ? 'yes' : 'NO'} (max |difference| ${maxAbsDiff(y, yCached).toExponential(1)})`,
  );
  for (const t of [x, y, yCached]) t.dispose();
  mha.dispose(); // frees its weights and its KV cache

  show('status', 'done');
  document.body.dataset.status = 'done';
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  show('status', `error: ${message}`);
  document.body.dataset.status = 'error';
  console.error(error);
});

// The seed notebook as a program: every cell, in order, printing what the notebook printed,
// the torch way. Run it with `pnpm --filter @kvkit/demo walkthrough` (add `--timeit` for the
// timing cells 19-20, which take a while on the full sizes).
import { CausalSelfAttention, GPT, type GPTConfig } from '@kvkit/attention';
import { formatTimeit, seedSizes, seedWorkload, timeit } from '@kvkit/bench';
import {
  allclose,
  equal,
  formatShape,
  formatTensor,
  initBackend,
  rand,
  setSeed,
} from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';

export interface WalkthroughOptions {
  /** Run cells 19-20's timing (slow); otherwise they are described and skipped. */
  timeit?: boolean;
  /** Where lines go (default console.log). */
  print?: (line: string) => void;
}

export async function runWalkthrough(options: WalkthroughOptions = {}): Promise<void> {
  const print = options.print ?? ((line: string) => console.log(line));
  const cell = (n: number, code: string) => print(`\nIn [${n}]:\n${code}\n`);

  cell(
    1,
    "import { CausalSelfAttention, GPT } from '@kvkit/attention';\nimport { setSeed } from '@kvkit/tensor-utils';",
  );
  const { backend, wasmBinary } = await initBackend('wasm');
  print(`(tfjs backend: ${backend}, ${wasmBinary} binary)`);

  cell(2, 'setSeed(42);\nconst input = rand([2, 8, 6]);\nformatShape(input)');
  setSeed(42);
  const batchSize = 2;
  const seqLen = 8;
  const dim = 6;
  const input = rand([batchSize, seqLen, dim]);
  print(formatShape(input));

  cell(
    3,
    'const config = { ...GPT.getDefaultConfig(), nLayer: 1, nHead: 1, nEmbd: dim, blockSize: seqLen };',
  );
  const config: GPTConfig = {
    ...GPT.getDefaultConfig(),
    nLayer: 1,
    nHead: 1,
    nEmbd: dim,
    blockSize: seqLen,
  };
  const build = () => {
    setSeed(42);
    return new CausalSelfAttention(config).eval();
  };

  cell(
    4,
    'setSeed(42);\nlet mha = new CausalSelfAttention(config).eval();\nconst withoutKvCache = mha.forward(input);',
  );
  let mha = build();
  const withoutKvCache = mha.forward(input);
  mha.dispose();
  cell(5, 'formatTensor(withoutKvCache)');
  print(formatTensor(withoutKvCache));

  cell(
    6,
    'setSeed(42);\nmha = new CausalSelfAttention(config).eval();\nconst withKvCache = mha.forward(input, { useKvCache: true });',
  );
  mha = build();
  const withKvCache = mha.forward(input, { useKvCache: true });
  cell(7, 'formatTensor(withKvCache)');
  print(formatTensor(withKvCache));
  cell(8, 'equal(withoutKvCache, withKvCache)');
  print(pyBool(equal(withoutKvCache, withKvCache)));
  cell(9, 'formatShape(mha.cacheK)');
  const cacheK = mha.cacheK!;
  print(formatShape(cacheK));
  cell(10, 'formatTensor(mha.cacheK[:3])');
  const first3 = tf.slice(cacheK, [0, 0, 0, 0], [3, 1, seqLen, dim]);
  print(formatTensor(first3));
  tf.dispose([cacheK, first3]);
  mha.dispose();

  cell(11, '// prefill the cache with the first 3 tokens, then decode one token at a time');
  mha = build();
  const sequential: tf.Tensor[] = [];
  const prefill = tf.slice(input, [0, 0, 0], [batchSize, 3, dim]);
  print('prefill input');
  print(formatTensor(prefill));
  let output = mha.forward(prefill, { useKvCache: true, startPos: 0 });
  print('current key-cache:');
  printCache(mha, batchSize, print);
  print('prefill output');
  print(formatTensor(output));
  sequential.push(output);
  prefill.dispose();
  for (let i = 3; i < seqLen; i++) {
    print(`i:  ${i}`);
    print('input');
    const step = tf.slice(input, [0, i, 0], [batchSize, 1, dim]);
    print(formatTensor(step));
    output = mha.forward(step, { useKvCache: true, startPos: i });
    sequential.push(output);
    print('current key-cache:');
    printCache(mha, batchSize, print);
    print('output');
    print(formatTensor(output));
    step.dispose();
  }
  mha.dispose();

  cell(12, 'const concatenated = tf.concat(withCacheSequential, 1);');
  const concatenated = tf.concat(sequential, 1);
  tf.dispose(sequential);
  print(formatTensor(concatenated));
  cell(13, 'equal(concatenated, withKvCache)');
  print(pyBool(equal(concatenated, withKvCache)));
  cell(14, 'tf.equal(concatenated, withKvCache)');
  const same = tf.equal(concatenated, withKvCache);
  print(formatTensor(same));
  same.dispose();
  print(
    '\n(The notebook printed False here and showed 13 elements that differ in their last bits: the prefill\n' +
      'and the one-token steps sum their dot products in different orders. Which elements differ depends on\n' +
      "each implementation's float32 summation order, so this cell prints whatever this implementation\n" +
      'gives. Equality to the last bit is the wrong test for a cache; closeness is the right one:)',
  );
  cell(15, 'allclose(concatenated, withKvCache)');
  print(pyBool(allclose(concatenated, withKvCache)));

  cell(16, '// without the cache: the whole prefix every step');
  mha = build();
  for (let i = 3; i <= seqLen; i++) {
    if (i > 3) print(`i:  ${i}`);
    print('input:');
    const prefix = tf.slice(input, [0, 0, 0], [batchSize, i, dim]);
    print(formatTensor(prefix));
    const withoutCache = mha.forward(prefix);
    print('output:');
    print(formatTensor(withoutCache));
    tf.dispose([prefix, withoutCache]);
  }
  mha.dispose();

  cell(17, 'setSeed(42);\nconst input = rand([8, 64, 128]);\nformatShape(input)');
  setSeed(42);
  const big = rand([8, 64, 128]);
  print(formatShape(big));
  big.dispose();
  cell(18, 'const config = { ...GPT.getDefaultConfig(), nHead: 8, nEmbd: 128, blockSize: 64 };');
  cell(19, '%%timeit: construct, prefill 3 tokens, decode positions 3..63 with the cache');
  cell(20, '%%timeit: construct, full forward of every prefix 3..64 without the cache');
  if (options.timeit) {
    const w = seedWorkload(seedSizes.full);
    print(`cached:   ${formatTimeit(timeit(() => w.cached()))}`);
    print(`uncached: ${formatTimeit(timeit(() => w.uncached()))}`);
    w.dispose();
  } else {
    print('(skipped: run with --timeit, or `npm run bench` for the full benchmark with a report)');
  }
  tf.dispose([input, withoutKvCache, withKvCache, concatenated]);
}

function printCache(
  mha: CausalSelfAttention,
  batchSize: number,
  print: (line: string) => void,
): void {
  const cacheK = mha.cacheK!;
  const shown = tf.slice(cacheK, [0, 0, 0, 0], [batchSize, ...cacheK.shape.slice(1)]);
  print(formatTensor(shown));
  tf.dispose([cacheK, shown]);
}

function pyBool(value: boolean): string {
  return value ? 'True' : 'False';
}

// The seed notebook as cells that run one at a time, in Node (the walkthrough) and in the
// browser (the demo's notebook panel). Each cell is the notebook's, in TypeScript, and prints
// what the notebook printed, the torch way. Cells share state as notebook cells do, so a cell
// needs the ones before it: `Notebook.run(n)` runs any that have not run yet first.
import { CausalSelfAttention, GPT, type GPTConfig } from '@kvkit/attention';
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

export type Print = (line: string) => void;

export interface NotebookCell {
  /** The notebook's cell number, 1..20. */
  n: number;
  /** What the cell says, in kvkit's TypeScript. */
  code: string;
  /** Whether running it takes seconds (the timing cells). */
  slow?: boolean;
}

export interface NotebookOptions {
  /** Run cells 19-20's timing (seconds); otherwise they say how to and skip it. */
  timeit?: boolean;
}

interface State {
  input?: tf.Tensor;
  config?: GPTConfig;
  withoutKvCache?: tf.Tensor;
  withKvCache?: tf.Tensor;
  /** Cell 6's module, whose cache cells 9 and 10 look at. */
  cachedMha?: CausalSelfAttention;
  concatenated?: tf.Tensor;
}

const batchSize = 2;
const seqLen = 8;
const dim = 6;

/** The notebook's cells, in order, with what each runs. */
const cells: (NotebookCell & { run(s: State, print: Print, o: NotebookOptions): unknown })[] = [
  {
    n: 1,
    code: "import { CausalSelfAttention, GPT } from '@kvkit/attention';\nimport { setSeed } from '@kvkit/tensor-utils';",
    async run(_, print) {
      const { backend, wasmBinary } = await initBackend('wasm');
      print(`(tfjs backend: ${backend}, ${wasmBinary} binary)`);
    },
  },
  {
    n: 2,
    code: 'setSeed(42);\nconst input = rand([2, 8, 6]);\nformatShape(input)',
    run(s, print) {
      setSeed(42);
      s.input?.dispose();
      s.input = rand([batchSize, seqLen, dim]);
      print(formatShape(s.input));
    },
  },
  {
    n: 3,
    code: 'const config = { ...GPT.getDefaultConfig(), nLayer: 1, nHead: 1, nEmbd: dim, blockSize: seqLen };',
    run(s) {
      s.config = { ...GPT.getDefaultConfig(), nLayer: 1, nHead: 1, nEmbd: dim, blockSize: seqLen };
    },
  },
  {
    n: 4,
    code: 'setSeed(42);\nlet mha = new CausalSelfAttention(config).eval();\nconst withoutKvCache = mha.forward(input);',
    run(s) {
      const mha = build(s);
      s.withoutKvCache?.dispose();
      s.withoutKvCache = mha.forward(s.input!);
      mha.dispose();
    },
  },
  {
    n: 5,
    code: 'formatTensor(withoutKvCache)',
    run: (s, print) => print(formatTensor(s.withoutKvCache!)),
  },
  {
    n: 6,
    code: 'setSeed(42);\nmha = new CausalSelfAttention(config).eval();\nconst withKvCache = mha.forward(input, { useKvCache: true });',
    run(s) {
      s.cachedMha?.dispose();
      s.withKvCache?.dispose();
      s.cachedMha = build(s);
      s.withKvCache = s.cachedMha.forward(s.input!, { useKvCache: true });
    },
  },
  {
    n: 7,
    code: 'formatTensor(withKvCache)',
    run: (s, print) => print(formatTensor(s.withKvCache!)),
  },
  {
    n: 8,
    code: 'equal(withoutKvCache, withKvCache)',
    run: (s, print) => print(pyBool(equal(s.withoutKvCache!, s.withKvCache!))),
  },
  {
    n: 9,
    code: 'formatShape(mha.cacheK)',
    run(s, print) {
      const cacheK = s.cachedMha!.cacheK!;
      print(formatShape(cacheK));
      cacheK.dispose();
    },
  },
  {
    n: 10,
    code: 'formatTensor(mha.cacheK[:3])',
    run(s, print) {
      printCache(s.cachedMha!, 3, print);
    },
  },
  {
    n: 11,
    code: '// prefill the cache with the first 3 tokens, then decode one token at a time',
    run(s, print) {
      const mha = build(s);
      const sequential: tf.Tensor[] = [];
      const prefill = tf.slice(s.input!, [0, 0, 0], [batchSize, 3, dim]);
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
        const step = tf.slice(s.input!, [0, i, 0], [batchSize, 1, dim]);
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
      s.concatenated?.dispose();
      s.concatenated = tf.concat(sequential, 1);
      tf.dispose(sequential);
    },
  },
  {
    n: 12,
    code: 'const concatenated = tf.concat(withCacheSequential, 1);',
    run: (s, print) => print(formatTensor(s.concatenated!)),
  },
  {
    n: 13,
    code: 'equal(concatenated, withKvCache)',
    run: (s, print) => print(pyBool(equal(s.concatenated!, s.withKvCache!))),
  },
  {
    n: 14,
    code: 'tf.equal(concatenated, withKvCache)',
    run(s, print) {
      const same = tf.equal(s.concatenated!, s.withKvCache!);
      print(formatTensor(same));
      same.dispose();
      print(
        '\n(The notebook printed False here and showed 13 elements that differ in their last bits: the prefill\n' +
          'and the one-token steps sum their dot products in different orders. Which elements differ depends on\n' +
          "each implementation's float32 summation order, so this cell prints whatever this implementation\n" +
          'gives. Equality to the last bit is the wrong test for a cache; closeness is the right one:)',
      );
    },
  },
  {
    n: 15,
    code: 'allclose(concatenated, withKvCache)',
    run: (s, print) => print(pyBool(allclose(s.concatenated!, s.withKvCache!))),
  },
  {
    n: 16,
    code: '// without the cache: the whole prefix every step',
    run(s, print) {
      const mha = build(s);
      for (let i = 3; i <= seqLen; i++) {
        if (i > 3) print(`i:  ${i}`);
        print('input:');
        const prefix = tf.slice(s.input!, [0, 0, 0], [batchSize, i, dim]);
        print(formatTensor(prefix));
        const withoutCache = mha.forward(prefix);
        print('output:');
        print(formatTensor(withoutCache));
        tf.dispose([prefix, withoutCache]);
      }
      mha.dispose();
    },
  },
  {
    n: 17,
    code: 'setSeed(42);\nconst input = rand([8, 64, 128]);\nformatShape(input)',
    run(_, print) {
      setSeed(42);
      const big = rand([8, 64, 128]);
      print(formatShape(big));
      big.dispose();
    },
  },
  {
    n: 18,
    code: 'const config = { ...GPT.getDefaultConfig(), nHead: 8, nEmbd: 128, blockSize: 64 };',
    run() {},
  },
  {
    n: 19,
    code: '%%timeit: construct, prefill 3 tokens, decode positions 3..63 with the cache',
    slow: true,
    run: (_, print, o) => timeCell('cached', print, o),
  },
  {
    n: 20,
    code: '%%timeit: construct, full forward of every prefix 3..64 without the cache',
    slow: true,
    run: (_, print, o) => timeCell('uncached', print, o),
  },
];

/** The cells' numbers and code, for display. */
export const notebookCells: readonly NotebookCell[] = cells.map(({ n, code, slow }) => ({
  n,
  code,
  ...(slow ? { slow } : {}),
}));

/** One notebook session: its shared state, and which cells have run. */
export class Notebook {
  readonly #state: State = {};
  #ran = 0; // cells 1..#ran have run

  /** Runs cell `n`, and first every earlier cell that has not run; prints cell n's output. */
  async run(n: number, print: Print, options: NotebookOptions = {}): Promise<void> {
    const quiet: Print = () => {};
    for (const cell of cells) {
      if (cell.n > n) break;
      if (cell.n <= this.#ran && cell.n !== n) continue;
      await cell.run(this.#state, cell.n === n ? print : quiet, options);
      this.#ran = Math.max(this.#ran, cell.n);
    }
  }

  /** Frees the tensors the cells keep. */
  dispose(): void {
    const s = this.#state;
    tf.dispose([s.input, s.withoutKvCache, s.withKvCache, s.concatenated].filter(isTensor));
    s.cachedMha?.dispose();
    for (const key of Object.keys(s) as (keyof State)[]) delete s[key];
    this.#ran = 0;
  }
}

function isTensor(t: tf.Tensor | undefined): t is tf.Tensor {
  return t !== undefined;
}

function build(s: State): CausalSelfAttention {
  setSeed(42);
  return new CausalSelfAttention(s.config!).eval();
}

function printCache(mha: CausalSelfAttention, rows: number, print: Print): void {
  const cacheK = mha.cacheK!;
  const shown = tf.slice(cacheK, [0, 0, 0, 0], [rows, ...cacheK.shape.slice(1)]);
  print(formatTensor(shown));
  tf.dispose([cacheK, shown]);
}

async function timeCell(
  which: 'cached' | 'uncached',
  print: Print,
  options: NotebookOptions,
): Promise<void> {
  if (!options.timeit) {
    print('(skipped: run with --timeit, or `npm run bench` for the full benchmark with a report)');
    return;
  }
  // Loaded only here, when a timing cell runs: the bench's browser entry (nothing of Node), the
  // workload and `timeit` rules kvbench uses.
  const { formatTimeit, seedSizes, seedWorkload, timeit } = await import('@kvkit/bench/browser');
  const w = seedWorkload(seedSizes.full);
  try {
    const t = timeit(() => w[which](), { budgetMs: 4000 });
    print(`${which === 'cached' ? 'cached:  ' : 'uncached:'} ${formatTimeit(t)}`);
  } finally {
    w.dispose();
  }
}

function pyBool(value: boolean): string {
  return value ? 'True' : 'False';
}

// The live cache view: the seed notebook's example (2 sequences, 8 tokens of width 6, one
// head), prefilled and then decoded one token at a time, with any cache strategy. After each
// step the K and V cache of each batch row is drawn as a heatmap, one row per position, filling
// row by row (a windowed cache's evicted positions hatched); beside it, the newest query's
// attention weights over the positions it sees, and each row's length and slots held. A ragged
// batch (prompts of 3 and 1 tokens, left-padded, with an attention mask) shows each row at its
// own length. The cache is read only through cache-reader.ts.
import { CausalSelfAttention, GPT, type GPTConfig } from '@kvkit/attention';
import { rand, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { type CacheSnapshot, newestQueryWeights, readCache } from '../cache-reader.ts';
import type { Panel, PanelContext } from '../panels.ts';
import { strategies, strategyById } from '../strategies.ts';
import { action, formatBytes, h, nextFrame } from '../ui/dom.ts';
import { drawHeatmap, type HeatmapRow } from '../ui/heatmap.ts';

const B = 2;
const T = 8;
const C = 6;
const config: GPTConfig = { ...GPT.getDefaultConfig(), nHead: 1, nEmbd: C, blockSize: T };

/** The batch shapes offered: every row prefills 3 tokens, or row 1 only 1 (a ragged batch). */
const batches = {
  uniform: { label: "2 × 3 tokens (the notebook's)", prompts: [3, 3] },
  ragged: { label: 'ragged: 3 and 1 tokens, left-padded', prompts: [3, 1] },
} as const;
type BatchKind = keyof typeof batches;

export const cachePanel: Panel = {
  id: 'cache',
  title: 'The cache',
  summary:
    'The notebook’s example: prefill, then decode one token at a time. Each step writes one ' +
    'row of keys and values per sequence, and the newest token attends over the rows it sees. ' +
    'Pick a strategy to see what it keeps, or a ragged batch to see rows at their own lengths.',
  mount,
};

/** Builds the seeded module (the notebook's weights) with this strategy's cache. */
function buildModule(strategyId: string): CausalSelfAttention {
  setSeed(42);
  return new CausalSelfAttention(config, { cache: strategyById(strategyId).create }).eval();
}

function mount(root: HTMLElement, context: PanelContext): void {
  const strategy = h(
    'select',
    { 'data-testid': 'cache-strategy', 'aria-label': 'cache strategy' },
    ...strategies.map((s) => h('option', { value: s.id }, s.label(T))),
  );
  const batch = h(
    'select',
    { 'data-testid': 'cache-batch', 'aria-label': 'batch' },
    ...Object.entries(batches).map(([id, b]) => h('option', { value: id }, b.label)),
  );
  const step = h('button', { class: 'primary', 'data-testid': 'cache-step' }, 'Prefill');
  const play = h('button', { 'data-testid': 'cache-play' }, 'Play to the end');
  const reset = h('button', { 'data-testid': 'cache-reset' }, 'Reset');
  const status = h('p', { class: 'status', 'data-testid': 'cache-status' });
  const bytes = h('p', { class: 'hint', 'data-testid': 'cache-bytes' });
  const rows = h('div', { class: 'cache-rows' });
  const printedLabel = h('summary', {});
  const printed = h('pre', { class: 'output', 'data-testid': 'cache-printed' });
  root.append(
    h(
      'div',
      { class: 'controls' },
      step,
      play,
      reset,
      h('label', {}, 'Cache: ', strategy),
      h('label', {}, 'Batch: ', batch),
    ),
    status,
    bytes,
    rows,
    h('details', { class: 'printed' }, printedLabel, printed),
  );

  let mha = buildModule(strategy.value);
  setSeed(42);
  const x = rand([B, T, C]); // (B, T, C): the notebook's input, drawn once
  let kind: BatchKind = 'uniform';
  let lengths = [0, 0]; // positions each row has seen: where its next token goes
  const full = () => lengths[0]! >= T; // row 0 is the furthest along

  const views = Array.from({ length: B }, (_, b) => rowView(b));
  rows.append(...views.map((v) => v.root));

  const render = (chunk: tf.Tensor | null) => {
    const snapshot = readCache(mha, B);
    const weights = snapshot && chunk ? newestQueryWeights(mha, chunk, snapshot) : null;
    views.forEach((v, b) => {
      v.draw(snapshot, weights?.[b]?.[0] ?? null);
    });
    printedLabel.textContent = snapshot?.printed.label ?? 'the cached keys, printed';
    printed.textContent = snapshot?.printed.text ?? '(empty: nothing cached yet)';
    const seen = snapshot?.rows.map((r) => r.seqLength) ?? [0, 0];
    status.textContent =
      seen[0] === 0
        ? `Nothing cached yet. ${T} positions per sequence.`
        : `Row lengths ${seen.join(' and ')} of ${T}. ` +
          (full() ? 'The sequence is complete.' : `Next: decode position ${seen.join(' and ')}.`);
    status.dataset.lengths = seen.join(' ');
    bytes.textContent = snapshot
      ? `${snapshot.strategy} cache: ${formatBytes(snapshot.bytesUsed)} of keys and values held, ` +
        `${formatBytes(snapshot.bytesReserved)} reserved (bytesUsed / bytesReserved)` +
        (snapshot.strategy === 'quantized'
          ? `. Quantized rows are padded to 16 channels (int8) or 32 (int4): at head size ${C} ` +
            'they are no smaller than float32 ones; the Generate text panel’s model (head size ' +
            '16) shows the saving.'
          : '')
      : '';
    bytes.dataset.used = String(snapshot?.bytesUsed ?? 0);
    bytes.dataset.reserved = String(snapshot?.bytesReserved ?? 0);
    step.textContent = seen[0] === 0 ? 'Prefill' : 'Decode next token';
    step.disabled = full();
    play.disabled = full();
  };

  const advance = () => {
    if (full()) return;
    let chunk: tf.Tensor; // (B, t, C)
    if (lengths[0] === 0) {
      // The prompts, left-padded to the longest; padding is never cached nor attended.
      const prompts = batches[kind].prompts;
      const width = Math.max(...prompts);
      const padded = prompts.map((n, b) =>
        tf.tidy(() =>
          tf.concat(
            [tf.zeros([1, width - n, C]), tf.slice(x, [b, 0, 0], [1, n, C])].filter(
              (t) => t.shape[1]! > 0,
            ),
            1,
          ),
        ),
      );
      chunk = tf.concat(padded, 0);
      tf.dispose(padded);
      const attentionMask = prompts.map((n) =>
        Array.from({ length: width }, (_, j) => (j >= width - n ? 1 : 0)),
      );
      const ragged = kind === 'ragged' ? { attentionMask } : {}; // the notebook's call otherwise
      mha.forward(chunk, { useKvCache: true, startPos: 0, ...ragged }).dispose();
      lengths = [...prompts];
    } else {
      // One token per row, each at its own position.
      const tokens = lengths.map((p, b) => tf.slice(x, [b, p, 0], [1, 1, C]));
      chunk = tf.concat(tokens, 0);
      tf.dispose(tokens);
      const startPos = kind === 'ragged' ? [...lengths] : lengths[0]!;
      mha.forward(chunk, { useKvCache: true, startPos }).dispose();
      lengths = lengths.map((p) => p + 1);
    }
    try {
      render(chunk);
    } finally {
      chunk.dispose();
    }
  };

  let epoch = 0; // bumped by every restart: a Play loop of an earlier module stops
  const restart = () => {
    epoch++;
    mha.dispose();
    mha = buildModule(strategy.value);
    kind = batch.value as BatchKind;
    lengths = [0, 0];
    render(null);
  };

  const notFull = () => !full();
  action(step, advance, context.fail, notFull);
  action(
    play,
    async () => {
      const mine = epoch;
      while (!full() && epoch === mine) {
        advance();
        await nextFrame();
        await new Promise((done) => setTimeout(done, 250));
      }
    },
    context.fail,
    notFull,
  );
  action(reset, restart, context.fail);
  for (const select of [strategy, batch]) {
    select.addEventListener('change', () => {
      try {
        restart();
      } catch (e) {
        context.fail(e);
      }
    });
  }
  render(null);
}

/** One batch row: its K and V heatmaps by position, the newest query's weights, its length. */
function rowView(b: number) {
  const k = h('canvas', { class: 'heatmap', 'data-testid': `cache-k-${b}` });
  const v = h('canvas', { class: 'heatmap', 'data-testid': `cache-v-${b}` });
  const bars = h('div', { class: 'weights', 'data-testid': `cache-weights-${b}` });
  const length = h('span', { class: 'length', 'data-testid': `cache-length-${b}` });
  const root = h(
    'figure',
    { class: 'cache-row' },
    h('figcaption', {}, `Sequence ${b} · `, length),
    h(
      'div',
      { class: 'maps' },
      h('div', {}, h('div', { class: 'map-label' }, 'keys'), k),
      h('div', {}, h('div', { class: 'map-label' }, 'values'), v),
      h('div', {}, h('div', { class: 'map-label' }, 'newest query’s attention'), bars),
    ),
  );
  const draw = (s: CacheSnapshot | null, weights: (number | null)[] | null) => {
    const row = s?.rows[b];
    const len = row?.seqLength ?? 0;
    const heldCount = row?.slotsHeld ?? 0;
    const held = heldCount < len ? `, ${heldCount} held` : '';
    const quantized = row?.quantized ? `, ${row.quantized} quantized` : '';
    length.textContent = `${len} of ${T} positions seen${held}${quantized}`;
    length.dataset.length = String(len);
    length.dataset.held = String(heldCount);
    length.dataset.quantized = String(row?.quantized ?? 0);
    const cols = s ? s.nKvHeads * s.headSize : C;
    // Row p of the map is position p: the held positions carry their keys (one kv head here,
    // so a row's (nkv, hs) values are its hs values), the others are evicted or not seen yet.
    const mapRows = (which: 'keys' | 'values'): HeatmapRow[] =>
      Array.from({ length: T }, (_, p) => {
        const i = row?.positions.indexOf(p) ?? -1;
        if (i >= 0) return row![which].subarray(i * cols, (i + 1) * cols);
        return p < len ? 'evicted' : 'empty';
      });
    for (const [canvas, which] of [
      [k, 'keys'],
      [v, 'values'],
    ] as const) {
      drawHeatmap(canvas, mapRows(which), cols, { highlightRow: len - 1, scale: 0.7 });
    }
    bars.replaceChildren(
      ...Array.from({ length: T }, (_, p) => {
        const w = weights?.[p] ?? null;
        const evicted = p < len && !row?.positions.includes(p);
        const title =
          w !== null
            ? `position ${p}: ${w.toFixed(3)}`
            : evicted
              ? `position ${p}: evicted`
              : `position ${p}: not seen`;
        return h(
          'div',
          { class: evicted ? 'bar evicted' : 'bar', title },
          h('span', { style: `width: ${((w ?? 0) * 100).toFixed(1)}%` }),
          h('em', {}, w === null ? (evicted ? 'evicted' : '') : w.toFixed(2)),
        );
      }),
    );
    const seen = (weights ?? []).flatMap((w, p) => (w === null ? [] : [{ w, p }]));
    bars.dataset.weights = seen.map(({ w }) => w.toFixed(6)).join(' ');
    bars.dataset.positions = seen.map(({ p }) => p).join(' ');
  };
  return { root, draw };
}

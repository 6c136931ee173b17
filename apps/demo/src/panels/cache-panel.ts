// The live cache view: the seed notebook's example (2 sequences, 8 tokens of width 6, one
// head), prefilled with 3 tokens and then decoded one token at a time. After each step the K
// and V cache of each batch row is drawn as a heatmap, one row per position, filling row by
// row; beside it, the newest query's attention weights over the cached positions, and the
// cached length of each batch row. The cache is read only through cache-reader.ts.
import { GPT, type GPTConfig } from '@kvkit/attention';
import { formatTensor, rand, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import { type CacheSnapshot, newestQueryWeights, readCache, strategies } from '../cache-reader.ts';
import type { Panel, PanelContext } from '../panels.ts';
import { action, h, nextFrame } from '../ui/dom.ts';
import { drawHeatmap } from '../ui/heatmap.ts';

const B = 2;
const T = 8;
const C = 6;
const prefillTokens = 3;
const config: GPTConfig = { ...GPT.getDefaultConfig(), nHead: 1, nEmbd: C, blockSize: T };

export const cachePanel: Panel = {
  id: 'cache',
  title: 'The cache',
  summary:
    'The notebook’s example: prefill 3 tokens, then decode one at a time. Each step writes one ' +
    'row of keys and values per sequence, and the newest token attends over every cached row.',
  mount,
};

function mount(root: HTMLElement, context: PanelContext): void {
  const strategy = h(
    'select',
    { 'data-testid': 'cache-strategy', 'aria-label': 'cache strategy' },
    ...strategies.map((s) => h('option', { value: s.id }, s.label)),
  );
  const step = h('button', { class: 'primary', 'data-testid': 'cache-step' }, 'Prefill 3 tokens');
  const play = h('button', { 'data-testid': 'cache-play' }, 'Play to the end');
  const reset = h('button', { 'data-testid': 'cache-reset' }, 'Reset');
  const status = h('p', { class: 'status', 'data-testid': 'cache-status' });
  const rows = h('div', { class: 'cache-rows' });
  const printed = h('pre', { class: 'output', 'data-testid': 'cache-printed' });
  root.append(
    h('div', { class: 'controls' }, step, play, reset, h('label', {}, 'Cache: ', strategy)),
    status,
    rows,
    h(
      'details',
      { class: 'printed' },
      h('summary', {}, 'mha.cacheK[:2], printed as the notebook prints it'),
      printed,
    ),
  );

  let mha = strategies[0]!.build(config);
  setSeed(42);
  let x = rand([B, T, C]); // (B, T, C): the notebook's input
  let position = 0; // next position to write

  const views = Array.from({ length: B }, (_, b) => rowView(b));
  rows.append(...views.map((v) => v.root));

  const render = (chunk: tf.Tensor | null) => {
    const snapshot = readCache(mha, B);
    try {
      const weights = snapshot && chunk ? newestQueryWeights(mha, chunk, snapshot) : null;
      views.forEach((v, b) => {
        v.draw(snapshot, weights?.[b]?.[0] ?? null);
      });
      printed.textContent = snapshot
        ? formatTensor(snapshot.keysTensor)
        : '(empty: nothing cached yet)';
      const lengths = snapshot?.lengths ?? [0, 0];
      status.textContent =
        position === 0
          ? `Nothing cached yet. Capacity ${T} positions per sequence.`
          : `Cached ${lengths.join(' and ')} of ${T} positions (per batch row). ` +
            (position < T ? `Next: decode position ${position}.` : 'The cache is full.');
      status.dataset.position = String(position);
      step.textContent = position === 0 ? `Prefill ${prefillTokens} tokens` : 'Decode next token';
      step.disabled = position >= T;
      play.disabled = position >= T;
    } finally {
      snapshot?.keysTensor.dispose();
    }
  };

  const advance = () => {
    if (position >= T) return;
    const size = position === 0 ? prefillTokens : 1;
    const chunk = tf.slice(x, [0, position, 0], [B, size, C]); // (B, size, C)
    mha.forward(chunk, { useKvCache: true, startPos: position }).dispose();
    position += size;
    render(chunk);
    chunk.dispose();
  };

  const restart = () => {
    mha.dispose();
    const choice = strategies.find((s) => s.id === strategy.value) ?? strategies[0]!;
    mha = choice.build(config);
    x.dispose();
    setSeed(42);
    x = rand([B, T, C]);
    position = 0;
    render(null);
  };

  const notFull = () => position < T;
  action(step, advance, context.fail, notFull);
  action(
    play,
    async () => {
      while (position < T) {
        advance();
        await nextFrame();
        await new Promise((done) => setTimeout(done, 250));
      }
    },
    context.fail,
    notFull,
  );
  action(reset, restart, context.fail);
  strategy.addEventListener('change', () => {
    try {
      restart();
    } catch (e) {
      context.fail(e);
    }
  });
  render(null);
}

/** One batch row: its K and V heatmaps, the newest query's weights, and its length. */
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
  const draw = (s: CacheSnapshot | null, weights: number[] | null) => {
    const len = s?.lengths[b] ?? 0;
    length.textContent = `${len} of ${T} positions cached`;
    length.dataset.length = String(len);
    const cols = s ? s.nKvHeads * s.headSize : C;
    const empty = new Float32Array(T * cols);
    // One kv head here, so (nkv, Tmax, hs) is already (Tmax, hs): row t is position t.
    drawHeatmap(k, s?.keys[b] ?? empty, T, cols, {
      filledRows: len,
      highlightRow: len - 1,
      scale: 0.7,
    });
    drawHeatmap(v, s?.values[b] ?? empty, T, cols, {
      filledRows: len,
      highlightRow: len - 1,
      scale: 0.7,
    });
    bars.replaceChildren(
      ...Array.from({ length: T }, (_, t) => {
        const w = weights?.[t];
        return h(
          'div',
          {
            class: 'bar',
            title: w === undefined ? `position ${t}: not cached` : `position ${t}: ${w.toFixed(3)}`,
          },
          h('span', { style: `width: ${((w ?? 0) * 100).toFixed(1)}%` }),
          h('em', {}, w === undefined ? '' : w.toFixed(2)),
        );
      }),
    );
    bars.dataset.weights = weights ? weights.map((w) => w.toFixed(6)).join(' ') : '';
  };
  return { root, draw };
}

// Cached vs uncached decoding, live: the notebook's timing sizes (8 sequences, width 128,
// 8 heads), both loops side by side. At every position t the cached loop feeds only token t
// (its keys and values for 0..t-1 are in the cache); the uncached loop feeds the whole prefix
// 0..t again. Each step is timed and drawn against t, and the two outputs for token t are
// compared: the cache must not change the answer.
import { CausalSelfAttention, GPT } from '@kvkit/attention';
import { allclose, maxAbsDiff, rand, setSeed } from '@kvkit/tensor-utils';
import * as tf from '@tensorflow/tfjs-core';
import type { Panel, PanelContext } from '../panels.ts';
import { action, h, nextFrame } from '../ui/dom.ts';
import { drawLineChart, type Series } from '../ui/line-chart.ts';

const B = 8;
const C = 128;
const nHead = 8;
const prefill = 3;
const contexts = [64, 256];

export const racePanel: Panel = {
  id: 'race',
  title: 'Cached vs uncached',
  summary:
    'Both decoding loops run here, one step each in turn: with the cache a step feeds one new ' +
    'token; without it, the whole sequence so far. Watch the step times part as t grows.',
  mount,
};

interface Lane {
  label: string;
  colour: string;
  points: { x: number; y: number }[];
  totalMs: number;
  out: HTMLElement;
}

function mount(root: HTMLElement, context: PanelContext): void {
  const start = h('button', { class: 'primary', 'data-testid': 'race-start' }, 'Start the race');
  const size = h(
    'select',
    { 'data-testid': 'race-context', 'aria-label': 'context length' },
    ...contexts.map((t) =>
      h('option', { value: t }, t === 64 ? `${t} tokens (the notebook's)` : `${t} tokens`),
    ),
  );
  const lanes: Lane[] = [
    { label: 'with the cache', colour: '#2563eb', points: [], totalMs: 0, out: h('span') },
    { label: 'without the cache', colour: '#dc2626', points: [], totalMs: 0, out: h('span') },
  ];
  const chart = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  chart.setAttribute('class', 'chart');
  chart.setAttribute('role', 'img');
  chart.setAttribute('aria-label', 'step time against position t, with and without the cache');
  chart.dataset.testid = 'race-chart';
  const verdict = h('p', { class: 'verdict', 'data-testid': 'race-verdict' });
  root.append(
    h('div', { class: 'controls' }, start, h('label', {}, 'Context: ', size)),
    h(
      'div',
      { class: 'lanes' },
      ...lanes.map((l, i) =>
        h(
          'div',
          { class: 'lane', 'data-testid': `race-lane-${i}` },
          h('i', { style: `background: ${l.colour}` }),
          h('strong', {}, l.label),
          l.out,
        ),
      ),
    ),
    chart,
    verdict,
  );
  let shownT = 64;
  const redraw = (T: number) => {
    shownT = T;
    drawLineChart(chart, lanes as Series[], T, { x: 'position t', y: 'step time (ms)' });
  };
  redraw(64);
  new ResizeObserver(() => redraw(shownT)).observe(chart);

  action(
    start,
    async () => {
      const T = Number(size.value);
      size.disabled = true;
      try {
        await race(T, lanes, verdict, () => redraw(T));
      } finally {
        size.disabled = false;
      }
    },
    context.fail,
  );
}

async function race(T: number, lanes: Lane[], verdict: HTMLElement, redraw: () => void) {
  for (const l of lanes) {
    l.points = [];
    l.totalMs = 0;
    l.out.textContent = '';
  }
  verdict.textContent = 'Running…';
  delete verdict.dataset.agree;
  setSeed(42);
  const x = rand([B, T, C]); // (B, T, C)
  const config = { ...GPT.getDefaultConfig(), nHead, nEmbd: C, blockSize: T };
  const build = () => {
    setSeed(42);
    return new CausalSelfAttention(config).eval();
  };
  const cached = build();
  const uncached = build();
  let worst = 0;
  let agree = true;
  try {
    for (let t = prefill - 1; t < T; t++) {
      // Cached: the prefill feeds tokens 0..2 at once, then one token per step.
      const first = t === prefill - 1 ? 0 : t;
      const chunk = tf.slice(x, [0, first, 0], [B, t + 1 - first, C]); // (B, chunk, C)
      const prefix = tf.slice(x, [0, 0, 0], [B, t + 1, C]); // (B, t + 1, C)
      const [withCache, ms0] = timed(() =>
        cached.forward(chunk, { useKvCache: true, startPos: first }),
      );
      const [full, ms1] = timed(() => uncached.forward(prefix));
      // Compare the rows both produced: the chunk's tokens, first..t.
      const same = tf.slice(full, [0, first, 0], [B, t + 1 - first, C]);
      worst = Math.max(worst, maxAbsDiff(withCache, same));
      agree &&= allclose(withCache, same);
      tf.dispose([chunk, prefix, withCache, full, same]);
      record(lanes[0]!, t, ms0, T);
      record(lanes[1]!, t, ms1, T);
      redraw();
      await nextFrame();
    }
  } finally {
    x.dispose();
    cached.dispose();
    uncached.dispose();
  }
  const speedup = lanes[1]!.totalMs / lanes[0]!.totalMs;
  verdict.dataset.agree = String(agree);
  verdict.dataset.maxDiff = String(worst);
  verdict.dataset.steps = String(lanes[0]!.points.length);
  verdict.textContent =
    `Same outputs with and without the cache: ${agree ? 'yes' : 'NO'} ` +
    `(max |difference| ${worst.toExponential(1)} over ${lanes[0]!.points.length} steps). ` +
    `The cached loop took ${fmtMs(lanes[0]!.totalMs)}, the uncached one ${fmtMs(lanes[1]!.totalMs)}: ` +
    `${speedup.toFixed(1)}× faster.`;
}

/** Runs fn (a forward pass) and reads its result back, timing both. */
function timed(fn: () => tf.Tensor): [tf.Tensor, number] {
  const t0 = performance.now();
  const out = fn();
  out.dataSync();
  return [out, performance.now() - t0];
}

function record(lane: Lane, t: number, ms: number, T: number) {
  lane.points.push({ x: t, y: ms });
  lane.totalMs += ms;
  lane.out.textContent = ` t = ${t + 1}/${T} · last step ${fmtMs(ms)} · total ${fmtMs(lane.totalMs)}`;
}

function fmtMs(ms: number): string {
  return ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(2)} ms`;
}

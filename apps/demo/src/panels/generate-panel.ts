// Text generation with kvkit's shipped character model (minGPT's gpt-nano trained on the Book
// of Genesis, served with the page): a prompt, the cache on or off, the cache strategy, greedy
// or sampled decoding (temperature, top-k, seed), the tokens streaming in as they are made,
// tokens per second and the cache's bytes while it runs, and a Stop button (an AbortSignal).
// The generation itself is generation.ts.
import modelUrl from '@kvkit/attention/models/genesis-char.safetensors?url';
import { CacheCapacityError, ShapeError, ValueError } from '@kvkit/tensor-utils';
import { type GenerationProgress, type GenerationSettings, TextGenerator } from '../generation.ts';
import type { Panel, PanelContext } from '../panels.ts';
import { strategies } from '../strategies.ts';
import { formatBytes, h } from '../ui/dom.ts';

export const generatePanel: Panel = {
  id: 'generate',
  title: 'Generate text',
  summary:
    'A tiny GPT (94k parameters, trained on the Book of Genesis) writes one character at a ' +
    'time, in this page. Turn the cache off or change its strategy, and watch the speed and ' +
    'the memory as it goes.',
  mount,
};

/** A labelled form control. */
function field(label: string, control: HTMLElement, wide = false): HTMLElement {
  return h('label', { class: wide ? 'field wide' : 'field' }, h('span', {}, label), control);
}

function mount(root: HTMLElement, context: PanelContext): void {
  const prompt = h('textarea', {
    'data-testid': 'gen-prompt',
    'aria-label': 'prompt',
    rows: 2,
    spellcheck: 'false',
  });
  prompt.value = 'And God said';
  const maxNew = h('input', {
    type: 'number',
    min: 1,
    step: 1,
    value: 52,
    'data-testid': 'gen-max',
  });
  const useCache = h('input', { type: 'checkbox', checked: true, 'data-testid': 'gen-cache' });
  const strategy = h(
    'select',
    { 'data-testid': 'gen-strategy', 'aria-label': 'cache strategy' },
    ...strategies.map((s) => h('option', { value: s.id }, s.label(64))),
  );
  const sampling = h(
    'select',
    { 'data-testid': 'gen-sampling', 'aria-label': 'decoding' },
    h('option', { value: 'sample' }, 'sample'),
    h('option', { value: 'greedy' }, 'greedy (most likely)'),
  );
  const temperature = h('input', {
    type: 'number',
    min: 0.1,
    step: 0.1,
    value: 0.8,
    'data-testid': 'gen-temperature',
  });
  const topK = h('input', {
    type: 'number',
    min: 1,
    step: 1,
    value: 10,
    placeholder: 'all',
    'data-testid': 'gen-topk',
  });
  const seed = h('input', { type: 'number', step: 1, value: 42, 'data-testid': 'gen-seed' });
  const run = h(
    'button',
    { class: 'primary', 'data-testid': 'gen-run', disabled: true },
    'Generate',
  );
  const stop = h('button', { 'data-testid': 'gen-stop', disabled: true }, 'Stop');
  const error = h('p', {
    class: 'inline-error',
    role: 'alert',
    'data-testid': 'gen-error',
    hidden: true,
  });
  const shownPrompt = h('span', { class: 'prompt-text' });
  const generated = h('span', { 'data-testid': 'gen-text' });
  const output = h(
    'pre',
    { class: 'output generated', 'data-testid': 'gen-output', 'data-state': 'loading' },
    shownPrompt,
    generated,
  );
  const rate = h('span', { 'data-testid': 'gen-rate' });
  const memory = h('span', { 'data-testid': 'gen-bytes' });
  const status = h('p', { class: 'status', 'data-testid': 'gen-status' }, 'Loading the model…');
  const limitNote = h('p', { class: 'hint', 'data-testid': 'gen-limit' });
  root.append(
    field('Prompt', prompt),
    h(
      'div',
      { class: 'controls gen-controls' },
      field('New tokens', maxNew),
      h('label', { class: 'check' }, useCache, ' KV cache'),
      field('Strategy', strategy, true),
      field('Decoding', sampling),
      field('Temperature', temperature),
      field('Top-k', topK),
      field('Seed', seed),
    ),
    h('div', { class: 'controls' }, run, stop),
    error,
    output,
    status,
    h('p', { class: 'stats' }, rate, memory),
    limitNote,
  );

  let generator: TextGenerator | null = null;
  let controller: AbortController | null = null;

  const syncControls = () => {
    const running = controller !== null;
    strategy.disabled = running || !useCache.checked;
    const greedy = sampling.value === 'greedy';
    temperature.disabled = greedy;
    topK.disabled = greedy;
    run.disabled = running || generator === null;
    stop.disabled = !running;
    if (generator && !running) {
      const T = generator.blockSize;
      const past = useCache.checked && generator.select(strategy.value).decodesPastBlockSize;
      limitNote.dataset.pastBlockSize = String(past);
      limitNote.textContent = !useCache.checked
        ? `Without the cache every token re-runs the model over the last ${T} characters, as ` +
          'minGPT does: no length limit.'
        : past
          ? `This cache holds fewer than the model's ${T} positions, so the run may go past ` +
            `${T}: tokens from there on take position ${T - 1}'s embedding, an approximation ` +
            "of minGPT's crop-and-recompute (see the generation guide)."
          : `This cache keeps every position: prompt + new tokens must fit the model's ${T} ` +
            'positions (its position embeddings end there). The sliding-window and sink ' +
            'caches, or no cache, go further.';
    }
  };
  for (const control of [useCache, sampling, strategy]) {
    control.addEventListener('change', syncControls);
  }

  const settings = (): GenerationSettings => {
    const greedy = sampling.value === 'greedy';
    return {
      prompt: prompt.value,
      maxNewTokens: Number(maxNew.value),
      useKvCache: useCache.checked,
      strategy: strategy.value,
      doSample: !greedy,
      temperature: greedy ? 1 : Number(temperature.value),
      topK: greedy || topK.value.trim() === '' ? null : Number(topK.value),
      seed: Number(seed.value),
    };
  };

  const show = (p: GenerationProgress) => {
    generated.textContent = p.text;
    if (output.dataset.steps !== String(p.steps)) output.dataset.steps = String(p.steps);
    rate.textContent = `${p.steps} tokens · ${p.tokensPerSecond.toFixed(0)} tokens/s`;
    rate.dataset.rate = String(p.tokensPerSecond);
    if (p.cache) {
      const { strategy: name, bytesUsed, bytesReserved, seqLength, slotsHeld, quantized } = p.cache;
      memory.textContent =
        ` · ${name} cache: ${formatBytes(bytesUsed)} used of ${formatBytes(bytesReserved)} ` +
        `reserved · ${slotsHeld} of ${seqLength} positions held` +
        (quantized > 0 ? `, ${quantized} of them quantized` : '');
      memory.dataset.quantized = String(quantized);
      memory.dataset.used = String(bytesUsed);
      memory.dataset.reserved = String(bytesReserved);
      memory.dataset.held = String(slotsHeld);
    } else {
      memory.textContent = ' · no cache';
      for (const key of ['used', 'reserved', 'held', 'quantized']) delete memory.dataset[key];
    }
  };

  run.addEventListener('click', async () => {
    if (!generator || controller) return;
    const s = settings();
    error.hidden = true;
    shownPrompt.textContent = s.prompt;
    generated.textContent = '';
    output.dataset.steps = '0';
    output.dataset.state = 'running';
    status.textContent = 'Generating…';
    controller = new AbortController();
    syncControls();
    try {
      const outcome = await generator.run(s, { signal: controller.signal, onProgress: show });
      show(outcome);
      output.dataset.state = outcome.reason === 'aborted' ? 'stopped' : 'done';
      status.textContent =
        outcome.reason === 'aborted'
          ? `Stopped after ${outcome.steps} tokens.`
          : `Done: ${outcome.steps} tokens at ${outcome.tokensPerSecond.toFixed(0)} tokens/s.`;
    } catch (e) {
      if (!isInputError(e)) {
        output.dataset.state = 'error';
        status.textContent = '';
        context.fail(e);
        return;
      }
      // The library refused the settings before generating: say why, next to the controls.
      error.textContent = `${e.name}: ${e.message}`;
      error.hidden = false;
      output.dataset.state = 'refused';
      status.textContent = '';
    } finally {
      controller = null;
      syncControls();
    }
  });
  stop.addEventListener('click', () => controller?.abort());

  TextGenerator.load(modelUrl)
    .then((g) => {
      generator = g;
      const d = g.model.dims;
      output.dataset.state = 'idle';
      status.textContent =
        `Model loaded: ${d.nLayer} layers, ${d.nHead} heads, width ${d.nEmbd}, ` +
        `${g.tokenizer.vocabSize} characters, context ${d.blockSize}.`;
      syncControls();
    })
    .catch(context.fail);
  syncControls();
}

/** Errors that mean "these settings are refused" (typed errors from @kvkit), not a failure. */
function isInputError(e: unknown): e is Error {
  return e instanceof ValueError || e instanceof ShapeError || e instanceof CacheCapacityError;
}

// A few DOM helpers, so the panels build their markup in plain TypeScript.

type Child = Node | string | null | undefined | false;

/** `h('button', { class: 'x', onclick }, 'text')`: an element with attributes and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | boolean | EventListener | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') el.addEventListener(name.replace(/^on/, ''), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child);
  }
  return el;
}

/** Lets the browser paint (and run input events) before the next step of a long loop. */
export function nextFrame(): Promise<void> {
  return new Promise((done) => requestAnimationFrame(() => done()));
}

/**
 * Runs `fn` on click with the button disabled meanwhile; errors go to `onError`. Afterwards the
 * button is enabled again, or as `enabled()` says when given.
 */
export function action(
  button: HTMLButtonElement,
  fn: () => Promise<void> | void,
  onError: (e: unknown) => void,
  enabled: () => boolean = () => true,
): void {
  button.addEventListener('click', async () => {
    if (button.disabled) return;
    button.disabled = true;
    try {
      await fn();
    } catch (e) {
      onError(e);
    } finally {
      button.disabled = !enabled();
    }
  });
}

/** A byte count for people: `512 B`, `24.0 KiB`, `1.50 MiB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(2)} MiB`;
}

// The demo page's panels, in the order of its tabs. A panel is a self-contained view with its
// own controls; main.ts makes a tab and a section for each entry. Adding a panel is one entry
// here and one module in panels/. (The cache strategies the panels offer have their own
// registry, strategies.ts.)
import type { BackendInfo } from '@kvkit/tensor-utils';
import { cachePanel } from './panels/cache-panel.ts';
import { generatePanel } from './panels/generate-panel.ts';
import { notebookPanel } from './panels/notebook-panel.ts';
import { racePanel } from './panels/race-panel.ts';

export interface PanelContext {
  backend: BackendInfo;
  /** Shows an error in the page (and logs it), for any failure inside a panel. */
  fail(error: unknown): void;
}

export interface Panel {
  /** Stable id: the tab's `data-panel` and the section's id. */
  id: string;
  /** Tab label. */
  title: string;
  /** One sentence under the tab: what the visitor sees and does here. */
  summary: string;
  /** Builds the panel's content into `root` (called once, when the page starts). */
  mount(root: HTMLElement, context: PanelContext): void;
}

export const panels: readonly Panel[] = [cachePanel, generatePanel, racePanel, notebookPanel];

import { checkStartPositions } from './checks.ts';
import type { KVCacheOptions, StartPositions, Visibility } from './kv-cache.ts';
import type { SlotRun } from './layer-storage.ts';
import { SlotKVCache } from './slot-cache.ts';

/**
 * The storage both windowed strategies share: the first `sinks` positions pinned in slots
 * [0, sinks), every later position p in slot `sinks + (p - sinks) % window`, so a row holds at
 * most `sinks + window` slots however long it runs. A query at P sees positions <= P that are
 * sinks or within the last `window`.
 */
export abstract class RingKVCache extends SlotKVCache {
  readonly layoutKind = 'ring';
  readonly maxPosition = null;
  readonly maxSlots: number;
  readonly visibility: Visibility;
  readonly #sinks: number;
  readonly #window: number;

  protected constructor(
    options: KVCacheOptions & { maxBatchSize?: number },
    sinks: number,
    window: number,
  ) {
    super(options, 3);
    this.#sinks = sinks;
    this.#window = window;
    this.maxSlots = sinks + window;
    this.visibility = { window, sinks };
  }

  /**
   * An update may carry several positions only while it evicts nothing that an earlier query
   * of the same update still sees: until the ring is full (s + T <= sinks + window); after
   * that, one position at a time.
   */
  override maxUpdateLength(_layer: number, startPos: StartPositions, batchSize = 1): number {
    const starts = checkStartPositions(
      startPos,
      typeof startPos === 'number' ? batchSize : startPos.length,
    );
    return Math.min(...starts.map((s) => Math.max(1, this.maxSlots - s)));
  }

  protected slotOf(p: number): number {
    return p < this.#sinks ? p : this.#sinks + ((p - this.#sinks) % this.#window);
  }

  protected heldSlots(length: number): number {
    const S = this.#sinks;
    return Math.min(length, S) + Math.min(Math.max(length - S, 0), this.#window);
  }

  protected runsOf(length: number): SlotRun[] {
    const S = this.#sinks;
    const W = this.#window;
    const runs: SlotRun[] = [{ slot: 0, count: Math.min(length, S), firstPos: 0, sink: true }];
    const lo = Math.max(S, length - W); // the oldest window position still held
    if (lo >= length) return runs;
    const first = this.slotOf(lo);
    const head = Math.min(length - lo, S + W - first); // up to the ring's end...
    runs.push({ slot: first, count: head, firstPos: lo, sink: false });
    runs.push({ slot: S, count: length - lo - head, firstPos: lo + head, sink: false }); // ...then wrapped
    return runs;
  }

  protected slotsFor(): number {
    return this.maxSlots;
  }

  protected rowsFor(batchSize: number, current: number): number {
    return Math.max(batchSize, current);
  }

  protected cropRefusal(length: number, to: number): string | null {
    const S = this.#sinks;
    if (to <= S || length <= this.maxSlots) return null;
    return `it has evicted positions [${S}, ${length - this.#window}) that a sequence of ${to} positions still needs`;
  }
}

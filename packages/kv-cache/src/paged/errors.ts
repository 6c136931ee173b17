import { CacheCapacityError, ValueError } from '@kvkit/tensor-utils';

/**
 * A paged cache's pool has fewer blocks than a call needs. `free` counts every block the call
 * could have taken: empty ones and unreferenced ones kept for prefix reuse (those are evicted
 * first, least recently used). Raised before anything changes. A `CacheCapacityError`
 * (`capacity` = free, `requested` = needed), so code that handles full caches handles it too.
 *
 * @example
 * try { cache.update(0, rows, startPos); }
 * catch (e) { if (e instanceof OutOfBlocksError) console.log(e.needed, e.free); }
 */
export class OutOfBlocksError extends CacheCapacityError {
  override name = 'OutOfBlocksError';
  readonly needed: number;
  readonly free: number;
  constructor(message: string, data: { needed: number; free: number }) {
    super(message, { capacity: data.free, requested: data.needed });
    this.needed = data.needed;
    this.free = data.free;
  }
}

/**
 * A paged cache was asked about a sequence it does not hold: an id it never handed out
 * (`state: 'unknown'`) or one already freed (`state: 'freed'`). A `ValueError` whose
 * `argument` is `'sequence'`.
 *
 * @example
 * cache.free(id);
 * cache.fork(id); // SequenceError: sequence 3 was freed
 */
export class SequenceError extends ValueError {
  override name = 'SequenceError';
  readonly sequence: unknown;
  readonly state: 'unknown' | 'freed';
  constructor(message: string, data: { sequence: unknown; state: 'unknown' | 'freed' }) {
    super(message, { argument: 'sequence', value: data.sequence });
    this.sequence = data.sequence;
    this.state = data.state;
  }
}

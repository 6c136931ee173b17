import { CacheCapacityError, ValueError } from '@kvkit/tensor-utils';
import {
  checkBatch,
  checkLayer,
  checkLength,
  checkRowIndex,
  checkRows,
  checkRowUpdate,
  checkStartPositions,
  checkUpdateArgs,
  spanCounts,
} from '../checks.ts';
import type { KVView } from '../kernel/layout.ts';
import type {
  CropOptions,
  KVReadResult,
  KVRows,
  RowSpans,
  StartPositions,
  UpdateOptions,
  Visibility,
} from '../kv-cache.ts';
import { type PagedKVCacheOptions, PagedSequences } from './paged-sequences.ts';
import { readRows } from './read-rows.ts';
import { RunTables } from './run-tables.ts';
import { BlockPlan, cropSequence, prepareWrite, register, type Sequence } from './sequence.ts';

/**
 * The per-step side of `PagedKVCache` (paged.ts): the KVCache calls a layer makes every step
 * (checkUpdate, reserve, update, view, read, crop), on the rows `bind` names, and the memory
 * they take (the pool on first use, the run tables the kernel reads, under `maxBytes`).
 */
export abstract class PagedRows extends PagedSequences {
  readonly strategy = 'paged';
  readonly layoutKind = 'paged';
  readonly dtype = 'float32';
  readonly visibility: Visibility = { window: null, sinks: 0 };
  /** One sequence may take the whole pool. */
  readonly maxPosition: number;
  readonly maxSlots: number;
  protected readonly tables: RunTables[];

  protected constructor(options: PagedKVCacheOptions) {
    super(options);
    this.maxPosition = this.numBlocks * this.blockSize;
    this.maxSlots = this.maxPosition;
    this.tables = Array.from({ length: this.nLayers }, () => new RunTables(this.heap));
  }

  seqLength(layer = 0, row = 0): number {
    this.checkAlive();
    checkLayer(layer, this.nLayers);
    checkRowIndex(row, this.maxBatchSize);
    return this.rowSequence(row, 'seqLength')?.lengths[layer] ?? 0;
  }

  slotsHeld(layer = 0, row = 0): number {
    return this.seqLength(layer, row);
  }

  maxUpdateLength(): number {
    return Number.POSITIVE_INFINITY;
  }

  checkUpdate(
    layer: number,
    batchSize: number,
    startPos: StartPositions,
    newPositions: number,
    options: { crop?: boolean; inPieces?: boolean; spans?: RowSpans } = {},
  ): void {
    this.checkAlive();
    const { starts, counts } = checkUpdateArgs(
      layer,
      this.nLayers,
      batchSize,
      this.maxBatchSize,
      startPos,
      newPositions,
      options.spans,
    );
    const plan = new BlockPlan(this.pool);
    for (let b = 0; b < batchSize; b++) {
      const seq = this.rowSequence(b, 'update');
      const s = starts[b]!;
      checkRowUpdate(b, s, seq?.lengths[layer] ?? 0, counts[b]!, {
        crop: options.crop ?? false,
        strategy: this.strategy,
        limit: this.maxPosition,
        limitLabel: 'numBlocks x blockSize',
      });
      plan.write(seq, layer, s, s + counts[b]!, options.crop ? s : undefined);
    }
    plan.check('update');
  }

  reserve(layer: number, batchSize: number, length: number): void {
    this.checkAlive();
    checkLayer(layer, this.nLayers);
    checkBatch(batchSize, this.maxBatchSize);
    checkLength('reserve', length);
    if (length > this.maxPosition) {
      throw new CacheCapacityError(
        `reserve: ${length} positions exceed the pool's ${this.maxPosition} (numBlocks x blockSize)`,
        { capacity: this.maxPosition, requested: length },
      );
    }
    const plan = new BlockPlan(this.pool);
    const rows = Array.from({ length: batchSize }, (_, b) => this.rowSequence(b, 'reserve'));
    for (const seq of rows) plan.write(seq, layer, seq?.lengths[layer] ?? 0, length);
    plan.check('reserve');
    this.allocate(layer, batchSize, Math.ceil(length / this.blockSize)); // the last step that may fail
    this.bindNewRows(batchSize);
    for (let b = 0; b < batchSize; b++) {
      const seq = this.rowSequence(b, 'reserve')!;
      prepareWrite(this.pool, seq, seq.lengths[layer]!, length);
    }
  }

  /**
   * Stores batch row b's new positions at [s_b, s_b + T) of the sequence bound to it (with
   * `spans`: columns [first, first + count) at [s_b, s_b + count)), copying a block another
   * table holds before writing into it, and caching blocks that became full (prefix caching).
   */
  update(
    layer: number,
    rows: KVRows,
    startPos: StartPositions,
    options: UpdateOptions = {},
  ): KVView {
    this.checkAlive();
    const { batchSize: B, T } = checkRows(rows, this.nKvHeads, this.headSize, this.heap);
    this.checkUpdate(layer, B, startPos, T, options.spans ? { spans: options.spans } : {});
    const starts = checkStartPositions(startPos, B);
    const counts = spanCounts(options.spans, B, T);
    const firsts = options.spans?.first ?? new Array<number>(B).fill(0);
    const host =
      'ptr' in rows
        ? rows
        : {
            keys: rows.keys.dataSync() as Float32Array,
            values: rows.values.dataSync() as Float32Array,
            T,
          };
    const end = Math.max(...starts.map((s, b) => s + counts[b]!));
    this.allocate(layer, B, Math.ceil(end / this.blockSize)); // the last step that may fail
    this.bindNewRows(B);
    for (let b = 0; b < B; b++) {
      const seq = this.rowSequence(b, 'update')!;
      const [s, n] = [starts[b]!, counts[b]!];
      if (n === 0) continue;
      prepareWrite(this.pool, seq, s, s + n);
      this.pool.writeRows(layer, seq.table, s, n, host, b, firsts[b]!);
      seq.lengths[layer] = s + n;
      if (this.prefixCaching) register(this.pool, seq);
    }
    return this.view(layer, B);
  }

  view(layer: number, batchSize: number): KVView {
    this.checkAlive();
    checkLayer(layer, this.nLayers);
    checkBatch(batchSize, this.maxBatchSize);
    if (batchSize > this.bound.length) {
      throw new ValueError(
        `view: batch rows [0, ${batchSize}) requested, but ${this.bound.length} row(s) are bound to sequences`,
        { argument: 'batchSize', value: batchSize },
      );
    }
    const seqs = Array.from({ length: batchSize }, (_, b) => this.rowSequence(b, 'view')!);
    const maxKeys = Math.max(...seqs.map((s) => s.lengths[layer]!));
    this.allocate(layer, batchSize, Math.ceil(maxKeys / this.blockSize));
    const runs = this.tables[layer]!;
    const bs = this.blockSize;
    seqs.forEach((seq, b) => {
      runs.writeRow(b, seq.table, seq.lengths[layer]!, bs, (block) => this.pool.offset(block, 0));
    });
    return {
      heap: this.heap,
      batchSize,
      maxKeys,
      layout: {
        kind: this.layoutKind,
        dtype: this.dtype,
        nKvHeads: this.nKvHeads,
        headSize: this.headSize,
        keys: this.pool.layerKeys(layer),
        values: this.pool.layerValues(layer),
        headStride: this.pool.headStride,
        rowStride: this.headSize * 4,
        runs: runs.ptr,
        runStride: runs.runStride,
        runCounts: runs.runCounts,
        window: null,
      },
    };
  }

  read(layer: number, batchSize: number): KVReadResult {
    this.checkAlive();
    checkLayer(layer, this.nLayers);
    checkBatch(batchSize, this.maxBatchSize);
    const seqs = Array.from({ length: batchSize }, (_, b) => this.rowSequence(b, 'read'));
    return readRows(this.pool, layer, seqs);
  }

  /** A paged cache can always crop; this checks the arguments. */
  checkCrop(length: number, options: CropOptions = {}): void {
    this.#cropTargets(length, options);
  }

  /**
   * Forgets positions >= length of the given batch rows' sequences (all bound rows by default),
   * in one layer or all, and their token ids at those positions. Blocks no layer needs any more
   * go back to the pool (a shared one stays with its other tables).
   */
  crop(length: number, options: CropOptions = {}): void {
    const { layers, seqs } = this.#cropTargets(length, options);
    for (const seq of seqs) cropSequence(this.pool, seq, length, layers);
  }

  /** Forgets every position of every sequence, in one layer or all; the pool stays allocated. */
  reset(layer?: number): void {
    this.checkAlive();
    if (layer !== undefined) checkLayer(layer, this.nLayers);
    const layers = layer === undefined ? this.#allLayers() : [layer];
    for (const seq of this.live.values()) cropSequence(this.pool, seq, 0, layers);
  }

  /**
   * Key/value bytes the live sequences hold, all layers: a slot several sequences share counts
   * once for each (what their rows hold, as for every strategy). `stats().bytesUsed` counts it
   * once: the memory really used.
   */
  bytesUsed(): number {
    if (this.isDisposed) return 0;
    let slots = 0;
    for (const seq of this.live.values()) for (const n of seq.lengths) slots += n;
    return slots * 2 * this.nKvHeads * this.headSize * 4;
  }

  bytesReserved(): number {
    return this.pool.bytesReserved() + this.tables.reduce((n, t) => n + t.bytesReserved(), 0);
  }

  bytesPerToken(): number {
    return 2 * this.nLayers * this.nKvHeads * this.headSize * 4;
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.pool.dispose();
    for (const t of this.tables) t.free();
    this.markDisposed();
  }

  /**
   * The pool (on first use) and a layer's run tables for `rows` x `runs`, within `maxBytes`
   * (CacheCapacityError otherwise): all or nothing.
   */
  protected allocate(layer: number | null, rows = 1, runs = 1): void {
    const fresh = !this.pool.allocated;
    const tables = layer === null ? null : this.tables[layer]!;
    if (this.maxBytes !== null) {
      const now = this.bytesReserved();
      const after =
        now +
        (fresh ? this.pool.bytesNeeded() : 0) +
        (tables?.growth(rows, Math.max(runs, 1)) ?? 0);
      if (after > this.maxBytes) {
        throw new CacheCapacityError(
          `the paged cache would reserve ${after} bytes, over its budget maxBytes = ${this.maxBytes} (it reserves ${now} now)`,
          { capacity: this.maxBytes, requested: after },
        );
      }
    }
    this.pool.allocate();
    try {
      tables?.ensure(rows, Math.max(runs, 1));
    } catch (error) {
      if (fresh) this.pool.deallocate();
      throw error;
    }
  }

  #cropTargets(length: number, options: CropOptions): { layers: number[]; seqs: Sequence[] } {
    this.checkAlive();
    checkLength('crop', length);
    if (options.layer !== undefined) checkLayer(options.layer, this.nLayers);
    const rows = options.rows ?? this.bound.map((_, b) => b);
    for (const b of rows) checkRowIndex(b, this.maxBatchSize);
    const seqs = rows.map((b) => this.rowSequence(b, 'crop')).filter((s) => s !== null);
    const layers = options.layer === undefined ? this.#allLayers() : [options.layer];
    return { layers, seqs };
  }

  #allLayers(): number[] {
    return Array.from({ length: this.nLayers }, (_, l) => l);
  }
}

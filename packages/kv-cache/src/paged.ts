import { CacheCapacityError, ValueError } from '@kvkit/tensor-utils';
import {
  checkBatch,
  checkLayer,
  checkRowIndex,
  checkRows,
  checkRowUpdate,
  checkStartPositions,
  checkUpdateLength,
} from './checks.ts';
import type { KVView } from './kernel/layout.ts';
import type {
  CropOptions,
  KVCache,
  KVReadResult,
  KVRows,
  StartPositions,
  Visibility,
} from './kv-cache.ts';
import { type PagedKVCacheOptions, PagedSequences } from './paged/paged-sequences.ts';
import { readRows } from './paged/read-rows.ts';
import { RunTables } from './paged/run-tables.ts';
import { BlockPlan, prepareWrite, register, type Sequence, trim } from './paged/sequence.ts';

/**
 * A paged cache (vLLM's PagedAttention): one pool of `numBlocks` fixed-size blocks shared by
 * every sequence and layer, a block table per sequence, reference-counted blocks. Sequences
 * are first-class: `addSequence`, `fork` (shares every block), `free`; a write into a block
 * another table holds copies that block first (copy-on-write), never the others. With prefix
 * caching, a full block is keyed by (its parent block's key, its token ids), and a new
 * sequence whose prompt starts with a cached prefix reuses those blocks and skips their
 * prefill; unreferenced cached blocks are evicted least recently used when the pool runs out.
 *
 * The KVCache contract speaks of batch rows: `bind([a, b])` makes rows 0 and 1 mean sequences
 * a and b for `update` / `view` / `read` / `crop` / `seqLength` until the next bind (a write to
 * a row past the binding gives that row a new sequence). The kernel reads keys and values in
 * place through the block tables: one run per block, no gather into a contiguous copy.
 * Memory: `numBlocks x blockSize x bytesPerToken()` for the pool, allocated on first use.
 *
 * @example
 * const cache = new PagedKVCache({ nLayers: 12, nKvHeads: 12, headSize: 64, numBlocks: 4096 });
 * const { id, reused } = cache.addSequence(promptIds); // positions [0, reused) are cached
 * cache.bind([id]);                                    // batch row 0 is this sequence
 * mha.useCache(cache).forward(promptTail, { useKvCache: true, startPos: reused });
 * const sample = cache.fork(id);                       // shares every block
 */
export class PagedKVCache extends PagedSequences implements KVCache {
  readonly strategy = 'paged';
  readonly layoutKind = 'paged';
  readonly dtype = 'float32';
  readonly visibility: Visibility = { window: null, sinks: 0 };
  /** One sequence may take the whole pool. */
  readonly maxPosition: number;
  readonly maxSlots: number;
  readonly #tables: RunTables[];

  constructor(options: PagedKVCacheOptions) {
    super(options);
    this.maxPosition = this.numBlocks * this.blockSize;
    this.maxSlots = this.maxPosition;
    this.#tables = Array.from({ length: this.nLayers }, () => new RunTables(this.heap));
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
    options: { crop?: boolean; inPieces?: boolean } = {},
  ): void {
    this.checkAlive();
    checkLayer(layer, this.nLayers);
    checkBatch(batchSize, this.maxBatchSize);
    checkUpdateLength(newPositions);
    const starts = checkStartPositions(startPos, batchSize);
    const plan = new BlockPlan(this.pool);
    for (let b = 0; b < batchSize; b++) {
      const seq = this.rowSequence(b, 'update');
      const s = starts[b]!;
      checkRowUpdate(b, s, seq?.lengths[layer] ?? 0, newPositions, {
        crop: options.crop ?? false,
        strategy: this.strategy,
        limit: this.maxPosition,
        limitLabel: 'numBlocks x blockSize',
      });
      plan.write(seq, layer, s, s + newPositions, options.crop ? s : undefined);
    }
    plan.check('update');
  }

  reserve(layer: number, batchSize: number, length: number): void {
    this.checkAlive();
    checkLayer(layer, this.nLayers);
    checkBatch(batchSize, this.maxBatchSize);
    if (!Number.isInteger(length) || length < 0) {
      throw new ValueError(`reserve: length must be a non-negative integer, got ${length}`, {
        argument: 'length',
        value: length,
      });
    }
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
    this.#allocate(layer, batchSize, Math.ceil(length / this.blockSize)); // the last step that may fail
    this.bindNewRows(batchSize);
    for (let b = 0; b < batchSize; b++) {
      const seq = this.rowSequence(b, 'reserve')!;
      prepareWrite(this.pool, seq, seq.lengths[layer]!, length);
    }
  }

  update(layer: number, rows: KVRows, startPos: StartPositions): KVView {
    this.checkAlive();
    const { batchSize: B, T } = checkRows(rows, this.nKvHeads, this.headSize, this.heap);
    this.checkUpdate(layer, B, startPos, T);
    const starts = checkStartPositions(startPos, B);
    const host =
      'ptr' in rows
        ? rows
        : {
            keys: rows.keys.dataSync() as Float32Array,
            values: rows.values.dataSync() as Float32Array,
            B,
          };
    this.#allocate(layer, B, Math.ceil((Math.max(...starts) + T) / this.blockSize)); // the last step that may fail
    this.bindNewRows(B);
    for (let b = 0; b < B; b++) {
      const seq = this.rowSequence(b, 'update')!;
      const s = starts[b]!;
      prepareWrite(this.pool, seq, s, s + T);
      this.pool.writeRows(layer, seq.table, s, T, host, b);
      seq.lengths[layer] = s + T;
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
    this.#allocate(layer, batchSize, Math.ceil(maxKeys / this.blockSize));
    const runs = this.#tables[layer]!;
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
    for (const seq of seqs) this.#cropSequence(seq, length, layers);
  }

  /** Forgets every position of every sequence, in one layer or all; the pool stays allocated. */
  reset(layer?: number): void {
    this.checkAlive();
    if (layer !== undefined) checkLayer(layer, this.nLayers);
    const layers = layer === undefined ? this.#allLayers() : [layer];
    for (const seq of this.live.values()) this.#cropSequence(seq, 0, layers);
  }

  /** Key/value bytes of the slots holding a position, all layers; a shared slot counts once. */
  bytesUsed(): number {
    if (this.isDisposed) return 0;
    return this.slotsUsed() * 2 * this.nKvHeads * this.headSize * 4;
  }

  bytesReserved(): number {
    return this.pool.bytesReserved() + this.#tables.reduce((n, t) => n + t.bytesReserved(), 0);
  }

  bytesPerToken(): number {
    return 2 * this.nLayers * this.nKvHeads * this.headSize * 4;
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.pool.dispose();
    for (const t of this.#tables) t.free();
    this.markDisposed();
  }

  /** The pool (on first use) and layer's run tables for `rows` x `runs`: all or nothing. */
  #allocate(layer: number, rows: number, runs: number): void {
    const fresh = !this.pool.allocated;
    this.pool.allocate();
    try {
      this.#tables[layer]!.ensure(rows, Math.max(runs, 1));
    } catch (error) {
      if (fresh) this.pool.deallocate();
      throw error;
    }
  }

  #cropTargets(length: number, options: CropOptions): { layers: number[]; seqs: Sequence[] } {
    this.checkAlive();
    if (!Number.isInteger(length) || length < 0) {
      throw new ValueError(`crop: length must be a non-negative integer, got ${length}`, {
        argument: 'length',
        value: length,
      });
    }
    if (options.layer !== undefined) checkLayer(options.layer, this.nLayers);
    const rows = options.rows ?? this.bound.map((_, b) => b);
    for (const b of rows) checkRowIndex(b, this.maxBatchSize);
    const seqs = rows.map((b) => this.rowSequence(b, 'crop')).filter((s) => s !== null);
    const layers = options.layer === undefined ? this.#allLayers() : [options.layer];
    return { layers, seqs };
  }

  #cropSequence(seq: Sequence, length: number, layers: readonly number[]): void {
    let changed = false;
    for (const l of layers) {
      if (seq.lengths[l]! > length) {
        seq.lengths[l] = length;
        changed = true;
      }
    }
    seq.tokens.truncate(length);
    seq.keys.length = Math.min(seq.keys.length, Math.floor(length / this.blockSize));
    if (changed) trim(this.pool, seq);
  }

  #allLayers(): number[] {
    return Array.from({ length: this.nLayers }, (_, l) => l);
  }
}

/**
 * Typed errors shared by every kvkit package. Each carries the offending values as data, so a
 * caller can branch on them without parsing the message, and sets `name` for readable stacks.
 *
 * @example
 * try { cache.update(0, { keys, values }, 70); }
 * catch (e) { if (e instanceof CacheCapacityError) console.log(e.capacity, e.requested); }
 */
export class KvkitError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
  // Names are string literals (not new.target.name), so they survive minification.
  override name = 'KvkitError';
}

/** A tensor's shape is not what the call needs. */
export class ShapeError extends KvkitError {
  override name = 'ShapeError';
  readonly expected: string | readonly number[];
  readonly actual: readonly number[];
  constructor(
    message: string,
    data: { expected: string | readonly number[]; actual: readonly number[] },
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.expected = data.expected;
    this.actual = [...data.actual];
  }
}

/** A tensor's dtype is not what the call needs. */
export class DTypeError extends KvkitError {
  override name = 'DTypeError';
  readonly expected: string | readonly string[];
  readonly actual: string;
  constructor(
    message: string,
    data: { expected: string | readonly string[]; actual: string },
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.expected = data.expected;
    this.actual = data.actual;
  }
}

/** An argument is out of its allowed range or of the wrong kind. */
export class ValueError extends KvkitError {
  override name = 'ValueError';
  readonly argument: string;
  readonly value: unknown;
  constructor(
    message: string,
    data: { argument: string; value: unknown },
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.argument = data.argument;
    this.value = data.value;
  }
}

/** A write or read goes past what a cache can hold. */
export class CacheCapacityError extends KvkitError {
  override name = 'CacheCapacityError';
  readonly capacity: number;
  readonly requested: number;
  constructor(
    message: string,
    data: { capacity: number; requested: number },
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.capacity = data.capacity;
    this.requested = data.requested;
  }
}

/** An object was used after `dispose()`. */
export class DisposedError extends KvkitError {
  override name = 'DisposedError';
  readonly object: string;
  constructor(object: string, options?: { cause?: unknown }) {
    super(`${object} has been disposed`, options);
    this.object = object;
  }
}

/** The requested tfjs backend cannot be set up. */
export class BackendError extends KvkitError {
  override name = 'BackendError';
  readonly backend: string;
  constructor(message: string, data: { backend: string }, options?: { cause?: unknown }) {
    super(message, options);
    this.backend = data.backend;
  }
}

/**
 * A cache strategy refuses an operation it cannot do without losing information, e.g. cropping
 * a sliding-window cache back past positions it has already evicted.
 */
export class CacheOperationError extends KvkitError {
  override name = 'CacheOperationError';
  readonly strategy: string;
  readonly operation: string;
  constructor(
    message: string,
    data: { strategy: string; operation: string },
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.strategy = data.strategy;
    this.operation = data.operation;
  }
}

/**
 * A kernel was handed a memory layout or row dtype it does not read (yet). Raised before the
 * kernel touches memory, never a silently wrong result.
 */
export class UnsupportedLayoutError extends KvkitError {
  override name = 'UnsupportedLayoutError';
  readonly kind: string;
  readonly dtype: string;
  constructor(
    message: string,
    data: { kind: string; dtype: string },
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.kind = data.kind;
    this.dtype = data.dtype;
  }
}

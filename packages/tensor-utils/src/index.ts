/** @module tensor-utils */
// Public API of @kvkit/tensor-utils: names are listed explicitly, types with `export type`.
export {
  type BackendInfo,
  type BackendName,
  type InitBackendOptions,
  initBackend,
  type WasmBinary,
} from './backend.ts';
export {
  allclose,
  broadcastShapes,
  type CloseOptions,
  equal,
  isclose,
  maxAbsDiff,
} from './compare.ts';
export {
  BackendError,
  CacheCapacityError,
  CacheOperationError,
  DisposedError,
  DTypeError,
  KvkitError,
  ShapeError,
  UnsupportedLayoutError,
  ValueError,
} from './errors.ts';
export { type FormatOptions, formatShape, formatTensor, formatValues } from './format.ts';
export { Generator, type GeneratorState, getDefaultGenerator, setSeed } from './generator.ts';
export { linearInit, linearInitValues } from './linear-init.ts';
export { type RoundingMode, rand, uniformValues } from './random.ts';

import { expect, test } from 'vitest';
import {
  BackendError,
  CacheCapacityError,
  DisposedError,
  DTypeError,
  FormatError,
  KvkitError,
  ShapeError,
  ValueError,
} from './errors.ts';

test('each error carries its data, its literal name and its cause', () => {
  const cause = new Error('root');
  const cases = [
    [
      new ShapeError('s', { expected: [1, 2], actual: [3] }, { cause }),
      'ShapeError',
      { expected: [1, 2], actual: [3] },
    ],
    [
      new DTypeError('d', { expected: 'float32', actual: 'int32' }),
      'DTypeError',
      { expected: 'float32', actual: 'int32' },
    ],
    [
      new ValueError('v', { argument: 'startPos', value: -1 }),
      'ValueError',
      { argument: 'startPos', value: -1 },
    ],
    [
      new CacheCapacityError('c', { capacity: 8, requested: 9 }),
      'CacheCapacityError',
      { capacity: 8, requested: 9 },
    ],
    [new DisposedError('CausalSelfAttention'), 'DisposedError', { object: 'CausalSelfAttention' }],
    [new BackendError('b', { backend: 'webgpu' }), 'BackendError', { backend: 'webgpu' }],
    [
      new FormatError('f', { format: 'kvkit-kv-cache', reason: 'truncated' }),
      'FormatError',
      { format: 'kvkit-kv-cache', reason: 'truncated' },
    ],
  ] as const;
  for (const [error, name, data] of cases) {
    expect(error).toBeInstanceOf(KvkitError);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe(name);
    expect(error).toMatchObject(data);
    expect(String(error)).toMatch(new RegExp(`^${name}: `));
  }
  expect(cases[0][0].cause).toBe(cause);
});

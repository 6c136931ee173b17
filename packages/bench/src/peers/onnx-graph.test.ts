import { ShapeError, ValueError } from '@kvkit/tensor-utils';
import { describe, expect, test } from 'vitest';
import { OnnxGraph } from './onnx-graph.ts';

describe('OnnxGraph', () => {
  const graph = () => {
    const g = new OnnxGraph('t');
    const x = g.input('x', [1, 'T', 2]);
    g.output(g.node('Relu', [x])[0]!, 'y', [1, 'T', 2]);
    return g;
  };

  test('serializes deterministically; a different graph gives different bytes', () => {
    expect(graph().toBytes()).toEqual(graph().toBytes());
    const other = graph();
    other.initializer('w', [2], new Float32Array([1, 2]));
    expect(other.toBytes()).not.toEqual(graph().toBytes());
  });

  test('a name used twice is a ValueError, and the graph is left as it was', () => {
    const g = graph();
    const before = g.toBytes();
    expect(() => g.node('Relu', ['x'], {}, ['fresh_out', 'y'])).toThrow(ValueError);
    expect(() => g.node('Relu', ['x'], {}, ['twice', 'twice'])).toThrow(/'twice' is used twice/);
    expect(() => g.input('x', [1])).toThrow(ValueError);
    expect(g.toBytes()).toEqual(before);
    expect(() => g.node('Relu', ['x'], {}, ['fresh_out'])).not.toThrow(); // not taken by the refusals
  });

  test('an initializer whose data does not fill its shape is a ShapeError naming both', () => {
    const g = graph();
    const before = g.toBytes();
    expect(() => g.initializer('w', [2, 3], new Float32Array(5))).toThrow(ShapeError);
    expect(() => g.initializer('w', [2, 3], new Float32Array(5))).toThrow(
      /5 values for shape \[2,3\] \(6\)/,
    );
    expect(g.toBytes()).toEqual(before);
  });
});

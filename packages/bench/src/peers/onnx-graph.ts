/**
 * A small builder of ONNX models, on the ONNX schema compiled for @bufbuild/protobuf
 * (`onnx-buf`): named values, nodes in order, float32 initializers, and `toBytes()` giving the
 * serialized `ModelProto` an ONNX Runtime session loads. No Python, no exporter: the bench
 * writes the graphs of its peers from the very weights kvkit uses.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { ShapeError, ValueError } from '@kvkit/tensor-utils';
import {
  type AttributeProto,
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  type NodeProto,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  type TensorProto,
  TensorProto_DataType,
  TensorProtoSchema,
  TensorShapeProto_DimensionSchema,
  TensorShapeProtoSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  type ValueInfoProto,
  ValueInfoProtoSchema,
} from 'onnx-buf';

/** The default-domain opset the bench's graphs use (ONNX 1.12; ONNX Runtime >= 1.12 runs it). */
export const opsetVersion = 17;
/** IR version 8 goes with opset 17. */
const irVersion = 8n;

/** A dimension: a fixed size, or a name for a size known only when the model runs. */
export type Dim = number | string;

/** Attribute values by kind: an integer, a list of integers, or a float. */
export type Attribute = { int: number } | { ints: readonly number[] } | { float: number };

/**
 * Builds one graph. Values are named strings; `node` appends a node and returns its output
 * names; `constant`/`initializer` add float32 or int64 initializers.
 *
 * @example
 * const g = new OnnxGraph('affine');
 * const x = g.input('x', [1, 'T', 4]);
 * const y = g.node('MatMul', [x, g.initializer('w', [4, 2], new Float32Array(8))])[0]!;
 * g.output(y, 'y', [1, 'T', 2]);
 * const bytes = g.toBytes();
 */
export class OnnxGraph {
  readonly #name: string;
  readonly #nodes: NodeProto[] = [];
  readonly #inputs: ValueInfoProto[] = [];
  readonly #outputs: ValueInfoProto[] = [];
  readonly #initializers: TensorProto[] = [];
  readonly #names = new Set<string>();
  #counter = 0;

  constructor(name: string) {
    this.#name = name;
  }

  /** A fresh value name with this prefix (`q_3`). */
  fresh(prefix: string): string {
    let name = `${prefix}_${this.#counter++}`;
    while (this.#names.has(name)) name = `${prefix}_${this.#counter++}`;
    this.#names.add(name);
    return name;
  }

  /** Declares a graph input: float32, or int64 (token ids) when `int64` is set. */
  input(name: string, shape: readonly Dim[], int64 = false): string {
    this.#claim(name);
    this.#inputs.push(valueInfo(name, shape, int64));
    return name;
  }

  /** Declares a graph output: `value` under the name `name` (an Identity node when they differ). */
  output(value: string, name: string, shape: readonly Dim[]): void {
    if (value !== name) this.node('Identity', [value], {}, [name]);
    this.#outputs.push(valueInfo(name, shape));
  }

  /** A float32 initializer, row-major `data` of `shape`. */
  initializer(name: string, shape: readonly number[], data: Float32Array): string {
    const size = shape.reduce((a, b) => a * b, 1);
    if (data.length !== size) {
      throw new ShapeError(
        `initializer ${name}: ${data.length} values for shape [${shape}] (${size})`,
        {
          expected: shape,
          actual: [data.length],
        },
      );
    }
    this.#claim(name);
    const bytes = new Uint8Array(data.byteLength);
    bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    this.#initializers.push(
      create(TensorProtoSchema, {
        name,
        dims: shape.map(BigInt),
        dataType: TensorProto_DataType.FLOAT,
        rawData: bytes,
      }),
    );
    return name;
  }

  /** A constant: float32 values, or int64 when `int64` is set (shapes, axes, indices). */
  constant(values: readonly number[], shape: readonly number[], int64 = false): string {
    const name = this.fresh(int64 ? 'const_i64' : 'const_f32');
    this.#initializers.push(
      create(TensorProtoSchema, {
        name,
        dims: shape.map(BigInt),
        dataType: int64 ? TensorProto_DataType.INT64 : TensorProto_DataType.FLOAT,
        ...(int64
          ? { int64Data: values.map(BigInt) }
          : { floatData: Array.from(values, Math.fround) }),
      }),
    );
    return name;
  }

  /** Appends a node; returns its outputs (`outputs` names, or fresh ones: one by default). */
  node(
    opType: string,
    inputs: readonly string[],
    attributes: Record<string, Attribute> = {},
    outputs: readonly string[] | number = 1,
  ): string[] {
    if (typeof outputs !== 'number') {
      // Check every name before claiming any: a refused node leaves the graph as it was.
      const taken = outputs.find((n, i) => this.#names.has(n) || outputs.indexOf(n) !== i);
      if (taken !== undefined) this.#claim(taken);
    }
    const names =
      typeof outputs === 'number'
        ? Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase()))
        : outputs.map((n) => this.#claim(n));
    this.#nodes.push(
      create(NodeProtoSchema, {
        name: this.fresh(`${opType}_node`),
        opType,
        input: [...inputs],
        output: names,
        attribute: Object.entries(attributes).map(([n, v]) => attribute(n, v)),
      }),
    );
    return names;
  }

  /** The serialized ModelProto. */
  toBytes(): Uint8Array {
    const model = create(ModelProtoSchema, {
      irVersion,
      producerName: '@kvkit/bench',
      opsetImport: [
        create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(opsetVersion) }),
      ],
      graph: create(GraphProtoSchema, {
        name: this.#name,
        node: this.#nodes,
        input: this.#inputs,
        output: this.#outputs,
        initializer: this.#initializers,
      }),
    });
    return toBinary(ModelProtoSchema, model);
  }

  #claim(name: string): string {
    if (this.#names.has(name))
      throw new ValueError(`ONNX value name '${name}' is used twice`, {
        argument: 'name',
        value: name,
      });
    this.#names.add(name);
    return name;
  }
}

function valueInfo(name: string, shape: readonly Dim[], int64 = false): ValueInfoProto {
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, {
      value: {
        case: 'tensorType',
        value: create(TypeProto_TensorSchema, {
          elemType: int64 ? TensorProto_DataType.INT64 : TensorProto_DataType.FLOAT,
          shape: create(TensorShapeProtoSchema, {
            dim: shape.map((d) =>
              create(TensorShapeProto_DimensionSchema, {
                value:
                  typeof d === 'number'
                    ? { case: 'dimValue', value: BigInt(d) }
                    : { case: 'dimParam', value: d },
              }),
            ),
          }),
        }),
      },
    }),
  });
}

function attribute(name: string, v: Attribute): AttributeProto {
  if ('int' in v) {
    return create(AttributeProtoSchema, {
      name,
      type: AttributeProto_AttributeType.INT,
      i: BigInt(v.int),
    });
  }
  if ('ints' in v) {
    return create(AttributeProtoSchema, {
      name,
      type: AttributeProto_AttributeType.INTS,
      ints: v.ints.map(BigInt),
    });
  }
  return create(AttributeProtoSchema, {
    name,
    type: AttributeProto_AttributeType.FLOAT,
    f: v.float,
  });
}

/**
 * A small ONNX graph builder (protobuf through `npm:onnx-proto`) for the graphs the toolkit runs on
 * ONNX Runtime's native CPU engine: each {@link GraphBuilder.op} call adds one node and returns its
 * output names; constants become initializers (ONNX Runtime pre-packs constant GEMM/conv weights
 * once per session).
 *
 * @example
 * ```ts
 * import { GraphBuilder } from "./onnx_build.ts";
 * const g = new GraphBuilder("double");
 * const x = g.input("x", "float", ["N"]);
 * g.output(g.op("Mul", [x, g.const(new Float32Array([2]), [1])])[0], "y", "float", ["N"]);
 * const bytes = g.encode(); // ModelProto bytes for InferenceSession.create
 * ```
 * @module
 */
// Full npm: specifier so the toolkit also works when imported by URL (project rule).
// deno-lint-ignore no-import-prefix
import onnxProto from "npm:onnx-proto@8.0.1";

// deno-lint-ignore no-explicit-any
const { onnx } = onnxProto as any;

/** Element types used by the builder (ONNX `TensorProto.DataType`). */
const ELEM = { float: 1, int64: 7 } as const;
type Elem = keyof typeof ELEM;

/** An attribute value: a number (int if integral and `ints`-free), number[] (ints), or a float. */
export type Attr = { f: number } | { i: number } | { ints: number[] } | { s: string };

/** Builder of one ONNX graph (opset 17, default domain). */
export class GraphBuilder {
  // deno-lint-ignore no-explicit-any
  private nodes: any[] = [];
  // deno-lint-ignore no-explicit-any
  private inits: any[] = [];
  // deno-lint-ignore no-explicit-any
  private inputs: any[] = [];
  // deno-lint-ignore no-explicit-any
  private outputs: any[] = [];
  private n = 0;
  /** Values renamed to a graph output name by {@link output}: later uses map to the new name. */
  private renamed = new Map<string, string>();

  constructor(readonly name: string) {}

  /** A fresh tensor name with a readable prefix. */
  fresh(prefix = "t"): string {
    return `${prefix}_${this.n++}`;
  }

  /** Declare a graph input; dims are sizes or symbolic names. */
  input(name: string, elem: Elem, dims: (number | string)[]): string {
    this.inputs.push(valueInfo(name, elem, dims));
    return name;
  }

  /**
   * Declare `value` as the graph output `name`: the node that computes `value` is renamed (no
   * copy); a graph input, constant or an output already declared goes through an Identity.
   */
  output(value: string, name: string, elem: Elem, dims: (number | string)[]): void {
    const current = this.renamed.get(value) ?? value;
    if (current !== name) {
      const producer = this.nodes.find((n) => n.output.includes(current));
      if (producer && !this.renamed.has(value)) {
        producer.output = producer.output.map((o: string) => (o === current ? name : o));
        for (const n of this.nodes) {
          n.input = n.input.map((i: string) => (i === current ? name : i));
        }
        this.renamed.set(value, name);
      } else this.op("Identity", [current], {}, [name]);
    }
    this.outputs.push(valueInfo(name, elem, dims));
  }

  /** A constant float32 (or int64 with `BigInt64Array`) tensor. */
  const(data: Float32Array | BigInt64Array, dims: number[], prefix = "c"): string {
    const name = this.fresh(prefix);
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.inits.push(onnx.TensorProto.create({
      name,
      dataType: data instanceof BigInt64Array ? ELEM.int64 : ELEM.float,
      dims,
      rawData: bytes.slice(),
    }));
    return name;
  }

  /** An int64 constant vector (shapes, axes, indices). */
  ints(values: number[], dims = [values.length]): string {
    return this.const(BigInt64Array.from(values.map(BigInt)), dims, "i");
  }

  /**
   * Add one node. @returns its output names (`outputs` new ones by default, `nOut` of them).
   */
  op(
    type: string,
    inputs: string[],
    attrs: Record<string, Attr> = {},
    outputs?: string[],
    nOut = 1,
  ): string[] {
    const outs = outputs ?? Array.from({ length: nOut }, () => this.fresh(type.toLowerCase()));
    this.nodes.push(onnx.NodeProto.create({
      name: this.fresh(`n_${type}`),
      opType: type,
      input: inputs.map((i) => this.renamed.get(i) ?? i),
      output: outs,
      attribute: Object.entries(attrs).map(([name, a]) => {
        if ("f" in a) return onnx.AttributeProto.create({ name, type: 1, f: a.f });
        if ("i" in a) return onnx.AttributeProto.create({ name, type: 2, i: a.i });
        if ("s" in a) {
          return onnx.AttributeProto.create({ name, type: 3, s: new TextEncoder().encode(a.s) });
        }
        return onnx.AttributeProto.create({ name, type: 7, ints: a.ints });
      }),
    }));
    return outs;
  }

  /** One-output node (the common case). */
  op1(type: string, inputs: string[], attrs: Record<string, Attr> = {}): string {
    return this.op(type, inputs, attrs)[0];
  }

  /** ModelProto bytes (IR 8, opset 17). */
  encode(): Uint8Array {
    const graph = onnx.GraphProto.create({
      name: this.name,
      node: this.nodes,
      initializer: this.inits,
      input: this.inputs,
      output: this.outputs,
    });
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: "snarm",
      opsetImport: [onnx.OperatorSetIdProto.create({ domain: "", version: 17 })],
      graph,
    });
    return onnx.ModelProto.encode(model).finish() as Uint8Array;
  }
}

function valueInfo(name: string, elem: Elem, dims: (number | string)[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType: ELEM[elem],
        shape: onnx.TensorShapeProto.create({
          dim: dims.map((d) =>
            onnx.TensorShapeProto.Dimension.create(
              typeof d === "number" ? { dimValue: d } : { dimParam: d },
            )
          ),
        }),
      }),
    }),
  });
}

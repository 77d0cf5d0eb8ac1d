/**
 * ONNX graph surgery for feature taps: parse a model with `onnx-proto` (protobuf, never string
 * surgery), expose the requested intermediate tensors as graph outputs (inserting a
 * `DequantizeLinear` for quantised uint8/int8 tensors), free fixed spatial input dims, prune the
 * nodes the taps do not need, and re-encode to bytes for `InferenceSession.create`.
 *
 * Source: /work/shared/models/README.md ("What a toolkit loader should do with either").
 * @module
 */

// Full npm: specifier so the toolkit also works when imported by URL (project rule).
// deno-lint-ignore no-import-prefix
import onnxProto from "npm:onnx-proto@8.0.1";

// deno-lint-ignore no-explicit-any
const { onnx } = onnxProto as any;

/** ONNX `TensorProto.DataType` codes used here. */
export const ElemType = { FLOAT: 1, UINT8: 2, INT8: 3, FLOAT16: 10, DOUBLE: 11 } as const;

/**
 * For quantised operators: which node inputs hold the OUTPUT's scale and zero point
 * (`y_scale`, `y_zero_point`). ONNX default domain and `com.microsoft` contrib ops share the names.
 * QLinearConv / QLinearMatMul / QLinearAdd / QLinearMul: inputs 6, 7 (models/README).
 */
const OUTPUT_QPARAMS: Record<string, readonly [number, number]> = {
  QuantizeLinear: [1, 2],
  QLinearConv: [6, 7],
  QLinearMatMul: [6, 7],
  QLinearAdd: [6, 7],
  QLinearMul: [6, 7],
  QLinearGlobalAveragePool: [3, 4],
  QLinearAveragePool: [3, 4],
  QLinearReduceMean: [3, 4],
  QLinearSigmoid: [3, 4],
  QLinearLeakyRelu: [3, 4],
  QLinearSoftmax: [3, 4],
  QLinearConcat: [0, 1],
  QGemm: [7, 8],
};

/** Ops that move quantised values without changing their scale/zero point (trace to input 0). */
const QUANT_PASS_THROUGH = new Set([
  "MaxPool",
  "Reshape",
  "Transpose",
  "Flatten",
  "Squeeze",
  "Unsqueeze",
  "Identity",
  "Slice",
  "Split",
  "Gather",
  "Resize",
  "DepthToSpace",
  "SpaceToDepth",
  "Tile",
  "Expand",
]);

/** Minimal view of the protobufjs objects we touch (the generated classes are untyped). */
interface NodeLike {
  name?: string;
  opType: string;
  domain?: string;
  input: string[];
  output: string[];
  attribute?: { g?: unknown; graphs?: unknown[] }[];
}
interface ValueInfoLike {
  name: string;
  // deno-lint-ignore no-explicit-any
  type?: any;
}

/** One tap as exposed by {@link prepareTapModel}. */
export interface TapOutput {
  /** Tensor name the caller asked for. */
  tap: string;
  /** Graph output name to read from the session (the tap itself, or its dequantised copy). */
  output: string;
  /** True when a `DequantizeLinear` was inserted (the tap was a uint8/int8 tensor). */
  dequantized: boolean;
}

/** Options for {@link prepareTapModel}. */
export interface PrepareOptions {
  /** Name of the image input; default: the first graph input that is not an initializer. */
  inputName?: string;
  /** Requested spatial input size (square). Fixed H/W dims that differ become `height`/`width`. */
  inputSize?: number;
  /** Requested batch size; a fixed batch dim that differs becomes dim_param `batch`. */
  batchSize?: number;
  /** Drop nodes/initializers the taps do not need and the original outputs (default true). */
  prune?: boolean;
  /** Label for error messages (e.g. the model path). */
  what?: string;
}

/** Result of {@link prepareTapModel}. */
export interface PreparedModel {
  /** Re-encoded ModelProto bytes. */
  bytes: Uint8Array;
  /** The image input name. */
  inputName: string;
  /** Input dims after freeing (numbers for fixed dims, strings for dim_params). */
  inputDims: (number | string)[];
  /** One entry per requested tap, in request order. */
  taps: TapOutput[];
  /** The export's static `[H, W]` when it was freed for another `inputSize`, else null. */
  staticSize: [number, number] | null;
}

/** Error raised for malformed models or unknown tap names. */
export class BackboneModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BackboneModelError";
  }
}

function dimsOf(vi: ValueInfoLike | undefined): (number | string)[] | undefined {
  const dims = vi?.type?.tensorType?.shape?.dim;
  if (!dims) return undefined;
  // deno-lint-ignore no-explicit-any
  return dims.map((d: any) =>
    Object.prototype.hasOwnProperty.call(d, "dimValue")
      ? Number(d.dimValue)
      : (d.dimParam as string) ?? "?"
  );
}

function elemTypeOf(vi: ValueInfoLike | undefined): number | undefined {
  const t = vi?.type?.tensorType?.elemType;
  return t === undefined || t === 0 ? undefined : Number(t);
}

function suggest(name: string, candidates: Iterable<string>): string {
  const lower = name.toLowerCase();
  const stem = lower.replace(/_quantized$/, "").replace(/_output_0$/, "");
  const hits: string[] = [];
  for (const c of candidates) {
    const cl = c.toLowerCase();
    if (cl.includes(stem) || (stem.length >= 3 && cl.startsWith(stem.slice(0, 3)))) hits.push(c);
    if (hits.length >= 8) break;
  }
  return hits.length ? ` Similar tensor names: ${hits.join(", ")}.` : "";
}

/**
 * Decode an ONNX model, add the requested tensors as float32 graph outputs and re-encode it.
 *
 * - Taps that are uint8/int8 tensors of a quantised graph (output of `QuantizeLinear` or a
 *   `QLinear*` op, ONNX or `com.microsoft` domain, possibly through shape-only ops such as
 *   `MaxPool`/`Reshape`) get a `DequantizeLinear(tap, y_scale, y_zero_point)` node, with the
 *   scale/zero point taken from the producing op's inputs (QLinearConv/QLinearAdd: 6 and 7);
 *   float value = `(q − zero_point) · scale`.
 * - New outputs carry value_info elem type FLOAT with an unknown shape.
 * - When `inputSize` differs from fixed spatial input dims, those become dim_params
 *   `height`/`width` and the (now stale) shapes of all value_info/output entries are cleared.
 * - With `prune` (default) the graph outputs become exactly the taps and unneeded nodes and
 *   initializers are removed (skipped when a node holds a subgraph).
 *
 * @param bytes ONNX ModelProto bytes.
 * @param taps tensor names to expose (order kept).
 * @throws BackboneModelError when the bytes are not a model, a tap does not exist (message names
 *   it), a quantised tap's scale/zero point cannot be found, or the input cannot be identified.
 */
export function prepareTapModel(
  bytes: Uint8Array,
  taps: readonly string[],
  opts: PrepareOptions = {},
): PreparedModel {
  const what = opts.what ?? "ONNX model";
  // deno-lint-ignore no-explicit-any
  let model: any;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new BackboneModelError(`${what}: not a valid ONNX ModelProto (${(e as Error).message})`);
  }
  const graph = model.graph;
  if (!graph || !Array.isArray(graph.node) || graph.node.length === 0) {
    throw new BackboneModelError(`${what}: ONNX model has no graph nodes`);
  }
  const nodes: NodeLike[] = graph.node;
  const initNames = new Set<string>(graph.initializer.map((t: { name: string }) => t.name));
  const initByName = new Map<string, { name: string; dataType: number }>(
    graph.initializer.map((t: { name: string; dataType: number }) => [t.name, t]),
  );
  const graphInputs: ValueInfoLike[] = graph.input;
  const realInputs = graphInputs.filter((i) => !initNames.has(i.name));
  const inputName = opts.inputName ?? realInputs[0]?.name;
  const input = graphInputs.find((i) => i.name === inputName);
  if (!inputName || !input) {
    throw new BackboneModelError(
      `${what}: image input '${opts.inputName ?? "(first graph input)"}' not found; graph inputs: ${
        realInputs.map((i) => i.name).join(", ") || "(none)"
      }`,
    );
  }

  const producer = new Map<string, NodeLike>();
  for (const n of nodes) for (const o of n.output) if (o) producer.set(o, n);
  const valueInfo = new Map<string, ValueInfoLike>();
  for (const v of [...graph.valueInfo, ...graph.output, ...graphInputs] as ValueInfoLike[]) {
    valueInfo.set(v.name, v);
  }
  const outputNames = new Set<string>(graph.output.map((o: ValueInfoLike) => o.name));

  // --- Free fixed spatial (and batch) dims of the image input.
  let freed = false;
  const inDims = input.type?.tensorType?.shape?.dim;
  // A static size freed for another one: recorded, so a failing run can say why (a ViT export
  // bakes the patch grid and the position-embedding interpolation in).
  let staticSize: [number, number] | null = null;
  if (inDims && inDims.length === 4 && opts.inputSize !== undefined) {
    const hw = [inDims[2], inDims[3]].map((d) =>
      Object.prototype.hasOwnProperty.call(d, "dimValue") ? Number(d.dimValue) : null
    );
    if (
      hw[0] !== null && hw[1] !== null && (hw[0] !== opts.inputSize || hw[1] !== opts.inputSize)
    ) {
      staticSize = [hw[0], hw[1]];
    }
  }
  if (inDims && inDims.length === 4) {
    const fix = (i: number, want: number | undefined, param: string) => {
      const d = inDims[i];
      if (want === undefined || !Object.prototype.hasOwnProperty.call(d, "dimValue")) return;
      if (Number(d.dimValue) === want) return;
      inDims[i] = onnx.TensorShapeProto.Dimension.create({ dimParam: param });
      freed = true;
    };
    fix(0, opts.batchSize, "batch");
    fix(2, opts.inputSize, "height");
    fix(3, opts.inputSize, "width");
  }
  if (freed) {
    // Stale static shapes would contradict the new input size: keep elem types only.
    for (const v of [...graph.valueInfo, ...graph.output] as ValueInfoLike[]) {
      if (v.type?.tensorType) {
        v.type = onnx.TypeProto.create({
          tensorType: onnx.TypeProto.Tensor.create({ elemType: v.type.tensorType.elemType }),
        });
      }
    }
  }

  // --- Resolve each tap.
  const quantParamsOf = (name: string, depth = 0): [string, string] | undefined => {
    const p = producer.get(name);
    if (!p || depth > 64) return undefined;
    const q = OUTPUT_QPARAMS[p.opType];
    if (q && p.output[0] === name) {
      const s = p.input[q[0]], z = p.input[q[1]];
      if (!s) return undefined;
      return [s, z ?? ""];
    }
    if (QUANT_PASS_THROUGH.has(p.opType) && p.input[0]) return quantParamsOf(p.input[0], depth + 1);
    return undefined;
  };
  const isQuantOp = (name: string, depth = 0): boolean => {
    const p = producer.get(name);
    if (!p || depth > 64) return false;
    if (OUTPUT_QPARAMS[p.opType] && p.output[0] === name) return true;
    return QUANT_PASS_THROUGH.has(p.opType) && !!p.input[0] && isQuantOp(p.input[0], depth + 1);
  };

  const newNodes: NodeLike[] = [];
  const result: TapOutput[] = [];
  const newOutputs: ValueInfoLike[] = [];
  const seen = new Set<string>();
  for (const tap of taps) {
    if (seen.has(tap)) throw new BackboneModelError(`${what}: tap '${tap}' requested twice`);
    seen.add(tap);
    if (!producer.has(tap) && tap !== inputName) {
      throw new BackboneModelError(
        `${what}: tap tensor '${tap}' does not exist in the graph (no node produces it).` +
          suggest(tap, producer.keys()),
      );
    }
    const et = elemTypeOf(valueInfo.get(tap));
    const quant = et === ElemType.UINT8 || et === ElemType.INT8 ||
      (et === undefined && isQuantOp(tap));
    if (quant) {
      const qp = quantParamsOf(tap);
      if (!qp) {
        throw new BackboneModelError(
          `${what}: tap '${tap}' is a quantised tensor but the scale/zero point of its producer ` +
            `(${producer.get(tap)?.opType ?? "?"}) could not be found`,
        );
      }
      const [scale, zp] = qp;
      if (initByName.has(scale) && initByName.get(scale)!.dataType !== ElemType.FLOAT) {
        throw new BackboneModelError(`${what}: scale '${scale}' of tap '${tap}' is not float32`);
      }
      const out = `${tap}__snarm_dequant`;
      newNodes.push(
        onnx.NodeProto.create({
          name: `${tap}__snarm_DequantizeLinear`,
          opType: "DequantizeLinear",
          input: zp ? [tap, scale, zp] : [tap, scale],
          output: [out],
        }),
      );
      newOutputs.push(floatOutput(out));
      result.push({ tap, output: out, dequantized: true });
    } else {
      if (et !== undefined && et !== ElemType.FLOAT) {
        throw new BackboneModelError(
          `${what}: tap '${tap}' has element type ${et}; only float32 or uint8/int8 ` +
            `(quantised) tensors are supported`,
        );
      }
      if (!outputNames.has(tap)) newOutputs.push(floatOutput(tap));
      result.push({ tap, output: tap, dequantized: false });
    }
  }
  if (newNodes.length) {
    const def = (model.opsetImport as { domain?: string; version: unknown }[])
      .find((o) => !o.domain);
    if (def && Number(def.version) < 10) {
      throw new BackboneModelError(
        `${what}: opset ${def.version} < 10 has no DequantizeLinear; cannot tap quantised tensors`,
      );
    }
  }
  graph.node = [...nodes, ...newNodes];

  const prune = opts.prune ?? true;
  if (prune) {
    const keep = new Set(result.map((r) => r.output));
    graph.output = [
      ...(graph.output as ValueInfoLike[]).filter((o) => keep.has(o.name)),
      ...newOutputs,
    ];
    const hasSubgraph = (graph.node as NodeLike[]).some((n) =>
      (n.attribute ?? []).some((a) => a.g || (a.graphs && a.graphs.length))
    );
    if (!hasSubgraph) {
      const needed = new Set<string>(keep);
      const kept: NodeLike[] = [];
      const all = graph.node as NodeLike[];
      for (let i = all.length - 1; i >= 0; i--) {
        const n = all[i];
        if (n.output.some((o) => needed.has(o))) {
          kept.push(n);
          for (const x of n.input) if (x) needed.add(x);
        }
      }
      kept.reverse();
      graph.node = kept;
      graph.initializer = graph.initializer.filter((t: { name: string }) => needed.has(t.name));
      graph.input = graphInputs.filter((i) => i.name === inputName || needed.has(i.name));
      const extra = realInputs.filter((i) => i.name !== inputName && needed.has(i.name));
      if (extra.length) {
        throw new BackboneModelError(
          `${what}: the taps depend on graph input(s) ${
            extra.map((i) => `'${i.name}' [${dimsOf(i) ?? "?"}]`).join(", ")
          } besides the image input '${inputName}'; snarm feeds only the image. Re-export a ` +
            `module whose forward takes the image alone (for DINOv2: forward(x) = ` +
            `model.forward_features(x)["x_norm_patchtokens"]; see the README's export recipe), ` +
            `or name the image input with \`inputName\``,
        );
      }
      graph.valueInfo = (graph.valueInfo as ValueInfoLike[]).filter((v) => needed.has(v.name));
    }
  } else {
    graph.output = [...graph.output, ...newOutputs];
  }

  const out = onnx.ModelProto.encode(model).finish() as Uint8Array;
  return { bytes: out, inputName, inputDims: dimsOf(input) ?? [], taps: result, staticSize };
}

function floatOutput(name: string): ValueInfoLike {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({ elemType: ElemType.FLOAT }),
    }),
  });
}

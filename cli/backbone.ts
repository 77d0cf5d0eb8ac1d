/**
 * `deno task backbone --model X.onnx [--image-size S]`: what an ONNX backbone offers snarm — its
 * graph inputs (name, dims) and the candidate tap tensors (outputs of Add/Conv/activation nodes)
 * with their shapes at input size S, found by one run on a zero image, and for each its stride
 * (CNN maps `(1, C, h, w)`) or token count (ViT `(1, T, C)`). Pick taps from this list for
 * `deno task eval --model X.onnx --taps …`.
 * @module
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
// deno-lint-ignore no-import-prefix
import onnxProto from "npm:onnx-proto@8.0.1";
import { openTapSession, readModelBytes } from "../lib/backbone/session.ts";
import { cliMessage } from "../lib/util/errors.ts";

// deno-lint-ignore no-explicit-any
const { onnx } = onnxProto as any;

const HELP = `deno task backbone --model FILE.onnx [options]

Lists an ONNX backbone's graph inputs and its candidate tap tensors with their shapes at one
input size (one run of the model on a zero image).

  --model FILE.onnx     the model (required)
  --image-size S        square input size in px (default 392)
  --input-name NAME     the image input (default: the first graph input)
  --all                 list every node output, not only Add/Conv/activation outputs
  --help
`;

const TAP_OPS = new Set([
  "Add",
  "Conv",
  "QLinearConv",
  "QLinearAdd",
  "Relu",
  "Clip",
  "Sigmoid",
  "Mul",
  "Gelu",
]);

async function main() {
  const { values } = parseArgs({
    options: {
      model: { type: "string" },
      "image-size": { type: "string", default: "392" },
      "input-name": { type: "string" },
      all: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  if (!values.model) throw new Error("--model FILE.onnx is required");
  const size = Number(values["image-size"]);
  if (!Number.isInteger(size) || size < 32 || size > 4096 || size % 8 !== 0) {
    throw new Error(
      `--image-size expects a multiple of 8 in [32, 4096], got "${values["image-size"]}"`,
    );
  }
  const path = resolve(Deno.env.get("INIT_CWD") ?? Deno.cwd(), values.model);
  const bytes = await readModelBytes(path);
  // deno-lint-ignore no-explicit-any
  let model: any;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new Error(`${path}: not a valid ONNX ModelProto (${(e as Error).message})`);
  }
  if (!model.graph?.node?.length) throw new Error(`${path}: ONNX model has no graph nodes`);
  const g = model.graph;
  const inits = new Set(g.initializer.map((t: { name: string }) => t.name));
  const dimsOf = (v: { type?: { tensorType?: { shape?: { dim?: unknown[] } } } }) =>
    (v.type?.tensorType?.shape?.dim ?? []).map((d) => {
      const x = d as { dimValue?: unknown; dimParam?: string };
      return x.dimValue !== undefined && x.dimValue !== null && String(x.dimValue) !== "0"
        ? Number(x.dimValue)
        : x.dimParam || "?";
    });
  const inputs = g.input.filter((i: { name: string }) => !inits.has(i.name));
  console.log(`${path}: opset ${model.opsetImport?.[0]?.version}, ${g.node.length} nodes`);
  console.log(`graph inputs (${inputs.length}):`);
  for (const i of inputs) console.log(`  ${i.name}  [${dimsOf(i).join(", ")}]`);
  if (inputs.length > 1) {
    console.log(
      `  note: snarm feeds one image input; taps that depend on the others fail with a clear ` +
        `error (re-export with the image as the only input, or pass --input-name)`,
    );
  }
  // Integer tensors (shape arithmetic: Shape → Gather/Mul/Concat …) are not features.
  const FLOATS = new Set([1, 10, 11, 16]);
  const intTensors = new Set<string>(
    g.initializer.filter((t: { dataType: number }) => !FLOATS.has(t.dataType))
      .map((t: { name: string }) => t.name),
  );
  for (const n of g.node) {
    const constInt = n.opType === "Constant" &&
      n.attribute?.some((a: { t?: { dataType: number } }) => a.t && !FLOATS.has(a.t.dataType));
    const ins = (n.input as string[]).filter((x) => x);
    const fromInts = ins.length > 0 && ins.every((x) => intTensors.has(x) || inits.has(x)) &&
      ins.some((x) => intTensors.has(x));
    if (n.opType === "Shape" || constInt || fromInts) {
      for (const o of n.output) if (o) intTensors.add(o);
    }
  }
  const candidates: string[] = [];
  for (const n of g.node) {
    if (!values.all && !TAP_OPS.has(n.opType)) continue;
    for (const o of n.output) if (o && !intTensors.has(o)) candidates.push(o);
  }
  const session = await openTapSession(bytes, candidates, {
    inputSize: size,
    inputName: values["input-name"],
    prune: false,
    what: path,
  });
  const maps = await session.run(new Float32Array(3 * size * size), [1, 3, size, size]);
  console.log(`candidate taps at ${size}×${size} (${maps.length}; name, shape, stride or tokens):`);
  for (const m of maps) {
    let note = "";
    if (m.dims.length === 4 && m.dims[2] > 0 && m.dims[2] <= size) {
      note = `stride ${+(size / m.dims[2]).toFixed(2)}`;
    } else if (m.dims.length === 3) note = `${m.dims[1]} tokens × ${m.dims[2]}`;
    console.log(`  ${m.name}  [${m.dims.join(", ")}]  ${note}`);
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(
      `snarm backbone: error: ${
        cliMessage(e, { inputSize: "--image-size" }, ["model", "input-name"])
      }`,
    );
    Deno.exit(1);
  }
}

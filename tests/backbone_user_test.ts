/**
 * A researcher's own backbone (issue #12 item 1), with the `dinov2_tiny` fixture (a DINOv2-
 * architecture export, static 392² input) and the embedded MobileNetV2: a static ViT export asked
 * for another size fails clearly; a graph whose taps need a second input names it and the fix; the
 * grid follows the input size; `deno task backbone` lists inputs and candidate taps with shapes;
 * `deno task eval --taps … --input-name …` runs a model with the taps given on the command line.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
// deno-lint-ignore no-import-prefix
import onnxProto from "npm:onnx-proto@8.0.1";
import { loadBackbone } from "../lib/backbone/mod.ts";
import { runDeno } from "./_run.ts";

// deno-lint-ignore no-explicit-any
const { onnx } = onnxProto as any;
const DINO = new URL("../../shared/fixtures/dinov2_tiny/model.onnx", import.meta.url).pathname;
const MNV2 = new URL("../data/models/mobilenetv2-12-int8.onnx", import.meta.url).pathname;
const HAZEL = new URL("../data/hazelnut_toy/hazelnut", import.meta.url).pathname;

const task = runDeno;

Deno.test("backbone: a static ViT export run at another size fails naming both sizes and the fix", async () => {
  const bb = await loadBackbone("dinov2-vitb14-reg4", { modelPath: DINO, inputSize: 224 });
  try {
    await assert.rejects(
      bb.embed(new Float32Array(3 * 224 * 224), [1, 3, 224, 224]),
      /static 392×392 input 'input' and fails at 224×224: a ViT export bakes .* Run at `inputSize` 392, or re-export at 224²/,
    );
  } finally {
    await bb.release();
  }
});

Deno.test("backbone: taps that depend on a second graph input ('masks') are refused naming it and the fix", async () => {
  const model = onnx.ModelProto.decode(await Deno.readFile(MNV2));
  const g = model.graph;
  const image = g.input[0].name;
  g.input.push(onnx.ValueInfoProto.create({
    name: "masks",
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType: 1,
        shape: onnx.TensorShapeProto.create({
          dim: [onnx.TensorShapeProto.Dimension.create({ dimValue: 1 })],
        }),
      }),
    }),
  }));
  for (const n of g.node) n.input = n.input.map((x: string) => (x === image ? "masked" : x));
  g.node.unshift(onnx.NodeProto.create({
    opType: "Add",
    input: [image, "masks"],
    output: ["masked"],
    name: "add_masks",
  }));
  const bytes = onnx.ModelProto.encode(model).finish() as Uint8Array;
  await assert.rejects(
    loadBackbone("mobilenetv2", { modelPath: bytes }),
    /the taps depend on graph input\(s\) 'masks' \[1\] besides the image input 'input'; snarm feeds only the image\. Re-export .*forward_features\(x\)\["x_norm_patchtokens"\].*`inputName`/,
  );
});

Deno.test("backbone: the working grid follows the input size (size // 8) unless given", async () => {
  const a = await loadBackbone("mobilenetv2", { inputSize: 224 });
  assert.equal(a.describe().grid, 28);
  const b = await loadBackbone("mobilenetv2", { inputSize: 224, grid: 14 });
  assert.equal(b.describe().grid, 14);
  const c = await loadBackbone("mobilenetv2");
  assert.equal(c.describe().grid, 49);
});

Deno.test("deno task backbone lists the graph inputs and the candidate taps with shapes", async () => {
  const cli = new URL("../cli/backbone.ts", import.meta.url).pathname;
  const r = await task([cli, "--model", DINO]);
  const out = r.stdout;
  assert.equal(r.code, 0, r.stderr);
  assert.match(out, /graph inputs \(1\):\n {2}input {2}\[1, 3, 392, 392\]/);
  for (let i = 0; i <= 8; i++) {
    assert.match(
      out,
      new RegExp(`/blocks\\.${i}/Add_1_output_0 {2}\\[1, 789, 96\\] {2}789 tokens × 96`),
    );
  }
  const m = await task([cli, "--model", MNV2, "--image-size", "224"]);
  assert.equal(m.code, 0, m.stderr);
  assert.match(m.stdout, /365_quantized {2}\[1, 32, 28, 28\] {2}stride 8/);
});

Deno.test("eval --taps/--input-name: a DINOv2 export with taps from the command line", async () => {
  const root = await Deno.makeTempDir({ prefix: "snarm_taps_" });
  const cat = join(root, "hazelnut");
  const copy = async (rel: string) => {
    await Deno.mkdir(join(cat, rel, ".."), { recursive: true });
    await Deno.copyFile(join(HAZEL, rel), join(cat, rel));
  };
  for (const f of ["00", "01", "02"]) await copy(`train/good/${f}.jpg`);
  for (const f of ["04"]) await copy(`test/good/${f}.jpg`);
  for (const f of ["00"]) {
    await copy(`test/colour/${f}.jpg`);
    await copy(`ground_truth/colour/${f}_mask.png`);
  }
  const cli = new URL("../cli/eval.ts", import.meta.url).pathname;
  const taps = "/blocks.1/Add_1_output_0,/blocks.2/Add_1_output_0;/blocks.8/Add_1_output_0";
  const r = await task([
    cli,
    "--data",
    root,
    "--out",
    join(root, "out"),
    "--method",
    "bank",
    "--backbone",
    "dinov2-vitb14-reg4",
    "--model",
    DINO,
    "--taps",
    taps,
    "--input-name",
    "input",
    "--bank-size",
    "500",
    "--no-png",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const json = JSON.parse(await Deno.readTextFile(join(root, "out", "results.json")));
  assert.deepEqual(json.config.taps, taps.split(";").map((g) => g.split(",")));
  assert.equal(json.config.grid, 49);
  assert.equal(typeof json.categories.hazelnut.pixel_auroc, "number");
  const bad = await task([cli, "--data", root, "--out", join(root, "o2"), "--taps", "a;;b"]);
  assert.equal(bad.code, 1);
  assert.match(
    bad.stderr,
    /--taps expects groups of tensor names like "A,B;C,D", got "a;;b"/,
  );
  await Deno.remove(root, { recursive: true });
});

/**
 * Tests of lib/backbone: recipe parity with the official SNARM residual fixture, a ViT-shaped ONNX
 * graph built here with onnx-proto, the int8 MobileNetV2 with DequantizeLinear taps at 392², its
 * wide (expanded-activation) preset, and bad input.
 */
import assert from "node:assert/strict";
// deno-lint-ignore no-import-prefix
import onnxProto from "npm:onnx-proto@8.0.1";
// deno-lint-ignore no-import-prefix
import jpeg from "npm:jpeg-js@0.4.4";
import { readSafeTensors, requireTensor } from "../lib/io/safetensors.ts";
import {
  adaptiveAvgPool1d,
  type ChannelsFirstMap,
  DINOV2_VITB14_REG4,
  loadBackbone,
  MOBILENETV2,
  MOBILENETV2_WIDE,
  openTapSession,
  resizeMapsBilinear,
  snarmFeatures,
  vitTokensToGrid,
} from "../lib/backbone/mod.ts";

// deno-lint-ignore no-explicit-any
const { onnx } = onnxProto as any;

const SHARED = new URL("../../shared/", import.meta.url);
const FIXTURE = new URL("fixtures/snarm_official/residual/io.safetensors", SHARED);
const FLOAT_MODEL = new URL("models/mobilenetv2-12-w8f32-feats.onnx", SHARED);
const HAZELNUT = new URL("data/hazelnut_toy/hazelnut/test/good/04.jpg", SHARED);
/** onnxruntime-web keeps its wasm instance alive between tests. */
const ortTest = { sanitizeResources: false, sanitizeOps: false };

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "length mismatch");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// ---------------------------------------------------------------------------------------------
// (a) recipe vs the official fixture

Deno.test("recipe: torch adaptive_avg_pool1d windows and bilinear align_corners=False", () => {
  // L=5 → 3: windows [0,2), [1,4), [3,5).
  const out = [0, 0, 0];
  adaptiveAvgPool1d([1, 2, 3, 4, 5], 0, 5, out, 0, 3);
  assert.deepEqual(out, [1.5, 3, 4.5]);
  // Up-sampling 3 → 4: windows [0,1), [0,2), [1,3), [2,3).
  const up = [0, 0, 0, 0];
  adaptiveAvgPool1d([2, 4, 8], 0, 3, up, 0, 4);
  assert.deepEqual(up, [2, 3, 6, 8]);
  // torch.nn.functional.interpolate([[0, 1]], size=4, bilinear, align_corners=False) = [0, .25, .75, 1]
  const r = resizeMapsBilinear({ data: new Float32Array([0, 1]), b: 1, c: 1, h: 1, w: 2 }, 1, 4);
  assert.deepEqual(Array.from(r.data), [0, 0.25, 0.75, 1]);
});

Deno.test("recipe: official residual fixture embed_block_tokens → embed_features within 1e-5", async () => {
  const st = await readSafeTensors(FIXTURE);
  const tok = requireTensor(st, "embed_block_tokens", "F32", [8, 1, 21, 768], "residual fixture");
  const want = requireTensor(st, "embed_features", "F32", [49, 512], "residual fixture");
  const per = 21 * 768;
  const layer = (l: number): ChannelsFirstMap =>
    vitTokensToGrid(
      (tok.data as Float32Array).subarray(l * per, (l + 1) * per),
      1,
      21,
      768,
      4,
    );
  const groups = [[0, 1, 2, 3].map(layer), [4, 5, 6, 7].map(layer)];
  assert.equal(groups[0][0].h, 4);
  const got = snarmFeatures(groups, { gridH: 7, gridW: 7, pretrainDim: 1024, targetDim: 512 });
  assert.deepEqual([got.n, got.h, got.w, got.c], [1, 7, 7, 512]);
  const err = maxAbsDiff(got.data, want.data as Float32Array);
  console.log(`  max abs err vs official embed_features: ${err.toExponential(2)}`);
  assert.ok(err < 1e-5, `max abs err ${err}`);
});

// ---------------------------------------------------------------------------------------------
// (b) a small ViT-shaped ONNX graph built here

const VIT = { C: 12, P: 14, inFixed: 28, S: 56, R: 4, blocks: 10 };

function seeded(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  };
}

/** Parameters of the toy ViT (also used by the TS reference). */
function vitParams() {
  const rnd = seeded(7);
  const { C, P, R, blocks } = VIT;
  const convW = Float32Array.from({ length: C * 3 * P * P }, () => rnd() * 0.1);
  const convB = Float32Array.from({ length: C }, () => rnd());
  const prefix = Float32Array.from({ length: (1 + R) * C }, () => rnd() * 2);
  const mats = Array.from(
    { length: blocks },
    () => Float32Array.from({ length: C * C }, () => rnd()),
  );
  const biases = Array.from(
    { length: blocks },
    () => Float32Array.from({ length: C }, () => rnd()),
  );
  return { convW, convB, prefix, mats, biases };
}

function floatInit(name: string, dims: number[], data: Float32Array) {
  return onnx.TensorProto.create({
    name,
    dims,
    dataType: 1,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  });
}

/**
 * pixels (B,3,28,28 fixed) → Conv 14×14/14 → Reshape (B,C,T) → Transpose (B,T,C) → Concat with a
 * constant CLS + 4 registers prefix (broadcast via ReduceMean·0 + const) → blocks
 * x ← x + Tanh(x·M_i + c_i), outputs named `/blocks.{i}/Add_1_output_0` (DINOv2 export naming);
 * graph outputs: blocks.8 and blocks.9.
 */
function buildToyVit(): Uint8Array {
  const p = vitParams();
  const { C, P, R, blocks, inFixed } = VIT;
  const init = [
    floatInit("conv_w", [C, 3, P, P], p.convW),
    floatInit("conv_b", [C], p.convB),
    floatInit("prefix", [1, 1 + R, C], p.prefix),
    floatInit("zero", [], new Float32Array([0])),
    onnx.TensorProto.create({
      name: "shape_bct",
      dims: [3],
      dataType: 7,
      rawData: new Uint8Array(new BigInt64Array([0n, BigInt(C), -1n]).buffer),
    }),
  ];
  const node = (opType: string, input: string[], output: string[], attribute: unknown[] = []) =>
    onnx.NodeProto.create({ opType, input, output, attribute, name: output[0] + "_node" });
  const ints = (name: string, v: number[]) =>
    onnx.AttributeProto.create({ name, ints: v, type: onnx.AttributeProto.AttributeType.INTS });
  const int = (name: string, v: number) =>
    onnx.AttributeProto.create({ name, i: v, type: onnx.AttributeProto.AttributeType.INT });
  const nodes = [
    node("Conv", ["pixels", "conv_w", "conv_b"], ["patch_map"], [
      ints("kernel_shape", [P, P]),
      ints("strides", [P, P]),
    ]),
    node("Reshape", ["patch_map", "shape_bct"], ["patch_bct"]),
    node("Transpose", ["patch_bct"], ["patch_tokens"], [ints("perm", [0, 2, 1])]),
    node("ReduceMean", ["patch_tokens"], ["tok_mean"], [ints("axes", [1, 2]), int("keepdims", 1)]),
    node("Mul", ["tok_mean", "zero"], ["tok_zero"]),
    node("Add", ["tok_zero", "prefix"], ["prefix_b"]),
    node("Concat", ["prefix_b", "patch_tokens"], ["x0"], [int("axis", 1)]),
  ];
  let x = "x0";
  for (let i = 0; i < blocks; i++) {
    init.push(floatInit(`m${i}`, [C, C], p.mats[i]), floatInit(`c${i}`, [C], p.biases[i]));
    nodes.push(
      node("MatMul", [x, `m${i}`], [`/blocks.${i}/mm`]),
      node("Add", [`/blocks.${i}/mm`, `c${i}`], [`/blocks.${i}/Add_output_0`]),
      node("Tanh", [`/blocks.${i}/Add_output_0`], [`/blocks.${i}/t`]),
      node("Add", [x, `/blocks.${i}/t`], [`/blocks.${i}/Add_1_output_0`]),
    );
    x = `/blocks.${i}/Add_1_output_0`;
  }
  const tensorType = (dims: (number | string)[]) =>
    onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType: 1,
        shape: onnx.TensorShapeProto.create({
          dim: dims.map((d) =>
            onnx.TensorShapeProto.Dimension.create(
              typeof d === "number" ? { dimValue: d } : { dimParam: d },
            )
          ),
        }),
      }),
    });
  const T = 1 + R + (inFixed / P) ** 2;
  const graph = onnx.GraphProto.create({
    name: "toy_vit",
    node: nodes,
    initializer: init,
    input: [onnx.ValueInfoProto.create({
      name: "pixels",
      type: tensorType(["batch", 3, inFixed, inFixed]),
    })],
    output: [8, 9].map((i) =>
      onnx.ValueInfoProto.create({
        name: `/blocks.${i}/Add_1_output_0`,
        type: tensorType(["batch", T, C]),
      })
    ),
    valueInfo: [onnx.ValueInfoProto.create({
      name: "patch_map",
      type: tensorType(["batch", C, inFixed / P, inFixed / P]),
    })],
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [onnx.OperatorSetIdProto.create({ domain: "", version: 17 })],
    graph,
    producerName: "snarm backbone_test",
  });
  return onnx.ModelProto.encode(model).finish();
}

/** TS forward of the toy ViT: tokens after each block, `[block][b][t][c]` flattened per block. */
function toyVitTokens(x: Float32Array, B: number): Float64Array[] {
  const p = vitParams();
  const { C, P, R, S, blocks } = VIT;
  const g = S / P, T = 1 + R + g * g;
  let cur = new Float64Array(B * T * C);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < 1 + R; t++) {
      for (let c = 0; c < C; c++) cur[(b * T + t) * C + c] = p.prefix[t * C + c];
    }
    for (let gy = 0; gy < g; gy++) {
      for (let gx = 0; gx < g; gx++) {
        for (let c = 0; c < C; c++) {
          let acc = p.convB[c];
          for (let k = 0; k < 3; k++) {
            for (let u = 0; u < P; u++) {
              for (let v = 0; v < P; v++) {
                acc += p.convW[((c * 3 + k) * P + u) * P + v] *
                  x[((b * 3 + k) * S + gy * P + u) * S + gx * P + v];
              }
            }
          }
          cur[(b * T + 1 + R + gy * g + gx) * C + c] = acc;
        }
      }
    }
  }
  const outs: Float64Array[] = [];
  for (let i = 0; i < blocks; i++) {
    const nxt = new Float64Array(cur.length);
    for (let r = 0; r < B * T; r++) {
      for (let j = 0; j < C; j++) {
        let acc = p.biases[i][j];
        for (let k = 0; k < C; k++) acc += cur[r * C + k] * p.mats[i][k * C + j];
        nxt[r * C + j] = cur[r * C + j] + Math.tanh(acc);
      }
    }
    outs.push(nxt);
    cur = nxt;
  }
  return outs;
}

/**
 * Naive reference of the recipe on token tensors, written independently of lib/backbone:
 * per patch token (skipping 1 + R) mean over the group's blocks, bilinear (align_corners=False)
 * to grid×grid, pool channels C → pre per group, concat, pool → target.
 */
function naiveRecipe(
  tokens: Float64Array[],
  groups: number[][],
  B: number,
  grid: number,
  pre: number,
  target: number,
): Float64Array {
  const { C, R, S, P } = VIT;
  const g = S / P, T = 1 + R + g * g;
  const pool = (v: number[], out: number) =>
    Array.from({ length: out }, (_, i) => {
      const s = Math.floor((i * v.length) / out), e = Math.ceil(((i + 1) * v.length) / out);
      return v.slice(s, e).reduce((a, b) => a + b, 0) / (e - s);
    });
  const at = (grp: number[], b: number, y: number, x: number, c: number) =>
    grp.reduce((a, l) => a + tokens[l][(b * T + 1 + R + y * g + x) * C + c], 0) / grp.length;
  const src = (o: number) => {
    const s = Math.max((o + 0.5) * (g / grid) - 0.5, 0);
    const i0 = Math.min(Math.floor(s), g - 1);
    return { i0, i1: Math.min(i0 + 1, g - 1), l: s - i0 };
  };
  const out = new Float64Array(B * grid * grid * target);
  for (let b = 0; b < B; b++) {
    for (let y = 0; y < grid; y++) {
      for (let x = 0; x < grid; x++) {
        const sy = src(y), sx = src(x);
        const cat: number[] = [];
        for (const grp of groups) {
          const v: number[] = [];
          for (let c = 0; c < C; c++) {
            v.push(
              (1 - sy.l) *
                  ((1 - sx.l) * at(grp, b, sy.i0, sx.i0, c) + sx.l * at(grp, b, sy.i0, sx.i1, c)) +
                sy.l *
                  ((1 - sx.l) * at(grp, b, sy.i1, sx.i0, c) + sx.l * at(grp, b, sy.i1, sx.i1, c)),
            );
          }
          cat.push(...pool(v, pre));
        }
        out.set(pool(cat, target), ((b * grid + y) * grid + x) * target);
      }
    }
  }
  return out;
}

Deno.test({
  name: "vit: toy ONNX ViT (built with onnx-proto) taps, token handling and recipe vs TS",
  ...ortTest,
  async fn() {
    const bytes = buildToyVit();
    const { S, C } = VIT;
    const B = 2;
    const rnd = seeded(99);
    const x = Float32Array.from({ length: B * 3 * S * S }, () => rnd() * 2);
    const want = toyVitTokens(x, B);
    const opts = { modelPath: bytes, inputSize: S, grid: 7, pretrainDim: 16, targetDim: 10 };
    // Default DINOv2 tap names /blocks.{1..8}/Add_1_output_0 (blocks.8 is already a graph output);
    // the fixed 28×28 input dims are freed for 56×56.
    const bb = await loadBackbone(DINOV2_VITB14_REG4, { ...opts, batchSize: 1 });
    try {
      const maps = await bb.tapMaps(x);
      assert.equal(maps.length, 8);
      const T = 1 + 4 + (S / 14) ** 2;
      for (let l = 0; l < 8; l++) {
        assert.equal(maps[l].name, `/blocks.${l + 1}/Add_1_output_0`);
        assert.deepEqual(maps[l].dims, [B, T, C]);
        const err = maxAbsDiff(maps[l].data, want[l + 1]);
        assert.ok(err < 1e-4, `block ${l + 1} tokens err ${err}`);
      }
      // Token handling: drop CLS + 4 registers, row-major 4×4 grid, channels-first.
      const grid0 = vitTokensToGrid(maps[0].data, B, T, C, 4);
      assert.deepEqual([grid0.b, grid0.c, grid0.h, grid0.w], [B, C, 4, 4]);
      // (b=1, c=3, y=2, x=1) ← token 1 + 4 + 2·4 + 1 of image 1.
      assert.equal(grid0.data[((1 * C + 3) * 4 + 2) * 4 + 1], maps[0].data[(1 * T + 14) * C + 3]);

      const feats = await bb.embed(x, [B, 3, S, S]);
      assert.deepEqual([feats.n, feats.h, feats.w, feats.c], [B, 7, 7, 10]);
      const ref = naiveRecipe(want, [[1, 2, 3, 4], [5, 6, 7, 8]], B, 7, 16, 10);
      const err = maxAbsDiff(feats.data, ref);
      assert.ok(err < 1e-4, `features vs naive TS recipe err ${err}`);

      const d = bb.describe();
      assert.equal(d.backbone, "dinov2-vitb14-reg4");
      assert.equal(d.featureDim, 10);
      assert.equal(d.taps.flat().length, 8);
      assert.match(d.modelSha256, /^[0-9a-f]{64}$/);

      // Batch size 2 in one run gives the same features.
      const bb2 = await loadBackbone(DINOV2_VITB14_REG4, { ...opts, batchSize: 2 });
      try {
        const f2 = await bb2.embed(x);
        assert.ok(maxAbsDiff(f2.data, feats.data) < 1e-6);
      } finally {
        await bb2.release();
      }
    } finally {
      await bb.release();
    }
  },
});

const hasAdapter = !!(await navigator.gpu?.requestAdapter().catch(() => null));

Deno.test({
  name: "vit: webgpu EP (lazy npm:onnxruntime-web/webgpu) gives the wasm EP's toy-ViT features",
  ignore: !hasAdapter,
  ...ortTest,
  async fn() {
    const bytes = buildToyVit();
    const { S } = VIT;
    const rnd = seeded(5);
    const x = Float32Array.from({ length: 3 * S * S }, () => rnd() * 2);
    const opts = { modelPath: bytes, inputSize: S, grid: 7, pretrainDim: 16, targetDim: 10 };
    const cpu = await loadBackbone(DINOV2_VITB14_REG4, opts);
    const gpu = await loadBackbone(DINOV2_VITB14_REG4, { ...opts, executionProvider: "webgpu" });
    try {
      assert.equal(gpu.describe().executionProvider, "webgpu");
      const a = await cpu.embed(x), b = await gpu.embed(x);
      const err = maxAbsDiff(a.data, b.data);
      assert.ok(err < 1e-4, `webgpu vs wasm features err ${err}`);
    } finally {
      await cpu.release();
      await gpu.release();
    }
  },
});

// ---------------------------------------------------------------------------------------------
// (c) int8 MobileNetV2 at 392² with DequantizeLinear taps vs the float derivative

/** A real photo, bilinearly resized to S², ImageNet-normalised, (1, 3, S, S). */
function hazelnutAt(S: number): Float32Array {
  const im = jpeg.decode(Deno.readFileSync(HAZELNUT), { useTArray: true });
  const mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225];
  const out = new Float32Array(3 * S * S);
  for (let y = 0; y < S; y++) {
    const sy = Math.max((y + 0.5) * (im.height / S) - 0.5, 0);
    const y0 = Math.min(Math.floor(sy), im.height - 1), y1 = Math.min(y0 + 1, im.height - 1);
    const ly = sy - y0;
    for (let x = 0; x < S; x++) {
      const sx = Math.max((x + 0.5) * (im.width / S) - 0.5, 0);
      const x0 = Math.min(Math.floor(sx), im.width - 1), x1 = Math.min(x0 + 1, im.width - 1);
      const lx = sx - x0;
      for (let k = 0; k < 3; k++) {
        const px = (yy: number, xx: number) => im.data[(yy * im.width + xx) * 4 + k] / 255;
        const v = (1 - ly) * ((1 - lx) * px(y0, x0) + lx * px(y0, x1)) +
          ly * ((1 - lx) * px(y1, x0) + lx * px(y1, x1));
        out[(k * S + y) * S + x] = (v - mean[k]) / std[k];
      }
    }
  }
  return out;
}

/** {@link hazelnutAt} at the presets' 392². */
function hazelnut392(): Float32Array {
  return hazelnutAt(392);
}

function pearson(a: Float32Array, b: Float32Array): number {
  let ma = 0, mb = 0;
  for (let i = 0; i < a.length; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= a.length;
  mb /= b.length;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < a.length; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

function relErr(a: Float32Array, ref: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - ref[i]) ** 2;
    den += ref[i] ** 2;
  }
  return Math.sqrt(num / den);
}

Deno.test({
  name: "mobilenetv2: int8 model at 392² → 49×49 grids; dequantised taps ≈ float derivative",
  ...ortTest,
  async fn() {
    const x = hazelnut392();
    const bb = await loadBackbone("mobilenetv2");
    try {
      const d = bb.describe();
      assert.equal(d.inputSize, 392);
      assert.equal(
        d.modelSha256,
        "83530ad811bc31d2b60a5599a21265a5057608c9b044b4ee758cc22f2309f54f",
      );
      const feats = await bb.embed(x);
      assert.deepEqual([feats.n, feats.h, feats.w, feats.c], [1, 49, 49, MOBILENETV2.targetDim]);
      assert.ok(feats.data.every(Number.isFinite), "non-finite features");
      let sq = 0;
      for (const v of feats.data) sq += v * v;
      assert.ok(sq > 0, "all-zero features");

      const q = await bb.tapMaps(x);
      assert.deepEqual(q.map((m) => m.dims), [[1, 32, 49, 49], [1, 64, 25, 25], [1, 96, 25, 25]]);
      const f = await openTapSession(FLOAT_MODEL, ["365", "400", "426"], { inputSize: 392 });
      try {
        const fl = await f.run(x, [1, 3, 392, 392]);
        for (let i = 0; i < 3; i++) {
          assert.deepEqual(fl[i].dims, q[i].dims);
          const r = pearson(q[i].data, fl[i].data), e = relErr(q[i].data, fl[i].data);
          console.log(
            `  ${q[i].name} vs float ${fl[i].name}: pearson ${r.toFixed(4)}, rel L2 err ${
              e.toFixed(4)
            }`,
          );
          // int8 activations vs float activations (same int8 weights): observed r ≈ 0.91–0.93,
          // rel err ≈ 0.37–0.40 at 392² (≈ 0.94–0.97 / 0.25–0.32 at 224², where no dims are freed).
          assert.ok(r > 0.85, `${q[i].name}: correlation ${r} with the float model`);
          assert.ok(e < 0.5, `${q[i].name}: relative error ${e} vs the float model`);
        }
      } finally {
        await f.release();
      }
      // The inserted DequantizeLinear reproduces the model's own dequantisation of 627_quantized.
      const own = await openTapSession(MOBILENETV2.modelPath!, ["627_quantized", "627"], {
        inputSize: 392,
      });
      try {
        const [mine, theirs] = await own.run(x, [1, 3, 392, 392]);
        assert.deepEqual(mine.dims, [1, 1280, 13, 13]);
        assert.equal(maxAbsDiff(mine.data, theirs.data), 0);
      } finally {
        await own.release();
      }
    } finally {
      await bb.release();
    }
  },
});

Deno.test({
  name:
    "mobilenetv2-wide: expanded-activation taps (192 ch s8, 576 ch s16) → (1, 16, 16, 512) at 128²",
  ...ortTest,
  async fn() {
    const S = 128, grid = 16;
    const x = hazelnutAt(S);
    const bb = await loadBackbone("mobilenetv2-wide", { inputSize: S, grid });
    try {
      const d = bb.describe();
      assert.equal(d.backbone, "mobilenetv2-wide");
      assert.deepEqual(d.taps, MOBILENETV2_WIDE.taps);
      assert.deepEqual(d.taps, [
        ["510_quantized", "519_quantized", "528_quantized"],
        ["573_quantized", "582_quantized", "591_quantized"],
      ]);
      assert.equal(d.featureDim, 512);
      assert.equal(d.model, MOBILENETV2.modelPath, "same embedded model as mobilenetv2");
      assert.equal(
        d.modelSha256,
        "83530ad811bc31d2b60a5599a21265a5057608c9b044b4ee758cc22f2309f54f",
      );
      const feats = await bb.embed(x);
      assert.deepEqual([feats.n, feats.h, feats.w, feats.c], [1, grid, grid, 512]);
      assert.ok(feats.data.every(Number.isFinite), "non-finite features");
      let sq = 0;
      for (const v of feats.data) sq += v * v;
      assert.ok(sq > 0, "all-zero features");

      // Taps: stride 8 (128/8 = 16) and stride 16 (8); ReLU6 outputs are non-negative.
      const maps = await bb.tapMaps(x);
      assert.deepEqual(maps.map((m) => m.dims), [
        ...[0, 1, 2].map(() => [1, 192, 16, 16]),
        ...[0, 1, 2].map(() => [1, 576, 8, 8]),
      ]);
      for (const m of maps) assert.ok(m.data.every((v) => v >= 0), `${m.name} has negatives`);
      // embed = the recipe on those taps (plain group means: equal widths within each group).
      const cf = (i: number): ChannelsFirstMap => {
        const [b, c, h, w] = maps[i].dims;
        return { data: maps[i].data, b, c, h, w };
      };
      const want = snarmFeatures([[0, 1, 2].map(cf), [3, 4, 5].map(cf)], {
        gridH: grid,
        gridW: grid,
        pretrainDim: 512,
        targetDim: 512,
      });
      assert.equal(maxAbsDiff(feats.data, want.data), 0);
    } finally {
      await bb.release();
    }
    // targetDim is overridable as for the other presets.
    const bb256 = await loadBackbone("mobilenetv2-wide", { inputSize: S, grid, targetDim: 256 });
    try {
      const f = await bb256.embed(x);
      assert.deepEqual([f.n, f.h, f.w, f.c], [1, grid, grid, 256]);
      assert.equal(bb256.describe().featureDim, 256);
    } finally {
      await bb256.release();
    }
    await assert.rejects(
      loadBackbone("mobilenetv2-wider"),
      /unknown backbone preset 'mobilenetv2-wider'; known: .*\bmobilenetv2-wide\b/,
    );
  },
});

// ---------------------------------------------------------------------------------------------
// (d) bad input

Deno.test({
  name: "bad input: missing model file, unknown tap, wrong channel count, missing modelPath",
  ...ortTest,
  async fn() {
    await assert.rejects(
      loadBackbone("mobilenetv2", { modelPath: "/nonexistent/dir/model.onnx" }),
      /backbone model file not found: \/nonexistent\/dir\/model\.onnx/,
    );
    await assert.rejects(
      loadBackbone("mobilenetv2", { taps: [["365_quantized"], ["no_such_tensor_42"]] }),
      /tap tensor 'no_such_tensor_42' does not exist/,
    );
    await assert.rejects(loadBackbone("dinov2-vitb14-reg4"), /pass opts\.modelPath/);
    await assert.rejects(loadBackbone("resnet9000"), /unknown backbone preset 'resnet9000'/);
    const bb = await loadBackbone("mobilenetv2");
    try {
      await assert.rejects(
        bb.embed(new Float32Array(392 * 392), [1, 1, 392, 392]),
        /input must have 3 channels \(RGB\), got 1/,
      );
      await assert.rejects(bb.embed(new Float32Array(5)), /not a multiple of 3·392·392/);
      await assert.rejects(
        bb.embed(new Float32Array(3 * 224 * 224), [1, 3, 224, 224]),
        /must be 392×392 \(inputSize\), got 224×224/,
      );
    } finally {
      await bb.release();
    }
  },
});

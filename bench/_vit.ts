/**
 * A DINOv2 ViT-B/14-with-registers ONNX graph at the official SNARM size, with **random weights**,
 * for timing the backbone engines on the official model's work (bench/backbone_bench.ts): the real
 * weights (346 MB) cannot be downloaded here, and the shared `dinov2_tiny` fixture (width 96, 3
 * heads) is too small to say how the engines compare on a ViT-B.
 *
 * The graph has the architecture's shapes and op kinds (snarm-method.md §1; facebookresearch/dinov2
 * `vit_base`, 4 registers): 392² input, 14×14 patch-embedding conv → 28×28 = 784 patch tokens,
 * CLS + position embedding + 4 register tokens (789 tokens of 768), then pre-norm blocks x ←
 * x + γ₁·Attn(LN(x)), x ← x + γ₂·MLP(LN(x)) with 12 heads of 64, softmax attention, GELU (erf)
 * MLP 768 → 3072 → 768 and LayerScale. Only blocks 0–8 are built: SNARM taps blocks 1–8, and the
 * backbone loader prunes the later ones of a full model anyway. Each block output is named as the
 * official export names it (`/blocks.{i}/Add_1_output_0`), so `loadBackbone("dinov2-vitb14-reg4",
 * { modelPath })` takes it as it takes a real export. The position embedding is used at 28×28
 * directly (the real model resizes its 37×37 table first: a few thousand values, negligible).
 * The features mean nothing: use it for timing only.
 * @module
 */
import { GraphBuilder } from "../lib/util/onnx_build.ts";

const D = 768, HEADS = 12, HD = 64, MLP = 3072, BLOCKS = 9, SIDE = 392, P = 14, REG = 4;

/**
 * ModelProto bytes of the random-weight ViT-B/14 reg4 (input `input` `(1, 3, 392, 392)`; outputs
 * the block outputs 1–8). About 260 MB (64 M float32 weights, seeded).
 */
export function vitB14Model(seed = 1): Uint8Array {
  let s = seed >>> 0;
  /** Uniform in [−a, a) (an LCG: the values only need to be finite and small). */
  const rand = (n: number, a = 0.02) => {
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      x[i] = (s / 4294967296 - 0.5) * 2 * a;
    }
    return x;
  };
  const ones = (n: number) => new Float32Array(n).fill(1);
  const g = new GraphBuilder("vitb14_reg4_random");
  const f32c = (x: Float32Array, dims: number[]) => g.const(x, dims);
  const x = g.input("input", "float", [1, 3, SIDE, SIDE]);
  const grid = SIDE / P, T = grid * grid;
  const patches = g.op1("Conv", [x, f32c(rand(D * 3 * P * P), [D, 3, P, P]), f32c(rand(D), [D])], {
    kernel_shape: { ints: [P, P] },
    strides: { ints: [P, P] },
  }); // (1, D, 28, 28)
  const tokens = g.op1("Transpose", [g.op1("Reshape", [patches, g.ints([1, D, T])])], {
    perm: { ints: [0, 2, 1] },
  }); // (1, T, D)
  const withCls = g.op1("Add", [
    g.op1("Concat", [f32c(rand(D), [1, 1, D]), tokens], { axis: { i: 1 } }),
    f32c(rand((T + 1) * D), [1, T + 1, D]),
  ]);
  const cls = g.op1("Slice", [withCls, g.ints([0]), g.ints([1]), g.ints([1])]);
  const rest = g.op1("Slice", [withCls, g.ints([1]), g.ints([T + 1]), g.ints([1])]);
  let h = g.op1("Concat", [cls, f32c(rand(REG * D), [1, REG, D]), rest], { axis: { i: 1 } });
  const N = T + 1 + REG;
  const layerNorm = (v: string) =>
    g.op1("LayerNormalization", [v, f32c(ones(D), [D]), f32c(rand(D), [D])], {
      axis: { i: -1 },
      epsilon: { f: 1e-6 },
    });
  const linear = (v: string, cin: number, cout: number) =>
    g.op1("Add", [
      g.op1("MatMul", [v, f32c(rand(cin * cout), [cin, cout])]),
      f32c(rand(cout), [cout]),
    ]);
  for (let b = 0; b < BLOCKS; b++) {
    // attention
    const qkv = g.op1("Reshape", [linear(layerNorm(h), D, 3 * D), g.ints([1, N, 3, HEADS, HD])]);
    const qkvT = g.op1("Transpose", [qkv], { perm: { ints: [2, 0, 3, 1, 4] } }); // (3, 1, H, N, HD)
    const pick = (i: number) => g.op1("Gather", [qkvT, g.ints([i], [])], { axis: { i: 0 } });
    const q = g.op1("Mul", [pick(0), f32c(new Float32Array([1 / Math.sqrt(HD)]), [])]);
    const kT = g.op1("Transpose", [pick(1)], { perm: { ints: [0, 1, 3, 2] } });
    const att = g.op1("Softmax", [g.op1("MatMul", [q, kT])], { axis: { i: -1 } });
    const ctx = g.op1("Reshape", [
      g.op1("Transpose", [g.op1("MatMul", [att, pick(2)])], { perm: { ints: [0, 2, 1, 3] } }),
      g.ints([1, N, D]),
    ]);
    h = g.op1("Add", [h, g.op1("Mul", [linear(ctx, D, D), f32c(rand(D, 1), [D])])]);
    // MLP with erf GELU
    const up = linear(layerNorm(h), D, MLP);
    const gelu = g.op1("Mul", [
      g.op1("Mul", [up, f32c(new Float32Array([0.5]), [])]),
      g.op1("Add", [
        g.op1("Erf", [g.op1("Mul", [up, f32c(new Float32Array([Math.SQRT1_2]), [])])]),
        f32c(new Float32Array([1]), []),
      ]),
    ]);
    const out = g.op(
      "Add",
      [h, g.op1("Mul", [linear(gelu, MLP, D), f32c(rand(D, 1), [D])])],
      {},
      [`/blocks.${b}/Add_1_output_0`],
    )[0];
    h = out;
    if (b >= 1) g.output(out, out, "float", [1, N, D]);
  }
  return g.encode();
}

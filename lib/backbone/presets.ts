/**
 * Backbone presets: which model, which tensors to tap (grouped), and the recipe dims
 * (snarm-method.md §1).
 * @module
 */
import { OptionError } from "../util/errors.ts";

/** A backbone configuration for {@link loadBackbone}. */
export interface BackbonePreset {
  /** Preset name, recorded in bank metadata. */
  name: string;
  /** ONNX model path or URL (`file:`/`http(s):`); absent when the user must supply it. */
  modelPath?: string;
  /** Tensor names to tap, arranged in groups; each group is averaged (recipe step 1). */
  taps: string[][];
  /** `"cnn"`: taps are `(B, C, h, w)` maps; `"vit"`: taps are `(B, 1 + R + h·w, C)` tokens. */
  kind: "cnn" | "vit";
  /** Number R of register tokens after CLS (ViT only; 0 for CNNs). */
  registers: number;
  /** Square input size in pixels (H = W). */
  inputSize: number;
  /** Square working grid (patch positions per side) after bilinear resampling. */
  grid: number;
  /** PatchCore MeanMapper width per group. */
  pretrainDim: number;
  /** PatchCore Aggregator width = feature dimension. */
  targetDim: number;
}

/** URL of the embedded default model, `data/models/mobilenetv2-12-int8.onnx`. */
export const MOBILENETV2_INT8_URL: string =
  new URL("../../data/models/mobilenetv2-12-int8.onnx", import.meta.url).href;

/**
 * `mobilenetv2`: the embedded default (ImageNet MobileNetV2, int8 ONNX Model Zoo,
 * data/models/LICENSE-mobilenetv2.md). At 392² input: group A = stride-8 `365_quantized`
 * (features[6], 32 ch, 49×49); group B = mean of stride-16 `400_quantized` (features[10], 64 ch)
 * and `426_quantized` (features[13], 96 ch), 25×25 → bilinear → 49×49 (the CNN generalisation of
 * the group mean: 400 is first channel-pooled 64 → 96). MeanMapper 256, Aggregator 256
 * (128 dims per group). Tap names/strides: /work/shared/models/README.md.
 */
export const MOBILENETV2: BackbonePreset = {
  name: "mobilenetv2",
  modelPath: MOBILENETV2_INT8_URL,
  taps: [["365_quantized"], ["400_quantized", "426_quantized"]],
  kind: "cnn",
  registers: 0,
  inputSize: 392,
  grid: 49,
  pretrainDim: 256,
  targetDim: 256,
};

/**
 * `mobilenetv2-wide`: the same embedded int8 model and preprocessing as {@link MOBILENETV2}, but
 * tapping MobileNetV2's **expanded activations** (the ReLU6 outputs of the 1×1 expansion convs =
 * the inputs of the depthwise 3×3 convs; in this QOperator graph the ReLU6 is fused into the
 * expansion `QLinearConv`, output zero point 0), which are 6× wider than the block outputs —
 * closer to PatchCore's wide layers (WideResNet-50 layer2/layer3: 512 + 1024 ch). At 392² input:
 *
 * - group A, stride 8 (49×49): mean of the three 192-ch expansions of the stride-8 stage,
 *   `510_quantized` (`Conv_21_quant`, torchvision features[5]), `519_quantized` (`Conv_27_quant`,
 *   features[6]) and `528_quantized` (`Conv_33_quant`, features[7]: the expansion of `365_quantized`,
 *   i.e. the input of the stride-2 depthwise that starts the stride-16 stage, still at 49×49);
 * - group B, stride 16 (25×25 → bilinear → 49×49): mean of the three 576-ch expansions of the
 *   96-ch stage, `573_quantized` (`Conv_61_quant`, features[12]), `582_quantized`
 *   (`Conv_67_quant`, features[13]) and `591_quantized` (`Conv_73_quant`, features[14]: the
 *   expansion of `426_quantized`, input of the stride-2 depthwise, still at 25×25).
 *
 * Why these: each group holds taps of one channel count, so the group mean is the plain mean of
 * the official recipe (no channel pooling across widths, unlike {@link MOBILENETV2}'s 64/96 group
 * B); they are the widest maps at each stride (the 144-ch expansion of features[4] sits at
 * stride 4, and the 384-ch ones of features[8..11] are narrower and shallower than the 576-ch
 * ones); and they mirror {@link MOBILENETV2}'s choice of the last 32-ch (stride 8) and last 96-ch
 * (stride 16) stages, like PatchCore's "last two mid-level stages". Three taps per group as in
 * the official 4 + 4 ViT blocks (a multi-depth mean). Note: unlike ViT blocks, different blocks'
 * expansions do not share a channel basis, so the mean superposes (sparse, non-negative ReLU6)
 * features rather than averaging like channels; pass `taps: [["528_quantized"], ["591_quantized"]]`
 * to {@link loadBackbone} for single-tap groups. `591_quantized` makes the session run one 1×1
 * conv past {@link MOBILENETV2}'s last tap `426_quantized`.
 *
 * MeanMapper 512 per group, Aggregator 512 (256 dims per group; the Aggregator windows of 2 never
 * straddle the groups). `targetDim` (and `pretrainDim`) can be overridden as for other presets.
 */
export const MOBILENETV2_WIDE: BackbonePreset = {
  name: "mobilenetv2-wide",
  modelPath: MOBILENETV2_INT8_URL,
  taps: [
    ["510_quantized", "519_quantized", "528_quantized"],
    ["573_quantized", "582_quantized", "591_quantized"],
  ],
  kind: "cnn",
  registers: 0,
  inputSize: 392,
  grid: 49,
  pretrainDim: 512,
  targetDim: 512,
};

/**
 * Default tap names of a DINOv2 ONNX export: the output of block i's second residual `Add`, as
 * named by `torch.onnx.export` (TorchScript exporter) for `blocks.{i}`: `/blocks.{i}/Add_1_output_0`.
 * Pass your own names via `loadBackbone(..., { taps })` when your export names them differently.
 */
export function dinov2BlockTap(i: number): string {
  return `/blocks.${i}/Add_1_output_0`;
}

/**
 * `dinov2-vitb14-reg4`: the official SNARM recipe (snarm-method.md §1). DINOv2 ViT-B/14 with 4
 * registers, user-supplied ONNX (no modelPath here), taps = raw outputs of `blocks.1`..`blocks.8`
 * (0-based, before the final norm), groups [1..4] and [5..8], 392² input → 28×28 patch tokens
 * (+1 CLS +4 registers = 789 tokens of 768) → bilinear 49×49 → MeanMapper 1024 → Aggregator 512.
 */
export const DINOV2_VITB14_REG4: BackbonePreset = {
  name: "dinov2-vitb14-reg4",
  taps: [[1, 2, 3, 4].map(dinov2BlockTap), [5, 6, 7, 8].map(dinov2BlockTap)],
  kind: "vit",
  registers: 4,
  inputSize: 392,
  grid: 49,
  pretrainDim: 1024,
  targetDim: 512,
};

/** All named presets. */
export const PRESETS: Readonly<Record<string, BackbonePreset>> = {
  [MOBILENETV2.name]: MOBILENETV2,
  [MOBILENETV2_WIDE.name]: MOBILENETV2_WIDE,
  [DINOV2_VITB14_REG4.name]: DINOV2_VITB14_REG4,
};

/**
 * Look a preset up by name.
 * @throws Error listing the known names.
 */
export function getPreset(name: string): BackbonePreset {
  const p = PRESETS[name];
  if (!p) {
    throw new Error(`unknown backbone preset '${name}'; known: ${Object.keys(PRESETS).join(", ")}`);
  }
  return structuredClone(p);
}

/**
 * Tap groups from the command-line form `"A,B;C,D"` (";" between groups, "," within) →
 * `[["A", "B"], ["C", "D"]]`; undefined when `spec` is undefined.
 * @throws {Error} naming `--taps` and the value on an empty group.
 */
export function parseTaps(spec: string | undefined): string[][] | undefined {
  if (spec === undefined) return undefined;
  const groups = spec.split(";").map((g) => g.split(",").map((t) => t.trim()).filter(Boolean));
  if (!groups.length || groups.some((g) => !g.length)) {
    throw new OptionError("taps", `expects groups of tensor names like "A,B;C,D", got "${spec}"`);
  }
  return groups;
}

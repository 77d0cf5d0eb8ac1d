/**
 * Backbone presets: which model, which tensors to tap (grouped), and the recipe dims
 * (snarm-method.md §1).
 * @module
 */

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

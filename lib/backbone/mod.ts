/**
 * snarm backbone module: ONNX feature taps (ONNX Runtime: onnxruntime-node's native CPU engine
 * under Deno by default, or onnxruntime-web's wasm/webgpu EP) and SNARM's
 * patch-feature recipe (snarm-method.md §1) producing channels-last `(N, h, w, C)` patch features.
 *
 * Other presets: `"mobilenetv2-wide"` (the same model's expanded activations, 512-d); options
 * `{ engine: "wasm" }` (onnxruntime-web) and `{ modelPath }` (your own ONNX export).
 *
 * @example
 * ```ts
 * import { loadBackbone } from "./mod.ts";
 * const bb = await loadBackbone("mobilenetv2"); // the embedded int8 MobileNetV2
 * const batch = new Float32Array(3 * 392 * 392); // (B, 3, 392, 392), ImageNet-normalised
 * const f = await bb.embed(batch, [1, 3, 392, 392]);
 * // channels-last patch features (1, 49, 49, 256): stride 8, spec §1
 * if (f.n !== 1 || f.h !== 49 || f.w !== 49 || f.c !== 256) throw new Error("feature grid");
 * ```
 * @module
 */

export {
  type Backbone,
  type BackboneDescription,
  loadBackbone,
  type LoadBackboneOptions,
  loadRunBackbone,
  type RunFeatureOptions,
} from "./backbone.ts";
export {
  type BackbonePreset,
  DINOV2_VITB14_REG4,
  dinov2BlockTap,
  getPreset,
  MOBILENETV2,
  MOBILENETV2_INT8_URL,
  MOBILENETV2_WIDE,
  PRESETS,
} from "./presets.ts";
export {
  adaptiveAvgPool1d,
  aggregateGroups,
  type ChannelsFirstMap,
  fuseGroup,
  poolChannels,
  poolEnd,
  poolStart,
  type RecipeDims,
  resizeMapsBilinear,
  snarmFeatures,
  vitTokensToGrid,
} from "./recipe.ts";
export {
  type EngineChoice,
  type EngineName,
  type ExecutionProviderName,
  loadOrt,
  loadOrtNative,
  openTapSession,
  readModelBytes,
  resolveEngine,
  type TapMap,
  TapSession,
  type TapSessionOptions,
} from "./session.ts";
export {
  BackboneModelError,
  ElemType,
  type PreparedModel,
  type PrepareOptions as PrepareTapOptions,
  prepareTapModel,
  type TapOutput,
} from "./onnx_graph.ts";

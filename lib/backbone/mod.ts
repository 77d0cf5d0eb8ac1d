/**
 * snarm backbone module: ONNX feature taps (ONNX Runtime: onnxruntime-node's native CPU engine
 * under Deno by default, or onnxruntime-web's wasm/webgpu EP) and SNARM's
 * patch-feature recipe (snarm-method.md §1) producing channels-last `(N, h, w, C)` patch features.
 *
 * ```ts
 * const bb = await loadBackbone("mobilenetv2");          // embedded int8 MobileNetV2, 392² → 49×49×256
 * const feats = await bb.embed(batch);                   // batch: (B, 3, 392, 392) f32, ImageNet-normalised
 * const wide = await loadBackbone("mobilenetv2-wide");   // same model, expanded activations → 49×49×512
 * const web = await loadBackbone("mobilenetv2", { engine: "wasm" }); // onnxruntime-web
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

/**
 * The SNARM head (spec §5–7): configuration and official-format weights, the self-navigated
 * multi-head Mamba on WebGPU, on ONNX Runtime's native CPU engine (`engine: "native"`, the default
 * on CPU adapters) and as a TypeScript reference, the selective scan kernel, and maps.
 *
 * @example
 * ```ts
 * import { loadHead } from "./mod.ts";
 * const head = await loadHead("weights.safetensors");
 * const r = await head.forward(X, 1, 49, 49); // X: (1, 1024, 49, 49) = [r ‖ f]
 * console.log(r.imageScores[0], r.pixelMap.length); // (1, 392, 392)
 * ```
 * @module
 */
export {
  configFromMetadata,
  configToMetadata,
  type HeadConfig,
  type HeadDims,
  headDims,
  MAMBA_DEFAULTS,
  parseHeadConfig,
} from "./config.ts";
export {
  type BlockWeights,
  type BranchWeights,
  type DecoderWeights,
  type HeadWeights,
  headWeightsFromSafeTensors,
  headWeightsToTensors,
  loadHeadWeights,
  type MixerWeights,
  saveHeadWeights,
  type WeightSpec,
  weightSpecs,
} from "./weights.ts";
export { lastNativeHeadProfile, NativeHead } from "./native_head.ts";
export { gate, HostScanStage, scanRecurrence, type ScanShape } from "./host_scan.ts";
export {
  checkFiniteInput,
  Head,
  type HeadEngine,
  type HeadForwardOptions,
  headFromBytes,
  type HeadResult,
  loadHead,
  resolveHeadEngine,
} from "./head.ts";
export { type HeadMaps, headMaps } from "../maps/head.ts";
export { headMapsGpu } from "./maps_gpu.ts";
export {
  type Capture,
  conv3x3Ref,
  decoderForward,
  decoderHeadRef,
  type HeadForward64,
  headForward64,
  type HeadForward64Options,
  headForwardRef,
  linearRef,
} from "./reference.ts";
export {
  invertPermutation,
  type NavigationIndex,
  navigationIndex,
  scanPermutations,
} from "./scan_order.ts";
export {
  layoutNDL,
  layoutNLD,
  type ScanDims,
  type ScanLayout,
  type ScanOperands,
  selectiveScan,
  SelectiveScanProgram,
  selectiveScanRef,
  type Strided,
} from "./selective_scan.ts";
export { GpuHead, gpuHeadUnsupported } from "./gpu_head.ts";

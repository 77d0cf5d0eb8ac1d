/**
 * The SNARM head (spec §5–7): configuration and official-format weights, the self-navigated
 * multi-head Mamba on WebGPU, on ONNX Runtime's native CPU engine (`engine: "native"`, the default
 * on CPU adapters) and as a TypeScript reference, the selective scan kernel, and maps.
 *
 * @example
 * ```ts
 * import { loadHead } from "./mod.ts";
 * // the shipped head (cpu preset, 256-d MobileNetV2 features: in_chans 512); official format
 * const head = await loadHead(new URL("../../data/snarm_head.safetensors", import.meta.url));
 * const C = head.config.in_chans / 2;
 * // X = [r ‖ f] (1, 2C, 49, 49) channels-first: inter-residual, then patch features
 * const X = Float32Array.from({ length: 2 * C * 49 * 49 }, (_, i) => Math.sin(i) * 0.1);
 * const r = await head.forward(X, 1, 49, 49); // fusion, navigated Mamba, maps (spec §4–7)
 * r.refMask; // (1, 49·49) self-references; r.headLogits: (nHeads, 1, 49·49)
 * if (r.smoothed.length !== 392 * 392 || !Number.isFinite(r.imageScores[0])) throw new Error("maps");
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
export { lastNativeHeadProfile, NativeHead, scanRecurrence } from "./native_head.ts";
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
export { headMapsGpu } from "../maps/gpu.ts";
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

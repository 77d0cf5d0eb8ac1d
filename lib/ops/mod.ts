/**
 * Vector-Jacobian products of every operation of the SNARM head (spec §5–6), float64, each with
 * its forward: dense layers and convolutions, normalisations (incl. BatchNorm2d in training mode),
 * activations, the Mamba mixer and selective scan, token re-orderings and bilinear upsampling.
 * Composed into the whole-head backward by lib/train/backward_ref.ts.
 * @module
 */
export {
  conv1x1Backward,
  conv1x1Forward,
  conv3x3Backward,
  conv3x3Forward,
  type DenseGrads,
  linearBackward,
  linearForward,
} from "./dense.ts";
export {
  addRmsNormBackward,
  addRmsNormForward,
  type AddRmsNormOut,
  batchNormBackward,
  batchNormForward,
  type BatchNormOut,
  batchNormRunningUpdate,
  EPS,
  layerNormBackward,
  layerNormForward,
  type LayerNormOut,
  rmsNormBackward,
  rmsNormForward,
  type RmsNormOut,
} from "./norm.ts";
export {
  dropoutMask,
  mapVec,
  mulberry32,
  pointwiseBackward,
  relu,
  reluGrad,
  sigmoid,
  sigmoidBackward,
  sigmoidForward,
  silu,
  siluGrad,
  softplus,
  softplusGrad,
} from "./pointwise.ts";
export {
  causalConv1dBackward,
  causalConv1dForward,
  gateBackward,
  gateForward,
  mixerBackward,
  type MixerCache,
  mixerForward,
  type MixerGrads,
  type ScanGrads,
  type ScanInputs,
  selectiveScanBackward,
  selectiveScanForward,
} from "./mamba.ts";
export {
  fromScanOrder,
  fromScanOrderBackward,
  gatherTokens,
  gatherTokensBackward,
  scatterTokens,
  scatterTokensBackward,
  toScanOrder,
  toScanOrderBackward,
} from "./navigation.ts";
export { upsampleBilinearBackward, upsampleBilinearForward } from "./upsample.ts";

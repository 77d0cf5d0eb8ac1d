/**
 * WGSL training kernels of the SNARM head (forward with saved activations, backward, loss,
 * AdamW), recorded into a {@link KernelSequence} and replayed per step, and the whole training
 * step {@link GpuHeadTrainer}. Each kernel has a TypeScript reference (here or in lib/ops)
 * and a gradient check against central finite differences in tests/train_gpu_*_test.ts.
 * @module
 */
export {
  type Dispatch,
  type DispatchOptions,
  f32bits,
  grid2d,
  KernelSequence,
  type Ref,
  type Tensor,
} from "./graph.ts";
export { type GemmArgs, gemmRef, recordGemm } from "./gemm.ts";
export {
  col2imRef,
  colSumRef,
  im2colRef,
  recordCol2im,
  recordColSum,
  recordConv3x3Backward,
  recordConv3x3Forward,
  recordIm2col,
} from "./conv.ts";
export { gatherRowsRef, recordGatherRows, recordScatterRows, scatterRowsRef } from "./rows.ts";
export { recordUpsampleBilinear, recordUpsampleBilinearBackward } from "./upsample.ts";
export {
  recordAddRmsNormBackward,
  recordAddRmsNormForward,
  recordBatchNormBackward,
  recordBatchNormForward,
  recordLayerNormBackward,
  recordLayerNormForward,
} from "./norm.ts";
export {
  type PointwiseOp,
  recordGateBackward,
  recordGateForward,
  recordMul,
  recordPointwise,
  recordPointwiseBackward,
} from "./pointwise.ts";
export { recordSnarmLoss } from "./loss.ts";
export { type AdamWRecord, recordAdamW } from "./adamw.ts";
export {
  recordCausalConv1dBackward,
  recordCausalConv1dForward,
  recordSelectiveScanBackward,
  recordSelectiveScanForward,
  scanBackwardScratch,
} from "./mamba_ops.ts";
export { axpyRef, recordAxpy } from "./axpy.ts";
export {
  GpuHeadTrainer,
  type GpuTrainOptions,
  type StepInput,
  type StepLoss,
} from "./head_train.ts";

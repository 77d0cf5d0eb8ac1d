/**
 * Building blocks of SNARM head training (snarm-method.md §8, §3): MemSeg-style synthetic anomalies
 * (Perlin masks, texture / structure sources, blending), defect-shaped synthetic anomalies
 * (scratch, blob, edge, smear, stain, paint; `sources` of `synthesizeAnomaly`), feature jitter, previews, and the
 * leave-own-image-out inter-residual.
 *
 * Then `backbone.embed(normalizeImageNet(syn.rgb, 392, 392))` and the leave-own-image-out
 * inter-residual `trainingResidual(f, index, imageIdxInBank)` (lib/residual/inter.ts) give the
 * head's training input; `deno task train` (lib/train/run.ts) runs the whole loop.
 *
 * @example
 * ```ts
 * import { fileURLToPath } from "node:url";
 * import { synthesizeAnomaly } from "./mod.ts";
 * import { loadSample, loadSplit } from "../data/mod.ts";
 * const root = fileURLToPath(new URL("../../data/hazelnut_toy", import.meta.url));
 * const s = await loadSample(loadSplit(root, "hazelnut").train[0], { resize: 448, crop: 392 });
 * // a thin curvilinear scratch on a normal image: seeded, with its mask
 * const syn = await synthesizeAnomaly(s.rgb, 392, 392, { seed: 7, sources: ["scratch"] });
 * syn.rgb; //  (392, 392, 3) u8 anomalous image;  syn.mask: (392, 392) 0/1, non-empty
 * if (syn.source !== "scratch" || !syn.mask.includes(1)) throw new Error("synthetic anomaly");
 * ```
 * @module
 */
export {
  perlinFade,
  type PerlinMask,
  perlinMask,
  type PerlinMaskOptions,
  randPerlin2d,
  rotateBilinear,
} from "./perlin.ts";
export {
  type AppliedOp,
  applyStructureOp,
  blendAnomaly,
  DEFAULT_SYNTH_SOURCES,
  DEFAULT_TEXTURE_DIR,
  encodeSynthStrip,
  jitterFeatures,
  listTextureFiles,
  parseSynthSources,
  randAugment,
  shuffleTiles,
  STRUCTURE_OPS,
  type StructureOp,
  SYNTH_SOURCES,
  synthesizeAnomaly,
  type SynthOptions,
  type SynthPreview,
  synthPreview,
  type SynthResult,
  type SynthSource,
} from "./synth.ts";
export {
  DEFECT_KINDS,
  type DefectKind,
  type DefectOptions,
  type DefectResult,
  isDefectKind,
  synthesizeDefect,
} from "./defects.ts";
export * as grad from "../ops/mod.ts";
export {
  headForwardBackwardRef,
  type HeadGradResult,
  headLossRef,
  type HeadLossResult,
  headParameters,
  headTrainForwardRef,
  type HeadTrainOptions,
} from "./backward_ref.ts";
export {
  focalLossLogits,
  focalLossProb,
  type FocalOptions,
  gridTarget,
  type LossGrad,
  type SnarmLoss,
  snarmLoss,
  type SnarmLossOptions,
} from "./loss.ts";
export {
  AdamW,
  type AdamWOptions,
  isNoWeightDecay,
  warmCosineLr,
  type WarmCosineOptions,
} from "./adamw.ts";
export * as gpu from "./gpu/mod.ts";
export { initHeadWeights, PRIOR_PROB } from "./init.ts";
export {
  type PrepareOptions as PrepareTrainingOptions,
  prepareTrainingSet,
  type TrainingSet,
  type TrainSample,
} from "./samples.ts";
export {
  type Checkpoint,
  loadCheckpoint,
  saveCheckpoint,
  settingsMismatch,
  type TrainSettings,
} from "./checkpoint.ts";
export {
  runTraining,
  stepBatch,
  TRAIN_PRESETS,
  type TrainOptions,
  type TrainPreset,
  type TrainResult,
} from "./run.ts";

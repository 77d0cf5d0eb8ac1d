/**
 * The seven headline metrics of one category: I-AUROC, I-AP, I-F1max (image level) and P-AUROC,
 * P-AP, P-F1max, AUPRO (pixel level, all pixels pooled), all exact with float64 accumulation.
 *
 * Sources: `shared/fixtures/metrics/README.md` (Definitions) and `snarm-method.md` §9. The SNARM
 * repo itself reports I-AUROC (exact), and P-AUROC / P-AP / AUPRO from adeval's 1000-bin
 * histograms with a trapezoid P-AP; snarm computes every metric exactly (sklearn's step AP), so
 * small differences from binned numbers are expected.
 * @module
 */

import { binaryMetrics } from "./binary.ts";
import { pixelMetrics } from "./pixel.ts";
import { checkShape, type MapShape } from "./regions.ts";

/** The metric keys, in table order. */
export const METRIC_KEYS = [
  "image_auroc",
  "image_ap",
  "image_f1max",
  "pixel_auroc",
  "pixel_ap",
  "pixel_f1max",
  "aupro",
] as const;

/** One metric key. */
export type MetricKey = typeof METRIC_KEYS[number];

/** The seven metrics as fractions in [0, 1]; NaN where undefined or not evaluated. */
export type Metrics = Record<MetricKey, number>;

/** Input of {@link computeMetrics}. */
export interface MetricsInput {
  /** N image scores (snarm: the max of each image's map), no NaN. */
  imageScores: ArrayLike<number>;
  /** N image labels, 0/1 or booleans (1 = anomalous image). */
  imageLabels: ArrayLike<number | boolean>;
  /** `(N, H, W)` row-major f32 anomaly maps; pixel metrics need it together with `pixelMasks`. */
  pixelScores?: Float32Array;
  /** `(N, H, W)` row-major GT masks, 0/1. Absent: the pixel metrics are NaN (image level only). */
  pixelMasks?: Uint8Array;
  /** `[N, H, W]`, required with pixel inputs; N must equal the number of image scores. */
  shape?: MapShape;
  /** AUPRO's FPR integration limit (default 0.3). */
  fprLimit?: number;
}

/**
 * Compute the seven metrics of one category. The image metrics use one sort of the N image
 * scores; the pixel metrics and AUPRO share one radix sort of all N·H·W pixels.
 *
 * Undefined metrics are NaN with one `console.warn` line each naming the key and the reason:
 * AUROC with one class absent; AP/F1max with no anomalous sample; AUPRO with no GT region or no
 * normal pixel. Without `pixelMasks` (a category without ground truth) the pixel metrics are NaN
 * without a warning.
 *
 * @returns an object with exactly the keys of {@link METRIC_KEYS}.
 * @throws {Error} on mismatched lengths/shape, NaN scores, non-binary labels or masks, or masks
 *   given without `pixelScores`.
 */
export function computeMetrics(input: MetricsInput): Metrics {
  const { imageScores, imageLabels, pixelScores, pixelMasks, shape } = input;
  if (imageScores.length !== imageLabels.length) {
    throw new Error(
      `computeMetrics: ${imageScores.length} imageScores but ${imageLabels.length} imageLabels`,
    );
  }
  const withPixels = pixelMasks !== undefined;
  if (withPixels) {
    // validate the pixel inputs before any work or warning
    if (pixelScores === undefined) {
      throw new Error("computeMetrics: pixelMasks given without pixelScores");
    }
    if (shape === undefined) {
      throw new Error("computeMetrics: shape [N, H, W] is required with pixelScores/pixelMasks");
    }
    checkShape(shape, pixelScores.length, "pixelScores");
    checkShape(shape, pixelMasks.length, "pixelMasks");
    if (shape[0] !== imageScores.length) {
      throw new Error(
        `computeMetrics: shape [${shape}] has N = ${shape[0]} maps but there are ` +
          `${imageScores.length} imageScores`,
      );
    }
  }
  const img = binaryMetrics(imageScores, imageLabels, {
    what: "image labels",
    names: { auroc: "image_auroc", ap: "image_ap", f1max: "image_f1max" },
  });
  const out: Metrics = {
    image_auroc: img.auroc,
    image_ap: img.ap,
    image_f1max: img.f1max.value,
    pixel_auroc: NaN,
    pixel_ap: NaN,
    pixel_f1max: NaN,
    aupro: NaN,
  };
  if (!withPixels || pixelScores === undefined || shape === undefined) return out;
  const px = pixelMetrics(pixelScores, pixelMasks, shape, {
    fprLimit: input.fprLimit,
    names: { auroc: "pixel_auroc", ap: "pixel_ap", f1max: "pixel_f1max", aupro: "aupro" },
  });
  out.pixel_auroc = px.auroc;
  out.pixel_ap = px.ap;
  out.pixel_f1max = px.f1max.value;
  out.aupro = px.aupro;
  return out;
}

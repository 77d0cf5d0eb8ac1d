/**
 * Exact anomaly-detection metrics for snarm: image level (I-AUROC, I-AP, I-F1max), pixel level
 * (P-AUROC, P-AP, P-F1max) and AUPRO (MVTec AD, FPR ≤ 0.3), their curves, and the per-category
 * table. Every metric uses all distinct score values as thresholds (no binning), float64
 * accumulation, and NaN plus one warning line where it is undefined.
 *
 * Definitions and ground truth: `shared/fixtures/metrics/README.md`; evaluation protocol:
 * `shared/docs/snarm-method.md` §9.
 *
 * @example
 * ```ts
 * import { computeMetrics, formatTable, metricsTable } from "./mod.ts";
 * // two 2 × 2 images: a good one and a defect one whose defect pixel scores highest
 * const m = computeMetrics({
 *   imageScores: Float32Array.of(0.1, 0.9),
 *   imageLabels: Uint8Array.of(0, 1),
 *   pixelScores: Float32Array.of(0.1, 0.1, 0.2, 0.1, 0.3, 0.9, 0.2, 0.1),
 *   pixelMasks: Uint8Array.of(0, 0, 0, 0, 0, 1, 0, 0),
 *   shape: [2, 2, 2],
 * });
 * if (m.image_auroc !== 1 || m.pixel_auroc !== 1) throw new Error("perfect separation");
 * console.log(formatTable(metricsTable([{ category: "toy", ...m }]))); // all 7 metrics, in %
 * ```
 * @module
 */

export {
  computeMetrics,
  METRIC_KEYS,
  type MetricKey,
  type Metrics,
  type MetricsInput,
} from "./compute.ts";
export {
  auroc,
  averagePrecision,
  type BinaryMetrics,
  binaryMetrics,
  type BinaryOptions,
  f1Max,
} from "./binary.ts";
export { aupro, type PixelMetrics, pixelMetrics, type PixelOptions } from "./pixel.ts";
export {
  type PrCurve,
  prCurve,
  type ProCurve,
  proCurve,
  type RocCurve,
  rocCurve,
} from "./curves.ts";
export {
  forEachRegionPixel,
  labelRegions,
  type MapShape,
  type RegionLabels,
  type RegionStats,
} from "./regions.ts";
export { radixSortPairs, rankDescending, type RankedSamples, type RankOptions } from "./ranking.ts";
export type { F1Max } from "./sweep.ts";
export {
  type FormatOptions,
  formatTable,
  MEAN_ROW,
  METRIC_LABELS,
  type MetricsRow,
  type MetricsTable,
  metricsTable,
  nanMean,
} from "./table.ts";

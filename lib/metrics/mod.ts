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
 * const m = computeMetrics({ imageScores, imageLabels, pixelScores, pixelMasks, shape: [n, h, w] });
 * console.log(formatTable(metricsTable([{ category: "bottle", ...m }])));
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

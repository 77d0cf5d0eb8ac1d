/**
 * Exact curve points for plotting: ROC, precision-recall and PRO, one point per distinct score
 * (descending threshold) plus the starting point at threshold +∞. Nothing is binned; for very large
 * inputs (tens of millions of distinct scores) thin the arrays before plotting. The curves sort all
 * samples (radix sort, about 16 bytes of working memory per sample plus 32 bytes per curve point);
 * the metrics themselves (`computeMetrics`, `pixelMetrics`) do not need that.
 *
 * Sources: `shared/fixtures/metrics/README.md` (Definitions), sklearn 1.2.1 `roc_curve` /
 * `precision_recall_curve` (without their point dropping), MVTec AD `compute_pro`.
 * @module
 */

import { labelPayload, warnUndefined } from "./labels.ts";
import { rankDescending } from "./ranking.ts";
import { labelRegions, type MapShape } from "./regions.ts";
import { sweepCurve } from "./sweep.ts";

/** ROC points (FPR, TPR), from (0,0) at threshold +∞ to (1,1). */
export interface RocCurve {
  /** FP/n0 per point (NaN after the first point when there is no negative). */
  fpr: Float64Array;
  /** TP/n1 per point (NaN after the first point when there is no positive). */
  tpr: Float64Array;
  /** +∞, then the distinct scores in descending order. */
  thresholds: Float64Array;
}

/** Precision-recall points, from (recall 0, precision 1) at threshold +∞ to full recall. */
export interface PrCurve {
  /** TP/n1 per point (NaN after the first point when there is no positive). */
  recall: Float64Array;
  /** TP/(TP+FP) per point; 1 at the +∞ start point (sklearn's convention). */
  precision: Float64Array;
  /** +∞, then the distinct scores in descending order. */
  thresholds: Float64Array;
}

/** PRO curve points (FPR, PRO), from (0,0) at threshold +∞ to (1,1). */
export interface ProCurve {
  /** FP/n0 over the normal pixels of all images. */
  fpr: Float64Array;
  /** Mean over the 8-connected GT regions of the fraction of each region at or above threshold. */
  pro: Float64Array;
  /** +∞, then the distinct scores in descending order. */
  thresholds: Float64Array;
  /** Number of GT regions R. */
  nRegions: number;
}

/** Ratio array a/d; the first (start) point is `first`. */
function ratio(a: Float64Array, d: number, first: number): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] / d;
  out[0] = first;
  return out;
}

/**
 * ROC curve points over every distinct threshold.
 * @param scores N scores, no NaN. @param labels N labels, 0/1 or booleans.
 * @throws {Error} on differing lengths, NaN scores or non-binary labels.
 */
export function rocCurve(
  scores: ArrayLike<number>,
  labels: ArrayLike<number | boolean>,
): RocCurve {
  if (scores.length !== labels.length) {
    throw new Error(`rocCurve: ${scores.length} scores but ${labels.length} labels`);
  }
  const c = sweepCurve(
    rankDescending(scores, labelPayload(labels, "labels"), { consumePayload: true }),
  );
  if (c.n0 === 0 || c.n1 === 0) {
    warnUndefined("ROC curve", `only one class present (${c.n1} anomalous, ${c.n0} normal)`);
  }
  return { fpr: ratio(c.fp, c.n0, 0), tpr: ratio(c.tp, c.n1, 0), thresholds: c.thresholds };
}

/**
 * Precision-recall curve points over every distinct threshold (sklearn drops the points after
 * full recall; they are kept here).
 * @throws {Error} on differing lengths, NaN scores or non-binary labels.
 */
export function prCurve(
  scores: ArrayLike<number>,
  labels: ArrayLike<number | boolean>,
): PrCurve {
  if (scores.length !== labels.length) {
    throw new Error(`prCurve: ${scores.length} scores but ${labels.length} labels`);
  }
  const c = sweepCurve(
    rankDescending(scores, labelPayload(labels, "labels"), { consumePayload: true }),
  );
  if (c.n1 === 0) warnUndefined("PR curve", "no anomalous sample (recall is 0/0)");
  const precision = new Float64Array(c.tp.length);
  precision[0] = 1;
  for (let i = 1; i < c.tp.length; i++) precision[i] = c.tp[i] / (c.tp[i] + c.fp[i]);
  return { recall: ratio(c.tp, c.n1, 0), precision, thresholds: c.thresholds };
}

/**
 * PRO curve points over every distinct pixel score (MVTec AD definition, 8-connected regions per
 * image, FPR over all normal pixels). Undefined (NaN PRO, with a warning) without GT regions.
 * @param pixelScores `(N, H, W)` row-major f32 maps. @param pixelMasks `(N, H, W)` 0/1 masks.
 * @param shape `[N, H, W]`.
 * @throws {Error} on a length/shape mismatch, NaN scores or mask values other than 0/1.
 */
export function proCurve(
  pixelScores: Float32Array,
  pixelMasks: Uint8Array,
  shape: MapShape,
): ProCurve {
  if (pixelScores.length !== pixelMasks.length) {
    throw new Error(
      `proCurve: pixelScores has ${pixelScores.length} values but pixelMasks ${pixelMasks.length}`,
    );
  }
  const reg = labelRegions(pixelMasks, shape);
  const weights = new Float64Array(reg.nRegions + 1);
  for (let r = 1; r <= reg.nRegions; r++) weights[r] = 1 / reg.sizes[r];
  const c = sweepCurve(
    rankDescending(pixelScores, reg.labels, { what: "pixelScores", consumePayload: true }),
    { weights, nRegions: reg.nRegions },
  );
  if (reg.nRegions === 0) warnUndefined("PRO curve", "no ground-truth region (PRO = 0/0)");
  if (c.n0 === 0) warnUndefined("PRO curve", "no normal pixel (FPR = 0/0)");
  return {
    fpr: ratio(c.fp, c.n0, 0),
    pro: ratio(c.proSum, reg.nRegions, 0),
    thresholds: c.thresholds,
    nRegions: reg.nRegions,
  };
}

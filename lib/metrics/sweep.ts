/**
 * One pass over ranked samples that yields every exact threshold metric: AUROC, AP, F1max and
 * AUPRO, plus the curve points (cumulative counts per distinct threshold) for plotting.
 *
 * Definitions (source: `shared/fixtures/metrics/README.md`, Definitions; sklearn 1.2.1 and the
 * MVTec AD `pro_curve_util`/`generic_util.trapezoid` code). A sample is predicted anomalous at
 * threshold t iff score ≥ t; the thresholds are the distinct scores in descending order, so tied
 * scores always enter together. With TP_k, FP_k the counts at the k-th threshold, n1 positives
 * and n0 negatives:
 * - AUROC = trapezoid area of (FP_k/n0, TP_k/n1) from (0,0) — equals Mann-Whitney U/(n1·n0) with
 *   ties counted 1/2. Accumulated as the integer Σ ΔFP·(TP_k + TP_{k-1}), divided once by 2·n0·n1.
 * - AP = Σ_k (R_k − R_{k−1})·P_k with R = TP/n1, P = TP/(TP+FP) (step sum, no interpolation).
 * - F1max = max_k 2·TP_k/(TP_k + FP_k + n1) (= 2PR/(P+R)); the reported threshold is the smallest
 *   one reaching the maximum.
 * - AUPRO: FPR_k = FP_k/n0 over all normal pixels, PRO_k = (1/R)·Σ_r |{p ∈ r: s_p ≥ t_k}|/|r|;
 *   trapezoid over the points with FPR ≤ limit (from (0,0)), plus the interpolated piece up to the
 *   limit when the limit is not a curve point, divided by the limit.
 * Sums of non-integers use Neumaier compensated summation (float64).
 * @module
 */

import type { RankedSamples } from "./ranking.ts";

/** F1max with the operating point where it is reached. */
export interface F1Max {
  /** max F1 over the distinct thresholds (NaN when there is no positive sample). */
  value: number;
  /** The smallest threshold reaching the max (score ≥ threshold ⇒ anomalous); NaN if undefined. */
  threshold: number;
  /** Precision TP/(TP+FP) at that threshold. */
  precision: number;
  /** Recall TP/n1 at that threshold. */
  recall: number;
}

/** Result of {@link sweepMetrics}; undefined metrics are NaN with a reason in `why`. */
export interface SweepMetrics {
  n0: number;
  n1: number;
  /** Number of distinct scores. */
  nThresholds: number;
  auroc: number;
  ap: number;
  f1max: F1Max;
  /** NaN when no `regions` were given, or there is no region / no normal sample. */
  aupro: number;
  /** PRO at FPR = limit (interpolated), NaN when AUPRO is undefined. */
  proAtLimit: number;
  /** Why a metric is NaN, by metric (`auroc`, `ap`, `f1max`, `aupro`). */
  why: Partial<Record<"auroc" | "ap" | "f1max" | "aupro", string>>;
}

/** GT regions as the sweep needs them: payload r ≥ 1 is region r with weight 1/|r|. */
export interface RegionWeights {
  /** Length R + 1; `weights[r]` = 1/|r| (index 0 unused). */
  weights: Float64Array;
  /** Number of regions R. */
  nRegions: number;
}

/** Reason text for a one-class label set. */
function oneClassWhy(n1: number, n0: number, what: string): string {
  return `only one class present in the ${what} (${n1} anomalous, ${n0} normal)`;
}

/**
 * Streaming accumulator of the exact metrics over the curve points, fed one tie group at a time
 * in descending score order. Consecutive groups that hold only negatives may be merged into one
 * (their points are collinear), which the pooled pixel path uses.
 */
export class CurveAccumulator {
  private tp = 0;
  private fp = 0;
  private rocArea2 = 0; // Σ ΔFP·(TP + TP_prev): an integer, exact below 2^53
  private apSum = 0;
  private apC = 0; // Neumaier compensation
  private bestF1 = -1;
  private bestTp = 0;
  private bestFp = 0;
  private bestGroup = -1;
  private proArea = 0; // Σ ΔFP·(proSum + proSum_prev), unnormalised
  private proAreaC = 0;
  private proPrev = 0;
  private fpPrev = 0;
  private proPiece = 0;
  private proAtLimit = NaN;
  private proDone: boolean;

  /**
   * @param n1 Positives in total. @param n0 Negatives in total.
   * @param nRegions GT regions R for AUPRO (0: AUPRO undefined / not computed).
   * @param fprLimit AUPRO's integration limit in (0, 1].
   */
  constructor(
    readonly n1: number,
    readonly n0: number,
    readonly nRegions: number,
    readonly fprLimit: number,
  ) {
    if (!(fprLimit > 0 && fprLimit <= 1)) {
      throw new Error(`fprLimit must be in (0, 1], got ${fprLimit}`);
    }
    this.proDone = nRegions === 0 || n0 === 0;
  }

  /**
   * Add one tie group: `dp` positives and `dn` negatives entering together.
   * @param proSum Cumulative Σ_r |{p ∈ r: s_p ≥ t}|/|r| after this group (unnormalised PRO).
   * @param group An id of the group, passed to `finish`'s `thresholdOf` for the F1max threshold.
   */
  add(dp: number, dn: number, proSum: number, group: number): void {
    const tpPrev = this.tp;
    const tp = (this.tp += dp);
    const fp = (this.fp += dn);
    this.rocArea2 += dn * (tp + tpPrev);
    if (dp > 0) {
      const term = (dp * tp) / ((tp + fp) * this.n1);
      const s = this.apSum, t = s + term;
      this.apC += Math.abs(s) >= Math.abs(term) ? (s - t) + term : (term - t) + s;
      this.apSum = t;
      // a negative-only group never raises F1 (same TP, more FP), so only these can be the max
      const f1 = (2 * tp) / (tp + fp + this.n1);
      if (f1 >= this.bestF1) {
        this.bestF1 = f1;
        this.bestTp = tp;
        this.bestFp = fp;
        this.bestGroup = group;
      }
    }
    if (this.proDone) return;
    const n0 = this.n0, lim = this.fprLimit;
    const fpr = fp / n0;
    if (fpr <= lim) {
      const term = dn * (proSum + this.proPrev);
      const s = this.proArea, t = s + term;
      this.proAreaC += Math.abs(s) >= Math.abs(term) ? (s - t) + term : (term - t) + s;
      this.proArea = t;
      this.proPrev = proSum;
      this.fpPrev = fp;
    } else {
      // first point beyond the limit: the interpolated piece from the last point with FPR <= limit
      // (x_a, y_a) (after a vertical step: its highest PRO, as bisect_right)
      const xa = this.fpPrev / n0, ya = this.proPrev / this.nRegions, yb = proSum / this.nRegions;
      if (xa < lim) {
        const yl = ya + (yb - ya) * (lim - xa) / (fpr - xa);
        this.proPiece = 0.5 * (ya + yl) * (lim - xa);
        this.proAtLimit = yl;
      } else this.proAtLimit = ya;
      this.proDone = true;
    }
  }

  /**
   * The metrics, NaN with a reason where undefined.
   * @param thresholdOf Maps the F1max group id to its score.
   * @param what What the labels are, for the reasons.
   * @param withPro Whether AUPRO was requested (GT regions given).
   */
  finish(
    thresholdOf: (group: number) => number,
    what: string,
    withPro: boolean,
  ): Omit<SweepMetrics, "nThresholds"> {
    const { n0, n1, nRegions } = this;
    const why: SweepMetrics["why"] = {};
    let auroc = NaN, ap = NaN, aupro = NaN, proAtLimit = NaN;
    let f1max: F1Max = { value: NaN, threshold: NaN, precision: NaN, recall: NaN };
    if (n0 + n1 === 0) {
      why.auroc = why.ap = why.f1max = `no samples in the ${what}`;
    } else {
      if (n1 === 0 || n0 === 0) why.auroc = oneClassWhy(n1, n0, what);
      else auroc = this.rocArea2 / (2 * n0 * n1);
      if (n1 === 0) {
        why.ap = why.f1max = `no anomalous sample in the ${what} (recall is 0/0)`;
      } else {
        ap = this.apSum + this.apC;
        f1max = {
          value: this.bestF1,
          threshold: thresholdOf(this.bestGroup),
          precision: this.bestTp / (this.bestTp + this.bestFp),
          recall: this.bestTp / n1,
        };
      }
    }
    if (!withPro) why.aupro = "no ground-truth masks given";
    else if (nRegions === 0) why.aupro = "no ground-truth region (PRO = 0/0)";
    else if (n0 === 0) why.aupro = "no normal pixel (FPR = 0/0)";
    else {
      // limit 1 is reached only at the last point (1, 1)
      proAtLimit = Number.isNaN(this.proAtLimit) ? 1 : this.proAtLimit;
      aupro = ((this.proArea + this.proAreaC) / (2 * n0 * nRegions) + this.proPiece) /
        this.fprLimit;
    }
    return { n0, n1, auroc, ap, f1max, aupro, proAtLimit, why };
  }
}

/**
 * Compute AUROC, AP, F1max and (when `regions` is given) AUPRO in one pass over `ranked`.
 * Payload 0 = negative (normal), ≥ 1 = positive; with `regions`, the payload is the region id.
 *
 * @param fprLimit AUPRO's FPR integration limit (default 0.3, MVTec AD), in (0, 1].
 * @param what What the labels are, for the reasons in `why` (e.g. "image labels").
 */
export function sweepMetrics(
  ranked: RankedSamples,
  regions?: RegionWeights,
  fprLimit = 0.3,
  what = "labels",
): SweepMetrics {
  const { n, payload } = ranked;
  let n1 = 0;
  for (let i = 0; i < n; i++) if (payload[i] !== 0) n1++;
  const acc = new CurveAccumulator(n1, n - n1, regions?.nRegions ?? 0, fprLimit);
  const nThr = sweepGroups(ranked, regions, (dp, dn, pro, last) => acc.add(dp, dn, pro, last));
  return {
    ...acc.finish((g) => ranked.scoreAt(g), what, regions?.weights !== undefined),
    nThresholds: nThr,
  };
}

/**
 * Walk `ranked` one threshold at a time (each group of tied scores, highest first) and call
 * `visit` with the group's positives `dp` and negatives `dn`, the cumulative PRO sum Σ_r
 * |{p ∈ r: s_p ≥ t}|/|r| so far (Kahan–Babuška compensated; 0 without `regions`) and the index of
 * the group's last sample. Shared by {@link sweepMetrics} and {@link sweepCurve}.
 * @returns the number of thresholds (distinct scores).
 */
function sweepGroups(
  ranked: RankedSamples,
  regions: RegionWeights | undefined,
  visit: (dp: number, dn: number, pro: number, last: number) => void,
): number {
  const { n, groupKeys: keys, payload } = ranked;
  const w = regions?.weights;
  let proS = 0, proC = 0, nThr = 0, i = 0;
  while (i < n) {
    const k = keys[i];
    let dp = 0, dn = 0;
    do {
      const r = payload[i];
      if (r === 0) dn++;
      else {
        dp++;
        if (w !== undefined) {
          const x = w[r];
          const t = proS + x;
          proC += Math.abs(proS) >= Math.abs(x) ? (proS - t) + x : (x - t) + proS;
          proS = t;
        }
      }
      i++;
    } while (i < n && keys[i] === k);
    nThr++;
    visit(dp, dn, proS + proC, i - 1);
  }
  return nThr;
}

/** Cumulative counts at each curve point, for plotting. */
export interface SweepCurve {
  /**
   * Length T + 1: `+Infinity` (the starting point, nothing predicted anomalous), then the T
   * distinct scores in descending order.
   */
  thresholds: Float64Array;
  /** Length T + 1: cumulative true positives (score ≥ threshold and positive). */
  tp: Float64Array;
  /** Length T + 1: cumulative false positives. */
  fp: Float64Array;
  /** Length T + 1: Σ_r |{p ∈ r: s_p ≥ t}|/|r| (unnormalised PRO); zeros without regions. */
  proSum: Float64Array;
  n0: number;
  n1: number;
}

/** Collect the cumulative counts at every distinct threshold (plus the +∞ start point). */
export function sweepCurve(ranked: RankedSamples, regions?: RegionWeights): SweepCurve {
  const { n, groupKeys: keys } = ranked;
  let nThr = 0;
  for (let i = 0; i < n; i++) if (i === 0 || keys[i] !== keys[i - 1]) nThr++;
  const thresholds = new Float64Array(nThr + 1);
  const tpA = new Float64Array(nThr + 1);
  const fpA = new Float64Array(nThr + 1);
  const proA = new Float64Array(nThr + 1);
  thresholds[0] = Infinity;
  let tp = 0, fp = 0, j = 0;
  sweepGroups(ranked, regions, (dp, dn, pro, last) => {
    tp += dp;
    fp += dn;
    j++;
    thresholds[j] = ranked.scoreAt(last);
    tpA[j] = tp;
    fpA[j] = fp;
    proA[j] = pro;
  });
  return { thresholds, tp: tpA, fp: fpA, proSum: proA, n0: fp, n1: tp };
}

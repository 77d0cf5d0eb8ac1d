/**
 * Exact binary-classification metrics of scores against 0/1 labels: AUROC, AP and F1max, as
 * `sklearn.metrics.roc_auc_score`, `average_precision_score` and the max F1 over
 * `precision_recall_curve` (sklearn 1.2.1). Used for the image level (image score = max of the
 * map, label = mask has an anomalous pixel) and for any pooled set of samples.
 *
 * Definitions: see {@link sweepMetrics} and `shared/fixtures/metrics/README.md` (Definitions).
 * Undefined cases return NaN with one `console.warn` line: AUROC when one class is absent;
 * AP and F1max when no positive exists (sklearn returns -0.0 / 0.0 there with a warning; snarm
 * reports undefined instead of a made-up number).
 * @module
 */

import { labelPayload, warnUndefined } from "./labels.ts";
import { rankDescending } from "./ranking.ts";
import { type F1Max, sweepMetrics } from "./sweep.ts";

/** AUROC, AP and F1max of one set of samples. */
export interface BinaryMetrics {
  auroc: number;
  ap: number;
  f1max: F1Max;
}

/** Options for the binary metrics. */
export interface BinaryOptions {
  /**
   * Names used in the warning line of an undefined metric (default `AUROC`, `AP`, `F1max`);
   * computeMetrics passes e.g. `image_auroc`.
   */
  names?: { auroc?: string; ap?: string; f1max?: string };
  /** What the labels are, for messages (default "labels"). */
  what?: string;
}

function compute(
  scores: ArrayLike<number>,
  labels: ArrayLike<number | boolean>,
  warnFor: ReadonlyArray<"auroc" | "ap" | "f1max">,
  opts: BinaryOptions,
): BinaryMetrics {
  const what = opts.what ?? "labels";
  if (scores.length !== labels.length) {
    throw new Error(`${what}: ${scores.length} scores but ${labels.length} labels`);
  }
  const payload = labelPayload(labels, what);
  const ranked = rankDescending(scores, payload, { what: "scores", consumePayload: true });
  const m = sweepMetrics(ranked, undefined, 0.3, what);
  const defaults = { auroc: "AUROC", ap: "AP", f1max: "F1max" };
  for (const k of warnFor) {
    const why = m.why[k];
    if (why !== undefined) warnUndefined(opts.names?.[k] ?? defaults[k], why);
  }
  return { auroc: m.auroc, ap: m.ap, f1max: m.f1max };
}

/**
 * AUROC, AP and F1max with one sort. Each undefined metric is NaN and warns once.
 * @param scores N scores (higher = more anomalous), no NaN.
 * @param labels N labels, 0/1 or booleans (1 = anomalous).
 * @throws {Error} on differing lengths, a NaN score or a label that is not 0/1.
 */
export function binaryMetrics(
  scores: ArrayLike<number>,
  labels: ArrayLike<number | boolean>,
  opts: BinaryOptions = {},
): BinaryMetrics {
  return compute(scores, labels, ["auroc", "ap", "f1max"], opts);
}

/**
 * Area under the ROC curve, exact (trapezoid over all distinct thresholds = Mann-Whitney U/(n1·n0),
 * ties ½). NaN (with a warning) when one class is absent. Source: `roc_auc_score`.
 */
export function auroc(
  scores: ArrayLike<number>,
  labels: ArrayLike<number | boolean>,
  opts: BinaryOptions = {},
): number {
  return compute(scores, labels, ["auroc"], opts).auroc;
}

/**
 * Average precision AP = Σ_k (R_k − R_{k−1})·P_k over the distinct thresholds (step sum, not the
 * trapezoid). NaN (with a warning) when there is no positive. Source: `average_precision_score`.
 */
export function averagePrecision(
  scores: ArrayLike<number>,
  labels: ArrayLike<number | boolean>,
  opts: BinaryOptions = {},
): number {
  return compute(scores, labels, ["ap"], opts).ap;
}

/**
 * F1max = max over the distinct thresholds of 2TP/(2TP+FP+FN), with the smallest threshold reaching
 * it. All fields NaN (with a warning) when there is no positive.
 */
export function f1Max(
  scores: ArrayLike<number>,
  labels: ArrayLike<number | boolean>,
  opts: BinaryOptions = {},
): F1Max {
  return compute(scores, labels, ["f1max"], opts).f1max;
}

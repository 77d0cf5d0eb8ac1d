/**
 * Validation of a SNARM head during training (model selection without the test set): the head
 * and bank-only scoring on held-out training images — clean ones (image label 0) and synthetic
 * anomalies of them (label 1, their grid target as the mask) — scored with the seven metrics of
 * `lib/metrics` at the feature-grid resolution (h × w, e.g. 49 × 49):
 *
 * - SNARM: residual fusion with the head's unary predictor (spec §4–5), the Mamba head (§6), the
 *   mean over heads of sigmoid(logit) per grid cell (§6 "Outputs", before the upsampling);
 * - bank-only: the inter-residual L2 norm per grid cell (§7, before the upsampling);
 * - image score: the maximum of the grid map; grid mask: target ≥ 0.5 (at least half of the cell
 *   is defective).
 *
 * The selection score is the mean of the seven metrics (all in [0, 1]; undefined ones skipped).
 * @module
 */
import { Head } from "../model/head.ts";
import type { HeadWeights } from "../model/weights.ts";
import { fuseResiduals } from "../residual/fuse.ts";
import { computeMetrics, type Metrics } from "../metrics/compute.ts";
import type { TrainSample } from "./samples.ts";

/** One validation pass. */
export interface Validation {
  /** Training step the weights are from. */
  step: number;
  /** The head's seven metrics (fractions) at grid resolution. */
  snarm: Metrics;
  /** Mean of the defined values of `snarm` (the selection score). */
  score: number;
}

/** Mean of the defined (finite) metric values. */
export function metricsMean(m: Metrics): number {
  const v = Object.values(m).filter(Number.isFinite);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
}

/** Grid masks and image labels of validation samples: `(N, h·w)` target ≥ 0.5, label = synthetic. */
export function gridTruth(val: readonly TrainSample[], L: number) {
  const masks = new Uint8Array(val.length * L);
  const labels = new Uint8Array(val.length);
  val.forEach((s, i) => {
    labels[i] = s.synthetic ? 1 : 0;
    for (let p = 0; p < L; p++) masks[i * L + p] = s.target[p] >= 0.5 ? 1 : 0;
  });
  return { masks, labels };
}

/** The seven metrics of `(N, h·w)` grid maps and N image scores against the samples' truth. */
function gridMetrics(
  val: readonly TrainSample[],
  maps: Float32Array,
  scores: Float32Array,
  h: number,
  w: number,
): Metrics {
  const { masks, labels } = gridTruth(val, h * w);
  return quiet(() =>
    computeMetrics({
      imageScores: scores,
      imageLabels: labels,
      pixelScores: maps,
      pixelMasks: masks,
      shape: [val.length, h, w],
    })
  );
}

/** Run `f` with console.warn silenced (undefined-metric warnings of small validation sets). */
export function quiet<T>(f: () => T): T {
  const warn = console.warn;
  console.warn = () => {};
  try {
    return f();
  } finally {
    console.warn = warn;
  }
}

/**
 * Bank-only scoring of the validation samples at grid resolution (the reference a head must beat).
 * @param val validation samples, X `(2C, h, w)` = [r ‖ f]; @param C feature channels.
 */
export function validateBank(
  val: readonly TrainSample[],
  C: number,
  h: number,
  w: number,
): Metrics {
  const L = h * w;
  const maps = new Float32Array(val.length * L);
  const scores = new Float32Array(val.length);
  val.forEach((s, i) => {
    let mx = -Infinity;
    for (let p = 0; p < L; p++) {
      let ss = 0;
      for (let c = 0; c < C; c++) {
        const r = s.X[c * L + p];
        ss += r * r;
      }
      const v = Math.sqrt(ss);
      maps[i * L + p] = v;
      if (v > mx) mx = v;
    }
    scores[i] = mx;
  });
  return gridMetrics(val, maps, scores, h, w);
}

/**
 * The head on the validation samples at grid resolution.
 * @param weights head weights (inference: BatchNorm running statistics, no dropout).
 * @param val validation samples; @param h @param w the grid; @param batch images per forward.
 * @throws {Error} on an empty validation set or a head / sample mismatch.
 */
export async function validateHead(
  weights: HeadWeights,
  val: readonly TrainSample[],
  h: number,
  w: number,
  step: number,
  batch = 4,
): Promise<Validation> {
  if (!val.length) throw new Error("validateHead: no validation sample");
  const head = new Head(weights);
  const cfg = head.config;
  const L = h * w, xLen = cfg.in_chans * L, nH = head.dims.nHeads;
  const maps = new Float32Array(val.length * L);
  const scores = new Float32Array(val.length);
  for (let i0 = 0; i0 < val.length; i0 += batch) {
    const B = Math.min(batch, val.length - i0);
    const X = new Float32Array(B * xLen);
    for (let b = 0; b < B; b++) X.set(val[i0 + b].X, b * xLen);
    const fu = await fuseResiduals(X, B, h, w, weights.unaryW, weights.unaryB[0], {
      ratio: cfg.self_ratio,
      method: cfg.residual_method,
      engine: "webgpu", // as the training step's fusion (lib/train/run.ts)
    });
    const logits = await head.logits(fu.Z, fu.refMask, B, h, w); // (nHeads, B, L)
    for (let b = 0; b < B; b++) {
      let mx = -Infinity;
      for (let p = 0; p < L; p++) {
        let s = 0;
        for (let k = 0; k < nH; k++) s += 1 / (1 + Math.exp(-logits[(k * B + b) * L + p]));
        const v = s / nH;
        maps[(i0 + b) * L + p] = v;
        if (v > mx) mx = v;
      }
      scores[i0 + b] = mx;
    }
  }
  const snarm = gridMetrics(val, maps, scores, h, w);
  return { step, snarm, score: metricsMean(snarm) };
}

/**
 * Blend of the SNARM head's map with the bank-only map, chosen on the validation split (our
 * extension, not in the official code; λ = 0 is the official SNARM output, spec §7):
 *
 *   map = (1 − λ)·(M_head − μ_head)/σ_head + λ·(M_bank − μ_bank)/σ_bank
 *
 * with M_head the smoothed mean-of-sigmoids map (spec §6–7), M_bank the smoothed inter-residual
 * norm map (spec §7, bank-only), μ/σ the mean and standard deviation of each map over every pixel
 * of the *clean* validation images (the z-scores put both maps on one scale), and λ chosen from
 * {@link BLEND_LAMBDAS} on the validation images (clean + synthetic anomalies; the mask of a
 * synthetic sample is its grid target ≥ 0.5, upsampled by blocks) by the **dominance rule**
 * ({@link selectLambda}): the candidate whose worst metric margin over bank-only (λ = 1) is the
 * largest, i.e. the blend that comes closest to beating the bank on every metric (the goal SNARM
 * is held to); ties go to the better mean. The rule runs twice, once per metric group, because the
 * groups depend on disjoint outputs: λ (`lambda`) of the **map** on the four pixel metrics
 * (P-AUROC, P-AP, P-F1max, AUPRO: they see only the map), λ_img (`imageLambda`) of the **image
 * score** on the three image metrics (I-AUROC, I-AP, I-F1max: they see only the score). The image
 * score is the max of the 16×16 average pool (spec §7) of the λ_img blend, which is the map's own
 * score when λ_img = λ. Both maps are linear in the same way after smoothing, so blending smoothed
 * maps equals smoothing the blend.
 * @module
 */
import type { Head } from "../model/head.ts";
import { imageScore } from "../maps/mod.ts";
import { computeMetrics, type MetricKey, type Metrics } from "../metrics/compute.ts";
import type { TrainSample } from "../train/samples.ts";
import { gridTruth, metricsMean, quiet } from "../train/validate.ts";
import { channelsFirstNorms, scorePatchMap } from "../maps/bank.ts";

/** Candidate weights of the bank map (λ = 1, bank-only, is not a candidate: the head always counts). */
export const BLEND_LAMBDAS: readonly number[] = [0, 0.25, 0.5, 0.75];

/** The metrics that see only the image score. */
export const IMAGE_METRICS: readonly MetricKey[] = ["image_auroc", "image_ap", "image_f1max"];
/** The metrics that see only the map. */
export const PIXEL_METRICS: readonly MetricKey[] = [
  "pixel_auroc",
  "pixel_ap",
  "pixel_f1max",
  "aupro",
];

/** A chosen blend (stored in a fitted head's metadata as `snarm_blend`). */
export interface MapBlend {
  /** Weight of the bank map in the anomaly map, in [0, 1). */
  lambda: number;
  /**
   * Weight of the bank map in the blend whose max-pool is the image score, in [0, 1); absent
   * (heads fitted before FIT_VERSION 6): `lambda`.
   */
  imageLambda?: number;
  headMean: number;
  headStd: number;
  bankMean: number;
  bankStd: number;
}

/**
 * Blend two `(H, W)` maps (or any equal-length maps) with {@link MapBlend}.
 * @throws {RangeError} on different lengths.
 */
export function blendMaps(head: Float32Array, bank: Float32Array, b: MapBlend): Float32Array {
  if (head.length !== bank.length) {
    throw new RangeError(`blendMaps: head map ${head.length} vs bank map ${bank.length} values`);
  }
  const out = new Float32Array(head.length);
  const a = (1 - b.lambda) / b.headStd, c = b.lambda / b.bankStd;
  for (let i = 0; i < out.length; i++) {
    out[i] = a * (head[i] - b.headMean) + c * (bank[i] - b.bankMean);
  }
  return out;
}

/**
 * The λ blend of one image's maps (`size × size`) and the image score: the max-pool of the λ_img
 * blend (the map's own when λ_img = λ).
 * @throws {RangeError} on different lengths.
 */
export function blendScored(
  head: Float32Array,
  bank: Float32Array,
  b: MapBlend,
  size: number,
): { map: Float32Array; score: number } {
  const map = blendMaps(head, bank, b);
  const imageLambda = b.imageLambda ?? b.lambda;
  const scored = imageLambda === b.lambda
    ? map
    : blendMaps(head, bank, { ...b, lambda: imageLambda });
  return { map, score: imageScore(scored, size, size) };
}

function meanStd(maps: Float32Array[]): { mean: number; std: number } {
  let n = 0, s = 0, ss = 0;
  for (const m of maps) {
    for (const v of m) {
      s += v;
      ss += v * v;
      n++;
    }
  }
  const mean = s / n;
  return { mean, std: Math.sqrt(Math.max(ss / n - mean * mean, 0)) || 1 };
}

/** One candidate's validation result: the seven metrics, their mean, its worst margin over bank-only. */
export interface BlendCandidate {
  lambda: number;
  /** Mean of the seven metrics. */
  score: number;
  /** min over the seven metrics of (metric(λ) − metric(bank-only)); 0 for bank-only itself (−∞ without a finite metric). */
  margin: number;
  /** The same margin over the three image metrics (what chose λ_img). */
  imageMargin: number;
  /** The same margin over the four pixel metrics (what chose λ). */
  pixelMargin: number;
  metrics: Metrics;
}

/** Result of {@link chooseBlend}. */
export interface BlendChoice {
  blend: MapBlend;
  /** Validation results of every candidate λ and of bank-only (λ = 1, for reference). */
  table: BlendCandidate[];
  /** The rule that chose λ and λ_img (see {@link selectLambda}). */
  rule: "dominance per metric group";
}

/**
 * The dominance rule: among the candidates (λ < 1) of a validation table, the one with the largest
 * worst-metric margin over bank-only; ties (margins within 1e-9) go to the higher mean score, then
 * to the larger λ. Metrics that are not finite on either side are left out of the margin.
 * @param keys the metrics that count (default all seven; {@link IMAGE_METRICS} or
 *   {@link PIXEL_METRICS} for one group).
 * @throws {Error} when the table lacks bank-only (λ = 1) or every candidate.
 * @example
 * ```ts
 * import { selectLambda } from "./blend.ts";
 * const m = (a: number, b: number) => ({ pixel_ap: a, aupro: b });
 * const t = [
 *   { lambda: 0, metrics: m(0.5, 0.7) },
 *   { lambda: 0.5, metrics: m(0.45, 0.81) },
 *   { lambda: 1, metrics: m(0.4, 0.8) },
 * ];
 * // λ 0 has the best P-AP but loses AUPRO to the bank; λ 0.5 beats the bank on both
 * if (selectLambda(t as never) !== 0.5) throw new Error("dominance rule");
 * // on P-AP alone, λ 0 wins
 * if (selectLambda(t as never, ["pixel_ap"]) !== 0) throw new Error("one metric");
 * ```
 */
export function selectLambda(
  table: readonly Pick<BlendCandidate, "lambda" | "metrics">[],
  keys?: readonly MetricKey[],
): number {
  const bank = table.find((t) => t.lambda === 1);
  const cands = table.filter((t) => t.lambda < 1);
  if (!bank || !cands.length) throw new Error("selectLambda: needs bank-only (λ 1) and candidates");
  const pick = (m: Metrics) => pickMetrics(m, keys);
  const rank = cands.map((t) => ({
    lambda: t.lambda,
    margin: blendMargin(pick(t.metrics), pick(bank.metrics)),
    score: metricsMean(pick(t.metrics)),
  }));
  rank.sort((a, b) =>
    Math.abs(a.margin - b.margin) > 1e-9
      ? b.margin - a.margin
      : Math.abs(a.score - b.score) > 1e-12
      ? b.score - a.score
      : b.lambda - a.lambda
  );
  return rank[0].lambda;
}

/** The metrics of `m` named by `keys` (all of them without `keys`). */
function pickMetrics(m: Metrics, keys?: readonly MetricKey[]): Metrics {
  return keys ? Object.fromEntries(keys.map((k) => [k, m[k]])) as Metrics : m;
}

/**
 * min over the metrics finite on both sides of (m − bank); −∞ when none is (no evidence never
 * wins {@link selectLambda}).
 */
export function blendMargin(m: Metrics, bank: Metrics): number {
  let worst = Infinity, n = 0;
  for (const [k, v] of Object.entries(m)) {
    const b = (bank as unknown as Record<string, number>)[k];
    if (Number.isFinite(v) && Number.isFinite(b)) {
      worst = Math.min(worst, v - b);
      n++;
    }
  }
  return n ? worst : -Infinity;
}

/**
 * Choose λ on validation samples: the head's and the bank's full-resolution maps of each sample,
 * z-score statistics from the clean samples, then the seven metrics of every candidate.
 * @param head the fitted head; @param val validation samples (X `(2C, h, w)` float16, grid
 *   target); @param size map side in px (the crop).
 * @throws {Error} without clean or without synthetic validation samples.
 */
export async function chooseBlend(
  head: Head,
  val: readonly TrainSample[],
  C: number,
  h: number,
  w: number,
  size: number,
): Promise<BlendChoice> {
  if (!val.some((s) => s.synthetic) || !val.some((s) => !s.synthetic)) {
    throw new Error("chooseBlend: needs clean and synthetic validation samples");
  }
  const L = h * w, px = size * size;
  const headMaps: Float32Array[] = [], bankMaps: Float32Array[] = [];
  for (const s of val) {
    const X = Float32Array.from(s.X);
    const out = await head.forward(X, 1, h, w, { outSize: [size, size] });
    headMaps.push(out.smoothed);
    // bank map: ‖r‖₂ per patch over the inter-residual channels [0, C) of X
    const norms = channelsFirstNorms(X.subarray(0, C * L), { B: 1, C, h, w });
    bankMaps.push(scorePatchMap(norms, h, w, size).map);
  }
  const clean = val.map((s, i) => (s.synthetic ? -1 : i)).filter((i) => i >= 0);
  const hs = meanStd(clean.map((i) => headMaps[i]));
  const bs = meanStd(clean.map((i) => bankMaps[i]));
  // the validation truth at the grid (lib/train/validate.ts), upsampled by blocks to the maps
  const { masks: grid, labels } = gridTruth(val, L);
  const masks = new Uint8Array(val.length * px);
  for (let i = 0; i < val.length; i++) {
    for (let y = 0; y < size; y++) {
      const gy = Math.min(h - 1, Math.floor((y * h) / size));
      for (let x = 0; x < size; x++) {
        const gx = Math.min(w - 1, Math.floor((x * w) / size));
        masks[i * px + y * size + x] = grid[i * L + gy * w + gx];
      }
    }
  }
  const stats = (lambda: number): MapBlend => ({
    lambda,
    headMean: hs.mean,
    headStd: hs.std,
    bankMean: bs.mean,
    bankStd: bs.std,
  });
  /** The seven metrics of blend λ over every validation sample. */
  const evaluate = (lambda: number): Metrics => {
    const b = stats(lambda), maps = new Float32Array(val.length * px);
    const scores = new Float32Array(val.length);
    val.forEach((_, i) => {
      const r = blendScored(headMaps[i], bankMaps[i], b, size);
      scores[i] = r.score;
      maps.set(r.map, i * px);
    });
    return quiet(() =>
      computeMetrics({
        imageScores: scores,
        imageLabels: labels,
        pixelScores: maps,
        pixelMasks: masks,
        shape: [val.length, size, size],
      })
    );
  };
  const scored = [...BLEND_LAMBDAS, 1].map((lambda) => ({ lambda, metrics: evaluate(lambda) }));
  const bank = scored[scored.length - 1].metrics;
  const table: BlendCandidate[] = scored.map((t) => ({
    ...t,
    score: metricsMean(t.metrics),
    margin: blendMargin(t.metrics, bank),
    imageMargin: blendMargin(pickMetrics(t.metrics, IMAGE_METRICS), bank),
    pixelMargin: blendMargin(pickMetrics(t.metrics, PIXEL_METRICS), bank),
  }));
  return {
    blend: {
      ...stats(selectLambda(table, PIXEL_METRICS)),
      imageLambda: selectLambda(table, IMAGE_METRICS),
    },
    table,
    rule: "dominance per metric group",
  };
}

/**
 * How a blend reads in a summary: `λ = 0.75` or `λ = 0.75 (image score: λ 0.5)`.
 * @example
 * ```ts
 * import { blendLabel } from "./blend.ts";
 * const b = { lambda: 0.75, imageLambda: 0.5, headMean: 0, headStd: 1, bankMean: 0, bankStd: 1 };
 * if (blendLabel(b) !== "λ = 0.75 (image score: λ 0.5)") throw new Error(blendLabel(b));
 * ```
 */
export function blendLabel(b: MapBlend): string {
  const img = b.imageLambda ?? b.lambda;
  return `λ = ${b.lambda}${img === b.lambda ? "" : ` (image score: λ ${img})`}`;
}

/**
 * The blend a fitted head stores in its safetensors metadata (`snarm_blend`), or null (a head
 * without one scores with its own map: λ = 0).
 */
export function headBlend(meta: Record<string, string>): MapBlend | null {
  return meta.snarm_blend ? JSON.parse(meta.snarm_blend) as MapBlend : null;
}

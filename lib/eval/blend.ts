/**
 * Blend of the SNARM head's map with the bank-only map, chosen on the validation split (our
 * extension, not in the official code; λ = 0 is the official SNARM output, spec §7):
 *
 *   map = (1 − λ)·(M_head − μ_head)/σ_head + λ·(M_bank − μ_bank)/σ_bank
 *
 * with M_head the smoothed mean-of-sigmoids map (spec §6–7), M_bank the smoothed inter-residual
 * norm map (spec §7, bank-only), μ/σ the mean and standard deviation of each map over every pixel
 * of the *clean* validation images (the z-scores put both maps on one scale), and λ chosen from
 * {@link BLEND_LAMBDAS} by the mean of the seven metrics on the validation images (clean + synthetic
 * anomalies; the mask of a synthetic sample is its grid target ≥ 0.5, upsampled by blocks) with
 * the one-standard-error rule: the largest λ whose score is within one bootstrap standard error of
 * the best candidate's (synthetic validation defects favour the head, which learnt their kind). The
 * image score is the max of the 16×16 average pool of the blended map (spec §7). Both maps are
 * linear in the same way after smoothing, so blending smoothed maps equals smoothing the blend.
 * @module
 */
import type { Head } from "../model/head.ts";
import { imageScore } from "../maps/mod.ts";
import { computeMetrics, type Metrics } from "../metrics/compute.ts";
import type { TrainSample } from "../train/samples.ts";
import { metricsMean, quiet } from "../train/validate.ts";
import { scorePatchMap } from "./bank_only.ts";
import { mulberry32 } from "../train/grad/pointwise.ts";

/** Candidate weights of the bank map (λ = 1, bank-only, is not a candidate: the head always counts). */
export const BLEND_LAMBDAS: readonly number[] = [0, 0.25, 0.5, 0.75];

/** A chosen blend (stored in a fitted head's metadata as `snarm_blend`). */
export interface MapBlend {
  /** Weight of the bank map, in [0, 1). */
  lambda: number;
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

/** Blend and image score of one image's maps (`size × size`). */
export function blendScored(
  head: Float32Array,
  bank: Float32Array,
  b: MapBlend,
  size: number,
): { map: Float32Array; score: number } {
  const map = blendMaps(head, bank, b);
  return { map, score: imageScore(map, size, size) };
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

/** Result of {@link chooseBlend}. */
export interface BlendChoice {
  blend: MapBlend;
  /** Validation metrics of every candidate λ (and of bank-only, λ = 1, for reference). */
  table: Array<{ lambda: number; score: number; metrics: Metrics }>;
  /** The candidate with the best validation score. */
  best: number;
  /** Bootstrap standard error of that score (the one-SE rule's margin). */
  se: number;
}

/** Bootstrap resamples of the validation samples for the standard error. */
const BOOTSTRAP = 30;

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
    const norms = new Float32Array(L);
    for (let p = 0; p < L; p++) {
      let q = 0;
      for (let c = 0; c < C; c++) q += s.X[c * L + p] * s.X[c * L + p];
      norms[p] = Math.sqrt(q);
    }
    bankMaps.push(scorePatchMap(norms, h, w, size).map);
  }
  const clean = val.map((s, i) => (s.synthetic ? -1 : i)).filter((i) => i >= 0);
  const hs = meanStd(clean.map((i) => headMaps[i]));
  const bs = meanStd(clean.map((i) => bankMaps[i]));
  const masks = new Uint8Array(val.length * px);
  const labels = new Uint8Array(val.length);
  val.forEach((s, i) => {
    labels[i] = s.synthetic ? 1 : 0;
    for (let y = 0; y < size; y++) {
      const gy = Math.min(h - 1, Math.floor((y * h) / size));
      for (let x = 0; x < size; x++) {
        const gx = Math.min(w - 1, Math.floor((x * w) / size));
        masks[i * px + y * size + x] = s.target[gy * w + gx] >= 0.5 ? 1 : 0;
      }
    }
  });
  const stats = (lambda: number): MapBlend => ({
    lambda,
    headMean: hs.mean,
    headStd: hs.std,
    bankMean: bs.mean,
    bankStd: bs.std,
  });
  /** The seven metrics of blend λ over the samples `idx` (repeats allowed), every `step`-th pixel. */
  const evaluate = (lambda: number, idx: readonly number[], step: number): Metrics => {
    const b = stats(lambda), side = Math.ceil(size / step), q = side * side;
    const maps = new Float32Array(idx.length * q), m = new Uint8Array(idx.length * q);
    const scores = new Float32Array(idx.length), lab = new Uint8Array(idx.length);
    idx.forEach((i, j) => {
      const r = blendScored(headMaps[i], bankMaps[i], b, size);
      scores[j] = r.score;
      lab[j] = labels[i];
      let o = j * q;
      for (let y = 0; y < size; y += step) {
        for (let x = 0; x < size; x += step, o++) {
          maps[o] = r.map[y * size + x];
          m[o] = masks[i * px + y * size + x];
        }
      }
    });
    return quiet(() =>
      computeMetrics({
        imageScores: scores,
        imageLabels: lab,
        pixelScores: maps,
        pixelMasks: m,
        shape: [idx.length, side, side],
      })
    );
  };
  const all = val.map((_, i) => i);
  const table: BlendChoice["table"] = [...BLEND_LAMBDAS, 1].map((lambda) => {
    const metrics = evaluate(lambda, all, 1);
    return { lambda, score: metricsMean(metrics), metrics };
  });
  const cands = table.filter((t) => t.lambda < 1);
  const top = cands.reduce((a, t) => (t.score > a.score ? t : a));
  // One-standard-error rule (Breiman et al.): the standard error of the best candidate's score
  // from a seeded bootstrap over the validation samples (every 4th pixel per side); then the
  // candidate with the most bank weight whose score is within one SE of the best. Synthetic
  // validation defects favour the head (it was trained on their kind), so ties go to the bank.
  const rnd = mulberry32(0x5eed);
  const boot: number[] = [];
  for (let r = 0; r < BOOTSTRAP; r++) {
    const idx = all.map(() => Math.floor(rnd() * all.length));
    if (!idx.some((i) => labels[i]) || idx.every((i) => labels[i])) continue;
    boot.push(metricsMean(evaluate(top.lambda, idx, 4)));
  }
  const mean = boot.reduce((a, b) => a + b, 0) / Math.max(boot.length, 1);
  const se = boot.length > 1
    ? Math.sqrt(boot.reduce((a, b) => a + (b - mean) ** 2, 0) / (boot.length - 1))
    : 0;
  const chosen = cands.filter((t) => t.score >= top.score - se)
    .reduce((a, t) => (t.lambda > a.lambda ? t : a));
  return { blend: stats(chosen.lambda), table, best: top.lambda, se };
}

/**
 * The blend a fitted head stores in its safetensors metadata (`snarm_blend`), or null (a head
 * without one scores with its own map: λ = 0).
 */
export function headBlend(meta: Record<string, string>): MapBlend | null {
  return meta.snarm_blend ? JSON.parse(meta.snarm_blend) as MapBlend : null;
}

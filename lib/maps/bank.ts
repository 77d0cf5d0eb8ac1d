/**
 * Bank-only scoring (spec §3, §7): the per-patch anomaly score is the L2 norm of the signed
 * inter-residual r = mean(k nearest bank features) − f; the norm map is resized bilinearly to the
 * input size, smoothed with a Gaussian (σ = 4, per image) and pooled into the image score.
 * @module
 */
import type { FeatureGrid } from "../types.ts";
import { gaussianFilter, imageScore, resizeBilinear } from "./filters.ts";

/**
 * L2 norm of each patch's residual vector.
 * @param residual channels-last `(N, h, w, C)` inter-residual.
 * @returns `(N, h, w)` row-major f32 norms.
 */
export function residualNorms(residual: FeatureGrid): Float32Array {
  const { n, h, w, c, data } = residual;
  const out = new Float32Array(n * h * w);
  for (let p = 0; p < out.length; p++) {
    let s = 0;
    const o = p * c;
    for (let k = 0; k < c; k++) s += data[o + k] * data[o + k];
    out[p] = Math.sqrt(s);
  }
  return out;
}

/** An image's smoothed anomaly map and its image score. */
export interface ScoredMap {
  /** `(size, size)` row-major f32 smoothed anomaly map. */
  map: Float32Array;
  /** Max of the 16×16 average pool (stride 2) of `map` (spec §7). */
  score: number;
}

/**
 * Patch-score map → anomaly map and image score (spec §7): bilinear resize of the `(h, w)` map to
 * `(size, size)` with align_corners = true (as the official `pixel_forward` resizes its logits),
 * Gaussian σ (default 4, truncate 4, reflect) on this one image, then the image score.
 * @param patchMap `(h, w)` row-major f32.
 */
export function scorePatchMap(
  patchMap: Float32Array,
  h: number,
  w: number,
  size: number,
  sigma = 4,
): ScoredMap {
  const up = resizeBilinear(patchMap, h, w, size, size, true);
  const map = gaussianFilter(up, size, size, sigma);
  return { map, score: imageScore(map, size, size) };
}

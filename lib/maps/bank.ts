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

/**
 * L2 norm over channels of one image of a channels-last grid.
 * @param grid `(N, h, w, C)` channels-last. @returns `(h, w)` row-major f32.
 * @throws {RangeError} when `index` is outside 0…N−1.
 */
export function gridNorms(grid: FeatureGrid, index = 0): Float32Array {
  const { n, h, w, c, data } = grid;
  if (!Number.isInteger(index) || index < 0 || index >= n) {
    throw new RangeError(`gridNorms: image ${index} outside 0..${n - 1}`);
  }
  const n1 = h * w * c;
  return residualNorms({ n: 1, h, w, c, data: data.subarray(index * n1, (index + 1) * n1) });
}

/**
 * L2 norm over channels of one image of a channels-first `(B, C, h, w)` tensor.
 * @returns `(h, w)` row-major f32.
 * @throws {Error} when `data` is not `B·C·h·w` long or `index` is outside 0…B−1.
 */
export function channelsFirstNorms(
  data: Float32Array,
  shape: { B: number; C: number; h: number; w: number },
  index = 0,
): Float32Array {
  const { B, C, h, w } = shape;
  const L = h * w;
  if (data.length !== B * C * L) {
    throw new Error(`channelsFirstNorms: ${data.length} values, expected (${B}, ${C}, ${h}, ${w})`);
  }
  if (!Number.isInteger(index) || index < 0 || index >= B) {
    throw new RangeError(`channelsFirstNorms: image ${index} outside 0..${B - 1}`);
  }
  const acc = new Float64Array(L);
  for (let c = 0; c < C; c++) {
    const o = (index * C + c) * L;
    for (let p = 0; p < L; p++) acc[p] += data[o + p] * data[o + p];
  }
  const out = new Float32Array(L);
  for (let p = 0; p < L; p++) out[p] = Math.sqrt(acc[p]);
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

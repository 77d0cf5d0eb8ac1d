/**
 * Head logits → anomaly maps and image scores (spec §6 "Outputs" and §7), with lib/maps:
 * each logit map is bilinearly upsampled (align_corners = true) to the output size, passed
 * through a sigmoid and averaged over the heads (official `pixel_forward`); then a Gaussian
 * (σ = 4, truncate 4, reflect) per image and the image score = max of the 16×16 average pool with
 * stride 2 (official `predict_pixel`, smoothing per image instead of across the batch).
 * @module
 */
import { gaussianFilter, imageScore, resizeBilinear } from "./filters.ts";

/** Maps of B images. */
export interface HeadMaps {
  /** `(B, H, W)` mean over heads of sigmoid(upsampled logits). */
  pixelMap: Float32Array;
  /** `(B, H, W)` Gaussian-smoothed (σ = 4) pixel map, per image. */
  smoothed: Float32Array;
  /** `(B)` image scores. */
  imageScores: Float32Array;
}

/**
 * Check head logits `(nHeads, B, h·w)` before mapping them (CPU and GPU map programs).
 * @throws {Error} naming head_logits on a wrong length.
 */
export function checkHeadLogits(
  logits: Float32Array,
  nHeads: number,
  B: number,
  h: number,
  w: number,
): void {
  if (logits.length !== nHeads * B * h * w) {
    throw new Error(`head_logits: ${logits.length} values, expected (${nHeads}, ${B}, ${h}, ${w})`);
  }
}

/**
 * @param logits `(nHeads, B, h·w)` row-major f32.
 * @param H output height, @param W output width (the official input image size, 392×392).
 * @param sigma Gaussian σ (4).
 * @throws {Error} on a size mismatch or an output smaller than the 16×16 pool.
 */
export function headMaps(
  logits: Float32Array,
  nHeads: number,
  B: number,
  h: number,
  w: number,
  H: number,
  W: number,
  sigma = 4,
): HeadMaps {
  checkHeadLogits(logits, nHeads, B, h, w);
  const L = h * w;
  const pixelMap = new Float32Array(B * H * W);
  const smoothed = new Float32Array(B * H * W);
  const imageScores = new Float32Array(B);
  const acc = new Float64Array(H * W);
  for (let b = 0; b < B; b++) {
    acc.fill(0);
    for (let j = 0; j < nHeads; j++) {
      const up = resizeBilinear(
        logits.subarray((j * B + b) * L, (j * B + b + 1) * L),
        h,
        w,
        H,
        W,
        true,
      );
      for (let i = 0; i < up.length; i++) acc[i] += 1 / (1 + Math.exp(-up[i]));
    }
    const pm = pixelMap.subarray(b * H * W, (b + 1) * H * W);
    for (let i = 0; i < pm.length; i++) pm[i] = acc[i] / nHeads;
    const sm = gaussianFilter(pm, H, W, sigma);
    smoothed.set(sm, b * H * W);
    imageScores[b] = imageScore(sm, H, W);
  }
  return { pixelMap, smoothed, imageScores };
}

/**
 * Perlin-noise anomaly masks (snarm-method.md §8, MemSeg/DRAEM style): 2-D gradient noise
 * (`rand_perlin_2d_np` of DRAEM, as MemSeg uses it) with 2^a × 2^b lattice cells, rotated by a random
 * angle (imgaug `Affine(rotate=(-90, 90))`: bilinear, constant fill 0), thresholded at 0.5.
 * @module
 */
import type { Rng } from "../bank/coreset.ts";

/** DRAEM's fade curve f(t) = 6t⁵ − 15t⁴ + 10t³ (improved Perlin noise). */
export function perlinFade(t: number): number {
  return t * t * t * (t * (t * 6 - 15) + 10);
}

function checkSize(h: number, w: number, what: string): void {
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1) {
    throw new RangeError(`${what}: image size ${h}×${w} must be positive integers`);
  }
}

/**
 * 2-D Perlin gradient noise, DRAEM `rand_perlin_2d_np(shape=(H, W), res=(resY, resX))`:
 * a `(resY+1, resX+1)` lattice of unit gradients (cos θ, sin θ), θ ~ U(0, 2π) drawn row-major from
 * `rng`; pixel (y, x) lies in cell (⌊y·resY/H⌋, ⌊x·resX/W⌋) at fractional offset (ty, tx); the four
 * corner dot products are blended with {@link perlinFade} first along y, then along x, and scaled
 * by √2. When H, W are multiples of resY, resX this equals DRAEM exactly (up to float rounding);
 * other sizes (e.g. 392 with res 32), which DRAEM rejects, use the same formula with uneven cells.
 * @param resY lattice cells along y (rows), positive integer.
 * @param resX lattice cells along x (columns), positive integer.
 * @returns `(H, W)` row-major f32 noise, roughly in [−1, 1].
 * @throws {RangeError} on non-positive or non-integer sizes.
 */
export function randPerlin2d(
  h: number,
  w: number,
  resY: number,
  resX: number,
  rng: Rng,
): Float32Array {
  checkSize(h, w, "randPerlin2d");
  if (!Number.isInteger(resY) || !Number.isInteger(resX) || resY < 1 || resX < 1) {
    throw new RangeError(`randPerlin2d: lattice ${resY}×${resX} must be positive integers`);
  }
  const gw = resX + 1;
  const gy = new Float64Array((resY + 1) * gw);
  const gx = new Float64Array((resY + 1) * gw);
  for (let i = 0; i < gy.length; i++) {
    const a = 2 * Math.PI * rng.nextFloat();
    gy[i] = Math.cos(a); // component along axis 0 (y), as DRAEM's gradients[..., 0]
    gx[i] = Math.sin(a);
  }
  const out = new Float32Array(h * w);
  const cellX = new Int32Array(w);
  const tX = new Float64Array(w);
  for (let x = 0; x < w; x++) {
    const c = Math.min(Math.floor((x * resX) / w), resX - 1);
    cellX[x] = c;
    tX[x] = (x * resX - c * w) / w;
  }
  for (let y = 0; y < h; y++) {
    const iy = Math.min(Math.floor((y * resY) / h), resY - 1);
    const ty = (y * resY - iy * h) / h;
    const fy = perlinFade(ty);
    const r0 = iy * gw, r1 = (iy + 1) * gw;
    for (let x = 0; x < w; x++) {
      const ix = cellX[x], tx = tX[x];
      const n00 = gy[r0 + ix] * ty + gx[r0 + ix] * tx;
      const n10 = gy[r1 + ix] * (ty - 1) + gx[r1 + ix] * tx;
      const n01 = gy[r0 + ix + 1] * ty + gx[r0 + ix + 1] * (tx - 1);
      const n11 = gy[r1 + ix + 1] * (ty - 1) + gx[r1 + ix + 1] * (tx - 1);
      const a = n00 + fy * (n10 - n00);
      const b = n01 + fy * (n11 - n01);
      out[y * w + x] = Math.SQRT2 * (a + perlinFade(tx) * (b - a));
    }
  }
  return out;
}

/**
 * Rotate an `(H, W, C)` image about its centre ((W−1)/2, (H−1)/2), cv2-like: each output pixel
 * samples the source at the inverse-rotated position with bilinear interpolation, neighbours outside
 * the image count as `fill` (cv2 `warpAffine(INTER_LINEAR, BORDER_CONSTANT)`, but in f64 instead of
 * cv2's 1/32-pixel fixed-point tables). Angle convention of `cv2.getRotationMatrix2D`: positive =
 * counter-clockwise as displayed (y down).
 * @param src `(H, W, C)` row-major values (f32 or u8).
 * @param degrees rotation angle in degrees.
 * @returns `(H, W, C)` row-major f32 (not rounded).
 * @throws {RangeError} on a size mismatch.
 */
export function rotateBilinear(
  src: ArrayLike<number>,
  h: number,
  w: number,
  c: number,
  degrees: number,
  fill = 0,
): Float32Array {
  checkSize(h, w, "rotateBilinear");
  if (src.length !== h * w * c) {
    throw new RangeError(`rotateBilinear: ${src.length} values; expected ${h}×${w}×${c}`);
  }
  const rad = (degrees * Math.PI) / 180;
  const ca = Math.cos(rad), sa = Math.sin(rad);
  const cx = (w - 1) / 2, cy = (h - 1) / 2;
  const out = new Float32Array(h * w * c);
  const at = (yy: number, xx: number, ch: number) =>
    yy >= 0 && yy < h && xx >= 0 && xx < w ? src[(yy * w + xx) * c + ch] : fill;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      // Inverse of M = [[cos, sin], [−sin, cos]] (getRotationMatrix2D) applied about the centre.
      const sx = ca * (x - cx) - sa * (y - cy) + cx;
      const sy = sa * (x - cx) + ca * (y - cy) + cy;
      const x0 = Math.floor(sx), y0 = Math.floor(sy);
      const fx = sx - x0, fy = sy - y0;
      const o = (y * w + x) * c;
      if (x0 < -1 || y0 < -1 || x0 >= w || y0 >= h) {
        for (let ch = 0; ch < c; ch++) out[o + ch] = fill;
        continue;
      }
      for (let ch = 0; ch < c; ch++) {
        const top = at(y0, x0, ch) * (1 - fx) + at(y0, x0 + 1, ch) * fx;
        const bot = at(y0 + 1, x0, ch) * (1 - fx) + at(y0 + 1, x0 + 1, ch) * fx;
        out[o + ch] = top * (1 - fy) + bot * fy;
      }
    }
  }
  return out;
}

/** Options of {@link perlinMask} (defaults = MemSeg / snarm-method.md §8). */
export interface PerlinMaskOptions {
  /** Smallest log2 lattice scale per axis (default 0, MemSeg `min_perlin_scale`). */
  minScaleLog2?: number;
  /** Largest log2 lattice scale per axis, inclusive (default 5: MemSeg `perlin_scale = 6` exclusive). */
  maxScaleLog2?: number;
  /** Rotation drawn from U(−maxAngle, maxAngle) degrees (default 90). */
  maxAngle?: number;
  /** Mask = rotated noise > threshold (default 0.5). */
  threshold?: number;
  /** Draws before giving up on an empty mask (default 100). */
  maxTries?: number;
}

/** A Perlin mask and the draws that made it. */
export interface PerlinMask {
  /** `(H, W)` row-major u8, 0/1, at least one 1. */
  mask: Uint8Array;
  /** Lattice cells along y, 2^a. */
  scaleY: number;
  /** Lattice cells along x, 2^b. */
  scaleX: number;
  /** Rotation angle in degrees. */
  angle: number;
  /** Number of draws made (1 = the first mask was non-empty). */
  tries: number;
}

/**
 * MemSeg `generate_perlin_noise_mask` (snarm-method.md §8): per try, a = U{min..max} (y scale),
 * b = U{min..max} (x scale), the Perlin lattice gradients ({@link randPerlin2d}), then the angle
 * U(−maxAngle, maxAngle); the noise is rotated ({@link rotateBilinear}, fill 0) and thresholded
 * (`> threshold`). Empty masks are redrawn with the next draws of `rng`.
 * @returns the mask (binary, non-empty) and its parameters.
 * @throws {RangeError} on bad options; {@link Error} when `maxTries` draws all gave empty masks.
 */
export function perlinMask(
  h: number,
  w: number,
  rng: Rng,
  opts: PerlinMaskOptions = {},
): PerlinMask {
  checkSize(h, w, "perlinMask");
  const lo = opts.minScaleLog2 ?? 0;
  const hi = opts.maxScaleLog2 ?? 5;
  const maxAngle = opts.maxAngle ?? 90;
  const thr = opts.threshold ?? 0.5;
  const maxTries = opts.maxTries ?? 100;
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 0 || hi < lo || hi > 16) {
    throw new RangeError(
      `perlinMask: scale exponents ${lo}..${hi} must be integers, 0 ≤ min ≤ max ≤ 16`,
    );
  }
  if (!Number.isInteger(maxTries) || maxTries < 1) {
    throw new RangeError(`perlinMask: maxTries=${maxTries} must be a positive integer`);
  }
  for (let t = 1; t <= maxTries; t++) {
    const scaleY = 2 ** (lo + rng.nextInt(hi - lo + 1));
    const scaleX = 2 ** (lo + rng.nextInt(hi - lo + 1));
    const noise = randPerlin2d(h, w, scaleY, scaleX, rng);
    const angle = (2 * rng.nextFloat() - 1) * maxAngle;
    const rot = rotateBilinear(noise, h, w, 1, angle, 0);
    const mask = new Uint8Array(h * w);
    let area = 0;
    for (let i = 0; i < mask.length; i++) {
      if (rot[i] > thr) {
        mask[i] = 1;
        area++;
      }
    }
    if (area > 0) return { mask, scaleY, scaleX, angle, tries: t };
  }
  throw new Error(
    `perlinMask: ${maxTries} draws gave only empty masks for a ${h}×${w} image at threshold ${thr}` +
      ` (noise never exceeds it?): lower the threshold or raise maxTries`,
  );
}

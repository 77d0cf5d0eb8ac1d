/**
 * SNARM input preprocessing, as the official `dataset/preprocess_*.py` + test loader (spec §11, §1):
 *
 * 1. cv2 INTER_LINEAR resize to `resize × resize` (default 448; {@link resizeLinearU8}, u8 result).
 * 2. Centre crop to `crop × crop` (default 392), offset `round((resize - crop) / 2)` as torchvision
 *    `CenterCrop` (Python `round`, half to even; 28 for the defaults).
 * 3. Image: `ToTensor` (`v / 255` in f32) then `Normalize` with ImageNet mean (0.485, 0.456, 0.406)
 *    and std (0.229, 0.224, 0.225), each step rounded to f32 as torch does.
 * 4. Mask: gray u8 through the same resize and crop, then `>= 127` → 1 else 0 (the official
 *    preprocessing scripts' rule for 0/255 masks). Masks in another convention (0/1, label maps)
 *    are detected per file ({@link detectMaskConvention}) and binarised by "nonzero" first.
 *
 * Grayscale sources are already replicated to RGB by the decoder (`lib/io/image.ts`).
 * @module
 */

import type { RgbImage } from "../io/image.ts";
import { resizeLinearU8 } from "./resize.ts";
import { OptionError } from "../util/errors.ts";

/** Geometry options. Defaults: `{ resize: 448, crop: 392 }` (spec §11). */
export interface PreprocessOptions {
  /** Side of the square cv2 resize (px). */
  resize?: number;
  /** Side of the square centre crop (px), `<= resize`. */
  crop?: number;
}

/** How a ground-truth mask file is binarised before the geometry is applied. */
export type MaskRule =
  /** Detect per file ({@link detectMaskConvention}): 0/255 → `"ge127"`, else `"nonzero"`. */
  | "auto"
  /** Values 0/255 (MVTec AD, magnetic tile): resize, then the official `>= 127`. */
  | "ge127"
  /** Label maps or 0/1 masks (raw VisA: 0 background, small positive ids): `!= 0` → 255 first. */
  | "nonzero";

/**
 * A mask file's convention, from its largest value: `"0/255"` (max ≥ 127: the official
 * `>= 127` after resizing applies), `"0/1"` (max 1), `"labels"` (max in 2..126: a label map),
 * `"empty"` (all zero). With max < 127 the official threshold would erase every defect pixel, so
 * such masks are binarised by "nonzero".
 */
export type MaskConvention = "0/255" | "0/1" | "labels" | "empty";

/** The convention of a gray mask (see {@link MaskConvention}). */
export function detectMaskConvention(gray: Uint8Array): MaskConvention {
  let max = 0;
  for (let i = 0; i < gray.length; i++) if (gray[i] > max) max = gray[i];
  return max === 0 ? "empty" : max === 1 ? "0/1" : max < 127 ? "labels" : "0/255";
}

/** ImageNet normalisation constants (torchvision `Normalize`, spec §1). */
export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
/** ImageNet normalisation constants (torchvision `Normalize`, spec §1). */
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

/** Resolved geometry with defaults applied and checked. */
export function resolveGeometry(opts: PreprocessOptions = {}): { resize: number; crop: number } {
  const resize = opts.resize ?? 448;
  const crop = opts.crop ?? 392;
  if (!Number.isInteger(resize) || resize <= 0 || !Number.isInteger(crop) || crop <= 0) {
    throw new RangeError(`preprocess: resize ${resize} and crop ${crop} must be positive integers`);
  }
  if (crop > resize) {
    throw new RangeError(`preprocess: crop ${crop} is larger than resize ${resize}`);
  }
  return { resize, crop };
}

/** Largest crop size `runGeometry` accepts (px). */
export const MAX_IMAGE_SIZE = 4096;

/**
 * The geometry of an eval or training run: crop = `imageSize` (default 392, a multiple of 8 in
 * [32, {@link MAX_IMAGE_SIZE}]), resize (default round(crop · 448 / 392), the official ratio; at
 * least the crop, at most 2·{@link MAX_IMAGE_SIZE}) and the patch grid crop / 8.
 * @throws {OptionError} naming `imageSize` or `resize`.
 */
export function runGeometry(
  imageSize?: number,
  resize?: number,
): { size: number; grid: number; geometry: { resize: number; crop: number } } {
  const size = imageSize ?? 392;
  if (!Number.isInteger(size) || size < 32 || size % 8 !== 0 || size > MAX_IMAGE_SIZE) {
    throw new OptionError(
      "imageSize",
      `must be a multiple of 8 in [32, ${MAX_IMAGE_SIZE}], got ${imageSize}`,
    );
  }
  const r = resize ?? Math.round((size * 448) / 392);
  if (!Number.isInteger(r) || r < size || r > 2 * MAX_IMAGE_SIZE) {
    throw new OptionError(
      "resize",
      `must be an integer in [the crop size ${size}, ${2 * MAX_IMAGE_SIZE}], got ${resize}`,
    );
  }
  return { size, grid: size / 8, geometry: { resize: r, crop: size } };
}

/** Python `round` (half to even). */
function pyRound(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Top/left offset of the centre crop: `round((size - crop) / 2)` (torchvision `CenterCrop`). */
export function centerCropOffset(size: number, crop: number): number {
  return pyRound((size - crop) / 2);
}

/** Crop a `(size, size, C)` u8 image to `(crop, crop, C)` at the centre. */
function centerCrop(src: Uint8Array, size: number, channels: number, crop: number): Uint8Array {
  const off = centerCropOffset(size, crop);
  const out = new Uint8Array(crop * crop * channels);
  const row = crop * channels;
  for (let y = 0; y < crop; y++) {
    const s = ((y + off) * size + off) * channels;
    out.set(src.subarray(s, s + row), y * row);
  }
  return out;
}

/**
 * Geometric part only: cv2 bilinear resize then centre crop, for overlays and for
 * {@link normalizeImageNet}.
 * @param img decoded RGB image, `data` `(H, W, 3)` u8.
 * @returns `(crop, crop, 3)` row-major u8 RGB.
 */
export function preprocessRgb(img: RgbImage, opts: PreprocessOptions = {}): Uint8Array {
  const { resize, crop } = resolveGeometry(opts);
  const r = resizeLinearU8(img.data, img.width, img.height, 3, resize, resize);
  return centerCrop(r, resize, 3, crop);
}

let lut: Float32Array | null = null;
/** Per channel, the normalised f32 value of each u8 level: `((v / 255) - mean) / std`. */
function normLut(): Float32Array {
  if (lut) return lut;
  lut = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    const m = Math.fround(IMAGENET_MEAN[c]);
    const s = Math.fround(IMAGENET_STD[c]);
    for (let v = 0; v < 256; v++) {
      lut[c * 256 + v] = Math.fround(Math.fround(Math.fround(v / 255) - m) / s);
    }
  }
  return lut;
}

/**
 * ToTensor + ImageNet Normalize of a u8 RGB image.
 * @param rgb `(H, W, 3)` row-major u8 RGB.
 * @returns `(3, H, W)` row-major f32 (CHW), roughly in [-2.12, 2.64].
 * @throws {RangeError} when `rgb.length !== width * height * 3`.
 */
export function normalizeImageNet(rgb: Uint8Array, width: number, height: number): Float32Array {
  const n = width * height;
  if (rgb.length !== n * 3) {
    throw new RangeError(`normalize: ${rgb.length} bytes; expected ${height}x${width}x3`);
  }
  const t = normLut();
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    out[i] = t[rgb[3 * i]];
    out[n + i] = t[256 + rgb[3 * i + 1]];
    out[2 * n + i] = t[512 + rgb[3 * i + 2]];
  }
  return out;
}

/**
 * Full image preprocessing (spec §11 + §1).
 * @returns `image`: `(3, crop, crop)` CHW f32 normalised; `rgb`: `(crop, crop, 3)` u8 RGB crop.
 */
export function preprocessImage(
  img: RgbImage,
  opts: PreprocessOptions = {},
): { image: Float32Array; rgb: Uint8Array } {
  const { crop } = resolveGeometry(opts);
  const rgb = preprocessRgb(img, opts);
  return { image: normalizeImageNet(rgb, crop, crop), rgb };
}

/**
 * Ground-truth mask preprocessing: binarisation by `rule` (`"auto"`: by the file's convention,
 * {@link detectMaskConvention}), cv2 bilinear resize of the gray values 0..255, centre crop, then
 * the official `>= 127` → 1.
 * @param gray `(H, W)` row-major u8 gray mask.
 * @returns `(crop, crop)` row-major u8 with values 0/1.
 * @throws {RangeError} when `gray.length !== width * height`.
 */
export function preprocessMask(
  gray: Uint8Array,
  width: number,
  height: number,
  opts: PreprocessOptions = {},
  rule: MaskRule = "auto",
): Uint8Array {
  const { resize, crop } = resolveGeometry(opts);
  if (gray.length !== width * height) {
    throw new RangeError(`mask: ${gray.length} bytes; expected ${height}x${width}`);
  }
  const nonzero = rule === "nonzero" ||
    (rule === "auto" && detectMaskConvention(gray) !== "0/255");
  const src = nonzero ? gray.map((v) => (v !== 0 ? 255 : 0)) : gray;
  const r = centerCrop(resizeLinearU8(src, width, height, 1, resize, resize), resize, 1, crop);
  for (let i = 0; i < r.length; i++) r[i] = r[i] >= 127 ? 1 : 0;
  return r;
}

/** The geometry recorded in a head's metadata (`image_size`, `resize`), or null when absent. */
export function headGeometry(
  meta: Record<string, string>,
): { resize: number; crop: number } | null {
  if (meta.image_size === undefined) return null;
  const crop = Number(meta.image_size);
  const resize = meta.resize !== undefined ? Number(meta.resize) : Math.round((crop * 448) / 392);
  return { resize, crop };
}

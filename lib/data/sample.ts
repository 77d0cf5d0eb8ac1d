/**
 * Load one dataset record as model input: decoded, preprocessed image and its ground-truth mask
 * (spec §11 geometry, §1 normalisation, §7 mask binarisation).
 * @module
 */

import { readImage, toGray } from "../io/image.ts";
import type { ImageRecord } from "./dataset.ts";
import { DatasetError } from "./dataset.ts";
import {
  detectMaskConvention,
  type MaskConvention,
  preprocessImage,
  preprocessMask,
  type PreprocessOptions,
  resolveGeometry,
} from "./preprocess.ts";

/** A preprocessed record. */
export interface Sample {
  /** The record this sample was loaded from. */
  record: ImageRecord;
  /** `(3, crop, crop)` row-major f32, ImageNet-normalised RGB (CHW): the backbone input. */
  image: Float32Array;
  /** `(crop, crop, 3)` row-major u8 RGB crop (not normalised), for overlays. */
  rgb: Uint8Array;
  /**
   * `(crop, crop)` row-major u8 0/1 ground truth. All zeros for good images; null for a defect
   * image of a dataset shipped without masks (`DatasetSplit.hasMasks === false`).
   */
  mask: Uint8Array | null;
  /** Convention detected in the mask file (null without a mask file). */
  maskConvention: MaskConvention | null;
  /** Original (decoded) image width in px, before resize. */
  width: number;
  /** Original image height in px. */
  height: number;
  /** The source image had one colour channel (replicated to RGB). */
  grayscale: boolean;
}

/** Smallest image side used without a warning (px). */
export const MIN_IMAGE_SIDE = 32;
const warnedTiny = new Set<string>();

/**
 * Warn once per file when an image is so small (a side under {@link MIN_IMAGE_SIDE} px, or
 * upscaled more than 8× to the crop) that its features carry little of the object.
 */
function warnTinyImage(path: string, w: number, h: number, crop: number): void {
  const side = Math.min(w, h);
  if ((side >= MIN_IMAGE_SIDE && crop / side <= 8) || warnedTiny.has(path)) return;
  warnedTiny.add(path);
  console.warn(
    `snarm: warning: ${path} is ${w}×${h} px; upscaled to ${crop}×${crop} it carries little ` +
      `detail (images under ${MIN_IMAGE_SIDE} px or upscaled over 8× are used, but check the data)`,
  );
}

/**
 * Decode and preprocess a record's image and mask.
 * @param opts geometry `{ resize = 448, crop = 392 }`.
 * @throws {ImageError} naming the file for an unreadable, corrupt, truncated or unsupported image or
 *   mask file.
 * @throws {DatasetError} naming both files when the mask size differs from the image size.
 */
export async function loadSample(
  record: ImageRecord,
  opts: PreprocessOptions = {},
): Promise<Sample> {
  const { crop } = resolveGeometry(opts);
  const img = await readImage(record.path);
  warnTinyImage(record.path, img.width, img.height, crop);
  const { image, rgb } = preprocessImage(img, opts);
  let mask: Uint8Array | null = null;
  let maskConvention: MaskConvention | null = null;
  if (record.maskPath) {
    const m = await readImage(record.maskPath);
    if (m.width !== img.width || m.height !== img.height) {
      throw new DatasetError(
        `${record.maskPath}: mask is ${m.width}x${m.height} but its image ${record.path} is ` +
          `${img.width}x${img.height}; expected the same size`,
      );
    }
    const gray = toGray(m);
    maskConvention = detectMaskConvention(gray);
    mask = preprocessMask(gray, m.width, m.height, opts, record.maskRule);
  } else if (record.label === 0) {
    mask = new Uint8Array(crop * crop);
  }
  return {
    record,
    image,
    rgb,
    mask,
    maskConvention,
    width: img.width,
    height: img.height,
    grayscale: img.grayscale,
  };
}

/**
 * Data module: dataset enumeration (MVTec AD layout, VisA 1cls CSV), image decoding, the official
 * SNARM preprocessing (cv2 bilinear 448 → centre crop 392 → ImageNet normalisation, spec §11/§1),
 * ground-truth masks, and anomaly-map PNG overlays.
 *
 * @example
 * ```ts
 * import { fileURLToPath } from "node:url";
 * import { listCategories, loadSample, loadSplit } from "./mod.ts";
 * const root = fileURLToPath(new URL("../../data/hazelnut_toy", import.meta.url)); // shipped MVTec layout
 * const [category] = listCategories(root); // "hazelnut"
 * const split = loadSplit(root, category); // train/good and test records, sorted
 * const s = await loadSample(split.test[0]); // 448 → centre crop 392 (spec §11)
 * s.image; // (3, 392, 392) f32, ImageNet-normalised: the backbone input
 * s.mask; //  (392, 392) u8 0/1 ground truth (all 0 for a good image)
 * if (s.image.length !== 3 * 392 * 392 || s.mask!.length !== 392 * 392) throw new Error("crop");
 * ```
 * @module
 */

export {
  DatasetError,
  type DatasetOptions,
  type DatasetSplit,
  type ImageRecord,
  listCategories,
  loadSplit,
  naturalCompare,
} from "./dataset.ts";
export {
  centerCropOffset,
  detectMaskConvention,
  IMAGENET_MEAN,
  IMAGENET_STD,
  type MaskConvention,
  type MaskRule,
  normalizeImageNet,
  preprocessImage,
  preprocessMask,
  type PreprocessOptions,
  preprocessRgb,
  resolveGeometry,
} from "./preprocess.ts";
export { resizeLinearU8 } from "./resize.ts";
export { loadSample, type Sample } from "./sample.ts";
export {
  type DecodedImage,
  decodeImage,
  detectImageFormat,
  ImageError,
  type ImageFormat,
  readImage,
  type RgbImage,
  toGray,
} from "../io/image.ts";
export { encodeHeatmapOverlay, encodePng, type HeatmapOptions, jet } from "../io/heatmap.ts";

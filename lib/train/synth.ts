/**
 * Synthetic anomalies for SNARM head training, MemSeg style (snarm-method.md §8): a Perlin-noise
 * mask ({@link perlinMask}), an anomaly source (a texture image, or the image itself augmented and
 * cut into shuffled 8×8 tiles: "structure"), blended as out = (1 − β·m)·img + β·m·source with
 * β ~ U(0.3, 1). Plus the feature-level jitter of the official `util/util.py:add_jitter` and a
 * preview helper for notebooks.
 *
 * The `sources` option of {@link synthesizeAnomaly} also draws the defect-shaped generators of
 * defects.ts (scratch, blob, edge, smear, stain, paint; {@link SynthSource}, {@link parseSynthSources}).
 *
 * Everything is deterministic given the seed (or {@link Rng}): `createRng` of lib/bank/coreset.ts.
 * Work on the preprocessed crop (e.g. the 392×392 `Sample.rgb` / `preprocessRgb`), then feed
 * `normalizeImageNet(result.rgb, W, H)` to the backbone.
 * @module
 */
import { createRng, type Rng, sampleWithoutReplacement } from "../bank/coreset.ts";
import { type ImageRecord, naturalCompare } from "../data/dataset.ts";
import { type PreprocessOptions, preprocessRgb, resolveGeometry } from "../data/preprocess.ts";
import { resizeLinearU8 } from "../data/resize.ts";
import { encodePng } from "../io/heatmap.ts";
import { readImage, type RgbImage } from "../io/image.ts";
import type { FeatureGrid } from "../types.ts";
import { perlinMask, type PerlinMaskOptions, rotateBilinear } from "./perlin.ts";
import {
  DEFECT_KINDS,
  type DefectKind,
  type DefectOptions,
  isDefectKind,
  synthesizeDefect,
} from "./defects.ts";
import { OptionError } from "../util/errors.ts";

// ---------------------------------------------------------------------------------------------
// Photometric / geometric augmentations of the structure source

/**
 * The augmentations MemSeg's `rand_augment` picks 3 of (snarm-method.md §8), simplified to plain
 * RGB u8 arithmetic (imgaug parameter ranges; exact imgaug/PIL numerics are not reproduced):
 *
 * - `gamma`: per channel g ~ U(0.5, 2), v' = 255·(v/255)^g (imgaug `GammaContrast(per_channel)`).
 * - `brightness`: Y = 0.299R + 0.587G + 0.114B, Y' = Y·mul + add with mul ~ U(0.8, 1.2),
 *   add ~ U(−30, 30); every channel shifted by Y' − Y (chroma kept; `MultiplyAndAddToBrightness`).
 * - `sharpness`: PIL `EnhanceSharpness`: blend of the 3×3 SMOOTH image ([1 1 1; 1 5 1; 1 1 1]/13,
 *   border pixels kept) and the image, out = smooth + f·(img − smooth), f ~ U(0, 2).
 * - `hueSaturation`: HSV hue += dh·360/255 degrees, saturation += ds/255, dh, ds ~ U{−50..50}
 *   independently (`AddToHueAndSaturation((-50, 50), per_channel=True)`).
 * - `solarize`: with probability 0.5, v' = 255 − v for v ≥ t, t ~ U(32, 128) (`Solarize(0.5)`).
 * - `posterize`: keep the top b bits, b ~ U{1..8} (PIL-style bit mask).
 * - `invert`: v' = 255 − v.
 * - `autocontrast`: PIL `autocontrast(cutoff)` per channel, cutoff ~ U{0..20} % of the pixels cut
 *   at each end, then [lo, hi] stretched linearly to [0, 255].
 * - `equalize`: PIL `ImageOps.equalize` per channel (histogram equalisation LUT).
 * - `rotate`: rotation by U(−45°, 45°) about the centre, bilinear, fill 0 (`Affine(rotate)`).
 */
export type StructureOp =
  | "gamma"
  | "brightness"
  | "sharpness"
  | "hueSaturation"
  | "solarize"
  | "posterize"
  | "invert"
  | "autocontrast"
  | "equalize"
  | "rotate";

/** MemSeg's augmenter list, in its order (snarm-method.md §8: the 9 photometric ops + rotate). */
export const STRUCTURE_OPS: readonly StructureOp[] = [
  "gamma",
  "brightness",
  "sharpness",
  "hueSaturation",
  "solarize",
  "posterize",
  "invert",
  "autocontrast",
  "equalize",
  "rotate",
];

/** One applied augmentation and its drawn parameters. */
export interface AppliedOp {
  op: StructureOp;
  params: Record<string, number | number[]>;
}

const clampU8 = (v: number) => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));
const uniform = (rng: Rng, a: number, b: number) => a + (b - a) * rng.nextFloat();

function mapLut(rgb: Uint8Array, luts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(rgb.length);
  for (let i = 0; i < rgb.length; i += 3) {
    out[i] = luts[0][rgb[i]];
    out[i + 1] = luts[1][rgb[i + 1]];
    out[i + 2] = luts[2][rgb[i + 2]];
  }
  return out;
}

function lutOf(f: (v: number) => number): Uint8Array {
  const l = new Uint8Array(256);
  for (let v = 0; v < 256; v++) l[v] = clampU8(f(v));
  return l;
}

function rgbToHsv(r: number, g: number, b: number): [number, number, number] {
  const max = Math.max(r, g, b), min = Math.min(r, g, b), d = max - min;
  let h = 0;
  if (d > 0) {
    if (max === r) h = 60 * (((g - b) / d) % 6);
    else if (max === g) h = 60 * ((b - r) / d + 2);
    else h = 60 * ((r - g) / d + 4);
  }
  if (h < 0) h += 360;
  return [h, max === 0 ? 0 : d / max, max];
}

function hsvToRgb(h: number, s: number, v: number): [number, number, number] {
  const c = v * s, hp = h / 60, x = c * (1 - Math.abs((hp % 2) - 1)), m = v - c;
  const k = Math.floor(hp) % 6;
  const [r, g, b] = k === 0
    ? [c, x, 0]
    : k === 1
    ? [x, c, 0]
    : k === 2
    ? [0, c, x]
    : k === 3
    ? [0, x, c]
    : k === 4
    ? [x, 0, c]
    : [c, 0, x];
  return [r + m, g + m, b + m];
}

/** PIL `ImageOps.equalize` LUT of one channel histogram. */
function equalizeLut(hist: Float64Array): Uint8Array {
  const lut = new Uint8Array(256);
  const nz: number[] = [];
  for (let i = 0; i < 256; i++) if (hist[i]) nz.push(hist[i]);
  let step = 0;
  if (nz.length > 1) step = Math.floor((nz.reduce((a, b) => a + b, 0) - nz[nz.length - 1]) / 255);
  if (!step) {
    for (let i = 0; i < 256; i++) lut[i] = i;
    return lut;
  }
  let n = Math.floor(step / 2);
  for (let i = 0; i < 256; i++) {
    lut[i] = Math.min(255, Math.floor(n / step));
    n += hist[i];
  }
  return lut;
}

/** PIL `ImageOps.autocontrast(cutoff=%)` LUT of one channel histogram. */
function autocontrastLut(hist: Float64Array, cutoffPct: number): Uint8Array {
  const h = Float64Array.from(hist);
  const total = h.reduce((a, b) => a + b, 0);
  let cut = Math.floor((total * cutoffPct) / 100);
  for (let lo = 0; lo < 256 && cut > 0; lo++) {
    const t = Math.min(cut, h[lo]);
    h[lo] -= t;
    cut -= t;
  }
  cut = Math.floor((total * cutoffPct) / 100);
  for (let hi = 255; hi >= 0 && cut > 0; hi--) {
    const t = Math.min(cut, h[hi]);
    h[hi] -= t;
    cut -= t;
  }
  let lo = 0, hi = 255;
  while (lo < 256 && !h[lo]) lo++;
  while (hi >= 0 && !h[hi]) hi--;
  if (hi <= lo) return lutOf((v) => v);
  const scale = 255 / (hi - lo), offset = -lo * scale;
  const lut = new Uint8Array(256);
  for (let v = 0; v < 256; v++) lut[v] = Math.max(0, Math.min(255, Math.trunc(v * scale + offset)));
  return lut;
}

function histograms(rgb: Uint8Array): Float64Array[] {
  const hs = [new Float64Array(256), new Float64Array(256), new Float64Array(256)];
  for (let i = 0; i < rgb.length; i += 3) {
    hs[0][rgb[i]]++;
    hs[1][rgb[i + 1]]++;
    hs[2][rgb[i + 2]]++;
  }
  return hs;
}

/**
 * Apply one {@link StructureOp} with parameters drawn from `rng` (draw order: the op's parameters
 * as listed in {@link StructureOp}).
 * @param rgb `(H, W, 3)` row-major u8 RGB (not modified).
 * @returns a new `(H, W, 3)` u8 image and the drawn parameters.
 * @throws {RangeError} on a size mismatch or an unknown op.
 */
export function applyStructureOp(
  op: StructureOp,
  rgb: Uint8Array,
  h: number,
  w: number,
  rng: Rng,
): { rgb: Uint8Array; applied: AppliedOp } {
  if (rgb.length !== h * w * 3) {
    throw new RangeError(`applyStructureOp(${op}): ${rgb.length} bytes; expected ${h}×${w}×3`);
  }
  switch (op) {
    case "gamma": {
      const g = [0, 1, 2].map(() => uniform(rng, 0.5, 2));
      const luts = g.map((gc) => lutOf((v) => 255 * (v / 255) ** gc));
      return { rgb: mapLut(rgb, luts), applied: { op, params: { gamma: g } } };
    }
    case "brightness": {
      const mul = uniform(rng, 0.8, 1.2), add = uniform(rng, -30, 30);
      const out = new Uint8Array(rgb.length);
      for (let i = 0; i < rgb.length; i += 3) {
        const y = 0.299 * rgb[i] + 0.587 * rgb[i + 1] + 0.114 * rgb[i + 2];
        const d = Math.max(0, Math.min(255, y * mul + add)) - y;
        for (let c = 0; c < 3; c++) out[i + c] = clampU8(rgb[i + c] + d);
      }
      return { rgb: out, applied: { op, params: { mul, add } } };
    }
    case "sharpness": {
      const f = uniform(rng, 0, 2);
      const out = new Uint8Array(rgb);
      for (let y = 1; y < h - 1; y++) {
        for (let x = 1; x < w - 1; x++) {
          for (let c = 0; c < 3; c++) {
            let s = 4 * rgb[(y * w + x) * 3 + c];
            for (let dy = -1; dy <= 1; dy++) {
              for (let dx = -1; dx <= 1; dx++) s += rgb[((y + dy) * w + x + dx) * 3 + c];
            }
            const smooth = s / 13, v = rgb[(y * w + x) * 3 + c];
            out[(y * w + x) * 3 + c] = clampU8(smooth + f * (v - smooth));
          }
        }
      }
      return { rgb: out, applied: { op, params: { factor: f } } };
    }
    case "hueSaturation": {
      const dh = rng.nextInt(101) - 50, ds = rng.nextInt(101) - 50;
      const out = new Uint8Array(rgb.length);
      for (let i = 0; i < rgb.length; i += 3) {
        const [hh, s, v] = rgbToHsv(rgb[i] / 255, rgb[i + 1] / 255, rgb[i + 2] / 255);
        const h2 = (((hh + (dh * 360) / 255) % 360) + 360) % 360;
        const s2 = Math.max(0, Math.min(1, s + ds / 255));
        const [r, g, b] = hsvToRgb(h2, s2, v);
        out[i] = clampU8(r * 255);
        out[i + 1] = clampU8(g * 255);
        out[i + 2] = clampU8(b * 255);
      }
      return { rgb: out, applied: { op, params: { hue: dh, saturation: ds } } };
    }
    case "solarize": {
      const apply = rng.nextFloat() < 0.5 ? 1 : 0, t = uniform(rng, 32, 128);
      const l = lutOf((v) => (apply && v >= t ? 255 - v : v));
      return {
        rgb: mapLut(rgb, [l, l, l]),
        applied: { op, params: { applied: apply, threshold: t } },
      };
    }
    case "posterize": {
      const bits = 1 + rng.nextInt(8);
      const m = (0xff << (8 - bits)) & 0xff;
      const l = lutOf((v) => v & m);
      return { rgb: mapLut(rgb, [l, l, l]), applied: { op, params: { bits } } };
    }
    case "invert": {
      const l = lutOf((v) => 255 - v);
      return { rgb: mapLut(rgb, [l, l, l]), applied: { op, params: {} } };
    }
    case "autocontrast": {
      const cutoff = rng.nextInt(21);
      const luts = histograms(rgb).map((hh) => autocontrastLut(hh, cutoff));
      return { rgb: mapLut(rgb, luts), applied: { op, params: { cutoff } } };
    }
    case "equalize": {
      return { rgb: mapLut(rgb, histograms(rgb).map(equalizeLut)), applied: { op, params: {} } };
    }
    case "rotate": {
      const angle = uniform(rng, -45, 45);
      const r = rotateBilinear(rgb, h, w, 3, angle, 0);
      const out = new Uint8Array(r.length);
      for (let i = 0; i < r.length; i++) out[i] = clampU8(r[i]);
      return { rgb: out, applied: { op, params: { angle } } };
    }
    default:
      throw new RangeError(
        `applyStructureOp: unknown op '${op}'; expected one of ${STRUCTURE_OPS}`,
      );
  }
}

/**
 * MemSeg `rand_augment`: `count` distinct ops drawn without replacement from `ops` (in draw order),
 * applied in that order ({@link applyStructureOp}).
 * @returns the augmented `(H, W, 3)` u8 image and the applied ops.
 * @throws {RangeError} when `count > ops.length`.
 */
export function randAugment(
  rgb: Uint8Array,
  h: number,
  w: number,
  rng: Rng,
  ops: readonly StructureOp[] = STRUCTURE_OPS,
  count = 3,
): { rgb: Uint8Array; ops: AppliedOp[] } {
  if (count > ops.length) {
    throw new RangeError(`randAugment: cannot pick ${count} of ${ops.length} ops`);
  }
  const pick = sampleWithoutReplacement(ops.length, count, rng);
  let cur = rgb;
  const applied: AppliedOp[] = [];
  for (const i of pick) {
    const r = applyStructureOp(ops[i], cur, h, w, rng);
    cur = r.rgb;
    applied.push(r.applied);
  }
  return { rgb: cur, ops: applied };
}

/**
 * Cut an image into a `grid × grid` array of equal tiles and shuffle them (MemSeg
 * `_structure_source`, `np.random.shuffle` = a uniform permutation): output tile t (row-major) is
 * input tile `permutation[t]`.
 * @param rgb `(H, W, 3)` row-major u8; H and W must be multiples of `grid`.
 * @returns the shuffled `(H, W, 3)` image and the `(grid²)` permutation.
 * @throws {RangeError} when H or W is not a multiple of `grid`.
 */
export function shuffleTiles(
  rgb: Uint8Array,
  h: number,
  w: number,
  rng: Rng,
  grid = 8,
): { rgb: Uint8Array; permutation: Int32Array } {
  if (!Number.isInteger(grid) || grid < 1 || h % grid !== 0 || w % grid !== 0) {
    throw new RangeError(
      `shuffleTiles: image ${h}×${w} must be a multiple of the ${grid}×${grid} tile grid` +
        ` (MemSeg asserts the same)`,
    );
  }
  if (rgb.length !== h * w * 3) {
    throw new RangeError(`shuffleTiles: ${rgb.length} bytes; expected ${h}×${w}×3`);
  }
  const th = h / grid, tw = w / grid;
  const perm = sampleWithoutReplacement(grid * grid, grid * grid, rng);
  const out = new Uint8Array(rgb.length);
  for (let t = 0; t < perm.length; t++) {
    const sy = Math.floor(perm[t] / grid) * th, sx = (perm[t] % grid) * tw;
    const dy = Math.floor(t / grid) * th, dx = (t % grid) * tw;
    for (let y = 0; y < th; y++) {
      const s = ((sy + y) * w + sx) * 3, d = ((dy + y) * w + dx) * 3;
      out.set(rgb.subarray(s, s + tw * 3), d);
    }
  }
  return { rgb: out, permutation: perm };
}

// ---------------------------------------------------------------------------------------------
// Texture source

const IMAGE_EXT = /\.(png|jpe?g|bmp|tiff?|webp|gif)$/i;
const dirCache = new Map<string, string[]>();

/**
 * Image files under a texture folder (DTD-style: any tree of JPEG/PNG images), recursively, sorted
 * by natural order of the relative path. Cached per folder for the process.
 * @throws {Error} naming the folder when it cannot be read or holds no image.
 */
export function listTextureFiles(dir: string): string[] {
  const hit = dirCache.get(dir);
  if (hit) return hit;
  const out: string[] = [];
  const walk = (d: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(d)];
    } catch (e) {
      throw new Error(`texture folder ${d}: cannot read (${(e as Error).message})`);
    }
    for (const e of entries) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) walk(p);
      else if (e.isFile && IMAGE_EXT.test(e.name)) out.push(p);
    }
  };
  walk(dir.replace(/\/+$/, ""));
  if (!out.length) {
    throw new Error(`texture folder ${dir}: no image files (expected JPEG/PNG files, e.g. DTD)`);
  }
  out.sort(naturalCompare);
  dirCache.set(dir, out);
  return out;
}

/** Resize a texture to the target size (cv2 bilinear, MemSeg `cv2.resize(texture, (W, H))`). */
function resizeTexture(img: RgbImage, h: number, w: number): Uint8Array {
  if (img.width === w && img.height === h) return img.data;
  return resizeLinearU8(img.data, img.width, img.height, 3, w, h);
}

// ---------------------------------------------------------------------------------------------
// Synthesis

/**
 * An anomaly source of {@link synthesizeAnomaly}: the MemSeg Perlin blends `"structure"` (the image
 * itself, augmented and tile-shuffled) and `"texture"` (a texture image), or a defect-shaped
 * generator of defects.ts ({@link DefectKind}: `"scratch"`, `"blob"`, `"edge"`, `"smear"`,
 * `"stain"`).
 */
export type SynthSource = "structure" | "texture" | DefectKind;

/** Every {@link SynthSource}: `"structure"`, `"texture"`, then {@link DEFECT_KINDS}. */
export const SYNTH_SOURCES: readonly SynthSource[] = ["structure", "texture", ...DEFECT_KINDS];

/** The sources drawn when `SynthOptions.sources` is not given (MemSeg, snarm-method.md §8). */
export const DEFAULT_SYNTH_SOURCES: readonly SynthSource[] = ["structure", "texture"];

function checkSources(sources: readonly string[], what: string): void {
  if (!sources.length) {
    throw new RangeError(
      `${what}: no anomaly source; expected some of ${SYNTH_SOURCES.join(", ")}`,
    );
  }
  for (const s of sources) {
    if (!(SYNTH_SOURCES as readonly string[]).includes(s)) {
      throw new RangeError(
        `${what}: unknown anomaly source '${s}'; valid sources: ${SYNTH_SOURCES.join(", ")}`,
      );
    }
  }
}

/**
 * Parse a comma-separated list of anomaly sources (a CLI flag such as `"scratch,blob,texture"`);
 * entries are trimmed, case-sensitive, and kept in order, repeats included (a repeated entry is
 * drawn more often, see {@link SynthOptions.sources}).
 * @returns the sources, e.g. `["scratch", "blob", "texture"]`.
 * @throws {RangeError} on an empty list or entry, or an unknown entry (naming it and listing the
 *   valid sources).
 */
export function parseSynthSources(s: string, option = "sources"): SynthSource[] {
  const parts = s.split(",").map((t) => t.trim());
  const valid = SYNTH_SOURCES.join(", ");
  if (parts.some((t) => !t.length)) {
    throw new OptionError(
      option,
      `has an empty entry in '${s}'; expected a comma-separated list of ${valid}`,
    );
  }
  for (const t of parts) {
    if (!(SYNTH_SOURCES as readonly string[]).includes(t)) {
      throw new OptionError(
        option,
        `names an unknown anomaly source '${t}'; valid sources: ${valid}`,
      );
    }
  }
  return parts as SynthSource[];
}

/** Options of {@link synthesizeAnomaly}. Exactly one of `seed` / `rng` is required. */
export interface SynthOptions {
  /** Seed of a fresh `createRng(seed)`. */
  seed?: number;
  /** An existing generator (advanced by the draws). */
  rng?: Rng;
  /** Texture folder (DTD-style); a random file is read per texture-source sample. */
  textureDir?: string;
  /** Preloaded textures (any size; resized) or texture file paths. Used before `textureDir`. */
  textures?: ReadonlyArray<RgbImage | string>;
  /** Probability of the texture source when textures exist (default 0.5, §8 "50/50"). */
  textureProb?: number;
  /** Apply the structure augmentations (default true; false = pure tile shuffle of the image). */
  augment?: boolean;
  /** Ops to pick from (default {@link STRUCTURE_OPS}). */
  ops?: readonly StructureOp[];
  /** Ops applied per structure source (default 3). */
  numOps?: number;
  /** Tile grid of the structure source (default 8). */
  grid?: number;
  /** β ~ U(lo, hi) (default [0.3, 1], §8 "Blending: factor U(0.3, 1)"). */
  betaRange?: readonly [number, number];
  /** Perlin mask options. */
  perlin?: PerlinMaskOptions;
  /**
   * Anomaly sources to draw from (default {@link DEFAULT_SYNTH_SOURCES} = `["structure",
   * "texture"]`, MemSeg). Without a defect kind in the list, the MemSeg draw runs exactly as by
   * default, `textureProb` included (`["structure", "texture"]` gives the same output as no
   * `sources`; `["structure"]` never, `["texture"]` always takes the texture). With a defect kind,
   * one entry is drawn uniformly first (a repeated entry counts repeatedly; `"texture"` only
   * counts when textures exist). See {@link synthesizeAnomaly}.
   */
  sources?: readonly SynthSource[];
  /** Options of the defect-shaped sources ({@link synthesizeDefect}; seed/rng ignored). */
  defect?: Omit<DefectOptions, "seed" | "rng">;
}

/** Result of {@link synthesizeAnomaly}. */
export interface SynthResult {
  /** `(H, W, 3)` row-major u8 RGB synthetic anomaly image. */
  rgb: Uint8Array;
  /** `(H, W)` row-major u8 0/1 anomaly mask (non-empty). */
  mask: Uint8Array;
  /** Blending factor β (1 for a defect source: the defect image replaces the masked pixels). */
  beta: number;
  source: SynthSource;
  /**
   * `(H, W, 3)` u8 anomaly source that was blended in (a defect source: the defect image, so that
   * `blendAnomaly(img, sourceRgb, mask, 1)` equals `rgb`).
   */
  sourceRgb: Uint8Array;
  /** Perlin draws: lattice scales, rotation angle (degrees), tries; null for a defect source. */
  perlin: { scaleY: number; scaleX: number; angle: number; tries: number } | null;
  /** Defect source: its kind and drawn parameters ({@link synthesizeDefect}); else null. */
  defect: { kind: DefectKind; params: Record<string, number | number[] | string> } | null;
  /** Structure source: the applied augmentations, in order. */
  ops: AppliedOp[];
  /** Structure source: output tile t = augmented tile `tilePermutation[t]`. */
  tilePermutation: Int32Array | null;
  /** Texture source: index into the texture list and its path (when read from a file). */
  textureIndex: number | null;
  texturePath: string | null;
}

/**
 * Blend an anomaly source into an image under a mask (MemSeg `generate_anomaly`, snarm-method.md
 * §8): out = (1 − β·m)·img + β·m·source per pixel and channel, rounded to nearest (MemSeg truncates
 * with `astype(uint8)`); pixels with m = 0 are copied unchanged.
 * @param img `(H, W, 3)` u8; @param source `(H, W, 3)` u8; @param mask `(H, W)` u8 0/1.
 * @throws {RangeError} on mismatched lengths or β outside [0, 1].
 */
export function blendAnomaly(
  img: Uint8Array,
  source: Uint8Array,
  mask: Uint8Array,
  beta: number,
): Uint8Array {
  if (source.length !== img.length || mask.length * 3 !== img.length) {
    throw new RangeError(
      `blendAnomaly: image ${img.length}, source ${source.length}, mask ${mask.length} values;` +
        ` expected (H, W, 3), (H, W, 3), (H, W)`,
    );
  }
  if (!(beta >= 0 && beta <= 1)) throw new RangeError(`blendAnomaly: beta=${beta} not in [0, 1]`);
  const out = new Uint8Array(img);
  for (let p = 0; p < mask.length; p++) {
    if (!mask[p]) continue;
    for (let c = 0; c < 3; c++) {
      const i = 3 * p + c;
      out[i] = clampU8((1 - beta) * img[i] + beta * source[i]);
    }
  }
  return out;
}

/**
 * One synthetic anomaly: MemSeg style (snarm-method.md §8) by default, or drawn from `sources`.
 * Draw order from the generator:
 * 0. only when `sources` holds a defect kind: an entry k ~ U{0..n−1} of `sources` (without
 *    `"texture"` when there are no textures); a defect kind → {@link synthesizeDefect} with the
 *    same generator (β = 1, `sourceRgb` = the defect image) and nothing else is drawn; `"texture"`
 *    / `"structure"` → the MemSeg draw below with that source forced;
 * 1. the Perlin mask ({@link perlinMask}, redrawn while empty);
 * 2. p ~ U(0, 1): texture source if p < `textureProb` and textures exist, else structure
 *    (`textureProb` is taken as 0 / 1 when `sources` lacks `"texture"` / `"structure"`, or forced
 *    in step 0);
 * 3. texture: the texture index; structure: {@link randAugment} (unless `augment: false`) then
 *    {@link shuffleTiles};
 * 4. β ~ U(0.3, 1); then {@link blendAnomaly}.
 * Without `sources` (or with `["structure", "texture"]`) the output is bit-identical to the MemSeg
 * draw of earlier versions for the same seed.
 * @param rgb `(H, W, 3)` row-major u8 RGB (the preprocessed crop; H, W multiples of `grid` when
 *   `"structure"` may be drawn).
 * @returns the synthetic image, its 0/1 mask, β, the source kind and the draws.
 * @throws {RangeError} on bad sizes/options or an unknown/empty `sources`; {@link Error} when
 *   neither seed nor rng is given, on an unreadable texture (names the file), when `sources` only
 *   allows `"texture"` but no texture is given, or when no non-empty mask could be drawn.
 */
export async function synthesizeAnomaly(
  rgb: Uint8Array,
  h: number,
  w: number,
  opts: SynthOptions,
): Promise<SynthResult> {
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1 || rgb.length !== h * w * 3) {
    throw new RangeError(`synthesizeAnomaly: ${rgb.length} bytes; expected (H=${h}, W=${w}, 3)`);
  }
  if (opts.rng === undefined && opts.seed === undefined) {
    throw new Error("synthesizeAnomaly: pass opts.seed or opts.rng (outputs are seeded)");
  }
  const grid = opts.grid ?? 8;
  const sources = opts.sources;
  if (sources !== undefined) checkSources(sources, "synthesizeAnomaly");
  if ((sources === undefined || sources.includes("structure")) && (h % grid || w % grid)) {
    throw new RangeError(`synthesizeAnomaly: image ${h}×${w} is not a multiple of grid ${grid}`);
  }
  const [blo, bhi] = opts.betaRange ?? [0.3, 1];
  if (!(blo >= 0 && bhi <= 1 && blo <= bhi)) {
    throw new RangeError(`synthesizeAnomaly: betaRange [${blo}, ${bhi}] must lie in [0, 1]`);
  }
  const rng = opts.rng ?? createRng(opts.seed!);
  let textureProb = opts.textureProb ?? 0.5;
  if (sources !== undefined) {
    const listTextures = () =>
      opts.textures ?? (opts.textureDir ? listTextureFiles(opts.textureDir) : []);
    if (sources.some(isDefectKind)) {
      const hasTex = listTextures().length > 0;
      const pool = sources.filter((s) => s !== "texture" || hasTex);
      const pick = pool[rng.nextInt(pool.length)];
      if (isDefectKind(pick)) {
        const d = synthesizeDefect(rgb, h, w, pick, { ...opts.defect, rng });
        return {
          rgb: d.rgb,
          mask: d.mask,
          beta: 1,
          source: pick,
          sourceRgb: d.rgb,
          perlin: null,
          defect: { kind: pick, params: d.params },
          ops: [],
          tilePermutation: null,
          textureIndex: null,
          texturePath: null,
        };
      }
      textureProb = pick === "texture" ? 1 : 0;
    } else if (!sources.includes("texture")) textureProb = 0;
    else if (!sources.includes("structure")) {
      textureProb = 1;
      if (!listTextures().length) {
        throw new Error(
          "synthesizeAnomaly: sources ['texture'] but no textures (pass textureDir or textures)",
        );
      }
    }
  }
  const pm = perlinMask(h, w, rng, opts.perlin);
  const textures = opts.textures ?? (opts.textureDir ? listTextureFiles(opts.textureDir) : []);
  const p = rng.nextFloat();
  let sourceRgb: Uint8Array;
  let source: SynthResult["source"];
  let ops: AppliedOp[] = [];
  let tilePermutation: Int32Array | null = null;
  let textureIndex: number | null = null;
  let texturePath: string | null = null;
  if (textures.length && p < textureProb) {
    source = "texture";
    textureIndex = rng.nextInt(textures.length);
    const t = textures[textureIndex];
    let img: RgbImage;
    if (typeof t === "string") {
      texturePath = t;
      img = await readImage(t);
    } else img = t;
    if (img.data.length !== img.width * img.height * 3) {
      throw new RangeError(`synthesizeAnomaly: texture ${textureIndex} is not (H, W, 3) u8`);
    }
    sourceRgb = resizeTexture(img, h, w);
  } else {
    source = "structure";
    let aug = rgb;
    if (opts.augment ?? true) {
      const r = randAugment(rgb, h, w, rng, opts.ops ?? STRUCTURE_OPS, opts.numOps ?? 3);
      aug = r.rgb;
      ops = r.ops;
    }
    const s = shuffleTiles(aug, h, w, rng, grid);
    sourceRgb = s.rgb;
    tilePermutation = s.permutation;
  }
  const beta = blo + (bhi - blo) * rng.nextFloat();
  return {
    rgb: blendAnomaly(rgb, sourceRgb, pm.mask, beta),
    mask: pm.mask,
    beta,
    source,
    sourceRgb,
    perlin: { scaleY: pm.scaleY, scaleX: pm.scaleX, angle: pm.angle, tries: pm.tries },
    defect: null,
    ops,
    tilePermutation,
    textureIndex,
    texturePath,
  };
}

// ---------------------------------------------------------------------------------------------
// Feature-level jitter

/**
 * Feature jitter of the official `util/util.py:add_jitter` (snarm-method.md §8, "jitter"; UniAD's
 * helper): f' = f + ε·scale·‖f‖₂/C per patch, ε ~ N(0, 1) i.i.d. per channel (Box–Muller from
 * `rng`). The per-patch noise std is scale·‖f‖₂/C.
 * @param f channels-last `(N, h, w, C)` patch features (not modified).
 * @param scale jitter scale (default 30, the official setting).
 * @param rng generator or seed (default seed 0).
 * @returns a new {@link FeatureGrid} of the same shape.
 * @throws {RangeError} when the data length does not match the shape.
 */
export function jitterFeatures(f: FeatureGrid, scale = 30, rng: Rng | number = 0): FeatureGrid {
  const { n, h, w, c, data } = f;
  if (data.length !== n * h * w * c) {
    throw new RangeError(
      `jitterFeatures: ${data.length} values; expected (${n}, ${h}, ${w}, ${c})`,
    );
  }
  const r = typeof rng === "number" ? createRng(rng) : rng;
  let spare: number | null = null;
  const gauss = () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const u1 = 1 - r.nextFloat(), u2 = r.nextFloat();
    const m = Math.sqrt(-2 * Math.log(u1));
    spare = m * Math.sin(2 * Math.PI * u2);
    return m * Math.cos(2 * Math.PI * u2);
  };
  const out = new Float32Array(data.length);
  for (let o = 0; o < data.length; o += c) {
    let ss = 0;
    for (let k = 0; k < c; k++) ss += data[o + k] * data[o + k];
    const std = (scale * Math.sqrt(ss)) / c;
    for (let k = 0; k < c; k++) out[o + k] = data[o + k] + std * gauss();
  }
  return { data: out, n, h, w, c };
}

// ---------------------------------------------------------------------------------------------
// Previews

/** One preview sample of {@link synthPreview}. */
export interface SynthPreview {
  /** Record id, e.g. `"train/good/003"`. */
  id: string;
  /** Crop size (square). */
  size: number;
  /** `(size, size, 3)` u8 preprocessed image. */
  rgb: Uint8Array;
  /** `(size, size)` u8 0/1 synthetic mask. */
  mask: Uint8Array;
  /** `(size, size, 3)` u8 synthetic anomaly image. */
  synthRgb: Uint8Array;
  beta: number;
  source: SynthSource;
  /** Seed of this sample's {@link synthesizeAnomaly} call. */
  seed: number;
}

/**
 * A few synthetic samples for notebooks: `n` records drawn without replacement with
 * `createRng(seed)`, each preprocessed (`preprocessRgb`, default 448 → 392) and given a synthetic
 * anomaly with its own seed (the next `nextU32` of the same generator). The records picked depend
 * only on `records`, `n` and `seed`, so previews of different `sources` (e.g. one defect kind each)
 * with the same seed show the same images.
 * @param opts synthesis options (seed/rng ignored; `sources` picks the anomaly sources) and the
 *   preprocessing geometry.
 * @throws as {@link synthesizeAnomaly}; `ImageError` naming an unreadable record image.
 */
export async function synthPreview(
  records: readonly ImageRecord[],
  n: number,
  seed: number,
  opts: Omit<SynthOptions, "seed" | "rng"> & PreprocessOptions = {},
): Promise<SynthPreview[]> {
  const rng = createRng(seed);
  const pick = sampleWithoutReplacement(records.length, Math.min(n, records.length), rng);
  const { crop } = resolveGeometry(opts);
  const out: SynthPreview[] = [];
  for (const i of pick) {
    const rec = records[i];
    const rgb = preprocessRgb(await readImage(rec.path), opts);
    const s = rng.nextU32();
    const r = await synthesizeAnomaly(rgb, crop, crop, { ...opts, rng: undefined, seed: s });
    out.push({
      id: rec.id,
      size: crop,
      rgb,
      mask: r.mask,
      synthRgb: r.rgb,
      beta: r.beta,
      source: r.source,
      seed: s,
    });
  }
  return out;
}

/**
 * PNG strip of previews: one row per sample, panels image | synthetic | mask (white = 1), separated
 * by `gap` white pixels.
 * @returns PNG file bytes (8-bit RGB).
 * @throws {RangeError} on an empty list or samples of different sizes.
 */
export function encodeSynthStrip(
  samples: SynthPreview | readonly SynthPreview[],
  gap = 4,
): Uint8Array {
  const list = Array.isArray(samples) ? samples : [samples as SynthPreview];
  if (!list.length) throw new RangeError("encodeSynthStrip: no samples");
  const s = list[0].size;
  if (list.some((p) => p.size !== s)) {
    throw new RangeError("encodeSynthStrip: samples differ in size");
  }
  const W = 3 * s + 2 * gap, H = list.length * s + (list.length - 1) * gap;
  const img = new Uint8Array(W * H * 3).fill(255);
  list.forEach((p, row) => {
    const y0 = row * (s + gap);
    for (let y = 0; y < s; y++) {
      const d = ((y0 + y) * W) * 3;
      img.set(p.rgb.subarray(y * s * 3, (y + 1) * s * 3), d);
      img.set(p.synthRgb.subarray(y * s * 3, (y + 1) * s * 3), d + (s + gap) * 3);
      for (let x = 0; x < s; x++) {
        const v = p.mask[y * s + x] ? 255 : 0;
        const o = d + (2 * (s + gap) + x) * 3;
        img[o] = img[o + 1] = img[o + 2] = v;
      }
    }
  });
  return encodePng(img, W, H);
}

/**
 * The texture folder shipped with snarm (`data/textures`: 57 public-domain / Expat photographic
 * surface textures, ≤ 256 px, from Debian's ufoai-textures; see its PROVENANCE.md and
 * `scripts/build_textures.sh`), for `synthesizeAnomaly({ textureDir: DEFAULT_TEXTURE_DIR })` when
 * DTD is not at hand. A filesystem path; valid when the module is loaded from a local checkout.
 */
export const DEFAULT_TEXTURE_DIR = localPath(new URL("../../data/textures", import.meta.url));

/** The filesystem path of a `file:` URL (decoded: spaces, non-ASCII); a web URL's path as is. */
function localPath(u: URL): string {
  return u.protocol === "file:" ? decodeURIComponent(u.pathname) : u.pathname;
}

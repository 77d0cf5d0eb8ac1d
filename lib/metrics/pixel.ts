/**
 * Pixel-level metrics of N anomaly maps against their GT masks — P-AUROC, P-AP, P-F1max and AUPRO —
 * from one pass over all pixels pooled over the images (pixels are never averaged per image).
 *
 * AUPRO is the exact MVTec AD definition with every threshold: regions are the 8-connected
 * components of each mask ({@link labelRegions}); FPR is over the normal pixels of all images
 * (including those of anomalous images); PRO(t) is the mean over regions of the fraction of the
 * region's pixels with score ≥ t; the curve from (0,0) is integrated with the trapezoid rule up to
 * FPR = 0.3 (interpolated last piece, as `generic_util.trapezoid(x, y, x_max=0.3)`), then divided
 * by 0.3. Sources: `shared/fixtures/metrics/README.md` (AUPRO), `snarm-method.md` §9.
 *
 * Only the anomalous pixels are sorted; the normal pixels are counted into the gaps between the
 * distinct anomalous scores (see `pooled` below), which gives exactly the full curve's metrics.
 * Memory: tens of MiB beyond the inputs, none per normal pixel (582 maps of 392×392 = 89M pixels:
 * about 0.1 GiB).
 * @module
 */

import { warnUndefined } from "./labels.ts";
import { placeNormals } from "./placement.ts";
import { descendingKey, keyToFloat, radixSortPairs } from "./ranking.ts";
import { checkShape, forEachRegionPixel, type MapShape } from "./regions.ts";
import { CurveAccumulator, type F1Max } from "./sweep.ts";

/** Pixel-level results; undefined metrics are NaN. */
export interface PixelMetrics {
  auroc: number;
  ap: number;
  f1max: F1Max;
  aupro: number;
  /** PRO at FPR = fprLimit (interpolated). */
  proAtLimit: number;
  /** Number of 8-connected GT regions over all images. */
  nRegions: number;
  /** Number of normal pixels (n0) and anomalous pixels (n1). */
  n0: number;
  n1: number;
}

/** Options for {@link pixelMetrics} and {@link aupro}. */
export interface PixelOptions {
  /** AUPRO's FPR integration limit (default 0.3), in (0, 1]. */
  fprLimit?: number;
  /**
   * Names for the warning line of each undefined metric (defaults `P-AUROC`, `P-AP`, `P-F1max`,
   * `AUPRO`).
   */
  names?: { auroc?: string; ap?: string; f1max?: string; aupro?: string };
  /**
   * Speed knob, no effect on the results: above this many distinct anomalous scores the normal
   * pixels are grouped into partitions before they are placed among the thresholds (more cache
   * friendly, 72 MiB of scratch). Default 65536.
   */
  partitionAbove?: number;
}

type Key = "auroc" | "ap" | "f1max" | "aupro";

/** Default of {@link PixelOptions.partitionAbove}. */
const PARTITION_ABOVE = 65536;

/**
 * Pooled pixel metrics without sorting the (many) normal pixels:
 * 1. label the 8-connected GT regions image by image, collecting each anomalous pixel's score key
 *    and region id;
 * 2. radix-sort the anomalous pixels (the only sort);
 * 3. place every normal pixel relative to the distinct anomalous scores (lookup table + binary
 *    search): `before[j]` counts normal pixels scoring strictly between anomalous thresholds j−1
 *    and j, `tied[j]` those equal to threshold j;
 * 4. feed the curve to {@link CurveAccumulator}: per j, the normal-only run `before[j]` (collinear
 *    points merged into one, which changes no trapezoid area, interpolated value, AP or F1max),
 *    then the tie group j.
 * Memory: 8 bytes per anomalous pixel, 12 bytes per distinct anomalous score, a ≤ 4 MiB table,
 * one H×W image of scratch and (with many distinct anomalous scores) 72 MiB of chunk scratch —
 * nothing per normal pixel.
 */
function pooled(
  pixelScores: Float32Array,
  pixelMasks: Uint8Array,
  shape: MapShape,
  fprLimit: number,
  partitionAbove: number,
) {
  checkShape(shape, pixelScores.length, "pixelScores");
  checkShape(shape, pixelMasks.length, "pixelMasks");
  const [nImg, h, w] = shape;
  const hw = h * w, len = nImg * hw;
  if (len >= 2 ** 31) throw new Error(`pixelScores: ${len} pixels exceed the 2^31 - 1 limit`);
  const bits = new Uint32Array(pixelScores.buffer, pixelScores.byteOffset, len);

  // 1. validate masks and count anomalous pixels
  let n1 = 0;
  for (let i = 0; i < len; i++) {
    const m = pixelMasks[i];
    if (m === 1) n1++;
    else if (m !== 0) {
      throw new Error(
        `pixelMasks: value ${m} at index ${i} (image ${Math.floor(i / hw)}); masks must be 0/1`,
      );
    }
  }
  const n0 = len - n1;

  // 2. 8-connected regions per image; collect (key, region id) of the anomalous pixels
  const posKey = new Uint32Array(n1), posReg = new Uint32Array(n1);
  let np = 0;
  const { nRegions, sizes } = forEachRegionPixel(pixelMasks, shape, (i, r) => {
    const k = descendingKey(bits[i]);
    if (k < 0) throw new Error(`pixelScores: value at index ${i} is NaN`);
    posKey[np] = k;
    posReg[np++] = r;
  });
  const weights = new Float64Array(nRegions + 1);
  for (let r = 1; r <= nRegions; r++) weights[r] = 1 / sizes[r];

  // 3. sort the anomalous pixels; distinct anomalous thresholds (ascending key = descending score)
  const sorted = radixSortPairs(posKey, posReg);
  const sk = sorted.keys, sr = sorted.values;
  let m = 0;
  for (let i = 0; i < n1; i++) if (i === 0 || sk[i] !== sk[i - 1]) m++;
  const tKey = new Uint32Array(m);
  for (let i = 0, j = 0; i < n1; i++) if (i === 0 || sk[i] !== sk[i - 1]) tKey[j++] = sk[i];

  // 4. place the normal pixels among the thresholds
  const { before, tied } = placeNormals(bits, pixelMasks, tKey, n0, partitionAbove);

  // 5. the curve, group by group
  const acc = new CurveAccumulator(n1, n0, nRegions, fprLimit);
  let proS = 0, proC = 0, i = 0;
  for (let j = 0; j < m; j++) {
    if (before[j] > 0) acc.add(0, before[j], proS + proC, -1);
    const k = tKey[j];
    let dp = 0;
    while (i < n1 && sk[i] === k) {
      const x = weights[sr[i]];
      const t = proS + x;
      proC += Math.abs(proS) >= Math.abs(x) ? (proS - t) + x : (x - t) + proS;
      proS = t;
      dp++;
      i++;
    }
    acc.add(dp, tied[j], proS + proC, j);
  }
  if (before[m] > 0) acc.add(0, before[m], proS + proC, -1);
  return { ...acc.finish((j) => keyToFloat(tKey[j]), "pixel masks", true), nRegions };
}

function compute(
  pixelScores: Float32Array,
  pixelMasks: Uint8Array,
  shape: MapShape,
  warnFor: ReadonlyArray<Key>,
  opts: PixelOptions,
): PixelMetrics {
  const m = pooled(
    pixelScores,
    pixelMasks,
    shape,
    opts.fprLimit ?? 0.3,
    opts.partitionAbove ?? PARTITION_ABOVE,
  );
  const defaults = { auroc: "P-AUROC", ap: "P-AP", f1max: "P-F1max", aupro: "AUPRO" };
  for (const k of warnFor) {
    const why = m.why[k];
    if (why !== undefined) warnUndefined(opts.names?.[k] ?? defaults[k], why);
  }
  return {
    auroc: m.auroc,
    ap: m.ap,
    f1max: m.f1max,
    aupro: m.aupro,
    proAtLimit: m.proAtLimit,
    nRegions: m.nRegions,
    n0: m.n0,
    n1: m.n1,
  };
}

/**
 * P-AUROC, P-AP, P-F1max and AUPRO of N maps with one sort of all N·H·W pixels.
 * Each undefined metric is NaN and warns once (one class absent; no GT region or no normal pixel
 * for AUPRO).
 *
 * @param pixelScores `(N, H, W)` row-major f32 anomaly maps (higher = more anomalous), no NaN.
 * @param pixelMasks `(N, H, W)` row-major GT masks, 0 = normal, 1 = anomalous.
 * @param shape `[N, H, W]`.
 * @throws {Error} on a length/shape mismatch, a NaN score or a mask value other than 0/1.
 */
export function pixelMetrics(
  pixelScores: Float32Array,
  pixelMasks: Uint8Array,
  shape: MapShape,
  opts: PixelOptions = {},
): PixelMetrics {
  return compute(pixelScores, pixelMasks, shape, ["auroc", "ap", "f1max", "aupro"], opts);
}

/**
 * AUPRO up to FPR = `fprLimit` (default 0.3), normalised by the limit; exact, every threshold.
 * NaN (with a warning) when there is no GT region or no normal pixel. Inputs as in
 * {@link pixelMetrics}.
 */
export function aupro(
  pixelScores: Float32Array,
  pixelMasks: Uint8Array,
  shape: MapShape,
  opts: PixelOptions = {},
): number {
  return compute(pixelScores, pixelMasks, shape, ["aupro"], opts).aupro;
}

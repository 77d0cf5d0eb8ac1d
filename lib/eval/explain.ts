/**
 * One image through the method, stage by stage (spec §3–7), for notebooks and reports: patch
 * features → bank top-k → inter-residual → the navigator's unary and waypoint maps → self-reference
 * selection → intra-residual → head logits and maps, next to the bank-only map. The same calls as
 * `deno task eval` (lib/eval/score.ts), with every intermediate kept.
 *
 * @example
 * ```ts
 * import { fileURLToPath } from "node:url";
 * import { explainImage } from "./explain.ts";
 * import { loadBackbone } from "../backbone/mod.ts";
 * import { createBankIndex } from "../bank/mod.ts";
 * import { loadSample, loadSplit } from "../data/mod.ts";
 * import { loadHead } from "../model/mod.ts";
 * const root = fileURLToPath(new URL("../../data/hazelnut_toy", import.meta.url));
 * const split = loadSplit(root, "hazelnut");
 * const backbone = await loadBackbone("mobilenetv2");
 * // a small bank: every patch of one training image (a real one is a coreset, lib/bank buildBank)
 * const f0 = await backbone.embed((await loadSample(split.train[0])).image);
 * const index = await createBankIndex(null, f0.data, f0.c);
 * const head = await loadHead(new URL("../../data/snarm_head.safetensors", import.meta.url));
 * const sample = await loadSample(split.test.find((r) => r.label === 1)!);
 * const x = await explainImage(sample, { backbone, index, head });
 * x.topk.indices; //  (h·w, 3) bank neighbours;  x.interNorms: (h·w) ‖r‖₂
 * x.unary; //         (h·w) navigator map;  x.refMask: (h·w) 1 = self-reference
 * x.intraNorms; //    (h·w) ‖s‖₂;  x.head?.smoothed: (S, S) map;  x.bankMap: (S, S)
 * if (x.head!.smoothed.length !== 392 * 392 || x.refMask!.length !== 49 * 49) throw new Error("x");
 * index.destroy();
 * ```
 * @module
 */
import type { FeatureGrid } from "../types.ts";
import type { Backbone } from "../backbone/mod.ts";
import type { BankIndex } from "../bank/search.ts";
import { computeInterResidual, interModelInput } from "../residual/inter.ts";
import type { Head, HeadEngine } from "../model/head.ts";
import type { Sample } from "../data/sample.ts";
import { residualNorms, scorePatchMap } from "../maps/bank.ts";
import { OptionError } from "../util/errors.ts";
import { channelsFirstNorms } from "../maps/bank.ts";

/** Every intermediate of one image (grids row-major `(h, w)`, maps `(S, S)`, S = crop size). */
export interface ImageExplanation {
  /** Patch features `(1, h, w, C)` channels-last. */
  features: FeatureGrid;
  /** The k nearest bank rows of each patch `(h·w, k)` and their L2 distances (spec §3). */
  topk: { indices: Int32Array; distances: Float32Array; k: number };
  /** Inter-residual r = mean(top-k) − f `(1, h, w, C)` and its norm per patch `(h·w)`. */
  interResidual: FeatureGrid;
  interNorms: Float32Array;
  /** Bank-only map `(S, S)` (smoothed ‖r‖₂) and its image score (null with `bankMap: false`). */
  bankMap: Float32Array | null;
  bankScore: number | null;
  /** With a head: the navigator and the self-reference stage (spec §4–5), `(h·w)` each. */
  unary: Float32Array | null;
  waypoint: Float32Array | null;
  /** 1 = self-reference, 0 = suspicious (navigated through the Mamba). */
  refMask: Uint8Array | null;
  /** Position of each patch's nearest self-reference. */
  intraNn: Int32Array | null;
  /** Intra-residual s = f[nn] − f `(C, h, w)` channels-first, and ‖s‖₂ per patch. */
  intraResidual: Float32Array | null;
  intraNorms: Float32Array | null;
  /** With a head (spec §6–7): logits `(nHeads, h·w)`, pixel and smoothed maps, image score. */
  head: {
    logits: Float32Array;
    pixelMap: Float32Array;
    smoothed: Float32Array;
    score: number;
  } | null;
  h: number;
  w: number;
  size: number;
  /** Wall seconds of the bank search and of the rest (maps, head). */
  seconds: { search: number; maps: number };
}

/** Options of {@link explainFeatures} / {@link explainImage}. */
export interface ExplainOptions {
  /** Bank search and map index (built with `createBankIndex`). */
  index: BankIndex;
  /** A head: adds the navigator, self-references, intra-residual and head maps. */
  head?: Head | null;
  /** Bank neighbours of the inter-residual (default 3, spec §3). */
  k?: number;
  /** Where the head runs (default "auto"). */
  engine?: HeadEngine;
  /** Compute the bank-only map (default true). */
  bankMap?: boolean;
}

/**
 * The stages from features on: `f` `(1, h, w, C)` of one image, maps of side `size`.
 * @throws {Error} on shape mismatches (the bank's or head's feature size against `f`).
 */
export async function explainFeatures(
  f: FeatureGrid,
  size: number,
  opts: ExplainOptions,
): Promise<ImageExplanation> {
  const k = opts.k ?? 3;
  if (f.n !== 1) throw new Error(`explainFeatures: features of ${f.n} images; expected one`);
  if (!Number.isInteger(size) || size < 16) {
    throw new OptionError("size", `(the map side) must be an integer ≥ 16 px, got ${size}`);
  }
  if (opts.head && opts.head.config.in_chans !== 2 * f.c) {
    throw new OptionError(
      "head",
      `expects in_chans = ${opts.head.config.in_chans} = 2 × ${opts.head.config.in_chans / 2}-d ` +
        `features; these features are ${f.c}-d (a head for this backbone needs in_chans ${
          2 * f.c
        })`,
    );
  }
  let t = performance.now();
  const top = await computeInterResidual(f, opts.index, k);
  const search = (performance.now() - t) / 1000;
  t = performance.now();
  const interNorms = residualNorms(top.residual);
  const bank = opts.bankMap === false ? null : scorePatchMap(interNorms, f.h, f.w, size);
  const out: ImageExplanation = {
    features: f,
    topk: { indices: top.indices, distances: top.distances, k },
    interResidual: top.residual,
    interNorms,
    bankMap: bank?.map ?? null,
    bankScore: bank?.score ?? null,
    unary: null,
    waypoint: null,
    refMask: null,
    intraNn: null,
    intraResidual: null,
    intraNorms: null,
    head: null,
    h: f.h,
    w: f.w,
    size,
    seconds: { search, maps: 0 },
  };
  const head = opts.head;
  if (!head) {
    out.seconds.maps = (performance.now() - t) / 1000;
    return out;
  }
  const X = interModelInput(top.residual, f);
  head.checkInput(X, 1, f.h, f.w);
  const engine = opts.engine ?? "auto";
  const fu = await head.fuse(X, 1, f.h, f.w, engine);
  const r = await head.fromZ(fu.Z, fu.refMask, 1, f.h, f.w, { outSize: [size, size], engine });
  const intraNorms = channelsFirstNorms(fu.intraResidual, { B: 1, C: f.c, h: f.h, w: f.w });
  return {
    ...out,
    unary: fu.unary,
    waypoint: fu.waypoint,
    refMask: fu.refMask,
    intraNn: fu.intraNn,
    intraResidual: fu.intraResidual,
    intraNorms,
    head: {
      logits: r.headLogits,
      pixelMap: r.pixelMap,
      smoothed: r.smoothed,
      score: r.imageScores[0],
    },
    seconds: { search, maps: (performance.now() - t) / 1000 },
  };
}

/**
 * One loaded image (lib/data `loadSample`) through the backbone and every later stage.
 * @throws {Error} as {@link explainFeatures}; backbone errors name the image.
 */
export async function explainImage(
  sample: Sample,
  opts: ExplainOptions & { backbone: Backbone },
): Promise<ImageExplanation> {
  const size = Math.round(Math.sqrt(sample.image.length / 3));
  if (3 * size * size !== sample.image.length) {
    throw new OptionError(
      "sample",
      `image of ${sample.image.length} values is not a square (3, S, S) crop`,
    );
  }
  const f = await opts.backbone.embed(sample.image, [1, 3, size, size]);
  return await explainFeatures(f, size, opts);
}

/**
 * Patches `(h·w)` that a pixel mask `(S, S)` touches (1 where any pixel of the patch is set): the
 * ground truth at the grid, for comparing grid-level stages with a defect.
 */
export function maskToPatches(mask: Uint8Array, size: number, h: number, w: number): Uint8Array {
  if (!mask || mask.length !== size * size) {
    throw new Error(`maskToPatches: mask of ${mask?.length} pixels, expected ${size}×${size}`);
  }
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1) {
    throw new Error(`maskToPatches: grid ${h}×${w} must be positive integers`);
  }
  const m = new Uint8Array(h * w);
  for (let y = 0; y < size; y++) {
    const gy = Math.min(h - 1, Math.floor((y * h) / size));
    for (let x = 0; x < size; x++) {
      if (mask[y * size + x]) m[gy * w + Math.min(w - 1, Math.floor((x * w) / size))] = 1;
    }
  }
  return m;
}

/**
 * Score one image's patch features (spec §3–7): the inter-residual against the bank (exact
 * top-k), then bank-only scoring (‖r‖₂ map) or the SNARM head on [r ‖ f] (blended with the bank map
 * by the head's λ when it has one). Pure typed arrays in and out — the same code scores in Deno and
 * in a browser page (web/).
 *
 * @example
 * ```ts
 * import { scoreFeatures } from "./score.ts";
 * import { createBankIndex } from "../bank/mod.ts";
 * const C = 8, side = 6;
 * const features = { data: new Float32Array(side * side * C), n: 1, h: side, w: side, c: C };
 * features.data[14 * C] = 3; // one patch far from every bank row
 * const bankIndex = await createBankIndex(null, new Float32Array(10 * C), C);
 * // bank-only (no head): the smoothed ‖r‖₂ map and its image score (spec §7)
 * const r = await scoreFeatures(features, bankIndex, 3, null, 48);
 * r.map; // (48, 48) smoothed anomaly map;  r.score: the image score
 * if (r.map.length !== 48 * 48 || !(r.score > 0)) throw new Error("score");
 * bankIndex.destroy();
 * ```
 * @module
 */
import type { FeatureGrid } from "../types.ts";
import type { BankIndex } from "../bank/search.ts";
import type { Head } from "../model/mod.ts";
import { blendScored, type MapBlend } from "./blend.ts";
import { explainFeatures } from "./explain.ts";

/** What scored one image. */
export interface ScoredImage {
  /** `(S, S)` smoothed anomaly map (S = `size`). */
  map: Float32Array;
  /** Image score (max of the 16×16 average-pooled map, stride 2). */
  score: number;
  /** `(h·w)` L2 norm of the inter-residual per patch (row-major grid). */
  residualNorms: Float32Array;
  /** SNARM only: `(h·w)` 1 = self-reference patch, 0 = navigated (suspicious) patch. */
  refMask: Uint8Array | null;
  /** SNARM only: `(h·w)` unary map (the navigator's per-patch logit). */
  unary: Float32Array | null;
  /** SNARM only: `(h·w)` waypoint map the self-references are chosen on (spec §4). */
  waypoint: Float32Array | null;
  /** Wall seconds of the bank search and of the scoring (head + maps). */
  seconds: { search: number; maps: number };
}

/**
 * Score the features `f` `(1, h, w, C)` of one image against `index`.
 * @param scorer null: bank-only; else the head and its blend (null, or λ = λ_img = 0: the head's
 *   map and score; else the map at λ and the score from the λ_img blend, lib/eval/blend.ts).
 * @param size output map side S (the crop size).
 * @throws {Error} on shape mismatches; GpuError on a WebGPU failure.
 */
export async function scoreFeatures(
  f: FeatureGrid,
  index: BankIndex,
  k: number,
  scorer: { head: Head; blend: MapBlend | null } | null,
  size: number,
): Promise<ScoredImage> {
  const b = scorer?.blend;
  const blend = b && (b.lambda > 0 || (b.imageLambda ?? 0) > 0) ? b : null;
  const x = await explainFeatures(f, size, {
    index,
    k,
    head: scorer?.head ?? null,
    bankMap: !scorer || blend !== null,
  });
  let map: Float32Array, score: number;
  if (!x.head) ({ map, score } = { map: x.bankMap!, score: x.bankScore! });
  else if (blend) ({ map, score } = blendScored(x.head.smoothed, x.bankMap!, blend, size));
  else ({ map, score } = { map: x.head.smoothed, score: x.head.score });
  return {
    map,
    score,
    residualNorms: x.interNorms,
    refMask: x.refMask,
    unary: x.unary,
    waypoint: x.waypoint,
    seconds: x.seconds,
  };
}

/**
 * Report non-finite backbone features (a broken export, an extreme input) at the stage
 * boundary, naming the image, before they reach the bank or the search.
 * @param f `(1, h, w, C)` channels-last features of one image.
 * @throws {Error} naming `path`, the value and its position.
 */
export function checkFeaturesFinite(f: FeatureGrid, path: string): void {
  for (let i = 0; i < f.data.length; i++) {
    if (!Number.isFinite(f.data[i])) {
      const p = Math.floor(i / f.c);
      throw new Error(
        `backbone features of ${path} have a non-finite value (${f.data[i]}) at patch (${
          Math.floor(p / f.w) % f.h
        }, ${p % f.w}), channel ${i % f.c}; check the ONNX export (\`model\`) and the image`,
      );
    }
  }
}

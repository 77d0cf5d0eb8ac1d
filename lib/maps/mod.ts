/**
 * The maps stage (spec §7), one folder: the filters (`filters.ts`: bilinear resize, Gaussian,
 * image score), the head's maps from its logits (`head.ts`) and the bank-only maps from the
 * inter-residual norms (`bank.ts`, with the residual norms), and the head's maps on WebGPU
 * (`gpu.ts`, shader `wgsl/head/maps.wgsl`: the same maps in one recorded program).
 *
 * @example
 * ```ts
 * import { headMaps, scorePatchMap } from "./mod.ts";
 * // a 49 × 49 patch map (e.g. ‖r‖₂ per patch) with one hot patch
 * const patch = new Float32Array(49 * 49);
 * patch[20 * 49 + 30] = 1;
 * // bank-only: bilinear to 392², Gaussian σ = 4, image score = max of the 16 × 16 average pool
 * const { map, score } = scorePatchMap(patch, 49, 49, 392);
 * // the head: mean over heads of sigmoid(upsampled logits), then the same smoothing and score
 * const logits = new Float32Array(16 * 49 * 49).fill(-4); // (nHeads, B, h·w)
 * const m = headMaps(logits, 16, 1, 49, 49, 392, 392);
 * if (map.length !== 392 * 392 || !(score > 0) || m.smoothed.length !== 392 * 392) {
 *   throw new Error("maps");
 * }
 * ```
 * @module
 */
export * from "./filters.ts";
export * from "./head.ts";
export * from "./bank.ts";
export { headMapsGpu } from "./gpu.ts";

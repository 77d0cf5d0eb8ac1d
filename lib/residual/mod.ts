/**
 * The residual stages (spec §3–5): the inter-residual against the bank (`inter.ts`: r = mean of
 * the k nearest bank features − f, and its leave-own-image-out variant for training); the residual
 * fusion of the SNARM head: residual encoding P (`encode.ts`), the navigator (`navigator.ts`:
 * unary/waypoint maps, self-reference top-K), intra-residual and the hybrid residual Z.
 * `fuseResiduals` (`fuse.ts`) runs the stage on the WGSL kernels, on ONNX Runtime's native CPU
 * engine for the nearest-reference search, or in TypeScript (`engine` option);
 * `fuseResidualsRef` is the plain TypeScript reference.
 *
 * @example
 * ```ts
 * import { encodeResidual, navigatorMaps, referenceCount, selectReferences } from "./mod.ts";
 * // the navigator on a 1 × 2 × 2 × 2 inter-residual r (channels-first), spec §4–5
 * const r = Float32Array.from([0.1, 0.2, 0.3, 0.9, 0, 0.1, 0.2, 0.8]); // (B, C, h, w) = (1, 2, 2, 2)
 * const R = encodeResidual(r, 1, 2, 2, 2, "concat_abs_square"); // P(r): (|r| ‖ r²) pairs averaged
 * const { unary, waypoint } = navigatorMaps(R, 1, 2, 4, Float32Array.of(1, 1), 0);
 * // self-references: the K = round(0.75 · 4) = 3 positions with the smallest waypoint
 * const sel = selectReferences(waypoint, 1, 4, referenceCount(4, 0.75));
 * // position 3 (the largest residual) is the suspicious one the Mamba navigates
 * if (sel.refMask.join() !== "1,1,1,0" || !(unary[3] > unary[0])) throw new Error("navigator");
 * ```
 * @module
 */
export type { FusionEngine, FusionOptions, FusionOut, ResidualMethod } from "./types.ts";
export { RESIDUAL_METHODS } from "./types.ts";
export { encodeResidual } from "./encode.ts";
export { navigatorMaps, type ReferenceSelection, selectReferences } from "./navigator.ts";
export { fuseResidualsRef } from "./reference.ts";
export { fuseResiduals } from "./fuse.ts";
export { pyRound, referenceCount } from "./validate.ts";
export * from "./inter.ts";

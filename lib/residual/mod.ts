/**
 * The residual stages (spec §3–5): the inter-residual against the bank (`inter.ts`: r = mean of
 * the k nearest bank features − f, and its leave-own-image-out variant for training); the residual
 * fusion of the SNARM head: residual encoding P (`encode.ts`), the navigator (`navigator.ts`:
 * unary/waypoint maps, self-reference top-K), intra-residual and the hybrid residual Z.
 * `fuseResiduals` (`fuse.ts`) runs the stage on the WGSL kernels, on ONNX Runtime's native CPU
 * engine for the nearest-reference search, or in TypeScript (`engine` option);
 * `fuseResidualsRef` is the plain TypeScript reference.
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

/**
 * The residual stages (spec §3–5): the inter-residual against the bank (`inter.ts`: r = mean of
 * the k nearest bank features − f, and its leave-own-image-out variant for training); the residual
 * fusion of the SNARM head: residual encoding P, the navigator's
 * unary/waypoint maps, self-reference selection, intra-residual and the hybrid residual Z.
 * `fuseResiduals` runs the WGSL kernels (TypeScript fallback without an adapter);
 * `fuseResidualsRef` is the plain TypeScript reference.
 * @module
 */
export type { FusionOptions, FusionOut, ResidualMethod } from "./types.ts";
export { RESIDUAL_METHODS } from "./types.ts";
export { encodeResidual, type ReferenceSelection, selectReferences } from "./encode.ts";
export { fuseResidualsRef, navigatorMaps } from "./reference.ts";
export { fuseResiduals } from "./gpu.ts";
export { fuseResidualsNative } from "./native.ts";
export { pyRound, referenceCount } from "./validate.ts";
export * from "./inter.ts";

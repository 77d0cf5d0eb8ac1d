/**
 * The maps stage (spec §7), one folder: the filters (`filters.ts`: bilinear resize, Gaussian,
 * image score), the head's maps from its logits (`head.ts`) and the bank-only maps from the
 * inter-residual norms (`bank.ts`). The head's WGSL map program is lib/model/maps_gpu.ts.
 * @module
 */
export * from "./filters.ts";
export * from "./head.ts";
export * from "./bank.ts";

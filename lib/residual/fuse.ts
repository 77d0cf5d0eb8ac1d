/**
 * The residual fusion stage (spec §4–5), one entry for every engine: P(r), the navigator's unary
 * and waypoint maps, the self-references, the nearest reference of each position, the
 * intra-residual and the hybrid residual Z.
 *
 * @example
 * ```ts
 * import { fuseResiduals } from "./fuse.ts";
 * // one image, 2×2 grid, C = 2: X = [r ‖ f], channels-first
 * const X = Float32Array.from([0.1, 0.2, 0.3, 0.9, 0, 0, 0, 0, 1, 2, 3, 4, 1, 1, 1, 1]);
 * const fu = await fuseResiduals(X, 1, 2, 2, Float32Array.of(0.5, -0.5), 0, {
 *   ratio: 0.5,
 *   method: "abs",
 *   engine: "reference",
 * });
 * fu.refMask; // (1, 4): the 2 positions with the smallest waypoint are self-references
 * if (fu.Z.length !== 16 || fu.K !== 2) throw new Error("Z is (B, 2C, h, w)");
 * ```
 * @module
 */
import { tryGetGpu, warnFallback } from "../gpu/mod.ts";
import { nativePreferred } from "../backbone/session.ts";
import { fuseOnGpu } from "./gpu.ts";
import { nearestReferencesNative } from "./native.ts";
import { fuseResidualsRef, fusionBack, fusionFront } from "./reference.ts";
import type { FusionArgs, FusionOut } from "./types.ts";
import { checkFusionInput } from "./validate.ts";

/**
 * Residual fusion on the engine `opts.engine` picks (see `FusionOptions.engine`, lib/residual/types.ts); without
 * an adapter `"webgpu"` warns (`warnFallback("residual fusion")`) and runs the reference.
 *
 * @param args {@link FusionArgs}: X `(B, 2C, h, w)` = [r ‖ f], B, h, w, the unary conv's weight
 *   and bias, and the options `ratio` (K = round(ratio·h·w)), `method` (the encoding P), `engine`.
 * @returns {@link FusionOut}; shapes in its field docs.
 * @throws {Error} naming `X`, `unaryWeight`, `unaryBias`, `ratio` or `method` on bad input; on
 *   `"native"` when onnxruntime-node does not load; `GpuError` on a WebGPU failure.
 */
export async function fuseResiduals(...args: FusionArgs): Promise<FusionOut> {
  const [X, , , , unaryWeight, unaryBias, opts] = args;
  const shape = checkFusionInput(...args);
  const engine = opts.engine ?? "auto";
  const gpu = engine === "reference" || engine === "native" ? null : await tryGetGpu();
  if (engine === "native" || (engine === "auto" && (await nativePreferred(gpu)))) {
    const front = fusionFront(X, shape, unaryWeight, unaryBias, opts);
    return fusionBack(X, front, await nearestReferencesNative(X, front), opts);
  }
  if (gpu) return await fuseOnGpu(gpu, X, shape, unaryWeight, unaryBias, opts);
  if (engine !== "reference") warnFallback("residual fusion");
  return fuseResidualsRef(...args);
}

/**
 * snarm — SNARM (Self-Navigated Residual Mamba, arXiv 2508.01591) anomaly detection on WebGPU.
 *
 * Import by path or URL (`import * as snarm from "https://…/mod.ts"`); WGSL shaders are loaded
 * relative to the module URL.
 *
 * The method, stage by stage (each module's `@example` runs in `deno task test`): lib/data (images,
 * the official crop) → lib/backbone (patch features) → lib/bank (coreset bank, exact top-k search)
 * → lib/residual (inter-residual, navigator, self-references, intra-residual) → lib/model (the
 * self-navigated Mamba head) → lib/maps → lib/metrics; lib/eval `explainImage` runs one image
 * through all of them, `runEval` a whole dataset (`deno task eval`).
 *
 * @example
 * ```ts
 * import { fileURLToPath } from "node:url";
 * import { formatTable, metricsTable, runEval } from "./mod.ts";
 * // bank-only on the shipped data (seconds); the default `method: "snarm"` also fits a head
 * const r = await runEval({
 *   data: fileURLToPath(new URL("./data/hazelnut_toy", import.meta.url)),
 *   method: "bank",
 *   imageSize: 224,
 * });
 * console.log(formatTable(metricsTable(r.categories.map((c) => ({ category: c.category, ...c.metrics })))));
 * ```
 * @module
 */
export * from "./lib/types.ts";
export * from "./lib/gpu/mod.ts";
export * from "./lib/io/safetensors.ts";
export * from "./lib/data/mod.ts";
export * from "./lib/backbone/mod.ts";
export * from "./lib/bank/mod.ts";
export * from "./lib/maps/mod.ts";
export * from "./lib/residual/mod.ts";
export * from "./lib/model/mod.ts";
export * from "./lib/viz/mod.ts";
export * from "./lib/train/mod.ts";
export * from "./lib/metrics/mod.ts";
export * from "./lib/eval/mod.ts";
export * from "./lib/util/progress.ts";
export {
  acquireLock,
  commitFolder,
  type OutputLock,
  OutputLockedError,
  recoverOutput,
  stageFolder,
} from "./lib/io/commit.ts";

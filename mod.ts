/**
 * snarm — SNARM (Self-Navigated Residual Mamba, arXiv 2508.01591) anomaly detection on WebGPU.
 *
 * Import by path or URL (`import * as snarm from "https://…/mod.ts"`); WGSL shaders are loaded
 * relative to the module URL.
 *
 * ```ts
 * import { runEval, formatTable, metricsTable } from "./mod.ts";
 * const r = await runEval({ data: "data/hazelnut_toy" });
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

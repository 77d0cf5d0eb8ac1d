/**
 * The main evaluation job (`runEval`: bank → SNARM head fitted on the data at hand, or bank-only
 * scoring → maps → metrics), the fit with its cache (`fitHead`), and their building blocks.
 * @module
 */
export * from "../maps/bank.ts";
export * from "./fit.ts";
export * from "./run.ts";
export * from "./score.ts";
export * from "./results.ts";
export * from "./shard.ts";
export * from "./memory.ts";
export * from "./blend.ts";
export * from "./explain.ts";

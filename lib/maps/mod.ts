/** Anomaly-map post-processing (spec §7). @module */
export * from "./maps.ts";

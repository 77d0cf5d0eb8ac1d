/** GPU runtime: one device per process, pipeline cache, buffers, errors. @module */
export * from "./device.ts";
export * from "./pipeline.ts";
export * from "./buffers.ts";

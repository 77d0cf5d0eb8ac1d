/**
 * Shared test helper: the WebGPU device, or a skip outside CI / a hard failure in CI.
 * In CI (`CI=true`) a missing adapter fails the kernel tests and prints SNARM_NO_ADAPTER, which
 * `.ci/run` turns into a failed run.
 */
import { type Gpu, tryGetGpu } from "../lib/gpu/mod.ts";

export const gpu: Gpu | null = await tryGetGpu();
const inCi = Deno.env.get("CI") === "true";

/** Deno.test options for a kernel test: runs when an adapter exists, and always in CI. */
export const gpuTest = { ignore: !gpu && !inCi, sanitizeResources: false, sanitizeOps: false };

/** The device; in CI without an adapter this throws (and marks the log for `.ci/run`). */
export function requireGpu(): Gpu {
  if (!gpu) {
    console.error("SNARM_NO_ADAPTER: no WebGPU adapter found");
    throw new Error("no WebGPU adapter (SNARM_NO_ADAPTER)");
  }
  return gpu;
}

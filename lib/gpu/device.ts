/**
 * One WebGPU device per process, adapter info and limits, and the fallback rule.
 *
 * Every WGSL stage in snarm asks {@link getGpu} for the shared device. When no adapter exists,
 * {@link tryGetGpu} returns `null` and each stage falls back to its TypeScript reference, after
 * {@link warnFallback} has printed one line per stage.
 *
 * @example
 * ```ts
 * import { tryGetGpu } from "./device.ts";
 * const gpu = await tryGetGpu(); // null without an adapter (getGpu throws a GpuError then)
 * if (gpu) console.log(gpu.info.description, gpu.limits.maxStorageBufferBindingSize);
 * ```
 * @module
 */

/** Raised for every WebGPU failure: no adapter, validation error, out-of-memory, device lost. */
export class GpuError extends Error {
  override name = "GpuError";
}

/** The shared device with the facts kernels choose variants by. */
export interface Gpu {
  device: GPUDevice;
  adapter: GPUAdapter;
  /** Adapter description, vendor and whether it is a CPU/fallback adapter (lavapipe, llvmpipe). */
  info: {
    description: string;
    vendor: string;
    architecture: string;
    isFallbackAdapter: boolean;
    /** True for a CPU implementation (lavapipe/llvmpipe/SwiftShader): kernels pick CPU-tuned variants. */
    isCpu: boolean;
  };
  /** The limits the device was created with (the adapter's maxima for the ones snarm raises). */
  limits: GPUSupportedLimits;
  /** Whether the device was created with `shader-f16`. */
  hasF16: boolean;
}

let gpuPromise: Promise<Gpu | null> | null = null;
let lostReason: string | null = null;

/**
 * Return the process-wide device, or `null` when `navigator.gpu` or an adapter is missing.
 * Set `SNARM_NO_GPU=1` to force the TypeScript fallback (used in tests of the fallback path).
 */
export function tryGetGpu(): Promise<Gpu | null> {
  if (!gpuPromise) gpuPromise = initGpu();
  return gpuPromise;
}

/**
 * Return the process-wide device.
 * @throws {GpuError} when no WebGPU adapter exists or the device was lost.
 */
export async function getGpu(): Promise<Gpu> {
  const gpu = await tryGetGpu();
  if (!gpu) {
    throw new GpuError(
      "no WebGPU adapter: install a Vulkan driver (Debian: apt-get install mesa-vulkan-drivers libvulkan1) or run on a machine with a GPU",
    );
  }
  if (lostReason !== null) throw new GpuError(`WebGPU device lost: ${lostReason}`);
  return gpu;
}

function envFlag(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

async function initGpu(): Promise<Gpu | null> {
  if (envFlag("SNARM_NO_GPU") === "1") return null;
  if (typeof navigator === "undefined" || !("gpu" in navigator) || !navigator.gpu) return null;
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) return null;
  const a = adapter.limits;
  const hasF16 = adapter.features.has("shader-f16");
  const device = await adapter.requestDevice({
    requiredFeatures: hasF16 ? ["shader-f16"] : [],
    requiredLimits: {
      maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
      maxBufferSize: a.maxBufferSize,
      maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: a.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: a.maxComputeWorkgroupSizeX,
      maxStorageBuffersPerShaderStage: a.maxStorageBuffersPerShaderStage,
    },
  });
  device.lost.then((info) => {
    lostReason = `${info.reason}: ${info.message}`;
  });
  device.addEventListener("uncapturederror", (ev) => {
    const e = (ev as GPUUncapturedErrorEvent).error;
    console.error(`snarm: uncaptured WebGPU error: ${e.message}`);
  });
  const ai = adapter.info;
  // Browsers may leave the description empty (Dawn on SwiftShader: vendor "google", architecture
  // "swiftshader"): fall back to vendor + architecture.
  const desc = ai.description || [ai.vendor, ai.architecture].filter(Boolean).join(" ");
  const isCpu = ai.isFallbackAdapter || /llvmpipe|lavapipe|swiftshader|softpipe/i.test(desc);
  return {
    device,
    adapter,
    info: {
      description: desc,
      vendor: ai.vendor ?? "",
      architecture: ai.architecture ?? "",
      isFallbackAdapter: ai.isFallbackAdapter ?? false,
      isCpu,
    },
    limits: device.limits,
    hasF16,
  };
}

const warned = new Set<string>();

/** Print one line, once per stage, saying that `stage` runs its TypeScript reference. */
export function warnFallback(stage: string): void {
  if (warned.has(stage)) return;
  warned.add(stage);
  const why = envFlag("SNARM_NO_GPU") === "1"
    ? "SNARM_NO_GPU=1"
    : "no WebGPU adapter (install mesa-vulkan-drivers for a CPU adapter)";
  console.warn(`snarm: ${why}: ${stage} runs its TypeScript reference (slow)`);
}

/**
 * Run `fn` inside validation and out-of-memory error scopes; any captured error becomes a
 * {@link GpuError} naming `what`.
 */
export async function withErrorScope<T>(
  device: GPUDevice,
  what: string,
  fn: () => T | Promise<T>,
): Promise<T> {
  device.pushErrorScope("out-of-memory");
  device.pushErrorScope("validation");
  let result: T | undefined;
  let failure: unknown = null;
  try {
    result = await fn();
  } catch (e) {
    failure = e;
  }
  const validation = await device.popErrorScope();
  const oom = await device.popErrorScope();
  if (validation) throw new GpuError(`${what}: WebGPU validation error: ${validation.message}`);
  if (oom) throw new GpuError(`${what}: WebGPU out of memory: ${oom.message}`);
  if (failure !== null) throw failure;
  if (lostReason !== null) throw new GpuError(`${what}: WebGPU device lost: ${lostReason}`);
  return result as T;
}

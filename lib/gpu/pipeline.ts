/**
 * WGSL loading (relative to this module's URL, so `import "https://…/mod.ts"` works) and a
 * pipeline cache: each (shader, entry point, overrides/template) pair is compiled once per process.
 * On lavapipe the first dispatch of a pipeline JIT-compiles for 0.5–20 s, so reuse matters.
 * @module
 */
import { type Gpu, GpuError, withErrorScope } from "./device.ts";

const sourceCache = new Map<string, Promise<string>>();

/** URL of the `wgsl/` folder at the repository root. */
export const WGSL_DIR = new URL("../../wgsl/", import.meta.url);

/**
 * Read `wgsl/<name>` (e.g. `"knn_topk.wgsl"`) over `file:` or `http(s):`.
 * @throws {GpuError} when the file cannot be read.
 */
export function loadWgsl(name: string): Promise<string> {
  let p = sourceCache.get(name);
  if (!p) {
    const url = new URL(name, WGSL_DIR);
    p = (async () => {
      try {
        if (url.protocol === "file:") return await Deno.readTextFile(url);
        const res = await fetch(url);
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        return await res.text();
      } catch (e) {
        sourceCache.delete(name);
        throw new GpuError(`cannot load WGSL shader ${url.href}: ${(e as Error).message}`);
      }
    })();
    sourceCache.set(name, p);
  }
  return p;
}

/**
 * Replace `{{KEY}}` placeholders in a WGSL template with the given values. Used for compile-time
 * constants that WGSL `override` cannot express (array sizes, unrolled code).
 * @throws {GpuError} when a placeholder is left unfilled.
 */
export function fillTemplate(src: string, values: Record<string, string | number>): string {
  const out = src.replace(/\{\{(\w+)\}\}/g, (m, k: string) => {
    if (!(k in values)) throw new GpuError(`WGSL template placeholder ${m} has no value`);
    return String(values[k]);
  });
  return out;
}

const pipelineCache = new WeakMap<GPUDevice, Map<string, Promise<GPUComputePipeline>>>();

/**
 * Compile (once) and return a compute pipeline.
 * @param key unique cache key: shader name plus every template value and override.
 * @param code WGSL source (already templated).
 * @param entryPoint entry point name (default `main`).
 * @param constants WGSL `override` values.
 * @throws {GpuError} on a shader compilation or validation error, with the compiler's message.
 */
export function getPipeline(
  gpu: Gpu,
  key: string,
  code: string,
  entryPoint = "main",
  constants?: Record<string, number>,
): Promise<GPUComputePipeline> {
  let m = pipelineCache.get(gpu.device);
  if (!m) pipelineCache.set(gpu.device, m = new Map());
  const fullKey = `${key}#${entryPoint}#${JSON.stringify(constants ?? {})}`;
  let p = m.get(fullKey);
  if (!p) {
    p = withErrorScope(gpu.device, `compiling WGSL pipeline ${key}`, async () => {
      const module = gpu.device.createShaderModule({ code, label: key });
      const info = await module.getCompilationInfo();
      const errors = info.messages.filter((x) => x.type === "error");
      if (errors.length) {
        throw new GpuError(
          `WGSL ${key}: ` +
            errors.map((e) => `line ${e.lineNum}:${e.linePos} ${e.message}`).join("; "),
        );
      }
      return gpu.device.createComputePipeline({
        label: key,
        layout: "auto",
        compute: { module, entryPoint, constants },
      });
    });
    m.set(fullKey, p);
    p.catch(() => m!.delete(fullKey));
  }
  return p;
}

/** Number of pipelines compiled so far on this device (for tests of the cache). */
export function pipelineCount(gpu: Gpu): number {
  return pipelineCache.get(gpu.device)?.size ?? 0;
}

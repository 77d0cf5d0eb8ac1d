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

/** A line `// #include "common/math.wgsl"`: replaced by that file (path relative to `wgsl/`). */
const INCLUDE = /^\/\/ #include "([\w./-]+)"[ \t]*$/gm;

/**
 * Read `wgsl/<name>` (e.g. `"bank/knn_tiled.wgsl"`) over `file:` or `http(s):`, with every
 * `// #include "<file>"` line replaced by that file's text (e.g. `common/math.wgsl`, the shared
 * math functions; each file at most once per shader, includes of includes resolved too).
 * @throws {GpuError} when a file cannot be read.
 */
export function loadWgsl(name: string): Promise<string> {
  let p = sourceCache.get(name);
  if (!p) {
    const url = new URL(name, WGSL_DIR);
    p = (async () => {
      let src: string;
      try {
        if (url.protocol === "file:") src = await Deno.readTextFile(url);
        else {
          const res = await fetch(url);
          if (!res.ok) throw new Error(`HTTP ${res.status}`);
          src = await res.text();
        }
      } catch (e) {
        sourceCache.delete(name);
        throw new GpuError(`cannot load WGSL shader ${url.href}: ${(e as Error).message}`);
      }
      return await resolveIncludes(src, new Set([name]));
    })();
    sourceCache.set(name, p);
  }
  return p;
}

async function resolveIncludes(src: string, seen: Set<string>): Promise<string> {
  const names = [...src.matchAll(INCLUDE)].map((m) => m[1]);
  const texts = new Map<string, string>();
  for (const n of names) {
    if (seen.has(n)) continue;
    seen.add(n);
    texts.set(n, await loadWgsl(n));
  }
  return src.replace(INCLUDE, (_m, n: string) => texts.get(n) ?? `// (${n} included above)`);
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

/**
 * A resource for {@link bindGroup}: a whole buffer, a buffer range, a texture (bound as a 2-D
 * array view, the layout of the head's activation textures) or an explicit view.
 */
export type Bindable = GPUBuffer | GPUBufferBinding | GPUTexture | GPUTextureView;

/**
 * The bind group of group `group` (default 0) of `pipeline`: entry i is bound at binding i; `null`
 * entries (bindings the entry point does not use) are skipped. The one place the toolkit builds
 * bind groups.
 */
export function bindGroup(
  gpu: Gpu,
  pipeline: GPUComputePipeline,
  entries: Array<Bindable | null>,
  label = "",
  group = 0,
): GPUBindGroup {
  const list: GPUBindGroupEntry[] = [];
  entries.forEach((r, i) => {
    if (r === null) return;
    list.push({
      binding: i,
      resource: r instanceof GPUBuffer
        ? { buffer: r }
        : r instanceof GPUTexture
        ? r.createView({ dimension: "2d-array" })
        : r,
    });
  });
  return gpu.device.createBindGroup({
    label,
    layout: pipeline.getBindGroupLayout(group),
    entries: list,
  });
}

/**
 * Memory estimate of an evaluation run, checked before any work (issue #13 item 4): a run that
 * cannot fit in the machine's memory is refused with the estimate and the option to change; one
 * above {@link WARN_FRACTION} of it gets a warning.
 *
 * The model (bytes), calibrated on hazelnut_toy bank-only runs (28 train, 23 test images,
 * MobileNetV2, 256-d): measured peak RSS 400 / 650 / 977 MB at 256² / 512² / 1024² vs estimated
 * 409 / 586 / 1041 MB before the 15 % margin applied to the sum (`/usr/bin/time -v deno task eval
 * --method bank --image-size S --bank-size 1000`; with the margin 470 / 674 / 1197 MB, above the
 * measured peak at every size):
 * - runtime (Deno, ONNX Runtime, WebGPU): 350 MB;
 * - bank build: (min(train images · grid², bank cap) + T) · D · 4 (candidate and bank features);
 * - test maps, masks, RGB and the pixel-metric sort of the largest category: images · size² · 16;
 * - backbone activations: size² · 128;
 * - head fit (SNARM without --head): samples · grid² · 2D · 2 (float16 [r ‖ f]), samples ≈ 3 ·
 *   min(train images, 50) per category.
 *
 * The machine's memory is the smaller of the physical memory and the cgroup limit
 * (`/sys/fs/cgroup/memory.max`, as under Slurm or Docker); `SNARM_MEMORY_LIMIT` (bytes, or with a
 * K/M/G suffix) overrides it.
 * @module
 */

/** Warn when the estimate exceeds this fraction of the machine's memory. */
export const WARN_FRACTION = 0.5;
/** Say the estimate (without warning) above this fraction. */
export const INFO_FRACTION = 0.2;
/** Largest accepted `--image-size` (px per side). */
export { MAX_IMAGE_SIZE } from "../data/preprocess.ts";

/** What the estimate depends on. */
export interface MemoryInputs {
  /** Training images that go into the bank (all categories of the scope). */
  trainImages: number;
  /** Test images of the largest category. */
  testImagesMax: number;
  /** Crop = backbone input size (px). */
  imageSize: number;
  /** Patch grid side. */
  grid: number;
  featureDim: number;
  bankSize: number;
  bankCap: number;
  /** Training images of the head fit (0 when no head is fitted). */
  fitImages: number;
}

/** One term of the estimate with the options that shrink it (backticked option names). */
export interface MemoryPart {
  name: string;
  bytes: number;
  options: string;
}

/** The estimate's terms (bytes) and their sum. */
export function estimateEvalMemory(m: MemoryInputs): { bytes: number; parts: MemoryPart[] } {
  const g2 = m.grid * m.grid, s2 = m.imageSize * m.imageSize;
  const parts: MemoryPart[] = [
    { name: "runtime", bytes: 350 * 2 ** 20, options: "" },
    {
      name: "bank build",
      bytes: (Math.min(m.trainImages * g2, m.bankCap) + m.bankSize) * m.featureDim * 4,
      options: "`bankCap` / `bankSize`",
    },
    { name: "test maps", bytes: m.testImagesMax * s2 * 16, options: "`imageSize`" },
    { name: "backbone", bytes: s2 * 128, options: "`imageSize`" },
    {
      name: "head fit",
      bytes: 3 * m.fitImages * g2 * 2 * m.featureDim * 2,
      options: "`maxImages` / `method` bank",
    },
  ];
  // 15 % margin: the terms alone came out up to 11 % under the measured peak (512²).
  return { bytes: 1.15 * parts.reduce((a, p) => a + p.bytes, 0), parts };
}

function parseBytes(s: string): number | null {
  const m = /^\s*([\d.]+)\s*([kKmMgGtT]?)i?[bB]?\s*$/.exec(s);
  if (!m) return null;
  const mult = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2].toLowerCase()]!;
  const v = Number(m[1]) * mult;
  return Number.isFinite(v) && v > 0 ? v : null;
}

/** The memory this process may use (bytes) and where the figure comes from. */
export function machineMemory(): { bytes: number; source: string } {
  const env = Deno.env.get("SNARM_MEMORY_LIMIT");
  if (env !== undefined) {
    const v = parseBytes(env);
    if (v === null) throw new Error(`SNARM_MEMORY_LIMIT must be a size like 8G, got "${env}"`);
    return { bytes: v, source: "SNARM_MEMORY_LIMIT" };
  }
  let bytes = Deno.systemMemoryInfo().total, source = "physical memory";
  try {
    const cg = Deno.readTextFileSync("/sys/fs/cgroup/memory.max").trim();
    const v = cg === "max" ? null : Number(cg);
    if (v && Number.isFinite(v) && v < bytes) {
      bytes = v;
      source = "cgroup limit /sys/fs/cgroup/memory.max";
    }
  } catch { /* no cgroup v2 limit */ }
  return { bytes, source };
}

const gb = (b: number) => `${(b / 2 ** 30).toFixed(2)} GB`;

/**
 * Refuse a run whose estimate exceeds the machine's memory; warn above {@link WARN_FRACTION}.
 * @throws {Error} with the estimate, its largest term and the options that shrink it.
 */
export function checkEvalMemory(m: MemoryInputs, warn: (s: string) => void = console.warn): void {
  const est = estimateEvalMemory(m);
  const mem = machineMemory();
  const top = est.parts.slice(1).reduce((a, p) => (p.bytes > a.bytes ? p : a));
  const fixed = est.parts[0].bytes > top.bytes;
  const detail = `estimated ${gb(est.bytes)} (largest: ${top.name} ${gb(top.bytes)}, set by ` +
    `${top.options}) for ${m.imageSize}² input, ${m.testImagesMax} test images, bank ` +
    `${m.bankSize} × ${m.featureDim}`;
  if (est.bytes > mem.bytes) {
    throw new Error(
      `this run needs more memory than the machine has: ${detail}; ${mem.source}: ${
        gb(mem.bytes)
      }. ${
        fixed
          ? `The fixed runtime (${gb(est.parts[0].bytes)}: Deno, ONNX Runtime, WebGPU) alone ` +
            "exceeds it: run on a machine with more memory"
          : `Lower ${top.options}`
      }`,
    );
  }
  if (est.bytes <= WARN_FRACTION * mem.bytes) {
    if (est.bytes > INFO_FRACTION * mem.bytes) {
      warn(`snarm: memory: ${detail}, of ${gb(mem.bytes)} (${mem.source})`);
    }
  } else {
    warn(
      `snarm: warning: ${detail} — over ${100 * WARN_FRACTION}% of the ${
        gb(mem.bytes)
      } available (${mem.source}); lower ${top.options} if the machine runs short`,
    );
  }
}

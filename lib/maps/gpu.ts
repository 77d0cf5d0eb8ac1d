/**
 * Anomaly maps on the GPU (`wgsl/head/maps.wgsl`): the official `pixel_forward` (bilinear
 * align_corners = true → sigmoid → mean over heads) and the per-image Gaussian (σ = 4, truncate 4,
 * reflect) of `predict_pixel` (spec §6–7). The image score (16×16/2 average pool, max) stays on
 * the CPU (lib/maps imageScore, a summed-area table). TypeScript reference: {@link headMaps}.
 * @module
 */
import { type Gpu, tryGetGpu, warnFallback, withErrorScope } from "../gpu/device.ts";
import { fillTemplate, getPipeline, loadWgsl } from "../gpu/pipeline.ts";
import { createStorage, readF32 } from "../gpu/buffers.ts";
import { gaussianKernel1d, imageScore } from "./filters.ts";
import { checkHeadLogits, type HeadMaps, headMaps } from "./head.ts";
import { bindGroup, encodeSteps, type Step, uniformWords } from "../gpu/steps.ts";
import { createActTexture } from "../gpu/textures.ts";

export { headMaps };

/** The three map pipelines for one σ. */
export interface MapPipelines {
  pixel: GPUComputePipeline;
  gaussV: GPUComputePipeline;
  gaussH: GPUComputePipeline;
}

function lit(x: number): string {
  const s = Math.fround(x).toPrecision(9);
  return s.includes(".") || s.includes("e") ? s : `${s}.0`;
}

/** Fill the template: Gaussian taps unrolled with literal weights (scipy's kernel, radius 4σ). */
export function mapsSource(template: string, sigma: number, truncate = 4): string {
  const k = gaussianKernel1d(sigma, truncate);
  const R = (k.length - 1) / 2;
  let v = "  var s = vec4<f32>(0.0);\n";
  for (let t = -R; t <= R; t++) {
    v += `  s += ${lit(k[t + R])} * textureLoad(src, vec2<i32>(x4, reflect(y + ${t}, n)), 0);\n`;
  }
  const nt = (4 + 2 * R) / 4;
  let fast = "";
  if (R % 4 === 0) {
    for (let j = 0; j < nt; j++) {
      fast += `    let v${j} = textureLoad(src, vec2<i32>(x4 - ${R / 4} + ${j}, y), 0);\n`;
    }
    const px = (i: number) => `v${i >> 2}.${"xyzw"[i & 3]}`;
    for (let c = 0; c < 4; c++) {
      fast += `    s.${"xyzw"[c]} = ${
        Array.from({ length: 2 * R + 1 }, (_, t) => `${lit(k[t])} * ${px(c + t)}`).join(" + ")
      };\n`;
    }
  } else {
    fast = edge(k, R);
  }
  return fillTemplate(template, {
    RADIUS: R,
    GAUSS_V: v,
    GAUSS_H_FAST: fast,
    GAUSS_H_EDGE: edge(k, R),
  });
}

function edge(k: Float64Array, R: number): string {
  let e = "";
  for (let t = -R; t <= R; t++) {
    e += `    s += ${lit(k[t + R])} * vec4<f32>(at(y, X + ${t}), at(y, X + ${1 + t}), at(y, X + ${
      2 + t
    }), at(y, X + ${3 + t}));\n`;
  }
  return e;
}

/** Compile (once per process and σ) the map pipelines. */
export async function mapPipelines(gpu: Gpu, sigma = 4): Promise<MapPipelines> {
  const src = mapsSource(await loadWgsl("head/maps.wgsl"), sigma);
  const key = `head_maps:sigma=${sigma}`;
  const [pixel, gaussV, gaussH] = await Promise.all([
    getPipeline(gpu, key, src, "pixel_map"),
    getPipeline(gpu, key, src, "gauss_v"),
    getPipeline(gpu, key, src, "gauss_h"),
  ]);
  return { pixel, gaussV, gaussH };
}

/** Row stride (floats) of the map buffers: W padded to 64 (copyBufferToTexture alignment). */
export function mapStride(W: number): number {
  return Math.ceil(W / 64) * 64;
}

/**
 * Record the map steps of one image: position-major logits `lgp` (h·w rows of `lgpLd` floats,
 * head j in column j) → pixel map and smoothed map buffers, each H rows of {@link mapStride}(W).
 */
export async function mapSteps(
  gpu: Gpu,
  lgp: GPUBuffer,
  lgpLd: number,
  h: number,
  w: number,
  nHeads: number,
  H: number,
  W: number,
  sigma = 4,
): Promise<{ steps: Step[]; pixel: GPUBuffer; smoothed: GPUBuffer; Wp: number }> {
  const mp = await mapPipelines(gpu, sigma);
  const L = h * w, Wp = mapStride(W);
  const lgTex = createActTexture(gpu, lgpLd, L, 1, "logits texture", false);
  const pm = createStorage(gpu, H * Wp * 4, "pixel map"),
    tmp = createStorage(gpu, H * Wp * 4, "gauss tmp");
  const sm = createStorage(gpu, H * Wp * 4, "smoothed map");
  const pmTex = createActTexture(gpu, Wp, H, 1, "pixel map texture", false);
  const tmpTex = createActTexture(gpu, Wp, H, 1, "gauss tmp texture", false);
  const prm = uniformWords(gpu, [h, w, H, W, Wp / 4, nHeads, 0, 0], "maps params");
  const view2d = (t: GPUTexture) => t.createView({ dimension: "2d" });
  const groups = Math.ceil((H * Wp) / 4 / 64);
  const copy = (
    src: GPUBuffer,
    dst: GPUTexture,
    ld: number,
    rows: number,
    label: string,
  ): Step => ({
    kind: "copy",
    label,
    encode: (enc) =>
      enc.copyBufferToTexture({ buffer: src, bytesPerRow: ld * 4, rowsPerImage: rows }, {
        texture: dst,
      }, [
        ld / 4,
        rows,
        1,
      ]),
  });
  const dispatch = (
    pipe: GPUComputePipeline,
    entries: Array<GPUBuffer | GPUTextureView | null>,
    label: string,
  ): Step => ({
    kind: "dispatch",
    label,
    pipeline: pipe,
    bindGroup: bindGroup(gpu, pipe, entries, label),
    workgroups: [groups, 1, 1],
  });
  const steps: Step[] = [
    copy(lgp, lgTex, lgpLd, L, "logits → texture"),
    dispatch(mp.pixel, [prm, view2d(lgTex), null, pm], "pixel map"),
    copy(pm, pmTex, Wp, H, "pixel map → texture"),
    dispatch(mp.gaussV, [prm, null, view2d(pmTex), tmp], "gaussian"),
    copy(tmp, tmpTex, Wp, H, "gaussian → texture"),
    dispatch(mp.gaussH, [prm, null, view2d(tmpTex), sm], "gaussian"),
  ];
  return { steps, pixel: pm, smoothed: sm, Wp };
}

/**
 * {@link headMaps} on the GPU: pixel map and Gaussian in WGSL, image score on the CPU. Falls back
 * to the TypeScript reference without an adapter.
 * @param logits `(nHeads, B, h·w)`.
 * @throws {Error} on a size mismatch or maps smaller than the 16×16 pool.
 */
export async function headMapsGpu(
  logits: Float32Array,
  nHeads: number,
  B: number,
  h: number,
  w: number,
  H: number,
  W: number,
): Promise<HeadMaps> {
  checkHeadLogits(logits, nHeads, B, h, w);
  const L = h * w;
  const gpu = await tryGetGpu();
  if (!gpu) {
    warnFallback("head maps");
    return headMaps(logits, nHeads, B, h, w, H, W);
  }
  return await withErrorScope(gpu.device, "head maps", async () => {
    const ld = Math.ceil(nHeads / 64) * 64;
    const lgp = createStorage(gpu, L * ld * 4, "logits (position-major)");
    const ms = await mapSteps(gpu, lgp, ld, h, w, nHeads, H, W);
    const pixelMap = new Float32Array(B * H * W), smoothed = new Float32Array(B * H * W);
    const imageScores = new Float32Array(B);
    for (let b = 0; b < B; b++) {
      const a = new Float32Array(L * ld);
      for (let j = 0; j < nHeads; j++) {
        for (let p = 0; p < L; p++) a[p * ld + j] = logits[(j * B + b) * L + p];
      }
      gpu.device.queue.writeBuffer(lgp, 0, a);
      const enc = gpu.device.createCommandEncoder();
      encodeSteps(enc, ms.steps);
      gpu.device.queue.submit([enc.finish()]);
      const pm = await readF32(gpu, ms.pixel, H * ms.Wp),
        sm = await readF32(gpu, ms.smoothed, H * ms.Wp);
      for (let y = 0; y < H; y++) {
        pixelMap.set(pm.subarray(y * ms.Wp, y * ms.Wp + W), (b * H + y) * W);
        smoothed.set(sm.subarray(y * ms.Wp, y * ms.Wp + W), (b * H + y) * W);
      }
      imageScores[b] = imageScore(smoothed.subarray(b * H * W, (b + 1) * H * W), H, W);
    }
    return { pixelMap, smoothed, imageScores };
  });
}

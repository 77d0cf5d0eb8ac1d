/**
 * The head's GEMM kernel (`wgsl/head/gemm.wgsl`): generator, pipeline cache and step builder.
 * Used for the patch embedding, Mamba in/x/out projections and the Winograd convolutions.
 * TypeScript reference: {@link linearRef}.
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { GpuError } from "../gpu/device.ts";
import { fillTemplate, getPipeline, loadWgsl } from "../gpu/pipeline.ts";
import { bindGroup, type Step, uniformWords } from "../gpu/steps.ts";
import { BufferUsage, TextureUsage } from "../gpu/buffers.ts";

export { linearRef } from "./reference.ts";

/** Compile-time shape of the GEMM kernel. */
export interface GemmShape {
  /** K window in texels (4 channels each); weights window = NW·KW4 vec4 ≤ 32 KiB. */
  KW4: number;
  /** Outputs per workgroup (multiple of 4). */
  NW: number;
  /** Rows per invocation. */
  QPI: number;
  /** Workgroup size. */
  WG: number;
}

/**
 * The shape used for a token width d: KW = min(128, d), NW = min(64, d) (both rounded to 4),
 * 2 rows per invocation, `WG` invocations per workgroup (see {@link pickGemmWorkgroup}).
 */
export function gemmShapeFor(d: number, WG = 128, QPI = 2): GemmShape {
  const d4 = Math.ceil(d / 4) * 4;
  return { KW4: Math.min(128, d4) / 4, NW: Math.min(64, d4), QPI, WG };
}

/**
 * Workgroup size (multiple of 8 in [64, 128]) minimising the padded rows of a set of GEMMs plus
 * the per-workgroup weight-window copy (≈ 14 rows' worth of work): e.g. the paper head's GEMMs
 * have 169, 625, 676, 2400 and 2401 rows, for which 88 (176 rows per workgroup) wastes 12%
 * where 128 wastes 24%.
 * @param gemms rows per batch and a weight (batches × K windows × N windows × repeats).
 */
export function pickGemmWorkgroup(gemms: Array<{ M: number; weight: number }>, QPI = 2): number {
  let best = 128, bestCost = Infinity;
  for (let wg = 64; wg <= 128; wg += 8) {
    const rows = wg * QPI;
    const cost = gemms.reduce((s, g) => s + g.weight * Math.ceil(g.M / rows) * (rows + 14), 0);
    if (cost < bestCost - 1e-9) {
      best = wg;
      bestCost = cost;
    }
  }
  return best;
}

/** Generate the kernel source of one shape. */
export function generateGemmKernel(template: string, s: GemmShape): string {
  const { KW4, NW, QPI } = s;
  if (NW % 4 !== 0) throw new GpuError(`gemm: NW ${NW} must be a multiple of 4`);
  if (NW * KW4 * 16 > 32768) {
    throw new GpuError(`gemm: weight window ${NW}×${KW4 * 4} exceeds 32 KiB`);
  }
  let aload = "";
  for (let q = 0; q < QPI; q++) {
    aload += `  let m${q} = mb + ${q}u;\n  let mc${q} = min(m${q}, P.M - 1u);\n`;
    aload += `  let ay${q} = i32(mc${q} % P.RPL);\n`;
    aload += `  let al${q} = i32(P.aLayer0 + z * P.aLayersPerBatch + mc${q} / P.RPL);\n`;
    for (let k = 0; k < KW4; k++) {
      aload +=
        `  let a${q}_${k} = textureLoad(A, vec2<i32>(min(kb + ${k}, kmax), ay${q}), al${q}, 0);\n`;
    }
  }
  let body = "";
  for (let n = 0; n < NW; n++) {
    body += `  let b${n}_0 = S[${n * KW4}];\n`;
    for (let q = 0; q < QPI; q++) body += `  var p${q}_${n} = a${q}_0 * b${n}_0;\n`;
    for (let k = 1; k < KW4; k++) {
      body += `  { let b = S[${n * KW4 + k}];`;
      for (let q = 0; q < QPI; q++) body += ` p${q}_${n} = fma(a${q}_${k}, b, p${q}_${n});`;
      body += ` }\n`;
    }
    for (let q = 0; q < QPI; q++) {
      body += `  let r${q}_${n} = (p${q}_${n}.x + p${q}_${n}.y) + (p${q}_${n}.z + p${q}_${n}.w);\n`;
    }
  }
  let buf = "";
  for (let q = 0; q < QPI; q++) {
    buf += `  if (m${q} < P.M) {\n    var row = P.rowBase + z * P.oBatchRows + m${q};\n`;
    buf += `    if ((P.flags & 8u) != 0u) {\n      row = idx[m${q}];\n    }\n`;
    buf +=
      `    let ob = (row * P.ldo + P.colOff + n0) / 4u;\n    let bo = (P.biasOff + n0) / 4u;\n`;
    buf += `    let acc = (P.flags & 2u) != 0u;\n    let hb = (P.flags & 4u) != 0u;\n`;
    for (let n4 = 0; n4 < NW / 4; n4++) {
      buf += `    if (${n4 * 4}u < nLim) {\n`;
      buf += `      var v = vec4<f32>(${
        [0, 1, 2, 3].map((c) => `r${q}_${n4 * 4 + c}`).join(", ")
      });\n`;
      buf += `      if (acc) {\n        v += outB[ob + ${n4}u];\n      }\n`;
      buf += `      if (hb) {\n        v += bias[bo + ${n4}u];\n      }\n`;
      buf += `      outB[ob + ${n4}u] = v;\n    }\n`;
    }
    buf += `  }\n`;
  }
  return fillTemplate(template, {
    KW4,
    NW,
    QPI,
    WG: s.WG,
    SW: NW * KW4,
    ALOAD: aload,
    BODY: body,
    BUFOUT: buf,
  });
}

/** Compile (once per process) the GEMM pipeline of a shape. */
export async function gemmPipeline(gpu: Gpu, s: GemmShape): Promise<GPUComputePipeline> {
  const tpl = await loadWgsl("head/gemm.wgsl");
  return getPipeline(
    gpu,
    `head_gemm:KW4=${s.KW4}:NW=${s.NW}:QPI=${s.QPI}:WG=${s.WG}`,
    generateGemmKernel(tpl, s),
  );
}

/** Output of a GEMM: rows of a row-major buffer. */
export interface GemmOut {
  buf: GPUBuffer;
  /** Row stride in floats. */
  ldo: number;
  colOff?: number;
  rowBase?: number;
  /** Rows between consecutive batches (workgroup z). */
  oBatchRows?: number;
  /** Destination row of each m (scatter); absent = rowBase + z·oBatchRows + m. */
  idx?: GPUBuffer;
  /** Add to the existing contents also in the first K window. */
  accumulate?: boolean;
}

/** One GEMM: out = A · Wᵀ (+ bias), batched over `batches` (workgroup z). */
export interface GemmSpec {
  label: string;
  /** Rows per batch. */
  M: number;
  /** Outputs. */
  N: number;
  /** Reduction length in channels (multiple of 4). */
  K: number;
  /** A texture and its row mapping. */
  aTex: GPUTexture;
  RPL: number;
  aLayer0?: number;
  aLayersPerBatch?: number;
  /** Weight texture from {@link createWeightTexture}: `(batches, N, K)`. */
  W: GPUTexture;
  batches?: number;
  bias?: GPUBuffer;
  biasOff?: number;
  out: GemmOut;
}

/**
 * Upload weights `(batches, N, K)` row-major f32 (PyTorch Linear layout per batch) as an
 * rgba32float texture (K/4, N, batches).
 * @throws {GpuError} when K is not a multiple of 4 or a dimension exceeds the device limits.
 */
export function createWeightTexture(
  gpu: Gpu,
  W: Float32Array,
  batches: number,
  N: number,
  K: number,
  label: string,
): GPUTexture {
  if (K % 4 !== 0) throw new GpuError(`${label}: K = ${K} must be a multiple of 4`);
  if (W.length !== batches * N * K) {
    throw new GpuError(`${label}: ${W.length} values, expected ${batches}×${N}×${K}`);
  }
  const lim = gpu.limits;
  if (
    K / 4 > lim.maxTextureDimension2D || N > lim.maxTextureDimension2D ||
    batches > lim.maxTextureArrayLayers
  ) {
    throw new GpuError(
      `${label}: weight texture ${K / 4}×${N}×${batches} exceeds the device limits`,
    );
  }
  const tex = gpu.device.createTexture({
    label,
    size: [K / 4, N, batches],
    format: "rgba32float",
    usage: TextureUsage.TEXTURE_BINDING | TextureUsage.COPY_DST,
  });
  gpu.device.queue.writeTexture({ texture: tex }, W as Float32Array<ArrayBuffer>, {
    bytesPerRow: K * 4,
    rowsPerImage: N,
  }, [
    K / 4,
    N,
    batches,
  ]);
  return tex;
}

/** Shared dummies bound where a GEMM does not use a resource. */
export interface GemmDummies {
  /** Bound to read-only storage slots. */
  buf: GPUBuffer;
}

/** Create the dummy resources (a 16-byte buffer). */
export function createGemmDummies(gpu: Gpu): GemmDummies {
  return {
    buf: gpu.device.createBuffer({
      label: "dummy",
      size: 16,
      usage: BufferUsage.STORAGE | BufferUsage.COPY_DST,
    }),
  };
}

/**
 * Record the dispatches of one GEMM (one per K window; later windows accumulate).
 * @throws {GpuError} when K is not a multiple of 4.
 */
export function gemmSteps(
  gpu: Gpu,
  pipeline: GPUComputePipeline,
  shape: GemmShape,
  spec: GemmSpec,
  dummies: GemmDummies,
): Step[] {
  if (spec.K % 4 !== 0) throw new GpuError(`${spec.label}: K = ${spec.K} must be a multiple of 4`);
  const o0 = spec.out;
  if (
    o0.ldo % 4 || (o0.colOff ?? 0) % 4 || (spec.biasOff ?? 0) % 4 ||
    o0.ldo < (o0.colOff ?? 0) + Math.ceil(spec.N / 4) * 4
  ) {
    throw new GpuError(
      `${spec.label}: output stride/offsets must be multiples of 4 with room for ceil(N/4)·4 columns`,
    );
  }
  if (spec.bias && spec.N % 4 !== 0) {
    throw new GpuError(`${spec.label}: a bias needs N multiple of 4`);
  }
  const K4 = spec.K / 4;
  const windows = Math.ceil(K4 / shape.KW4);
  const batches = spec.batches ?? 1;
  const steps: Step[] = [];
  const rowsPerWg = shape.WG * shape.QPI;
  for (let w = 0; w < windows; w++) {
    const o = spec.out;
    let flags = 1;
    if (w > 0 || o.accumulate) flags |= 2;
    if (o.idx) flags |= 8;
    if (spec.bias && w === 0) flags |= 4;
    const words = [
      spec.M,
      spec.N,
      K4,
      spec.RPL,
      w * shape.KW4,
      spec.aLayer0 ?? 0,
      spec.aLayersPerBatch ?? 0,
      0,
      flags,
      o.ldo,
      o.colOff ?? 0,
      o.rowBase ?? 0,
      o.oBatchRows ?? 0,
      spec.biasOff ?? 0,
      0,
      0,
    ];
    const prm = uniformWords(gpu, words, `${spec.label} params w${w}`);
    const bg = bindGroup(gpu, pipeline, [
      prm,
      spec.aTex,
      spec.W,
      spec.bias ?? dummies.buf,
      o.idx ?? dummies.buf,
      o.buf,
    ], spec.label);
    steps.push({
      kind: "dispatch",
      label: `${spec.label} (K window ${w})`,
      pipeline,
      bindGroup: bg,
      workgroups: [Math.ceil(spec.M / rowsPerWg), Math.ceil(spec.N / shape.NW), batches],
    });
  }
  return steps;
}

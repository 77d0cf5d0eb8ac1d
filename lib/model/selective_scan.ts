/**
 * Selective scan on WebGPU (`wgsl/head/selective_scan.wgsl`), Mamba v1 S6 (spec §6 step 5): parallel
 * over (sequence, channel group), sequential over time with the states in registers. The
 * TypeScript reference is {@link selectiveScanRef}.
 *
 * Two modes share one template: standalone (delta given, used by {@link selectiveScan}) and fused
 * (Δ_pre = dt_proj(dt_raw) computed in the kernel, used by the head pipeline).
 * @module
 */
import { type Gpu, tryGetGpu, warnFallback } from "../gpu/device.ts";
import { bindGroup, fillTemplate, getPipeline, loadWgsl } from "../gpu/pipeline.ts";
import { createStorage, createUniform, readF32 } from "../gpu/buffers.ts";
import {
  checkScanOperands,
  type ScanDims,
  type ScanLayout,
  type ScanOperands,
  selectiveScanRef,
  type Strided,
  stridedExtent,
} from "./selective_scan_ref.ts";
import { createActTexture, writeActTexture } from "../gpu/textures.ts";

export { layoutNDL, layoutNLD, selectiveScanRef } from "./selective_scan_ref.ts";
export type { ScanDims, ScanLayout, ScanOperands, Strided } from "./selective_scan_ref.ts";

const XYZW = ["x", "y", "z", "w"];

/** Compile-time shape of a scan kernel. */
export interface ScanKernelShape {
  /** Δ rank fused into the kernel (0 = delta given as a tensor). */
  R: number;
  /** State size N. */
  nState: number;
  /** Channel quads per invocation. */
  CG: number;
  /** Workgroup size. */
  WG: number;
}

/** vec4 entries per channel quad in the packed `chan` buffer. */
export function chanStride(s: Pick<ScanKernelShape, "R" | "nState">): number {
  return s.nState + 2 + s.R;
}

/** Texels per token of the row texture [dt_raw (R) | B (N) | C (N)]. */
export function rowTexels(s: Pick<ScanKernelShape, "R" | "nState">): number {
  return Math.ceil((s.R + 2 * s.nState) / 4);
}

/**
 * Workgroup size for `invocations` scan invocations: at least 8 workgroups when possible (each
 * invocation runs a long sequential loop, so lavapipe's worker threads need several workgroups
 * each), between 8 (one SIMD lane group) and 64.
 */
export function scanWorkgroupSize(invocations: number): number {
  let wg = 64;
  while (wg > 8 && invocations / wg < 8) wg /= 2;
  return wg;
}

/** Largest CG in {4, 2, 1} dividing the channel-quad count. */
export function pickCG(dInner4: number): number {
  return dInner4 % 4 === 0 ? 4 : dInner4 % 2 === 0 ? 2 : 1;
}

/** Generate the WGSL of one scan kernel shape from the template. */
export function generateScanKernel(template: string, s: ScanKernelShape): string {
  const { R, nState: N, CG } = s;
  const CS = chanStride(s);
  const sc = (e: number) => `rw${e >> 2}.${XYZW[e & 3]}`;
  let decl = "";
  for (let j = 0; j < CG; j++) {
    decl += `  let c4_${j} = c4base + ${j}u;\n  let cb_${j} = c4_${j} * ${CS}u;\n`;
    for (let n = 0; n < N; n++) decl += `  let A_${j}_${n} = chan[cb_${j} + ${n}u];\n`;
    decl += `  let D_${j} = chan[cb_${j} + ${N}u];\n  let db_${j} = chan[cb_${j} + ${N + 1}u];\n`;
    for (let r = 0; r < R; r++) decl += `  let W_${j}_${r} = chan[cb_${j} + ${N + 2 + r}u];\n`;
    for (let n = 0; n < N; n++) decl += `  var h_${j}_${n} = vec4<f32>(0.0);\n`;
  }
  let row = "";
  for (let k = 0; k < rowTexels(s); k++) {
    row += `    let rw${k} = textureLoad(rowTex, vec2<i32>(${k}, ti), qi, 0);\n`;
  }
  let step = "";
  for (let j = 0; j < CG; j++) {
    step += `    {\n      let x = vec2<i32>(i32(c4_${j}), ti);\n`;
    step += `      let u = textureLoad(uTex, x, qi, 0);\n`;
    step += `      let z = textureLoad(zTex, vec2<i32>(i32(P.zOff4 + c4_${j}), ti), qi, 0);\n`;
    if (R === 0) step += `      let dp = textureLoad(dTex, x, qi, 0);\n`;
    else {
      step += `      let dp = ${
        Array.from({ length: R }, (_, r) => `W_${j}_${r} * ${sc(r)}`).join(" + ")
      };\n`;
    }
    step +=
      `      let dl = softplus4(dp + db_${j});\n      let du = dl * u;\n      var y = D_${j} * u;\n`;
    for (let n = 0; n < N; n++) {
      step += `      h_${j}_${n} = exp(dl * A_${j}_${n}) * h_${j}_${n} + du * ${sc(R + n)};\n`;
    }
    step += `      y = y + ${
      Array.from({ length: N }, (_, n) => `h_${j}_${n} * ${sc(R + N + n)}`).join(" + ")
    };\n`;
    step += `      yB[(q * P.L + t) * P.yLd4 + c4_${j}] = y * silu4(z);\n    }\n`;
  }
  return fillTemplate(template, {
    WG: s.WG,
    CG,
    NSTATE: N,
    CHAN_STRIDE: CS,
    DECL: decl,
    ROW: row,
    STEP: step,
  });
}

/** Compile (once per process) the scan pipeline of a shape. */
export async function scanPipeline(gpu: Gpu, s: ScanKernelShape): Promise<GPUComputePipeline> {
  const key = `selective_scan:R${s.R}:N${s.nState}:CG${s.CG}:WG${s.WG}`;
  const tpl = await loadWgsl("head/selective_scan.wgsl");
  return getPipeline(gpu, key, generateScanKernel(tpl, s));
}

/**
 * Pack per-channel parameters for the kernel's `chan` buffer: per channel quad, the vec4s
 * A[·, n] (n < N), D, delta_bias, then dt_proj W[·, r] (r < R). Channels beyond dInner are padded
 * with A = 0, D = 0, bias = 0, W = 0 (they produce y = 0 and are never read back).
 * @param A `(dInner, N)` = −exp(A_log). @param dtW `(dInner, R)` dt_proj weight, or null for R = 0.
 */
export function packChanParams(
  A: Float32Array,
  D: Float32Array,
  deltaBias: Float32Array,
  dtW: Float32Array | null,
  dInner: number,
  N: number,
  R: number,
): Float32Array<ArrayBuffer> {
  const q4 = Math.ceil(dInner / 4);
  const CS = N + 2 + R;
  const out = new Float32Array(q4 * CS * 4);
  for (let c = 0; c < dInner; c++) {
    const base = Math.floor(c / 4) * CS * 4, lane = c % 4;
    for (let n = 0; n < N; n++) out[base + n * 4 + lane] = A[c * N + n];
    out[base + N * 4 + lane] = D[c];
    out[base + (N + 1) * 4 + lane] = deltaBias[c];
    for (let r = 0; r < R; r++) out[base + (N + 2 + r) * 4 + lane] = dtW![c * R + r];
  }
  return out;
}

/** Uniform words of one scan dispatch. */
export function scanParams(
  nSeq: number,
  L: number,
  dInner4: number,
  CG: number,
  zOff4: number,
  yLd4: number,
): Uint32Array<ArrayBuffer> {
  return new Uint32Array([nSeq, L, dInner4, dInner4 / CG, zOff4, yLd4, 0, 0]);
}

/** Workgroup count of a scan dispatch. */
export function scanWorkgroups(nSeq: number, dInner4: number, CG: number, WG: number): number {
  return Math.ceil((nSeq * dInner4 / CG) / WG);
}

/** Largest sequence length the kernel accepts (texture height limit). */
export const MAX_SCAN_LENGTH = 8192;

/**
 * Operands of up to `maxTextureArrayLayers` sequences uploaded once, for repeated dispatches of
 * the standalone scan (benchmarks) and for {@link selectiveScan}.
 */
export class SelectiveScanProgram {
  private constructor(
    private gpu: Gpu,
    private pipeline: GPUComputePipeline,
    private bindGroup: GPUBindGroup,
    private workgroups: number,
    private resources: Array<GPUTexture | GPUBuffer>,
    private yB: GPUBuffer,
    readonly dims: ScanDims,
    private d4: number,
  ) {}

  /**
   * Upload sequences `[s0, s0 + ns)` of `ops` (addressed by `layout`).
   * @throws {Error} when L exceeds {@link MAX_SCAN_LENGTH} or ns the texture layer limit.
   */
  static async create(
    gpu: Gpu,
    ops: ScanOperands,
    dims: ScanDims,
    layout: ScanLayout,
    s0 = 0,
    ns = dims.nSeq,
  ): Promise<SelectiveScanProgram> {
    const { L, dInner, dState: N } = dims;
    if (L > MAX_SCAN_LENGTH) throw new Error(`selective scan: L = ${L} exceeds ${MAX_SCAN_LENGTH}`);
    if (ns > gpu.limits.maxTextureArrayLayers) {
      throw new Error(
        `selective scan: ${ns} sequences exceed ${gpu.limits.maxTextureArrayLayers} per program`,
      );
    }
    const d4 = Math.ceil(dInner / 4);
    const CG = pickCG(d4);
    const shape: ScanKernelShape = { R: 0, nState: N, CG, WG: scanWorkgroupSize((ns * d4) / CG) };
    const pipe = await scanPipeline(gpu, shape);
    const rowW = rowTexels(shape) * 4;
    // Gather the strided operands into token-major (ns, L, C) arrays, C padded to a multiple of 4.
    const pack = (
      src: Float32Array,
      st: Strided,
      C: number,
      width: number,
      colOff = 0,
      dst?: Float32Array,
    ) => {
      const a = dst ?? new Float32Array(ns * L * width);
      for (let q = 0; q < ns; q++) {
        for (let t = 0; t < L; t++) {
          const base = st.off + (s0 + q) * st.sSeq + t * st.sT;
          const o = (q * L + t) * width + colOff;
          for (let c = 0; c < C; c++) a[o + c] = src[base + c * st.sC];
        }
      }
      return a;
    };
    const tex = (data: Float32Array, width: number, label: string) => {
      const t = createActTexture(gpu, width, L, ns, label, false);
      writeActTexture(gpu, t, data, width, L, ns);
      return t;
    };
    const uT = tex(pack(ops.u, layout.u, dInner, d4 * 4), d4 * 4, "scan u");
    const zT = tex(pack(ops.z, layout.z, dInner, d4 * 4), d4 * 4, "scan z");
    const dT = tex(pack(ops.delta, layout.delta, dInner, d4 * 4), d4 * 4, "scan delta");
    const rowData = pack(ops.B, layout.B, N, rowW, 0);
    pack(ops.C, layout.C, N, rowW, N, rowData);
    const rT = tex(rowData, rowW, "scan B|C");
    const chan = createStorage(
      gpu,
      packChanParams(ops.A, ops.D, ops.deltaBias, null, dInner, N, 0),
      "scan chan",
    );
    const yB = createStorage(gpu, ns * L * d4 * 16, "scan y");
    const prm = createUniform(gpu, scanParams(ns, L, d4, CG, 0, d4), "scan params");
    const bg = bindGroup(gpu, pipe, [prm, uT, zT, rT, dT, chan, yB], "selective scan");
    return new SelectiveScanProgram(
      gpu,
      pipe,
      bg,
      scanWorkgroups(ns, d4, CG, shape.WG),
      [uT, zT, dT, rT, chan, prm],
      yB,
      { ...dims, nSeq: ns },
      d4,
    );
  }

  /**
   * Dispatch the scan `repeats` times in one submit (benchmarks amortise the ~12 ms submit round
   * trip of lavapipe this way) and wait for it.
   */
  async run(repeats = 1): Promise<void> {
    const dev = this.gpu.device;
    const enc = dev.createCommandEncoder({ label: "selective scan" });
    const pass = enc.beginComputePass();
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, this.bindGroup);
    for (let i = 0; i < repeats; i++) pass.dispatchWorkgroups(this.workgroups);
    pass.end();
    dev.queue.submit([enc.finish()]);
    await dev.queue.onSubmittedWorkDone();
  }

  /** The output as token-major `(ns, L, ceil(dInner/4)·4)` f32. */
  async read(): Promise<Float32Array> {
    const { nSeq, L } = this.dims;
    return await readF32(this.gpu, this.yB, nSeq * L * this.d4 * 4);
  }

  /** Release the GPU resources. */
  destroy(): void {
    for (const r of this.resources) r.destroy();
    this.yB.destroy();
  }
}

/**
 * Selective scan of `dims.nSeq` sequences on the GPU (standalone mode: delta given), with the
 * TypeScript reference as fallback when no adapter exists.
 * @param ops operands addressed by `layout` (see {@link ScanLayout}); A = −exp(A_log) `(dInner, N)`.
 * @returns y·SiLU(z) in `layout.out` addressing (array of `stridedExtent(layout.out)` values).
 * @throws {Error} on operands too small for their layout or L > 8192.
 */
export async function selectiveScan(
  ops: ScanOperands,
  dims: ScanDims,
  layout: ScanLayout,
): Promise<Float32Array> {
  checkScanOperands(ops, dims, layout);
  const gpu = await tryGetGpu();
  if (!gpu) {
    warnFallback("selective scan");
    return selectiveScanRef(ops, dims, layout);
  }
  const { nSeq, L, dInner } = dims;
  const d4 = Math.ceil(dInner / 4);
  const out = new Float32Array(stridedExtent(layout.out, nSeq, L, dInner));
  const maxLayers = gpu.limits.maxTextureArrayLayers;
  for (let s0 = 0; s0 < nSeq; s0 += maxLayers) {
    const ns = Math.min(maxLayers, nSeq - s0);
    const prog = await SelectiveScanProgram.create(gpu, ops, dims, layout, s0, ns);
    await prog.run();
    const y = await prog.read();
    prog.destroy();
    const lo = layout.out;
    for (let q = 0; q < ns; q++) {
      for (let t = 0; t < L; t++) {
        const base = lo.off + (s0 + q) * lo.sSeq + t * lo.sT;
        const o = (q * L + t) * d4 * 4;
        for (let c = 0; c < dInner; c++) out[base + c * lo.sC] = y[o + c];
      }
    }
  }
  return out;
}

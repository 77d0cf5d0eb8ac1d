/**
 * The Mamba head on WebGPU (spec §6–7): every stage of {@link headForwardRef} as WGSL kernels,
 * recorded once per (configuration, grid, suspicious count, output size) as a command list and
 * submitted once per image. Kernels: `head/gemm.wgsl` (patch embedding, in/x/out projections,
 * Winograd GEMMs), `head/winograd*.wgsl` (3×3 convs: F(4×4) for rates ≤ 12, F(2×2) otherwise;
 * the gather of the suspicious tokens is fused into the block conv's output transform),
 * `head/tokens.wgsl` (scan order, fused add + RMSNorm, LayerNorm + un-permute),
 * `head/conv1d.wgsl`, `head/selective_scan.wgsl` (Δ = dt_proj fused) and `head/maps.wgsl` (pixel map,
 * Gaussian). Kernels write buffers and the next kernel reads a texture copy: on lavapipe texture
 * loads are ~3× cheaper than storage loads, buffer stores ~2× cheaper than texture stores, and
 * the copy is a memcpy.
 * @module
 */
import { type Gpu, GpuError, withErrorScope } from "../gpu/device.ts";
import { fillTemplate, getPipeline, loadWgsl } from "../gpu/pipeline.ts";
import { BufferUsage, createStorage, readF32 } from "../gpu/buffers.ts";
import type { HeadDims } from "./config.ts";
import {
  createGemmDummies,
  createWeightTexture,
  type GemmDummies,
  gemmPipeline,
  type GemmShape,
  gemmShapeFor,
  gemmSteps,
  pickGemmWorkgroup,
} from "./gemm.ts";
import { type Capture } from "./reference.ts";
import { navigationIndex, scanPermutations } from "./scan_order.ts";
import {
  packChanParams,
  pickCG,
  scanParams,
  scanPipeline,
  scanWorkgroups,
  scanWorkgroupSize,
} from "./selective_scan.ts";
import { bindGroup, encodeSteps, type Step, uniformWords } from "../gpu/steps.ts";
import { createActTexture } from "../gpu/textures.ts";
import { tokensSource } from "./tokens.ts";
import { mapSteps } from "../maps/gpu.ts";
import {
  blockOutputStep,
  headOutputStep,
  inputTransformStep,
  packHeadParams,
  pickTile,
  positionsOf,
  tileAxis,
  type WinogradGeometry,
  type WinogradPipelines,
  winogradPipelines,
  winogradWeights,
  winogradWeightsInterleaved,
} from "./winograd.ts";
import type { HeadWeights } from "./weights.ts";

/** Why the GPU path cannot run a configuration, or null when it can. */
export function gpuHeadUnsupported(
  dims: HeadDims,
  inChans: number,
  h: number,
  w: number,
): string | null {
  if (dims.d % 4 !== 0 || dims.d > 128) {
    return `embed_dim ${dims.d} (the GPU head needs a multiple of 4, ≤ 128)`;
  }
  if (inChans % 4 !== 0) return `in_chans ${inChans} (the GPU head needs a multiple of 4)`;
  if (dims.dInner % 4 !== 0) return `d_inner ${dims.dInner} (needs a multiple of 4)`;
  if (h !== w) return `grid ${h}×${w} (must be square)`;
  if (h * w > 8192) return `grid of ${h * w} positions (max 8192)`;
  return null;
}

function u32(a: ArrayLike<number>): Uint32Array<ArrayBuffer> {
  return Uint32Array.from(a);
}

function concatF32(parts: Float32Array[]): Float32Array<ArrayBuffer> {
  const n = parts.reduce((s, p) => s + p.length, 0);
  const out = new Float32Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Channels padded so a row is a multiple of 256 bytes (copyBufferToTexture's row alignment). */
export function pad64(C: number): number {
  return Math.ceil(C / 64) * 64;
}

/** An activation: a buffer written by kernels and its texture copy read by the next ones. */
interface Act {
  buf: GPUBuffer;
  tex: GPUTexture;
  /** Row stride of the buffer in floats (= texture width in floats). */
  ld: number;
  rows: number;
  layers: number;
}

/** Template values of head/conv1d.wgsl for kernel size kc (sliding window in registers). */
function conv1dTemplate(kc: number): Record<string, string | number> {
  let decl = "", step = "    let s = bs";
  for (let j = 0; j < kc; j++) decl += `  let w${j} = cw[cb + ${j}u];\n`;
  decl += `  let bs = cw[cb + ${kc}u];\n`;
  for (let j = 1; j < kc; j++) decl += `  var h${j} = vec4<f32>(0.0);\n`;
  step += ` + w${kc - 1} * x`;
  for (let j = 1; j < kc; j++) step += ` + w${kc - 1 - j} * h${j}`;
  step += ";\n";
  for (let j = kc - 1; j >= 2; j--) step += `    h${j} = h${j - 1};\n`;
  if (kc > 1) step += `    h1 = x;\n`;
  return { KP1: kc + 1, DECL: decl, STEP: step };
}

/** conv1d weights `(dInner, kc)` and bias per channel quad: kc tap vec4s, then the bias vec4. */
function packConv1d(
  W: Float32Array,
  b: Float32Array,
  di: number,
  kc: number,
): Float32Array<ArrayBuffer> {
  const out = new Float32Array(Math.ceil(di / 4) * (kc + 1) * 4);
  for (let c = 0; c < di; c++) {
    const base = Math.floor(c / 4) * (kc + 1) * 4, lane = c % 4;
    for (let j = 0; j < kc; j++) out[base + j * 4 + lane] = W[c * kc + j];
    out[base + kc * 4 + lane] = b[c];
  }
  return out;
}

/** Tensors captured for branch 0 when a capture map is passed (fixture names and layouts). */
interface CaptureBuffers {
  E: GPUBuffer;
  hc: GPUBuffer[];
  xin: GPUBuffer[];
  feat: GPUBuffer;
}

/** A recorded head forward for one configuration, grid and suspicious-token count. */
export class GpuHead {
  private constructor(
    private gpu: Gpu,
    private weights: HeadWeights,
    readonly h: number,
    readonly w: number,
    readonly Ls: number,
    private steps: Step[],
    private zTex: GPUTexture,
    private invIdx: GPUBuffer,
    private scatterIdx: GPUBuffer,
    private logits: GPUBuffer,
    private perms: Int32Array[],
    private cap: CaptureBuffers | null,
    private ld: number,
    readonly H: number,
    readonly W: number,
    private mapsOut: { pixel: GPUBuffer; smoothed: GPUBuffer; Wp: number } | null,
  ) {}

  /**
   * Compile the kernels and record the command list.
   * @param capture also record copies of branch-0 intermediates (tests).
   * @throws {GpuError} when the configuration is not supported on the GPU path.
   */
  static async create(
    gpu: Gpu,
    weights: HeadWeights,
    h: number,
    w: number,
    Ls: number,
    capture = false,
    outSize: [number, number] | null = null,
  ): Promise<GpuHead> {
    const dims = weights.dims;
    const Cin = weights.config.in_chans;
    const why = gpuHeadUnsupported(dims, Cin, h, w);
    if (why) throw new GpuError(`GPU head: unsupported ${why}`);
    return await withErrorScope(gpu.device, "recording the SNARM head", async () => {
      const { d, dInner: di, dtRank: R, dState: ns, dConv: kc, nBranch: nb, nScan } = dims;
      const L = h * w, N = nScan, C4 = d / 4, D4 = di / 4;
      // Winograd tiling per dilation: F(4×4) or F(2×2), whichever needs fewer GEMM rows.
      const rates = [1, ...weights.config.scale_list];
      const tiling = new Map<number, { m: 2 | 4; axis: Uint32Array<ArrayBuffer> }>();
      for (const r of rates) {
        if (!tiling.has(r)) {
          const m = pickTile(h, r);
          tiling.set(r, { m, axis: tileAxis(h, r, m) });
        }
      }
      const d64 = Math.ceil(d / 64), T1a = tiling.get(1)!.axis.length;
      const QPI = 2;
      const WG = pickGemmWorkgroup([
        { M: L, weight: Math.ceil(Cin / 128) * Math.ceil((nb * d) / 64) },
        { M: N * T1a * T1a, weight: nb * dims.depth * positionsOf(tiling.get(1)!.m) * 2 * d64 },
        ...weights.config.scale_list.map((r) => {
          const t = tiling.get(r)!;
          return { M: t.axis.length ** 2, weight: positionsOf(t.m) * N * 2 * d64 };
        }),
        { M: N * Ls, weight: nb * dims.depth * (8 * d64 + 4 * d64) },
      ], QPI);
      const shape: GemmShape = gemmShapeFor(d, WG, QPI);
      const tokTpl = tokensSource(await loadWgsl("head/tokens.wgsl"), C4);
      const convWG = scanWorkgroupSize(N * D4);
      const convSrc = fillTemplate(await loadWgsl("head/conv1d.wgsl"), {
        ...conv1dTemplate(kc),
        WG: convWG,
      });
      const CG = pickCG(D4);
      const scanShape = { R, nState: ns, CG, WG: scanWorkgroupSize((N * D4) / CG) };
      // x_proj has only dtRank + 2·dState outputs: a narrow shape avoids padding them to NW.
      const shapeX: GemmShape = {
        ...shape,
        NW: Math.min(shape.NW, Math.ceil((R + 2 * ns) / 4) * 4),
      };
      const [gp, gpX, wp2, wp4, pInit, pAdd, pFinal, pConv, pScan] = await Promise.all([
        gemmPipeline(gpu, shape),
        gemmPipeline(gpu, shapeX),
        winogradPipelines(gpu, 2),
        winogradPipelines(gpu, 4),
        getPipeline(gpu, `head_tokens:C4=${C4}`, tokTpl, "seq_init"),
        getPipeline(gpu, `head_tokens:C4=${C4}`, tokTpl, "add_norm"),
        getPipeline(gpu, `head_tokens:C4=${C4}`, tokTpl, "final_ln"),
        getPipeline(gpu, `mamba_conv1d:K=${kc}:WG=${convWG}`, convSrc),
        scanPipeline(gpu, scanShape),
      ]);
      const dm: GemmDummies = createGemmDummies(gpu);
      const steps: Step[] = [];
      const buf = (
        data: Float32Array<ArrayBuffer> | Uint32Array<ArrayBuffer> | number,
        label: string,
      ) => createStorage(gpu, data, label);
      const wtex = (W: Float32Array, batches: number, n: number, k: number, label: string) =>
        createWeightTexture(gpu, W, batches, n, k, label);
      const act = (C: number, rows: number, layers: number, label: string): Act => {
        const ld = pad64(C);
        return {
          buf: buf(layers * rows * ld * 4, label),
          tex: createActTexture(gpu, ld, rows, layers, label, false),
          ld,
          rows,
          layers,
        };
      };
      const toTex = (a: Act, label: string, rows = a.rows): Step => ({
        kind: "copy",
        label,
        encode: (enc) =>
          enc.copyBufferToTexture(
            { buffer: a.buf, bytesPerRow: a.ld * 4, rowsPerImage: rows },
            { texture: a.tex },
            [a.ld / 4, rows, a.layers],
          ),
      });

      // ---- resources (one image at a time; N = nScan sequences)
      const zTex = createActTexture(gpu, Cin, L, 1, "Z", false);
      const Wemb = wtex(
        concatF32(weights.branches.map((b) => b.embedW)),
        1,
        nb * d,
        Cin,
        "embed W",
      );
      const bEmb = buf(concatF32(weights.branches.map((b) => b.embedB)), "embed b");
      const E = act(nb * d, L, 1, "E");
      const perms = scanPermutations(h, w, nScan);
      const permBuf = buf(u32(perms.flatMap((p) => [...p])), "perm");
      const stream = act(d, L, N, "stream");
      const hn = act(d, L, N, "hn");
      const hc = act(d, L, N, "h");
      const conv = new Map<
        number,
        { geo: WinogradGeometry; wp: WinogradPipelines; T: number; P: number }
      >();
      for (const r of rates) {
        if (conv.has(r)) continue;
        const { m, axis: a } = tiling.get(r)!;
        conv.set(r, {
          geo: { nSeq: N, h, w, C4, r, axis: buf(a, `tile axis r=${r}`), Ta: a.length },
          wp: m === 4 ? wp4 : wp2,
          T: a.length * a.length,
          P: positionsOf(m),
        });
      }
      const Tmax = Math.max(...[...conv.values()].map((c) => c.T));
      const Pmax = Math.max(...[...conv.values()].map((c) => c.P));
      const V = act(d, Tmax, Pmax * N, "winograd V");
      const Mt = act(d, Tmax, Pmax * N, "winograd M");
      const invIdx = buf(N * L * 4, "inverse gather idx");
      const scatterIdx = buf(N * Ls * 4, "scatter idx");
      const xin = act(d, Ls, N, "mixer in");
      const xz = act(2 * di, Ls, N, "xz");
      const u = act(di, Ls, N, "u");
      const xdbl = act(R + 2 * ns, Ls, N, "x_dbl");
      const y = act(di, Ls, N, "y");
      const feat = act(d, L, N, "branch features");
      const logits = buf(dims.nHeads * L * 4, "logits");
      const lgpLd = pad64(dims.nHeads);
      const lgp = buf(L * lgpLd * 4, "logits (position-major)");
      const cap: CaptureBuffers | null = capture
        ? {
          E: buf(E.buf.size, "cap E"),
          hc: weights.branches[0].blocks.map((_, k) => buf(hc.buf.size, `cap h${k}`)),
          xin: weights.branches[0].blocks.map((_, k) => buf(xin.buf.size, `cap xin${k}`)),
          feat: buf(feat.buf.size, "cap feat"),
        }
        : null;
      const copyBuf = (src: GPUBuffer, dst: GPUBuffer, label: string): Step => ({
        kind: "copy",
        label,
        encode: (enc) => enc.copyBufferToBuffer(src, 0, dst, 0, src.size),
      });
      const tokParams = (eOff4: number) =>
        uniformWords(gpu, [L, N, 1, C4, eOff4, C4 === 0 ? 0 : hn.ld / 4, 0, 0], "token params");
      const tokStep = (
        pipe: GPUComputePipeline,
        prm: GPUBuffer,
        entries: Array<GPUBuffer | GPUTexture | null>,
        count: number,
        label: string,
      ): Step => ({
        kind: "dispatch",
        label,
        pipeline: pipe,
        bindGroup: bindGroup(gpu, pipe, [prm, ...entries], label),
        workgroups: [Math.ceil(count / 64), 1, 1],
      });

      // ---- patch embedding of all branches at once: E (L, nb·d) = Z_bᵀ · Wᵀ + b
      steps.push(...gemmSteps(gpu, gp, shape, {
        label: "patch embedding",
        M: L,
        N: nb * d,
        K: Cin,
        aTex: zTex,
        RPL: L,
        W: Wemb,
        bias: bEmb,
        out: { buf: E.buf, ldo: E.ld },
      }, dm));
      steps.push(toTex(E, "E → texture"));
      if (cap) steps.push(copyBuf(E.buf, cap.E, "capture E"));
      const c1 = conv.get(1)!;
      const { geo: geo1, T: T1, P: P1, wp: wp1 } = c1;
      const m1 = wp1.m;

      weights.branches.forEach((bw, i) => {
        const prmI = tokParams((i * d) / 4);
        bw.blocks.forEach((blk, k) => {
          const normW = buf(blk.normW as Float32Array<ArrayBuffer>, `norm ${i}.${k}`);
          if (k === 0) {
            steps.push(
              tokStep(
                pInit,
                prmI,
                [permBuf, E.tex, null, null, stream.buf, normW, null, hn.buf],
                N * L,
                `seq_init ${i}`,
              ),
            );
          } else {
            steps.push(
              tokStep(
                pAdd,
                prmI,
                [null, null, hc.tex, stream.tex, stream.buf, normW, null, hn.buf],
                N * L,
                `add_norm ${i}.${k}`,
              ),
            );
          }
          steps.push(toTex(stream, "stream → texture"), toTex(hn, "hn → texture"));
          // 3×3 conv on every scan-ordered grid (Winograd), gather fused into its output.
          const U = wtex(winogradWeights(blk.convW, d, d, m1), P1, d, d, `conv U ${i}.${k}`);
          const cb = buf(blk.convB as Float32Array<ArrayBuffer>, `conv b ${i}.${k}`);
          steps.push(
            inputTransformStep(gpu, wp1, geo1, hn.tex, V.buf, V.ld / 4, `conv in ${i}.${k}`),
          );
          steps.push(toTex(V, "V → texture", T1));
          steps.push(...gemmSteps(gpu, gp, shape, {
            label: `conv gemm ${i}.${k}`,
            M: N * T1,
            N: d,
            K: d,
            aTex: V.tex,
            RPL: T1,
            aLayersPerBatch: N,
            W: U,
            batches: P1,
            out: { buf: Mt.buf, ldo: Mt.ld, oBatchRows: N * T1 },
          }, dm));
          steps.push(toTex(Mt, "M → texture", T1));
          steps.push(
            blockOutputStep(
              gpu,
              wp1,
              geo1,
              Mt.tex,
              cb,
              hc.buf,
              invIdx,
              xin.buf,
              hc.ld / 4,
              Ls,
              `conv out ${i}.${k}`,
            ),
          );
          steps.push(toTex(xin, "mixer in → texture"));
          if (i === 0 && cap) steps.push(copyBuf(xin.buf, cap.xin[k], "capture xin"));
          // Mamba mixer on the suspicious tokens.
          const m = blk.mixer;
          steps.push(...gemmSteps(gpu, gp, shape, {
            label: `in_proj ${i}.${k}`,
            M: N * Ls,
            N: 2 * di,
            K: d,
            aTex: xin.tex,
            RPL: Ls,
            W: wtex(m.inProj, 1, 2 * di, d, `in_proj ${i}.${k}`),
            out: { buf: xz.buf, ldo: xz.ld },
          }, dm));
          steps.push(toTex(xz, "xz → texture"));
          const convPrm = uniformWords(gpu, [Ls, N, D4, u.ld / 4], "conv1d params");
          steps.push({
            kind: "dispatch",
            label: `conv1d ${i}.${k}`,
            pipeline: pConv,
            bindGroup: bindGroup(gpu, pConv, [
              convPrm,
              xz.tex,
              buf(packConv1d(m.conv1dW, m.conv1dB, di, kc), "conv1d w"),
              u.buf,
            ]),
            workgroups: [Math.ceil((N * D4) / convWG), 1, 1],
          });
          steps.push(toTex(u, "u → texture"));
          steps.push(...gemmSteps(gpu, gpX, shapeX, {
            label: `x_proj ${i}.${k}`,
            M: N * Ls,
            N: R + 2 * ns,
            K: di,
            aTex: u.tex,
            RPL: Ls,
            W: wtex(m.xProj, 1, R + 2 * ns, di, `x_proj ${i}.${k}`),
            out: { buf: xdbl.buf, ldo: xdbl.ld },
          }, dm));
          steps.push(toTex(xdbl, "x_dbl → texture"));
          const A = new Float32Array(di * ns);
          for (let x = 0; x < A.length; x++) A[x] = -Math.exp(m.aLog[x]);
          const chan = buf(
            packChanParams(A, m.D, m.dtProjB, m.dtProjW, di, ns, R),
            `scan chan ${i}.${k}`,
          );
          const scanPrm = uniformWords(
            gpu,
            [...scanParams(N, Ls, D4, CG, D4, y.ld / 4)],
            "scan params",
          );
          steps.push({
            kind: "dispatch",
            label: `selective scan ${i}.${k}`,
            pipeline: pScan,
            bindGroup: bindGroup(gpu, pScan, [
              scanPrm,
              u.tex,
              xz.tex,
              xdbl.tex,
              u.tex,
              chan,
              y.buf,
            ]),
            workgroups: [scanWorkgroups(N, D4, CG, scanShape.WG), 1, 1],
          });
          steps.push(toTex(y, "y → texture"));
          steps.push(...gemmSteps(gpu, gp, shape, {
            label: `out_proj ${i}.${k}`,
            M: N * Ls,
            N: d,
            K: di,
            aTex: y.tex,
            RPL: Ls,
            W: wtex(m.outProj, 1, d, di, `out_proj ${i}.${k}`),
            out: { buf: hc.buf, ldo: hc.ld, idx: scatterIdx },
          }, dm));
          steps.push(toTex(hc, "h → texture"));
          if (i === 0 && cap) steps.push(copyBuf(hc.buf, cap.hc[k], "capture h"));
        });
        // Final LayerNorm(h + stream), un-permuted to row-major (the heads' input).
        const lnW = buf(bw.lnW as Float32Array<ArrayBuffer>, `ln w ${i}`);
        const lnB = buf(bw.lnB as Float32Array<ArrayBuffer>, `ln b ${i}`);
        steps.push(
          tokStep(
            pFinal,
            prmI,
            [permBuf, null, hc.tex, stream.tex, null, lnW, lnB, feat.buf],
            N * L,
            `final_ln ${i}`,
          ),
        );
        steps.push(toTex(feat, "features → texture"));
        if (i === 0 && cap) steps.push(copyBuf(feat.buf, cap.feat, "capture feat"));
        // Decoder heads of this branch (one per scan), dilation = scale_list[i].
        const rate = weights.config.scale_list[i];
        const { geo: geoR, T: TR, P: PR, wp: wpR } = conv.get(rate)!;
        const heads = weights.heads.slice(i * nScan, (i + 1) * nScan);
        const Uh = wtex(
          winogradWeightsInterleaved(heads.map((x) => x.convW), d, d, wpR.m),
          PR * nScan,
          d,
          d,
          `head U ${i}`,
        );
        const hp = buf(packHeadParams(heads, d), `head params ${i}`);
        steps.push(inputTransformStep(gpu, wpR, geoR, feat.tex, V.buf, V.ld / 4, `head in ${i}`));
        steps.push(toTex(V, "V → texture", TR));
        steps.push(...gemmSteps(gpu, gp, shape, {
          label: `head gemm ${i}`,
          M: TR,
          N: d,
          K: d,
          aTex: V.tex,
          RPL: TR,
          aLayersPerBatch: 1,
          W: Uh,
          batches: PR * N,
          out: { buf: Mt.buf, ldo: Mt.ld, oBatchRows: TR },
        }, dm));
        steps.push(toTex(Mt, "M → texture", TR));
        steps.push(
          headOutputStep(
            gpu,
            wpR,
            geoR,
            Mt.tex,
            hp,
            logits,
            i * nScan * L,
            L,
            1,
            lgp,
            i * nScan,
            lgpLd,
            `head out ${i}`,
          ),
        );
      });
      // Maps (spec §6 Outputs, §7): pixel map and per-image Gaussian on the GPU.
      let mapsOut: { pixel: GPUBuffer; smoothed: GPUBuffer; Wp: number } | null = null;
      if (outSize) {
        const ms = await mapSteps(gpu, lgp, lgpLd, h, w, dims.nHeads, outSize[0], outSize[1]);
        steps.push(...ms.steps);
        mapsOut = { pixel: ms.pixel, smoothed: ms.smoothed, Wp: ms.Wp };
      }
      return new GpuHead(
        gpu,
        weights,
        h,
        w,
        Ls,
        steps,
        zTex,
        invIdx,
        scatterIdx,
        logits,
        perms,
        cap,
        hc.ld,
        outSize?.[0] ?? 0,
        outSize?.[1] ?? 0,
        mapsOut,
      );
    });
  }

  /**
   * Run the head on B images.
   * @param Z `(B, in_chans, h, w)` channels-first hybrid residual.
   * @param refMask `(B, h·w)` 1 = reference; every image must have `Ls` zeros.
   * @param capture filled with branch-0 intermediates (fixture names) when the head was created
   *   with capture enabled.
   * @returns logits `(nHeads, B, h·w)` and, when recorded with an output size, the pixel map and
   *   the smoothed map, each `(B, H, W)`.
   */
  async run(
    Z: Float32Array,
    refMask: Uint8Array,
    B: number,
    capture?: Capture,
  ): Promise<
    { logits: Float32Array; maps: { pixelMap: Float32Array; smoothed: Float32Array } | null }
  > {
    const { gpu, h, w, Ls } = this;
    const dims = this.weights.dims;
    const Cin = this.weights.config.in_chans;
    const L = h * w, d = dims.d, nH = dims.nHeads, nScan = dims.nScan, nb = dims.nBranch;
    const nav = navigationIndex(refMask, B, h, w, nScan);
    if (nav.Ls !== Ls) {
      throw new Error(
        `refMask: ${nav.Ls} suspicious positions per image, the recorded head expects ${Ls}`,
      );
    }
    const mo = this.mapsOut;
    const mapBytes = mo ? this.H * mo.Wp * 4 : 0;
    const allMaps = mo
      ? gpu.device.createBuffer({
        size: 2 * B * mapBytes,
        usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST,
        label: "maps all",
      })
      : null;
    const all = gpu.device.createBuffer({
      size: B * nH * L * 4,
      usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST,
      label: "logits all",
    });
    const zt = new Float32Array(L * Cin);
    const capOut = capture && this.cap
      ? {
        E: [] as Float32Array[],
        hc: this.cap.hc.map(() => [] as Float32Array[]),
        xin: this.cap.xin.map(() => [] as Float32Array[]),
        feat: [] as Float32Array[],
      }
      : null;
    await withErrorScope(gpu.device, "SNARM head forward", async () => {
      for (let b = 0; b < B; b++) {
        // Z_b (Cin, L) → (L, Cin) rows for the embedding GEMM's texture (blocked transpose).
        const zb = Z.subarray(b * Cin * L, (b + 1) * Cin * L);
        const BS = 64;
        for (let c0 = 0; c0 < Cin; c0 += BS) {
          const c1 = Math.min(Cin, c0 + BS);
          for (let p0 = 0; p0 < L; p0 += BS) {
            const p1 = Math.min(L, p0 + BS);
            for (let p = p0; p < p1; p++) {
              const o = p * Cin;
              for (let c = c0; c < c1; c++) zt[o + c] = zb[c * L + p];
            }
          }
        }
        gpu.device.queue.writeTexture({ texture: this.zTex }, zt, {
          bytesPerRow: Cin * 4,
          rowsPerImage: L,
        }, [
          Cin / 4,
          L,
          1,
        ]);
        const inv = new Uint32Array(nScan * L).fill(0xffffffff), sc = new Uint32Array(nScan * Ls);
        for (let s = 0; s < nScan; s++) {
          for (let j = 0; j < Ls; j++) {
            const i = nav.gather[(s * B + b) * Ls + j];
            inv[s * L + i] = j;
            sc[s * Ls + j] = s * L + i;
          }
        }
        gpu.device.queue.writeBuffer(this.invIdx, 0, inv);
        gpu.device.queue.writeBuffer(this.scatterIdx, 0, sc);
        const enc = gpu.device.createCommandEncoder({ label: `head image ${b}` });
        encodeSteps(enc, this.steps);
        enc.copyBufferToBuffer(this.logits, 0, all, b * nH * L * 4, nH * L * 4);
        if (mo && allMaps) {
          enc.copyBufferToBuffer(mo.pixel, 0, allMaps, 2 * b * mapBytes, mapBytes);
          enc.copyBufferToBuffer(mo.smoothed, 0, allMaps, (2 * b + 1) * mapBytes, mapBytes);
        }
        gpu.device.queue.submit([enc.finish()]);
        if (capOut && this.cap) {
          const c = this.cap;
          const unpad = (a: Float32Array, C: number, ld: number) => {
            const rows = a.length / ld, o = new Float32Array(rows * C);
            for (let r = 0; r < rows; r++) o.set(a.subarray(r * ld, r * ld + C), r * C);
            return o;
          };
          const ldE = pad64(nb * d);
          capOut.E.push(unpad(await readF32(gpu, c.E, L * ldE), nb * d, ldE));
          for (let k = 0; k < c.hc.length; k++) {
            capOut.hc[k].push(unpad(await readF32(gpu, c.hc[k], nScan * L * this.ld), d, this.ld));
            capOut.xin[k].push(
              unpad(await readF32(gpu, c.xin[k], nScan * Ls * this.ld), d, this.ld),
            );
          }
          capOut.feat.push(unpad(await readF32(gpu, c.feat, nScan * L * this.ld), d, this.ld));
        }
      }
    });
    const raw = await readF32(gpu, all, B * nH * L);
    all.destroy();
    const out = new Float32Array(nH * B * L);
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < nH; j++) {
        out.set(raw.subarray((b * nH + j) * L, (b * nH + j + 1) * L), (j * B + b) * L);
      }
    }
    if (capOut && capture) this.assembleCapture(capOut, B, nav, capture);
    let maps: { pixelMap: Float32Array; smoothed: Float32Array } | null = null;
    if (mo && allMaps) {
      const { H, W } = this;
      const m = await readF32(gpu, allMaps, 2 * B * H * mo.Wp);
      allMaps.destroy();
      const pixelMap = new Float32Array(B * H * W), smoothed = new Float32Array(B * H * W);
      for (let b = 0; b < B; b++) {
        for (let y = 0; y < H; y++) {
          const src = (2 * b * H + y) * mo.Wp;
          pixelMap.set(m.subarray(src, src + W), (b * H + y) * W);
          smoothed.set(m.subarray(src + H * mo.Wp, src + H * mo.Wp + W), (b * H + y) * W);
        }
      }
      maps = { pixelMap, smoothed };
    }
    return { logits: out, maps };
  }

  /** Reorder captured per-image tensors into the fixtures' layouts. */
  private assembleCapture(
    c: { E: Float32Array[]; hc: Float32Array[][]; xin: Float32Array[][]; feat: Float32Array[] },
    B: number,
    nav: ReturnType<typeof navigationIndex>,
    capture: Capture,
  ): void {
    const { h, w, Ls } = this;
    const dims = this.weights.dims;
    const L = h * w, d = dims.d, nScan = dims.nScan, nb = dims.nBranch;
    const E = new Float32Array(B * d * L);
    for (let b = 0; b < B; b++) {
      for (let p = 0; p < L; p++) {
        for (let k = 0; k < d; k++) E[(b * d + k) * L + p] = c.E[b][p * nb * d + k];
      }
    }
    capture.set("E_b0", E);
    c.hc.forEach((per, k) => {
      const hOut = new Float32Array(nScan * B * L * d);
      const mIn = new Float32Array(nScan * B * Ls * d), mOut = new Float32Array(nScan * B * Ls * d);
      for (let b = 0; b < B; b++) {
        for (let s = 0; s < nScan; s++) {
          const q = s * B + b;
          hOut.set(per[b].subarray(s * L * d, (s + 1) * L * d), q * L * d);
          mIn.set(c.xin[k][b].subarray(s * Ls * d, (s + 1) * Ls * d), q * Ls * d);
          for (let j = 0; j < Ls; j++) {
            const i = nav.gather[q * Ls + j];
            mOut.set(per[b].subarray((s * L + i) * d, (s * L + i + 1) * d), (q * Ls + j) * d);
          }
        }
      }
      capture.set(`block_b0_d${k}_out_h`, hOut);
      capture.set(`mixer_b0_d${k}_in`, mIn);
      capture.set(`mixer_b0_d${k}_out`, mOut);
    });
    const feat = new Float32Array(nScan * B * L * d);
    for (let b = 0; b < B; b++) {
      for (let s = 0; s < nScan; s++) {
        feat.set(c.feat[b].subarray(s * L * d, (s + 1) * L * d), (s * B + b) * L * d);
      }
    }
    capture.set("branch_features_b0", feat);
  }

  /**
   * Measure every recorded step separately (one submit and wait per step; for benchmarks only).
   * Run {@link run} once first so the input buffers hold an image.
   * @returns per step label (trailing indices removed, summed): process CPU milliseconds (all
   *   lavapipe worker threads; robust when other processes share the cores) and wall ms.
   */
  async profile(): Promise<Map<string, { cpu: number; wall: number }>> {
    const dev = this.gpu.device;
    const out = new Map<string, { cpu: number; wall: number }>();
    for (const st of this.steps) {
      const enc = dev.createCommandEncoder();
      encodeSteps(enc, [st]);
      const c0 = cpuUsage();
      const t0 = performance.now();
      dev.queue.submit([enc.finish()]);
      await dev.queue.onSubmittedWorkDone();
      const wall = performance.now() - t0;
      const c1 = cpuUsage();
      const c = { user: c1.user - c0.user, system: c1.system - c0.system };
      const key = st.label.replace(/ \(K window \d+\)/, "").replace(/ [\d.]+$/, "");
      const prev = out.get(key) ?? { cpu: 0, wall: 0 };
      out.set(key, { cpu: prev.cpu + (c.user + c.system) / 1000, wall: prev.wall + wall });
    }
    return out;
  }

  /** The scan permutations used (for tests). */
  get permutations(): Int32Array[] {
    return this.perms;
  }
}

/**
 * Process CPU time (µs) where the runtime has it (Deno's `process` global), else wall time — no
 * `node:` import, so the module also loads in a browser page.
 */
function cpuUsage(): { user: number; system: number } {
  const p = (globalThis as { process?: { cpuUsage?: () => { user: number; system: number } } })
    .process;
  return p?.cpuUsage?.() ?? { user: performance.now() * 1000, system: 0 };
}

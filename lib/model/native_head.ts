/**
 * The Mamba head (spec §6) on ONNX Runtime's native CPU engine (`npm:onnxruntime-node`, loaded by
 * lib/backbone/session.ts): the forward of lib/model/reference.ts `headForwardRef`, op for op, with
 * the dense work (1×1 patch embedding, 3×3 block and dilated decoder convolutions, the Mamba
 * projections, norms, gathers and scatters of the navigated tokens) in ONNX graphs whose weights are
 * constants (pre-packed once per session), and only the selective-scan recurrence (spec §6
 * "Mamba v1 (S6) computation" step 5) in TypeScript between them:
 *
 *   front  (Z, gather index)          → per branch: the block-1 scan operands
 *   mid k  (scan outputs y, carries)  → per branch: block k's out_proj + scatter, block k+1's operands
 *   back   (scan outputs y, carries)  → logits `(nHeads, B, L)`
 *
 * Per branch and block the graphs hand the scan `dA = exp(Δ ⊗ A)` and `dBu = (Δ·u) ⊗ B` as
 * `(N, Ls, dInner, dState)` and `C` as `(N, Ls, dState)` (N = nScan·B sequences, q = s·B + b); the
 * recurrence h_t = dA_t·h_{t−1} + dBu_t, y_t = Σ_n C_t,n·h_t,n runs in f32 here. All branches go
 * through each graph together (one run per stage: depth + 1 runs and depth·nBranch scans per
 * forward). Layouts inside the graphs are channels-first `(N, d, L)` in scan order, as the official
 * module's; results match {@link headForwardRef} to f32 rounding (tests/model_test.ts).
 *
 * Used by lib/model/head.ts when the WebGPU adapter is a CPU (lavapipe, SwiftShader) or absent and
 * onnxruntime-node loads (`SNARM_HEAD=native|webgpu|reference` overrides).
 * @module
 */
import { loadOrtNative } from "../backbone/session.ts";
import { GraphBuilder } from "../util/onnx_build.ts";
import type { HeadDims } from "./config.ts";
import { NORM_EPS } from "./reference.ts";
import { navigationIndex } from "./scan_order.ts";
import type { HeadWeights } from "./weights.ts";

type OrtNative = Exclude<Awaited<ReturnType<typeof loadOrtNative>>, Error>;
type Session = Awaited<ReturnType<OrtNative["InferenceSession"]["create"]>>;
type Tensor = InstanceType<OrtNative["Tensor"]>;

/** The per-branch tensors one stage hands to the next (besides the scan operands). */
const CARRY = ["u", "z", "hc", "stream"] as const;

/** Graph-building context of one head and grid. */
interface Ctx {
  g: GraphBuilder;
  w: HeadWeights;
  dims: HeadDims;
  h: number;
  wd: number;
  L: number;
  Ls: number;
}

const f32 = (a: ArrayLike<number>) => Float32Array.from(a);

/** Mean over axis 1 of x² … RMSNorm over the channel axis of `(N, d, L)` (mamba_ssm rms_norm). */
function rmsNorm(c: Ctx, x: string, weight: Float32Array): string {
  const { g } = c;
  const ms = g.op1("ReduceMean", [g.op1("Mul", [x, x])], {
    axes: { ints: [1] },
    keepdims: { i: 1 },
  });
  const rs = g.op1("Reciprocal", [
    g.op1("Sqrt", [g.op1("Add", [ms, g.const(new Float32Array([NORM_EPS]), [])])]),
  ]);
  return g.op1("Mul", [g.op1("Mul", [x, rs]), g.const(f32(weight), [1, weight.length, 1])]);
}

/** torch softplus (threshold 20) of x: log(1 + eˣ), x above 20 (vectorised Exp and Log). */
function softplus(c: Ctx, x: string): string {
  const { g } = c;
  const big = g.op1("Greater", [x, g.const(new Float32Array([20]), [])]);
  const sp = g.op1("Log", [g.op1("Add", [g.op1("Exp", [x]), g.const(new Float32Array([1]), [])])]);
  return g.op1("Where", [big, x, sp]);
}

/**
 * Sequence s of the scan orders (lib/model/scan_order.ts) of `(B, ch, L)` h×h grids, by a transpose
 * (s = 1, 3) and a reversal (s = 2, 3) instead of a gather.
 */
function scanOrder(c: Ctx, x: string, s: number, ch: number): string {
  const { g, h, wd, L } = c;
  let y = x;
  if (s % 2 === 1) {
    const grid = g.op1("Reshape", [x, g.ints([0, ch, h, wd])]);
    const t = g.op1("Transpose", [grid], { perm: { ints: [0, 1, 3, 2] } });
    y = g.op1("Reshape", [t, g.ints([0, ch, L])]);
  }
  return s >= 2 ? reverse(c, y) : y;
}

/** Inverse of {@link scanOrder}: sequence order → row-major positions. */
function unScanOrder(c: Ctx, x: string, s: number, ch: number): string {
  const { g, h, wd, L } = c;
  let y = s >= 2 ? reverse(c, x) : x;
  if (s % 2 === 1) {
    const grid = g.op1("Reshape", [y, g.ints([0, ch, wd, h])]);
    const t = g.op1("Transpose", [grid], { perm: { ints: [0, 1, 3, 2] } });
    y = g.op1("Reshape", [t, g.ints([0, ch, L])]);
  }
  return y;
}

/** Reverse axis 2 of `(B, ch, L)`. */
function reverse(c: Ctx, x: string): string {
  const { g } = c;
  return g.op1("Slice", [x, g.ints([-1]), g.ints([-(2 ** 62)]), g.ints([2]), g.ints([-1])]);
}

/** `(N, d, L)` → 3×3 conv (padding = dilation = r) on the h×w grid → `(N, d, L)`. */
function conv3x3(
  c: Ctx,
  x: string,
  ch: number,
  W: Float32Array,
  bias: Float32Array | null,
  r: number,
  groups = 1,
): string {
  const { g, h, wd, L } = c;
  const grid = g.op1("Reshape", [x, g.ints([0, ch, h, wd])]);
  const inputs = [grid, g.const(f32(W), [ch, ch / groups, 3, 3])];
  if (bias) inputs.push(g.const(f32(bias), [ch]));
  const y = g.op1("Conv", inputs, {
    kernel_shape: { ints: [3, 3] },
    dilations: { ints: [r, r] },
    pads: { ints: [r, r, r, r] },
    group: { i: groups },
  });
  return g.op1("Reshape", [y, g.ints([0, ch, L])]);
}

/**
 * Block `k` of branch `i` up to the selective scan: add + RMSNorm, the 3×3 conv, the gather of the
 * navigated tokens, in_proj, the causal depthwise conv1d + SiLU, x_proj, dt_proj and softplus.
 * Declares the scan operands and carries of (i, k) as graph outputs.
 */
function blockToScan(
  c: Ctx,
  i: number,
  k: number,
  hcur: string,
  stream: string | null,
  gidx: string,
): void {
  const { g, dims, Ls } = c;
  const { d, dInner: di, dtRank: R, dState: ns, dConv: kc } = dims;
  const blk = c.w.branches[i].blocks[k];
  const m = blk.mixer;
  const st = stream === null ? hcur : g.op1("Add", [hcur, stream]);
  const hn = rmsNorm(c, st, blk.normW);
  const hc = conv3x3(c, hn, d, blk.convW, blk.convB, 1);
  const idx = g.op1("Expand", [gidx, g.ints([1, d, 1])]);
  const xin = g.op1("GatherElements", [hc, idx], { axis: { i: 2 } }); // (N, d, Ls)
  const xz = g.op1("MatMul", [g.const(f32(m.inProj), [2 * di, d]), xin]); // (N, 2di, Ls)
  const [xpre, z] = g.op("Split", [xz, g.ints([di, di])], { axis: { i: 1 } }, undefined, 2);
  const conv = g.op1("Conv", [
    xpre,
    g.const(f32(m.conv1dW), [di, 1, kc]),
    g.const(f32(m.conv1dB), [di]),
  ], {
    kernel_shape: { ints: [kc] },
    pads: { ints: [kc - 1, 0] },
    group: { i: di },
  });
  const u = g.op1("Mul", [conv, g.op1("Sigmoid", [conv])]); // (N, di, Ls)
  const xdbl = g.op1("MatMul", [g.const(f32(m.xProj), [R + 2 * ns, di]), u]);
  const [dtRaw, Bm, Cm] = g.op(
    "Split",
    [xdbl, g.ints([R, ns, ns])],
    { axis: { i: 1 } },
    undefined,
    3,
  );
  const dt = g.op1("Add", [
    g.op1("MatMul", [g.const(f32(m.dtProjW), [di, R]), dtRaw]),
    g.const(f32(m.dtProjB), [di, 1]),
  ]);
  const delta = g.op1("Transpose", [softplus(c, dt)], { perm: { ints: [0, 2, 1] } }); // (N, Ls, di)
  const uT = g.op1("Transpose", [u], { perm: { ints: [0, 2, 1] } });
  const zT = g.op1("Transpose", [z], { perm: { ints: [0, 2, 1] } });
  // dA = exp(Δ ⊗ A) as (N, Ls, ns, di): one Δ·A[:, n] per state (trailing broadcasts only).
  const perState: string[] = [];
  for (let n = 0; n < ns; n++) {
    const An = new Float32Array(di);
    for (let e = 0; e < di; e++) An[e] = -Math.exp(m.aLog[e * ns + n]);
    perState.push(g.op1("Unsqueeze", [g.op1("Mul", [delta, g.const(An, [di])]), g.ints([2])]));
  }
  const dA = g.op1("Exp", [ns > 1 ? g.op1("Concat", perState, { axis: { i: 2 } }) : perState[0]]);
  const du = g.op1("Mul", [delta, uT]); // (N, Ls, di)
  const BT = g.op1("Transpose", [Bm], { perm: { ints: [0, 2, 1] } }); // (N, Ls, ns)
  const CT = g.op1("Transpose", [Cm], { perm: { ints: [0, 2, 1] } });
  const p = `b${i}`;
  g.output(dA, `${p}_dA`, "float", ["N", Ls, ns, di]);
  g.output(du, `${p}_du`, "float", ["N", Ls, di]);
  g.output(BT, `${p}_B`, "float", ["N", Ls, ns]);
  g.output(CT, `${p}_C`, "float", ["N", Ls, ns]);
  g.output(uT, `${p}_u`, "float", ["N", Ls, di]);
  g.output(zT, `${p}_z`, "float", ["N", Ls, di]);
  g.output(hc, `${p}_hc`, "float", ["N", d, c.L]);
  g.output(st, `${p}_stream`, "float", ["N", d, c.L]);
}

/** Block `k`'s mixer after the scan: the gate, out_proj and the scatter back into hc. */
function scanToBlockOut(c: Ctx, i: number, k: number, gidx: string): string {
  const { g, dims, Ls } = c;
  const { d, dInner: di } = dims;
  const m = c.w.branches[i].blocks[k].mixer;
  const p = `b${i}`;
  const y = g.input(`${p}_in_y`, "float", ["N", Ls, di]);
  const u = g.input(`${p}_in_u`, "float", ["N", Ls, di]);
  const z = g.input(`${p}_in_z`, "float", ["N", Ls, di]);
  const hc = g.input(`${p}_in_hc`, "float", ["N", d, c.L]);
  const yD = g.op1("Add", [y, g.op1("Mul", [u, g.const(f32(m.D), [di])])]);
  const gated = g.op1("Mul", [yD, g.op1("Mul", [z, g.op1("Sigmoid", [z])])]);
  const outProjT = new Float32Array(di * d); // (di, d) = out_proj.weightᵀ
  for (let o = 0; o < d; o++) {
    for (let e = 0; e < di; e++) outProjT[e * d + o] = m.outProj[o * di + e];
  }
  const xout = g.op1("Transpose", [g.op1("MatMul", [gated, g.const(outProjT, [di, d])])], {
    perm: { ints: [0, 2, 1] },
  }); // (N, d, Ls)
  const idx = g.op1("Expand", [gidx, g.ints([1, d, 1])]);
  return g.op1("ScatterElements", [hc, idx, xout], { axis: { i: 2 } });
}

/** Final LayerNorm, un-permute and the decoder heads of branch `i` → `(nScan, B, L)` logits. */
function branchOut(c: Ctx, i: number, hcur: string, stream: string): string {
  const { g, dims, L } = c;
  const { d, nScan } = dims;
  const bw = c.w.branches[i];
  const sum = g.op1("Transpose", [g.op1("Add", [hcur, stream])], { perm: { ints: [0, 2, 1] } });
  const ln = g.op1("LayerNormalization", [
    sum,
    g.const(f32(bw.lnW), [d]),
    g.const(f32(bw.lnB), [d]),
  ], {
    axis: { i: -1 },
    epsilon: { f: NORM_EPS },
  }); // (N, L, d)
  const lnCF = g.op1("Transpose", [ln], { perm: { ints: [0, 2, 1] } }); // (N, d, L)
  // (nScan, B, d, L) → per scan un-permuted, stacked on channels: (B, nScan·d, L)
  const byScan = g.op1("Reshape", [lnCF, g.ints([nScan, -1, d, L])]);
  const parts: string[] = [];
  for (let s = 0; s < nScan; s++) {
    const one = g.op1("Gather", [byScan, g.ints([s], [])], { axis: { i: 0 } }); // (B, d, L)
    parts.push(unScanOrder(c, one, s, d));
  }
  const feat = g.op1("Concat", parts, { axis: { i: 1 } }); // (B, nScan·d, L)
  const r = c.w.config.scale_list[i];
  const convW = new Float32Array(nScan * d * d * 9);
  const scale = new Float32Array(nScan * d), shift = new Float32Array(nScan * d);
  const outW = new Float32Array(nScan * d), outB = new Float32Array(nScan);
  for (let s = 0; s < nScan; s++) {
    const hw = c.w.heads[i * nScan + s];
    convW.set(hw.convW, s * d * d * 9);
    for (let o = 0; o < d; o++) {
      // BatchNorm (eval) as the reference computes it: (x − mean) / √(var + eps) · w + b.
      scale[s * d + o] = hw.bnW[o] / Math.sqrt(hw.bnVar[o] + NORM_EPS);
      shift[s * d + o] = hw.bnB[o] - hw.bnMean[o] * scale[s * d + o];
    }
    outW.set(hw.outW, s * d);
    outB[s] = hw.outB[0];
  }
  const conv = conv3x3(c, feat, nScan * d, convW, null, r, nScan); // (B, nScan·d, L)
  const bn = g.op1("Add", [
    g.op1("Mul", [conv, g.const(scale, [nScan * d, 1])]),
    g.const(shift, [nScan * d, 1]),
  ]);
  const act = g.op1("Reshape", [g.op1("Relu", [bn]), g.ints([0, nScan * d, c.h, c.wd])]);
  const logit = g.op1("Conv", [act, g.const(outW, [nScan, d, 1, 1]), g.const(outB, [nScan])], {
    kernel_shape: { ints: [1, 1] },
    group: { i: nScan },
  }); // (B, nScan, h, w)
  return g.op1("Transpose", [g.op1("Reshape", [logit, g.ints([0, nScan, L])])], {
    perm: { ints: [1, 0, 2] },
  }); // (nScan, B, L)
}

/**
 * The depth + 1 graphs of one head for a grid and suspicious count Ls; with `outSize` the last one
 * also outputs the pixel map `(B, H, W)` = mean over heads of sigmoid(bilinear(logits,
 * align_corners)) (spec §7, official `pixel_forward`).
 */
function buildGraphs(
  w: HeadWeights,
  h: number,
  wd: number,
  Ls: number,
  outSize: [number, number] | null,
): Uint8Array[] {
  const dims = w.dims;
  const L = h * wd;
  const { d, nScan, depth, nBranch } = dims;
  const Cin = w.config.in_chans;
  const graphs: Uint8Array[] = [];
  // front
  {
    const g = new GraphBuilder("snarm_head_front");
    const c: Ctx = { g, w, dims, h, wd, L, Ls };
    const Z = g.input("Z", "float", ["B", Cin, h, wd]);
    const gidx = g.input("gidx", "int64", ["N", 1, Ls]);
    const W = new Float32Array(nBranch * d * Cin), bias = new Float32Array(nBranch * d);
    w.branches.forEach((bw, i) => {
      W.set(bw.embedW, i * d * Cin);
      bias.set(bw.embedB, i * d);
    });
    const E = g.op1(
      "Conv",
      [Z, g.const(W, [nBranch * d, Cin, 1, 1]), g.const(bias, [nBranch * d])],
      {
        kernel_shape: { ints: [1, 1] },
      },
    ); // (B, nBranch·d, h, w)
    const Eb = g.op1("Reshape", [E, g.ints([0, nBranch, d, L])]);
    for (let i = 0; i < nBranch; i++) {
      const Ei = g.op1("Gather", [Eb, g.ints([i], [])], { axis: { i: 1 } }); // (B, d, L)
      const orders = Array.from({ length: nScan }, (_, s) => scanOrder(c, Ei, s, d));
      // (nScan·B, d, L), q = s·B + b
      const seq = nScan > 1 ? g.op1("Concat", orders, { axis: { i: 0 } }) : orders[0];
      blockToScan(c, i, 0, seq, null, gidx);
    }
    graphs.push(g.encode());
  }
  // mid k: after block k's scan → block k+1's operands
  for (let k = 0; k + 1 < depth; k++) {
    const g = new GraphBuilder(`snarm_head_mid${k}`);
    const c: Ctx = { g, w, dims, h, wd, L, Ls };
    const gidx = g.input("gidx", "int64", ["N", 1, Ls]);
    for (let i = 0; i < nBranch; i++) {
      const stream = g.input(`b${i}_in_stream`, "float", ["N", d, L]);
      const hcur = scanToBlockOut(c, i, k, gidx);
      blockToScan(c, i, k + 1, hcur, stream, gidx);
    }
    graphs.push(g.encode());
  }
  // back
  {
    const g = new GraphBuilder("snarm_head_back");
    const c: Ctx = { g, w, dims, h, wd, L, Ls };
    const gidx = g.input("gidx", "int64", ["N", 1, Ls]);
    const outs: string[] = [];
    for (let i = 0; i < nBranch; i++) {
      const stream = g.input(`b${i}_in_stream`, "float", ["N", d, L]);
      const hcur = scanToBlockOut(c, i, depth - 1, gidx);
      outs.push(branchOut(c, i, hcur, stream));
    }
    const logits = g.op1("Concat", outs, { axis: { i: 0 } });
    g.output(logits, "logits", "float", [dims.nHeads, "B", L]);
    if (outSize) {
      const grid = g.op1("Reshape", [logits, g.ints([dims.nHeads, -1, h, wd])]);
      const lead = g.op1("Slice", [g.op1("Shape", [grid]), g.ints([0]), g.ints([2])]);
      const sizes = g.op1("Concat", [lead, g.ints(outSize)], { axis: { i: 0 } });
      const up = g.op1("Resize", [grid, "", "", sizes], {
        mode: { s: "linear" },
        coordinate_transformation_mode: { s: "align_corners" },
      });
      const pm = g.op1("ReduceMean", [g.op1("Sigmoid", [up])], {
        axes: { ints: [0] },
        keepdims: { i: 0 },
      });
      g.output(pm, "pixel_map", "float", ["B", outSize[0], outSize[1]]);
    }
    graphs.push(g.encode());
  }
  return graphs;
}

/**
 * Selective-scan recurrence (spec §6 step 5) over the graph's operands, f32:
 * h_t,n,c = dA_t,n,c · h_{t−1},n,c + du_t,c · B_t,n (h_0 = 0), y_t,c = Σ_n C_t,n · h_t,n,c.
 * @param dA `(N, Ls, ns, di)` = exp(Δ·A); @param du `(N, Ls, di)` = Δ·u; @param B, C `(N, Ls, ns)`.
 * @returns y `(N, Ls, di)` (before the D skip and the gate).
 */
export function scanRecurrence(
  dA: Float32Array,
  du: Float32Array,
  B: Float32Array,
  C: Float32Array,
  N: number,
  Ls: number,
  di: number,
  ns: number,
): Float32Array {
  const y = new Float32Array(N * Ls * di);
  const hs = new Float32Array(ns * di);
  for (let q = 0; q < N; q++) {
    hs.fill(0);
    for (let t = 0; t < Ls; t++) {
      const r = q * Ls + t, ab = r * ns * di, xb = r * di, cb = r * ns;
      for (let n = 0; n < ns; n++) {
        const bn = B[cb + n], cn = C[cb + n], o = n * di, ao = ab + o;
        for (let c = 0; c < di; c++) {
          const v = dA[ao + c] * hs[o + c] + du[xb + c] * bn;
          hs[o + c] = v;
          y[xb + c] += cn * v;
        }
      }
    }
  }
  return y;
}

/** Wall ms of the last {@link NativeHead.logits} call: each graph run, and the scans (bench). */
export const lastNativeHeadProfile: { graphs: number[]; scans: number } = { graphs: [], scans: 0 };

/** A head compiled for the native engine (sessions per suspicious count Ls). */
export class NativeHead {
  private sessions = new Map<string, Promise<Session[]>>();

  private constructor(
    private ort: OrtNative,
    readonly weights: HeadWeights,
    readonly threads: number,
  ) {}

  /**
   * @throws {Error} when onnxruntime-node does not load here.
   */
  static async create(weights: HeadWeights, threads?: number): Promise<NativeHead> {
    const ort = await loadOrtNative();
    if (ort instanceof Error) throw new Error(`native head: onnxruntime-node: ${ort.message}`);
    return new NativeHead(ort, weights, threads ?? Math.max(1, navigator.hardwareConcurrency || 1));
  }

  private graphSessions(
    h: number,
    w: number,
    Ls: number,
    outSize: [number, number] | null,
  ): Promise<Session[]> {
    const key = `${h}x${w}:${Ls}:${outSize ? outSize.join("x") : ""}`;
    let p = this.sessions.get(key);
    if (!p) {
      const opts = {
        executionProviders: ["cpu"],
        intraOpNumThreads: this.threads,
        interOpNumThreads: 1,
        executionMode: "sequential" as const,
        graphOptimizationLevel: "all" as const,
      };
      p = Promise.all(
        buildGraphs(this.weights, h, w, Ls, outSize).map((m) =>
          this.ort.InferenceSession.create(m, opts)
        ),
      );
      this.sessions.set(key, p);
      p.catch(() => this.sessions.delete(key));
    }
    return p;
  }

  /**
   * Logits `(nHeads, B, h·w)` (head index = branch·nScan + scan) from Z `(B, in_chans, h, w)` and the
   * `(B, h·w)` navigation mask, as {@link headForwardRef}; with `outSize` [H, W] also the pixel map
   * `(B, H, W)` (sizes checked by the caller, lib/model/head.ts).
   */
  async run(
    Z: Float32Array,
    refMask: Uint8Array,
    B: number,
    h: number,
    w: number,
    outSize: [number, number] | null = null,
  ): Promise<{ logits: Float32Array; pixelMap: Float32Array | null }> {
    const dims = this.weights.dims;
    const { nScan, nBranch, dInner: di, dState: ns } = dims;
    const nav = navigationIndex(refMask, B, h, w, nScan);
    const Ls = nav.Ls, N = nScan * B;
    const sess = await this.graphSessions(h, w, Ls, outSize);
    const T = (data: Float32Array | BigInt64Array, dimsT: number[]): Tensor =>
      new this.ort.Tensor(data instanceof BigInt64Array ? "int64" : "float32", data, dimsT);
    const gidx = T(BigInt64Array.from(nav.gather, BigInt), [N, 1, Ls]);
    let feeds: Record<string, Tensor> = {
      Z: T(Z, [B, this.weights.config.in_chans, h, w]),
      gidx,
    };
    const prof = { graphs: [] as number[], scans: 0 };
    for (let k = 0; k < sess.length; k++) {
      let t0 = performance.now();
      const out = await sess[k].run(feeds);
      prof.graphs.push(performance.now() - t0);
      if (k === sess.length - 1) {
        Object.assign(lastNativeHeadProfile, prof);
        return {
          logits: new Float32Array(out.logits.data as Float32Array),
          pixelMap: outSize ? new Float32Array(out.pixel_map.data as Float32Array) : null,
        };
      }
      t0 = performance.now();
      const next: Record<string, Tensor> = { gidx };
      for (let i = 0; i < nBranch; i++) {
        const p = `b${i}`;
        const y = scanRecurrence(
          out[`${p}_dA`].data as Float32Array,
          out[`${p}_du`].data as Float32Array,
          out[`${p}_B`].data as Float32Array,
          out[`${p}_C`].data as Float32Array,
          N,
          Ls,
          di,
          ns,
        );
        next[`${p}_in_y`] = T(y, [N, Ls, di]);
        for (const name of CARRY) next[`${p}_in_${name}`] = out[`${p}_${name}`];
      }
      prof.scans += performance.now() - t0;
      feeds = next;
    }
    throw new Error("native head: no graph ran");
  }
}

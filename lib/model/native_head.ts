/**
 * The Mamba head (spec §6) on ONNX Runtime's native CPU engine (`npm:onnxruntime-node`, loaded by
 * lib/backbone/session.ts): the forward of lib/model/reference.ts `headForwardRef`, op for op, with
 * the dense work (1×1 patch embedding, 3×3 block and dilated decoder convolutions, the Mamba
 * projections, norms, the gathers of the navigated tokens and their write-back) in ONNX graphs whose weights are
 * constants (pre-packed once per session), and only the selective-scan recurrence (spec §6
 * "Mamba v1 (S6) computation" step 5) in TypeScript between them:
 *
 *   front  (Z, gather index, keep mask) → per branch: block 1's scan and gate operands, carry q
 *   mid k  (gated scan outputs, q, ginv) → per branch: block k's out_proj + write-back, block k+1's
 *   back   (gated scan outputs, q, ginv) → logits `(nHeads, B, L)` (and the pixel map)
 *
 * Per branch and block the graphs hand the host `dA = exp(Δ ⊗ A)` as `(N, Ls, dState, dInner)`,
 * Δ·u, u and SiLU(z) as `(N, Ls, dInner)`, B and C as `(N, Ls, dState)` (N = nScan·B sequences,
 * q = b·nScan + s), and one carry q `(N, d, L)` (the residual stream plus the conv output where
 * the mixer does not write); the host runs the recurrence h_t = dA_t·h_{t−1} + (Δ·u)_t·B_t,
 * y_t = Σ_n C_t,n·h_t,n and the gate (y + D·u)·SiLU(z) in f32. All branches go through each graph
 * together (depth + 1 runs and depth·nBranch scans per forward), and each stage writes into output
 * buffers reused by the next forward of the same shape. Layouts inside the graphs are
 * channels-first `(N, d, L)` on the row-major grid: each scan order's 3×3 conv runs with its
 * transformed kernel ({@link scanKernel}) instead of on a permuted copy, and the navigated tokens
 * are gathered in scan order. Results match {@link headForwardRef} to f32 rounding
 * (tests/model_test.ts).
 *
 * Used by lib/model/head.ts when the WebGPU adapter is a CPU (lavapipe, SwiftShader) or absent and
 * onnxruntime-node loads (`SNARM_HEAD=native|webgpu|reference` overrides).
 * @module
 */
import { loadOrtNative } from "../backbone/session.ts";
import { GraphBuilder } from "../util/onnx_build.ts";
import type { HeadDims } from "./config.ts";
import { NORM_EPS } from "./reference.ts";
import { navigationIndex, scanPermutations } from "./scan_order.ts";
import type { HeadWeights } from "./weights.ts";

type OrtNative = Exclude<Awaited<ReturnType<typeof loadOrtNative>>, Error>;
type Session = Awaited<ReturnType<OrtNative["InferenceSession"]["create"]>>;
type Tensor = InstanceType<OrtNative["Tensor"]>;

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

/**
 * torch softplus (threshold 20) of x: log(1 + eˣ), x above 20 (vectorised Exp and Log; ONNX
 * Softplus took about 3× as long in ONNX Runtime 1.30's profile of the paper head).
 */
function softplus(c: Ctx, x: string): string {
  const { g } = c;
  const big = g.op1("Greater", [x, g.const(new Float32Array([20]), [])]);
  const sp = g.op1("Log", [g.op1("Add", [g.op1("Exp", [x]), g.const(new Float32Array([1]), [])])]);
  return g.op1("Where", [big, x, sp]);
}

/**
 * The 3×3 kernel that scan order s applies on the row-major grid: the official block reshapes
 * sequence s to its own h×h grid (the grid transposed for s = 1, rotated 180° for s = 2, both for
 * s = 3; lib/model/scan_order.ts) before the conv, and conv(T(X), W) = T(conv(X, T(W))) for those
 * T with symmetric padding, so the conv runs on the row-major grid with W transposed and/or
 * rotated. `(co, ci, 3, 3)` in, same layout out.
 */
export function scanKernel(W: Float32Array, co: number, ci: number, s: number): Float32Array {
  const out = new Float32Array(W.length);
  for (let oc = 0; oc < co * ci; oc++) {
    for (let ky = 0; ky < 3; ky++) {
      for (let kx = 0; kx < 3; kx++) {
        let y = ky, x = kx;
        if (s % 2 === 1) [y, x] = [x, y];
        if (s >= 2) [y, x] = [2 - y, 2 - x];
        out[oc * 9 + ky * 3 + kx] = W[oc * 9 + y * 3 + x];
      }
    }
  }
  return out;
}

/** The nScan scan kernels of a block conv stacked on the output channels: `(nScan·d, d, 3, 3)`. */
function scanKernels(W: Float32Array, d: number, nScan: number): Float32Array {
  const out = new Float32Array(nScan * W.length);
  for (let s = 0; s < nScan; s++) out.set(scanKernel(W, d, d, s), s * W.length);
  return out;
}

/**
 * `(N, cin, L)` → 3×3 conv (padding = dilation = r) on the h×w grid → `(N, cout, L)`; W is
 * `(cout, cin / groups, 3, 3)`.
 */
function conv3x3(
  c: Ctx,
  x: string,
  cin: number,
  cout: number,
  W: Float32Array,
  bias: Float32Array | null,
  r: number,
  groups = 1,
): string {
  const { g, h, wd, L } = c;
  const grid = g.op1("Reshape", [x, g.ints([0, cin, h, wd])]);
  const inputs = [grid, g.const(f32(W), [cout, cin / groups, 3, 3])];
  if (bias) inputs.push(g.const(f32(bias), [cout]));
  const y = g.op1("Conv", inputs, {
    kernel_shape: { ints: [3, 3] },
    dilations: { ints: [r, r] },
    pads: { ints: [r, r, r, r] },
    group: { i: groups },
  });
  return g.op1("Reshape", [y, g.ints([0, cout, L])]);
}

/**
 * Block `k` of branch `i` up to the selective scan: RMSNorm, the 3×3 conv, the gather of the
 * navigated tokens, in_proj, the causal depthwise conv1d + SiLU, x_proj, dt_proj and softplus.
 * `st` is the block's residual stream: the `(B, d, L)` branch embedding for block 0 (the same for
 * every scan order), else `(N, d, L)`. Declares as graph outputs the scan operands dA, Δ·u, B, C,
 * the gate operands u and SiLU(z), and the carry q = st + hc·keep (the stream plus the conv output
 * at the tokens the mixer does not replace; see {@link mixerOut}).
 */
function blockToScan(
  c: Ctx,
  i: number,
  k: number,
  stIn: string,
  gidx: string,
  keep: string,
): void {
  const { g, dims, Ls } = c;
  const { d, dInner: di, dtRank: R, dState: ns, dConv: kc } = dims;
  const blk = c.w.branches[i].blocks[k];
  const m = blk.mixer;
  const { nScan } = dims;
  // The block's conv of every scan order on the row-major grid (see scanKernel): block 0's input
  // is the branch embedding, one `(B, d, L)` grid for all orders, so one conv with the nScan
  // kernels stacked on the output channels; later blocks hold one grid per order, stacked on the
  // channels `(B, nScan·d, L)` (sequence q = b·nScan + s), so one grouped conv.
  const W = scanKernels(blk.convW, d, nScan);
  const bias = new Float32Array(nScan * d);
  for (let s = 0; s < nScan; s++) bias.set(blk.convB, s * d);
  let st: string, hc: string;
  if (k === 0) {
    const hn = rmsNorm(c, stIn, blk.normW);
    hc = g.op1("Reshape", [conv3x3(c, hn, d, nScan * d, W, bias, 1), g.ints([-1, d, c.L])]);
    const tiled = g.op1("Expand", [
      g.op1("Unsqueeze", [stIn, g.ints([1])]),
      g.ints([1, nScan, 1, 1]),
    ]);
    st = g.op1("Reshape", [tiled, g.ints([-1, d, c.L])]); // (N, d, L)
  } else {
    st = stIn;
    const hn = g.op1("Reshape", [rmsNorm(c, st, blk.normW), g.ints([-1, nScan * d, c.L])]);
    const y = conv3x3(c, hn, nScan * d, nScan * d, W, bias, 1, nScan);
    hc = g.op1("Reshape", [y, g.ints([-1, d, c.L])]);
  }
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
  const siluZ = g.op1("Mul", [zT, g.op1("Sigmoid", [zT])]); // (N, Ls, di)
  // dA = exp(Δ ⊗ A) as (N, Ls, ns, di): (N, Ls, 1, di) · (ns, di), A = −exp(A_log)ᵀ.
  const A = new Float32Array(ns * di);
  for (let n = 0; n < ns; n++) {
    for (let e = 0; e < di; e++) A[n * di + e] = -Math.exp(m.aLog[e * ns + n]);
  }
  const dA = g.op1("Exp", [
    g.op1("Mul", [g.op1("Unsqueeze", [delta, g.ints([2])]), g.const(A, [ns, di])]),
  ]);
  const du = g.op1("Mul", [delta, uT]); // (N, Ls, di)
  const BT = g.op1("Transpose", [Bm], { perm: { ints: [0, 2, 1] } }); // (N, Ls, ns)
  const CT = g.op1("Transpose", [Cm], { perm: { ints: [0, 2, 1] } });
  const p = `b${i}`;
  g.output(dA, `${p}_dA`, "float", ["N", Ls, ns, di]);
  g.output(du, `${p}_du`, "float", ["N", Ls, di]);
  g.output(BT, `${p}_B`, "float", ["N", Ls, ns]);
  g.output(CT, `${p}_C`, "float", ["N", Ls, ns]);
  g.output(uT, `${p}_u`, "float", ["N", Ls, di]);
  g.output(siluZ, `${p}_g`, "float", ["N", Ls, di]);
  // q: st + hc where the mixer output will not land, st exactly where it will (hc·0 = 0)
  g.output(g.op1("Add", [st, g.op1("Mul", [hc, keep])]), `${p}_q`, "float", ["N", d, c.L]);
}

/**
 * Block `k`'s mixer after the scan and gate (y + D·u)·SiLU(z), computed by the host: out_proj, and
 * the next residual stream st' = q + x_full, with x_full the mixer output at the navigated tokens
 * and 0 elsewhere (exactly the reference's sum: q holds st alone at those tokens). x_full is a
 * gather through `ginv` `(N, 1, L)` (each grid position's token, or Ls for a zero column):
 * ONNX Runtime's ScatterElements, the direct form, took 0.7–9 ms per branch in its profile.
 */
function mixerOut(c: Ctx, i: number, k: number, ginv: string): string {
  const { g, dims, Ls } = c;
  const { d, dInner: di } = dims;
  const m = c.w.branches[i].blocks[k].mixer;
  const p = `b${i}`;
  const gated = g.input(`${p}_in_gated`, "float", ["N", Ls, di]);
  const q = g.input(`${p}_in_q`, "float", ["N", d, c.L]);
  const outProjT = new Float32Array(di * d); // (di, d) = out_proj.weightᵀ
  for (let o = 0; o < d; o++) {
    for (let e = 0; e < di; e++) outProjT[e * d + o] = m.outProj[o * di + e];
  }
  const xout = g.op1("Transpose", [g.op1("MatMul", [gated, g.const(outProjT, [di, d])])], {
    perm: { ints: [0, 2, 1] },
  }); // (N, d, Ls)
  const xpad = g.op1("Pad", [xout, g.ints([0, 0, 0, 0, 0, 1])]); // (N, d, Ls + 1), last = 0
  const idx = g.op1("Expand", [ginv, g.ints([1, d, 1])]);
  return g.op1("Add", [q, g.op1("GatherElements", [xpad, idx], { axis: { i: 2 } })]);
}

/** Final LayerNorm, un-permute and the decoder heads of branch `i` → `(nScan, B, L)` logits. */
function branchOut(c: Ctx, i: number, st: string): string {
  const { g, dims, L } = c;
  const { d, nScan } = dims;
  const bw = c.w.branches[i];
  const sum = g.op1("Transpose", [st], { perm: { ints: [0, 2, 1] } });
  const ln = g.op1("LayerNormalization", [
    sum,
    g.const(f32(bw.lnW), [d]),
    g.const(f32(bw.lnB), [d]),
  ], {
    axis: { i: -1 },
    epsilon: { f: NORM_EPS },
  }); // (N, L, d)
  const lnCF = g.op1("Transpose", [ln], { perm: { ints: [0, 2, 1] } }); // (N, d, L)
  // (N, d, L) with q = b·nScan + s, row-major grids: (B, nScan·d, L), channel s·d + c
  const feat = g.op1("Reshape", [lnCF, g.ints([-1, nScan * d, L])]);
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
  const conv = conv3x3(c, feat, nScan * d, nScan * d, convW, null, r, nScan); // (B, nScan·d, L)
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
  const { d, depth, nBranch } = dims;
  const Cin = w.config.in_chans;
  const graphs: Uint8Array[] = [];
  // front
  {
    const g = new GraphBuilder("snarm_head_front");
    const c: Ctx = { g, w, dims, h, wd, L, Ls };
    const Z = g.input("Z", "float", ["B", Cin, h, wd]);
    const gidx = g.input("gidx", "int64", ["N", 1, Ls]);
    const keep = g.input("keep", "float", ["N", 1, L]);
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
      blockToScan(c, i, 0, Ei, gidx, keep);
    }
    graphs.push(g.encode());
  }
  // mid k: after block k's scan → block k+1's operands
  for (let k = 0; k + 1 < depth; k++) {
    const g = new GraphBuilder(`snarm_head_mid${k}`);
    const c: Ctx = { g, w, dims, h, wd, L, Ls };
    const gidx = g.input("gidx", "int64", ["N", 1, Ls]);
    const keep = g.input("keep", "float", ["N", 1, L]);
    const ginv = g.input("ginv", "int64", ["N", 1, L]);
    for (let i = 0; i < nBranch; i++) {
      blockToScan(c, i, k + 1, mixerOut(c, i, k, ginv), gidx, keep);
    }
    graphs.push(g.encode());
  }
  // back
  {
    const g = new GraphBuilder("snarm_head_back");
    const c: Ctx = { g, w, dims, h, wd, L, Ls };
    const ginv = g.input("ginv", "int64", ["N", 1, L]);
    const outs: string[] = [];
    for (let i = 0; i < nBranch; i++) {
      outs.push(branchOut(c, i, mixerOut(c, i, depth - 1, ginv)));
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
 * @param out optional `(N, Ls, di)` buffer for y (overwritten).
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
  out?: Float32Array,
): Float32Array {
  const y = out ? out.fill(0) : new Float32Array(N * Ls * di);
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

/** Reusable outputs of one forward: per stage the fetches, per stage and branch the scan y. */
interface StageBuffers {
  busy: boolean;
  fetches: (Record<string, Tensor> | null)[];
  ys: Float32Array[][];
}

/**
 * The mixer's gate in place (spec §6 step 6): y ← (y + D·u) · SiLU(z), all `(N, Ls, di)` with D
 * `(di)` and `siluZ` = SiLU(z) from the graph.
 */
export function gate(y: Float32Array, u: Float32Array, siluZ: Float32Array, D: Float32Array): void {
  const di = D.length;
  for (let o = 0; o < y.length; o += di) {
    for (let c = 0; c < di; c++) y[o + c] = (y[o + c] + D[c] * u[o + c]) * siluZ[o + c];
  }
}

/** Wall ms of the last {@link NativeHead.logits} call: each graph run, and the scans (bench). */
export const lastNativeHeadProfile: { graphs: number[]; scans: number } = { graphs: [], scans: 0 };

/** A head compiled for the native engine (sessions per suspicious count Ls). */
export class NativeHead {
  private sessions = new Map<string, Promise<Session[]>>();
  /**
   * Output buffers of each stage, per session key: the graphs write into them (pre-allocated
   * fetches; fresh ~100 MB of outputs per stage cost more than the stage's kernels), reused by the
   * next forward of that shape. One set per forward in flight: a busy set is not shared.
   */
  private buffers = new Map<string, StageBuffers[]>();

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
        // Workers stop spin-waiting when a run ends: each of the depth + 1 sessions has its own
        // intra-op pool, and workers spinning after their graph took the cores of the next graph
        // and of the host's scans (paper head on 2 cores: front graph ~75 → ~51 ms, forward from
        // Z ~235 → ~192 ms; no spinning at all: ~195 ms).
        extra: { session: { force_spinning_stop: "1" } },
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

  /** A free set of stage buffers for `key` (a new, empty one when all are busy), marked busy. */
  private takeBuffers(key: string, sess: Session[]): StageBuffers {
    let pool = this.buffers.get(key);
    if (pool) {
      // most recently used last: the oldest shape is the one dropped
      this.buffers.delete(key);
      this.buffers.set(key, pool);
    } else {
      // a few shapes at most (the last, smaller batch of a run): drop the least recently used
      // beyond four
      if (this.buffers.size >= 4) this.buffers.delete(this.buffers.keys().next().value!);
      this.buffers.set(key, pool = []);
    }
    let buf = pool.find((b) => !b.busy);
    if (!buf) {
      buf = { busy: false, fetches: sess.map(() => null), ys: sess.map(() => []) };
      pool.push(buf);
    }
    buf.busy = true;
    return buf;
  }

  /**
   * Logits `(nHeads, B, h·w)` (head index = branch·nScan + scan) from Z `(B, in_chans, h, w)` and the
   * `(B, h·w)` navigation mask, as {@link headForwardRef}; with `outSize` [H, W] also the pixel map
   * `(B, H, W)` (map sizes checked by the caller, lib/model/head.ts).
   * @throws {Error} naming Z on a wrong length or a non-square grid; naming refMask as
   *   `navigationIndex` does.
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
    const Cin = this.weights.config.in_chans;
    if (Z.length !== B * Cin * h * w) {
      throw new Error(
        `Z: ${Z.length} values, expected (B, in_chans, h, w) = (${B}, ${Cin}, ${h}, ${w})`,
      );
    }
    // the scan orders' kernels (scanKernel) and the official reshape need a square grid
    if (h !== w) throw new Error(`Z: grid ${h}×${w} is not square`);
    const nav = navigationIndex(refMask, B, h, w, nScan);
    const Ls = nav.Ls, N = nScan * B;
    // Row-major grid positions of the navigated tokens in scan order, sequence q = b·nScan + s
    // (the graphs keep every grid row-major; see scanKernel).
    const perms = scanPermutations(h, w, nScan);
    // int64 indices written through their low 32-bit words (little-endian; no BigInt per value)
    const gather = new BigInt64Array(N * Ls), g32 = new Int32Array(gather.buffer);
    for (let s = 0; s < nScan; s++) {
      for (let b = 0; b < B; b++) {
        const src = (s * B + b) * Ls, dst = (b * nScan + s) * Ls;
        for (let j = 0; j < Ls; j++) g32[2 * (dst + j)] = perms[s][nav.gather[src + j]];
      }
    }
    const sess = await this.graphSessions(h, w, Ls, outSize);
    const T = (data: Float32Array | BigInt64Array, dimsT: number[]): Tensor =>
      new this.ort.Tensor(data instanceof BigInt64Array ? "int64" : "float32", data, dimsT);
    // keep: 1 where a sequence's grid position keeps its conv output, 0 at its navigated tokens;
    // ginv: each grid position's token index j, Ls where there is none (see mixerOut)
    const L = h * w;
    const keepMask = new Float32Array(N * L).fill(1);
    const ginv = new BigInt64Array(N * L), inv32 = new Int32Array(ginv.buffer);
    for (let i = 0; i < N * L; i++) inv32[2 * i] = Ls;
    for (let q = 0; q < N; q++) {
      for (let j = 0; j < Ls; j++) {
        const pos = g32[2 * (q * Ls + j)];
        keepMask[q * L + pos] = 0;
        inv32[2 * (q * L + pos)] = j;
      }
    }
    const shared: Record<string, Tensor> = {
      gidx: T(gather, [N, 1, Ls]),
      keep: T(keepMask, [N, 1, L]),
      ginv: T(ginv, [N, 1, L]),
    };
    /** The shared index tensors graph `k` takes. */
    const indexFeeds = (k: number) =>
      Object.fromEntries(sess[k].inputNames.filter((n) => n in shared).map((n) => [n, shared[n]]));
    let feeds: Record<string, Tensor> = {
      Z: T(Z, [B, this.weights.config.in_chans, h, w]),
      ...indexFeeds(0),
    };
    const buf = this.takeBuffers(`${h}x${w}:${Ls}:${outSize ? outSize.join("x") : ""}:${B}`, sess);
    const prof = { graphs: [] as number[], scans: 0 };
    try {
      for (let k = 0; k < sess.length; k++) {
        let t0 = performance.now();
        const fetch = buf.fetches[k];
        const run = await (fetch ? sess[k].run(feeds, fetch) : sess[k].run(feeds));
        // The first forward of a shape keeps its outputs as the buffers of the next ones.
        const out = fetch ?? (buf.fetches[k] = run);
        prof.graphs.push(performance.now() - t0);
        if (k === sess.length - 1) {
          Object.assign(lastNativeHeadProfile, prof);
          return {
            logits: new Float32Array(out.logits.data as Float32Array),
            pixelMap: outSize ? new Float32Array(out.pixel_map.data as Float32Array) : null,
          };
        }
        t0 = performance.now();
        const next: Record<string, Tensor> = indexFeeds(k + 1);
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
            buf.ys[k][i],
          );
          buf.ys[k][i] = y;
          const D = this.weights.branches[i].blocks[k].mixer.D;
          gate(y, out[`${p}_u`].data as Float32Array, out[`${p}_g`].data as Float32Array, D);
          next[`${p}_in_gated`] = T(y, [N, Ls, di]);
          next[`${p}_in_q`] = out[`${p}_q`];
        }
        prof.scans += performance.now() - t0;
        feeds = next;
      }
    } finally {
      buf.busy = false;
    }
    throw new Error("native head: no graph ran");
  }
}

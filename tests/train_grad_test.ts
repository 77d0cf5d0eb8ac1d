/**
 * Tests of the SNARM head training groundwork (lib/ops, lib/train/backward_ref.ts, loss.ts,
 * adamw.ts): every op's vector-Jacobian product against central finite differences (float64,
 * random projections of the outputs), the BatchNorm running-stat update, the training forward
 * against the official tiny fixture (eval-mode BatchNorm), the whole-head gradient on a tiny
 * configuration, the loss and AdamW / learning-rate schedule. Each check prints its maximum
 * relative error.
 */
import assert from "node:assert/strict";
import { readSafeTensors, type SafeTensors, type Tensor } from "../lib/io/safetensors.ts";
import {
  headForwardRef,
  type HeadWeights,
  headWeightsFromSafeTensors,
  loadHeadWeights,
  parseHeadConfig,
  weightSpecs,
} from "../lib/model/mod.ts";
import { navigationIndex, scanPermutations } from "../lib/model/scan_order.ts";
import { resizeBilinear } from "../lib/maps/mod.ts";
import { navigatorMaps } from "../lib/residual/mod.ts";
import {
  addRmsNormBackward,
  addRmsNormForward,
  batchNormBackward,
  batchNormForward,
  batchNormRunningUpdate,
  causalConv1dBackward,
  causalConv1dForward,
  conv1x1Backward,
  conv1x1Forward,
  conv3x3Backward,
  conv3x3Forward,
  fromScanOrder,
  fromScanOrderBackward,
  gateBackward,
  gateForward,
  gatherTokens,
  gatherTokensBackward,
  layerNormBackward,
  layerNormForward,
  linearBackward,
  linearForward,
  mapVec,
  mixerBackward,
  mixerForward,
  pointwiseBackward,
  relu,
  reluGrad,
  rmsNormBackward,
  rmsNormForward,
  scatterTokens,
  scatterTokensBackward,
  selectiveScanBackward,
  selectiveScanForward,
  sigmoid,
  sigmoidBackward,
  sigmoidForward,
  silu,
  siluGrad,
  softplus,
  softplusGrad,
  toScanOrder,
  toScanOrderBackward,
  upsampleBilinearBackward,
  upsampleBilinearForward,
} from "../lib/ops/mod.ts";
import {
  headForwardBackwardRef,
  headLossRef,
  headParameters,
  headTrainForwardRef,
} from "../lib/train/backward_ref.ts";
import { focalLossLogits, focalLossProb, gridTarget, snarmLoss } from "../lib/train/loss.ts";
import { AdamW, isNoWeightDecay, warmCosineLr } from "../lib/train/adamw.ts";
import type { HeadDims } from "../lib/model/config.ts";
import type { MixerWeights } from "../lib/model/weights.ts";
import { mulberry32 } from "../lib/util/rng.ts";
import { fixtureZ } from "./_official.ts";

// ---------------------------------------------------------------- helpers

/** Seeded normal samples (mulberry32 + Box–Muller). */
function rng(seed: number): () => number {
  const m = mulberry32(seed);
  const u = () => m() + 0.5 / 4294967296; // in (0, 1): log(u) is finite
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

function randn(n: number, r: () => number, scale = 1, offset = 0): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = offset + scale * r();
  return out;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Relative error |a − n| / max(|a|, |n|, floor). */
function relErr(a: number, n: number, floor: number): number {
  return Math.abs(a - n) / Math.max(Math.abs(a), Math.abs(n), floor);
}

type Arr = Float64Array | Float32Array;

/** Finite-difference entries retried with a 10× smaller step. */
let retries = 0;

interface FdOptions {
  /** Step (default 1e-5). */
  eps?: number;
  /** Indices to check (default all). */
  idx?: number[];
  /** Denominator floor of the relative error (default 1e-3 · max |analytic| of the tensor). */
  floor?: number;
  /** Tolerance (default 1e-6). */
  tol?: number;
}

/**
 * Central finite differences of `f` w.r.t. the entries `idx` of `x` (perturbed in place and
 * restored), divided by the step actually stored (exact also for f32 storage). When an entry
 * misses `tol` the step is retried 10× smaller (a ReLU kink crossed by the perturbation).
 */
function fdMaxRel(f: () => number, x: Arr, analytic: ArrayLike<number>, o: FdOptions): number {
  assert.equal(analytic.length, x.length, "analytic gradient length");
  let gInf = 0;
  for (let i = 0; i < analytic.length; i++) gInf = Math.max(gInf, Math.abs(analytic[i]));
  const floor = o.floor ?? Math.max(1e-3 * gInf, 1e-12), tol = o.tol ?? 1e-6;
  const idx = o.idx ?? Array.from({ length: x.length }, (_, i) => i);
  let worst = 0;
  for (const i of idx) {
    let err = Infinity;
    for (let eps = o.eps ?? 1e-5, k = 0; k < 2 && err > tol; k++, eps /= 10) {
      if (k > 0) retries++;
      const x0 = x[i];
      x[i] = x0 + eps;
      const xp = x[i], fp = f();
      x[i] = x0 - eps;
      const xm = x[i], fm = f();
      x[i] = x0;
      err = Math.min(err, relErr(analytic[i], (fp - fm) / (xp - xm), floor));
    }
    worst = Math.max(worst, err);
  }
  return worst;
}

const REPORT: Array<[string, number]> = [];

/** Check each (label, input, analytic gradient) and assert the max relative error ≤ tol. */
function gradCheck(
  op: string,
  f: () => number,
  pairs: Array<[string, Arr, ArrayLike<number>]>,
  o: FdOptions = {},
): void {
  const tol = o.tol ?? 1e-6;
  for (const [label, x, g] of pairs) {
    const e = fdMaxRel(f, x, g, o);
    REPORT.push([`${op} / ${label}`, e]);
    console.log(`  grad check ${op} / ${label}: max rel err ${e.toExponential(2)}`);
    assert.ok(e <= tol, `${op} / ${label}: max relative error ${e} > ${tol}`);
  }
}

// ---------------------------------------------------------------- dense layers

Deno.test("grad: linear with and without bias", () => {
  const r = rng(1);
  const rows = 5, K = 4, N = 3;
  for (const withBias of [true, false]) {
    const x = randn(rows * K, r), W = randn(N * K, r), b = randn(N, r), g = randn(rows * N, r);
    const f = () => dot(g, linearForward(x, rows, K, W, N, withBias ? b : null));
    const bw = linearBackward(x, rows, K, W, N, g, withBias);
    const pairs: Array<[string, Arr, ArrayLike<number>]> = [["x", x, bw.dx], ["W", W, bw.dW]];
    if (withBias) pairs.push(["bias", b, bw.db!]);
    else assert.equal(bw.db, null);
    gradCheck(`linear ${withBias ? "+bias" : "no bias"}`, f, pairs);
  }
});

Deno.test("grad: 1×1 conv on channels-first input (patch embedding / unary predictor)", () => {
  const r = rng(2);
  const B = 2, Cin = 3, L = 5, Co = 4;
  const Z = randn(B * Cin * L, r), W = randn(Co * Cin, r), b = randn(Co, r);
  const g = randn(B * L * Co, r);
  // forward equals a Linear on the channels-last transpose
  const Zt = new Float64Array(B * L * Cin);
  for (let bb = 0; bb < B; bb++) {
    for (let c = 0; c < Cin; c++) {
      for (let p = 0; p < L; p++) Zt[(bb * L + p) * Cin + c] = Z[(bb * Cin + c) * L + p];
    }
  }
  const y = conv1x1Forward(Z, B, Cin, L, W, Co, b);
  const yl = linearForward(Zt, B * L, Cin, W, Co, b);
  for (let i = 0; i < y.length; i++) assert.ok(Math.abs(y[i] - yl[i]) < 1e-12);
  for (const withBias of [true, false]) {
    const f = () => dot(g, conv1x1Forward(Z, B, Cin, L, W, Co, withBias ? b : null));
    const bw = conv1x1Backward(Z, B, Cin, L, W, Co, g, withBias);
    const pairs: Array<[string, Arr, ArrayLike<number>]> = [["Z", Z, bw.dx], ["W", W, bw.dW]];
    if (withBias) pairs.push(["bias", b, bw.db!]);
    gradCheck(`conv1x1 ${withBias ? "+bias" : "no bias"}`, f, pairs);
  }
});

Deno.test("grad: 3×3 conv, dilation r = padding r (1 with bias, 2 and 3 without)", () => {
  const r = rng(3);
  const N = 2, h = 5, w = 5, Ci = 3, Co = 2;
  for (const [rate, withBias] of [[1, true], [2, false], [3, false]] as const) {
    const x = randn(N * h * w * Ci, r), W = randn(Co * Ci * 9, r), b = randn(Co, r);
    const g = randn(N * h * w * Co, r);
    const f = () => dot(g, conv3x3Forward(x, N, h, w, Ci, W, Co, withBias ? b : null, rate));
    const bw = conv3x3Backward(x, N, h, w, Ci, W, Co, g, withBias, rate);
    const pairs: Array<[string, Arr, ArrayLike<number>]> = [["x", x, bw.dx], ["W", W, bw.dW]];
    if (withBias) pairs.push(["bias", b, bw.db!]);
    gradCheck(`conv3x3 r=${rate}${withBias ? " +bias" : ""}`, f, pairs);
  }
});

// ---------------------------------------------------------------- norms

Deno.test("grad: BatchNorm2d in training mode (batch statistics) and eval mode", () => {
  const r = rng(4);
  const M = 7, C = 3;
  const x = randn(M * C, r, 1.5, 0.3), gm = randn(C, r, 0.3, 1), bt = randn(C, r, 0.2);
  const rm = randn(C, r, 0.1), rv = mapVec(randn(C, r, 0.2, 1), Math.abs);
  const g = randn(M * C, r);
  for (const training of [true, false]) {
    const run = training ? null : { mean: rm, var: rv };
    const f = () => dot(g, batchNormForward(x, M, C, gm, bt, run).y);
    const out = batchNormForward(x, M, C, gm, bt, run);
    const bw = batchNormBackward(out, C, gm, g);
    gradCheck(`batchnorm ${training ? "train" : "eval"}`, f, [
      ["x", x, bw.dx],
      ["weight", gm, bw.dGamma],
      ["bias", bt, bw.dBeta],
    ]);
  }
});

Deno.test("batchnorm: running-stat update = PyTorch (momentum 0.1, unbiased variance)", () => {
  const r = rng(5);
  const M = 9, C = 2;
  const x = randn(M * C, r, 2, 1);
  const out = batchNormForward(x, M, C, [1, 1], [0, 0], null);
  let mean: ArrayLike<number> = [0, 0], vr: ArrayLike<number> = [1, 1]; // PyTorch initial buffers
  for (let step = 1; step <= 30; step++) {
    const up = batchNormRunningUpdate(mean, vr, out);
    mean = up.mean;
    vr = up.var;
    for (let c = 0; c < C; c++) {
      // independent two-pass statistics of channel c, unbiased (÷ (M − 1))
      const col = Array.from({ length: M }, (_, i) => x[i * C + c]);
      const mu = col.reduce((a, b) => a + b, 0) / M;
      const unb = col.reduce((a, b) => a + (b - mu) ** 2, 0) / (M - 1);
      // closed form after `step` updates from (0, 1): stat + (init − stat)·0.9^step
      const em = mu + (0 - mu) * 0.9 ** step, ev = unb + (1 - unb) * 0.9 ** step;
      assert.ok(Math.abs(mean[c] - em) < 1e-12, `running_mean step ${step}: ${mean[c]} vs ${em}`);
      assert.ok(Math.abs(vr[c] - ev) < 1e-12, `running_var step ${step}: ${vr[c]} vs ${ev}`);
    }
  }
  // the normalisation itself uses the biased variance
  for (let c = 0; c < C; c++) {
    const col = Array.from({ length: M }, (_, i) => x[i * C + c]);
    const mu = col.reduce((a, b) => a + b, 0) / M;
    const biased = col.reduce((a, b) => a + (b - mu) ** 2, 0) / M;
    assert.ok(Math.abs(out.var[c] - biased) < 1e-12);
    assert.ok(Math.abs(out.rstd[c] - 1 / Math.sqrt(biased + 1e-5)) < 1e-12);
  }
  const evalOut = batchNormForward(x, M, C, [1, 1], [0, 0], { mean: [0, 0], var: [1, 1] });
  assert.throws(() => batchNormRunningUpdate([0, 0], [1, 1], evalOut), /training mode/);
  assert.throws(() => batchNormForward([1, 2], 1, 2, [1, 1], [0, 0], null), /more than 1 value/);
});

Deno.test("grad: RMSNorm, LayerNorm, fused add + RMSNorm stream", () => {
  const r = rng(6);
  const rows = 4, d = 5;
  const x = randn(rows * d, r, 1, 0.2), wt = randn(d, r, 0.3, 1), bs = randn(d, r, 0.2);
  const g = randn(rows * d, r), g2 = randn(rows * d, r);
  {
    const out = rmsNormForward(x, rows, d, wt);
    const bw = rmsNormBackward(x, rows, d, wt, out.rstd, g);
    gradCheck("rmsnorm", () => dot(g, rmsNormForward(x, rows, d, wt).y), [
      ["x", x, bw.dx],
      ["weight", wt, bw.dWeight],
    ]);
  }
  {
    const out = layerNormForward(x, rows, d, wt, bs);
    const bw = layerNormBackward(out, rows, d, wt, g);
    gradCheck("layernorm", () => dot(g, layerNormForward(x, rows, d, wt, bs).y), [
      ["x", x, bw.dx],
      ["weight", wt, bw.dWeight],
      ["bias", bs, bw.dBias],
    ]);
  }
  // fused add + RMSNorm: both outputs (normed tokens and new stream) feed the objective
  const st = randn(rows * d, r);
  for (const withStream of [true, false]) {
    const s = withStream ? st : null;
    const f = () => {
      const o = addRmsNormForward(x, s, rows, d, wt);
      return dot(g, o.y) + dot(g2, o.stream);
    };
    const out = addRmsNormForward(x, s, rows, d, wt);
    if (!withStream) assert.deepEqual(Array.from(out.stream), Array.from(x));
    const bw = addRmsNormBackward(out, withStream, rows, d, wt, g, g2);
    const pairs: Array<[string, Arr, ArrayLike<number>]> = [
      ["h", x, bw.dh],
      ["weight", wt, bw.dWeight],
    ];
    if (withStream) pairs.push(["stream", st, bw.dStreamIn!]);
    else assert.equal(bw.dStreamIn, null);
    gradCheck(`add+rmsnorm ${withStream ? "(stream)" : "(first block)"}`, f, pairs);
  }
});

// ---------------------------------------------------------------- activations

Deno.test("grad: ReLU, SiLU, softplus (both sides of threshold 20), sigmoid", () => {
  const r = rng(7);
  const n = 12;
  const g = randn(n, r);
  // ReLU: keep the values away from the kink at 0
  const xr = mapVec(randn(n, r), (v) => (Math.abs(v) < 0.05 ? v + 0.2 : v));
  gradCheck("relu", () => dot(g, mapVec(xr, relu)), [[
    "x",
    xr,
    pointwiseBackward(xr, g, reluGrad),
  ]]);
  const xs = randn(n, r, 3);
  gradCheck("silu", () => dot(g, mapVec(xs, silu)), [[
    "x",
    xs,
    pointwiseBackward(xs, g, siluGrad),
  ]]);
  const xp = randn(n, r, 4);
  for (let i = 0; i < 4; i++) xp[i] = 21 + i; // above the torch threshold: softplus(x) = x
  for (let i = 4; i < 7; i++) xp[i] = 13.5 + i; // just below it (17.5, 18.5, 19.5)
  gradCheck("softplus", () => dot(g, mapVec(xp, softplus)), [[
    "x",
    xp,
    pointwiseBackward(xp, g, softplusGrad),
  ]]);
  assert.equal(softplus(25), 25);
  assert.ok(Math.abs(softplus(-3) - Math.log1p(Math.exp(-3))) < 1e-15);
  const xg = randn(n, r, 4);
  gradCheck("sigmoid", () => dot(g, sigmoidForward(xg)), [[
    "x",
    xg,
    sigmoidBackward(sigmoidForward(xg), g),
  ]]);
  assert.ok(Number.isFinite(sigmoid(-800)) && sigmoid(-800) === 0 && sigmoid(800) === 1);
});

// ---------------------------------------------------------------- Mamba

const MD: HeadDims = {
  C: 4,
  d: 4,
  dInner: 6,
  dtRank: 2,
  dState: 3,
  dConv: 4,
  nBranch: 1,
  nScan: 4,
  depth: 1,
  nHeads: 4,
  h: 3,
  w: 3,
  H: 24,
  W: 24,
};

function randomMixer(r: () => number, dims: HeadDims): MixerWeights {
  const { d, dInner: di, dtRank: R, dState: ns, dConv: kc } = dims;
  const f = (n: number, s: number, o = 0) => Float32Array.from(randn(n, r, s, o));
  const aLog = new Float32Array(di * ns);
  for (let c = 0; c < di; c++) {
    for (let n = 0; n < ns; n++) aLog[c * ns + n] = Math.log(n + 1) + 0.2 * r();
  }
  return {
    inProj: f(2 * di * d, 0.6),
    conv1dW: f(di * kc, 0.5),
    conv1dB: f(di, 0.1),
    xProj: f((R + 2 * ns) * di, 0.5),
    dtProjW: f(di * R, 0.7),
    dtProjB: f(di, 0.5, -1),
    aLog,
    D: f(di, 0.3, 1),
    outProj: f(d * di, 0.6),
  };
}

Deno.test("grad: causal depthwise conv1d (k = 4, left pad 3, bias)", () => {
  const r = rng(8);
  const N = 2, Ls = 6, C = 3, k = 4;
  const x = randn(N * Ls * C, r), w = randn(C * k, r), b = randn(C, r), g = randn(N * Ls * C, r);
  // causality: output t never sees inputs after t
  const y0 = causalConv1dForward(x, N, Ls, C, w, b, k);
  const x2 = x.slice();
  x2[(0 * Ls + 3) * C + 1] += 5;
  const y1 = causalConv1dForward(x2, N, Ls, C, w, b, k);
  for (let t = 0; t < 3; t++) assert.equal(y1[(0 * Ls + t) * C + 1], y0[(0 * Ls + t) * C + 1]);
  const bw = causalConv1dBackward(x, N, Ls, C, w, k, g);
  gradCheck("causal conv1d", () => dot(g, causalConv1dForward(x, N, Ls, C, w, b, k)), [
    ["x", x, bw.dx],
    ["weight", w, bw.dw],
    ["bias", b, bw.db],
  ]);
});

Deno.test("grad: selective scan (u, Δ pre-softplus, dt bias, A_log, B, C, D) and the gate", () => {
  const r = rng(9);
  const N = 2, Ls = 7, di = 3, ns = 4;
  const u = randn(N * Ls * di, r), delta = randn(N * Ls * di, r, 0.8);
  const B = randn(N * Ls * ns, r), C = randn(N * Ls * ns, r);
  const aLog = new Float64Array(di * ns);
  for (let c = 0; c < di; c++) {
    for (let n = 0; n < ns; n++) aLog[c * ns + n] = Math.log(n + 1) + 0.3 * r();
  }
  const D = randn(di, r, 0.3, 1), dtBias = randn(di, r, 0.5, -0.5);
  const g = randn(N * Ls * di, r);
  const s = { u, delta, B, C, aLog, D, dtBias };
  const bw = selectiveScanBackward(s, N, Ls, di, ns, g);
  gradCheck("selective scan", () => dot(g, selectiveScanForward(s, N, Ls, di, ns)), [
    ["u", u, bw.u],
    ["delta", delta, bw.delta],
    ["dt bias", dtBias, bw.dtBias],
    ["A_log", aLog, bw.aLog],
    ["B", B, bw.B],
    ["C", C, bw.C],
    ["D", D, bw.D],
  ]);
  const z = randn(N * Ls * di, r, 2);
  const y = selectiveScanForward(s, N, Ls, di, ns);
  const gb = gateBackward(y, z, g);
  gradCheck("gate y·SiLU(z)", () => dot(g, gateForward(y, z)), [["y", y, gb.dy], ["z", z, gb.dz]]);
});

Deno.test("grad: whole Mamba mixer (input and all 9 weights)", () => {
  const r = rng(10);
  const N = 2, Ls = 5;
  const m = randomMixer(r, MD);
  const x = randn(N * Ls * MD.d, r);
  const g = randn(N * Ls * MD.d, r);
  const f = () => dot(g, mixerForward(x, N, Ls, m, MD).out);
  const { cache } = mixerForward(x, N, Ls, m, MD);
  const bw = mixerBackward(cache, m, MD, g);
  const pairs: Array<[string, Arr, ArrayLike<number>]> = [["x", x, bw.dx]];
  for (const k of Object.keys(m) as Array<keyof MixerWeights>) pairs.push([k, m[k], bw.grads[k]]);
  gradCheck("mamba mixer", f, pairs);
});

// ---------------------------------------------------------------- navigation, upsampling

Deno.test("grad: scan-order permutations, gather / scatter of navigated tokens", () => {
  const r = rng(11);
  const B = 2, h = 3, w = 3, L = 9, d = 2;
  const perms = scanPermutations(h, w, 4);
  const E = randn(B * L * d, r), g = randn(4 * B * L * d, r);
  gradCheck("toScanOrder", () => dot(g, toScanOrder(E, B, L, d, perms)), [[
    "E",
    E,
    toScanOrderBackward(g, B, L, d, perms),
  ]]);
  const seq = randn(4 * B * L * d, r);
  // fromScanOrder inverts toScanOrder per scan
  const back = fromScanOrder(toScanOrder(E, B, L, d, perms), B, L, d, perms);
  for (let s = 0; s < 4; s++) {
    for (let i = 0; i < B * L * d; i++) assert.equal(back[s * B * L * d + i], E[i]);
  }
  gradCheck("fromScanOrder", () => dot(g, fromScanOrder(seq, B, L, d, perms)), [[
    "seq",
    seq,
    fromScanOrderBackward(g, B, L, d, perms),
  ]]);
  const mask = new Uint8Array(B * L).fill(1);
  for (const p of [1, 4, 8]) mask[p] = 0;
  for (const p of [0, 5, 6]) mask[L + p] = 0;
  const nav = navigationIndex(mask, B, h, w, 4);
  const N = 4 * B, Ls = nav.Ls;
  const x = randn(N * L * d, r), gg = randn(N * Ls * d, r);
  gradCheck("gather", () => dot(gg, gatherTokens(x, N, L, d, nav.gather, Ls)), [[
    "x",
    x,
    gatherTokensBackward(gg, N, L, d, nav.gather, Ls),
  ]]);
  const vals = randn(N * Ls * d, r), gs = randn(N * L * d, r);
  const sb = scatterTokensBackward(gs, N, L, d, nav.gather, Ls);
  gradCheck("scatter", () => dot(gs, scatterTokens(x, vals, N, L, d, nav.gather, Ls)), [
    ["base", x, sb.dBase],
    ["vals", vals, sb.dVals],
  ]);
});

Deno.test("grad: bilinear upsampling, align_corners = true (forward = lib/maps resizeBilinear)", () => {
  const r = rng(12);
  const n = 2, h = 3, w = 4, H = 7, W = 9;
  const x = randn(n * h * w, r), g = randn(n * H * W, r);
  const y = upsampleBilinearForward(x, n, h, w, H, W);
  for (let m = 0; m < n; m++) {
    const ref = resizeBilinear(
      Float32Array.from(x.subarray(m * h * w, (m + 1) * h * w)),
      h,
      w,
      H,
      W,
      true,
    );
    for (let i = 0; i < H * W; i++) assert.ok(Math.abs(y[m * H * W + i] - ref[i]) < 1e-5);
  }
  gradCheck("bilinear upsample", () => dot(g, upsampleBilinearForward(x, n, h, w, H, W)), [[
    "x",
    x,
    upsampleBilinearBackward(g, n, h, w, H, W),
  ]]);
});

// ---------------------------------------------------------------- losses

Deno.test("grad: focal losses (logits; probability form) and the SNARM loss", () => {
  const r = rng(13);
  const n = 20;
  const x = randn(n, r, 3);
  const t = new Float64Array(n);
  for (let i = 0; i < n; i++) t[i] = i % 4 === 0 ? 1 : i % 4 === 1 ? 0.37 : 0; // binary + soft
  const fl = focalLossLogits(x, t);
  gradCheck("focal (logits)", () => focalLossLogits(x, t).loss, [["logits", x, fl.grad]]);
  const p = mapVec(randn(n, r, 2), sigmoid);
  const fp = focalLossProb(p, t);
  gradCheck("focal (prob)", () => focalLossProb(p, t).loss, [["p", p, fp.grad]]);
  // the two forms agree on p = sigmoid(x), and γ = 0 without α is plain BCE
  assert.ok(Math.abs(focalLossProb(mapVec(x, sigmoid), t).loss - fl.loss) < 1e-12);
  let bce = 0;
  for (let i = 0; i < n; i++) {
    const q = sigmoid(x[i]);
    bce -= t[i] * Math.log(q) + (1 - t[i]) * Math.log(1 - q);
  }
  assert.ok(Math.abs(focalLossLogits(x, t, { alpha: -1, gamma: 0 }).loss - bce / n) < 1e-12);
  // per element: α_t·ce·(1 − p_t)^γ with α = 0.25, γ = 2
  const q0 = sigmoid(x[0]), q2 = sigmoid(x[2]);
  const e0 = 0.25 * -Math.log(q0) * (1 - q0) ** 2, e2 = 0.75 * -Math.log(1 - q2) * q2 ** 2;
  assert.ok(Math.abs(focalLossLogits([x[0], x[2]], [1, 0]).loss - (e0 + e2) / 2) < 1e-12);
  // SNARM loss = mean over heads + 0.5 · unary term; gradients
  const nHeads = 3, BL = 8;
  const lg = randn(nHeads * BL, r, 2), u = mapVec(randn(BL, r), sigmoid);
  const tt = t.subarray(0, BL);
  const sl = snarmLoss(lg, u, tt, nHeads);
  let mh = 0;
  for (let j = 0; j < nHeads; j++) {
    mh += focalLossLogits(lg.subarray(j * BL, (j + 1) * BL), tt).loss;
  }
  assert.ok(Math.abs(sl.headLoss - mh / nHeads) < 1e-12);
  assert.ok(Math.abs(sl.loss - (mh / nHeads + 0.5 * focalLossProb(u, tt).loss)) < 1e-12);
  gradCheck("snarm loss", () => snarmLoss(lg, u, tt, nHeads).loss, [
    ["logits", lg, sl.dLogits],
    ["unary", u, sl.dUnary],
  ]);
  assert.throws(() => focalLossLogits([0], [1.5]), /not in \[0, 1\]/);
  assert.throws(() => focalLossProb([1.2], [1]), /not in \[0, 1\]/);
  assert.throws(() => snarmLoss(lg, u, tt, nHeads + 1), /nHeads/);
});

Deno.test("loss: grid target = area average of the mask over each patch footprint", () => {
  // integer footprint: 12×12 mask → 6×6 grid, each cell = mean of a 2×2 block
  const H = 12, W = 12, B = 2;
  const mask = new Float64Array(B * H * W);
  const r = rng(14);
  for (let i = 0; i < mask.length; i++) mask[i] = r() > 0.8 ? 1 : 0;
  const t = gridTarget(mask, B, H, W, 6, 6);
  for (let b = 0; b < B; b++) {
    for (let y = 0; y < 6; y++) {
      for (let x = 0; x < 6; x++) {
        let s = 0;
        for (let dy = 0; dy < 2; dy++) {
          for (let dx = 0; dx < 2; dx++) s += mask[(b * H + 2 * y + dy) * W + 2 * x + dx];
        }
        assert.ok(Math.abs(t[(b * 6 + y) * 6 + x] - s / 4) < 1e-12);
      }
    }
  }
  // fractional footprint (10 px → 4 cells of 2.5 px): equals the block mean of the 2× nearest
  // supersampled mask (20 px → 4 cells of exactly 5 subpixels)
  const m2 = new Float64Array(10 * 10);
  for (let i = 0; i < m2.length; i++) m2[i] = r() > 0.6 ? 1 : 0;
  const t2 = gridTarget(m2, 1, 10, 10, 4, 4);
  for (let y = 0; y < 4; y++) {
    for (let x = 0; x < 4; x++) {
      let s = 0;
      for (let Y = 5 * y; Y < 5 * y + 5; Y++) {
        for (let X = 5 * x; X < 5 * x + 5; X++) s += m2[(Y >> 1) * 10 + (X >> 1)];
      }
      assert.ok(Math.abs(t2[y * 4 + x] - s / 25) < 1e-12, `cell ${y},${x}`);
    }
  }
  assert.throws(() => gridTarget(new Float64Array(4).fill(255), 1, 2, 2, 1, 1), /binarise/);
  assert.throws(() => gridTarget(new Float64Array(5), 1, 2, 2, 1, 1), /expected/);
});

// ---------------------------------------------------------------- whole head

const TINY_CFG = parseHeadConfig({
  image_size: [3, 48, 48],
  stride: 8,
  in_chans: 8,
  embed_dim: 4,
  depth: 2,
  scan: 4,
  self_ratio: 0.75,
  scale_list: [1, 2],
  residual_method: "concat_abs_square",
});

/** Random official-format weights (built through the validating loader). */
function randomHeadWeights(seed: number): HeadWeights {
  const r = rng(seed);
  const tensors = new Map<string, Tensor>();
  for (const s of weightSpecs(TINY_CFG)) {
    if (s.dtype === "I64") continue;
    const n = s.shape.reduce((a, b) => a * b, 1);
    const fanIn = s.shape.length > 1 ? n / s.shape[0] : 1;
    let v: Float64Array;
    const nm = s.name;
    if (nm.endsWith("A_log")) {
      const ns = s.shape[1];
      v = new Float64Array(n);
      for (let i = 0; i < n; i++) v[i] = Math.log((i % ns) + 1) + 0.2 * r();
    } else if (nm.endsWith("mixer.D")) v = randn(n, r, 0.3, 1);
    else if (nm.endsWith("dt_proj.bias")) v = randn(n, r, 0.5, -1);
    else if (nm.endsWith("running_var")) v = mapVec(randn(n, r, 0.3, 1), Math.abs);
    else if (nm.endsWith("running_mean")) v = randn(n, r, 0.1);
    else if (/norm(_list)?\..*weight$|norm\.weight$/.test(nm)) v = randn(n, r, 0.2, 1);
    else if (nm.endsWith(".bias")) v = randn(n, r, 0.1);
    else if (nm.endsWith("out_proj.weight")) v = randn(n, r, 2 / Math.sqrt(fanIn));
    else v = randn(n, r, 1 / Math.sqrt(fanIn));
    tensors.set(s.name, { dtype: "F32", shape: s.shape, data: Float32Array.from(v) });
  }
  const st: SafeTensors = { tensors, metadata: {} };
  return headWeightsFromSafeTensors(st, TINY_CFG, "random tiny weights");
}

interface TinyBatch {
  Z: Float32Array;
  refMask: Uint8Array;
  target: Float64Array;
  B: number;
  h: number;
  w: number;
}

function tinyBatch(seed: number): TinyBatch {
  const r = rng(seed);
  const B = 2, h = 6, w = 6, L = 36, Cin = TINY_CFG.in_chans;
  const Z = Float32Array.from(mapVec(randn(B * Cin * L, r, 0.8), Math.abs));
  const K = 27; // round(0.75·36)
  const refMask = new Uint8Array(B * L);
  for (let b = 0; b < B; b++) {
    const order = Array.from({ length: L }, (_, i) => [r(), i]).sort((a, c) => a[0] - c[0]);
    for (let k = 0; k < K; k++) refMask[b * L + order[k][1]] = 1;
  }
  // a rectangular defect (not aligned to the 8-px patches) in each 48×48 mask → soft targets
  const H = 48, W = 48;
  const mask = new Float64Array(B * H * W);
  for (let b = 0; b < B; b++) {
    for (let y = 5 + 7 * b; y < 22 + 7 * b; y++) {
      for (let x = 11; x < 30; x++) mask[(b * H + y) * W + x] = 1;
    }
  }
  return { Z, refMask, target: gridTarget(mask, B, H, W, h, w), B, h, w };
}

Deno.test("whole head: training forward (eval BatchNorm) equals the official tiny fixture", async () => {
  const FIX = new URL("../../shared/fixtures/snarm_official/tiny/", import.meta.url);
  const io = await readSafeTensors(new URL("io.safetensors", FIX));
  const weights = await loadHeadWeights(new URL("weights.safetensors", FIX));
  const t = (n: string) => io.tensors.get(n)!.data as Float32Array;
  const [B, , h, w] = io.tensors.get("X")!.shape;
  const Z = fixtureZ(io); // [P(r) ‖ S_enc], as tests/model_test.ts
  const refMask = Uint8Array.from(t("ref_mask"));
  const fw = headTrainForwardRef(weights, Z, refMask, B, h, w, { batchNorm: "eval" });
  const want = t("head_logits"), wantU = t("unary");
  let e = 0, eu = 0;
  for (let i = 0; i < want.length; i++) e = Math.max(e, Math.abs(fw.logits[i] - want[i]));
  for (let i = 0; i < wantU.length; i++) eu = Math.max(eu, Math.abs(fw.unary[i] - wantU[i]));
  console.log(
    `  tiny fixture: max |logit err| ${e.toExponential(2)}, max |u err| ${eu.toExponential(2)}`,
  );
  assert.ok(e < 1e-4, `head logits vs official: ${e}`);
  assert.ok(eu < 1e-5, `unary vs official: ${eu}`);
  assert.equal(fw.runningStats.size, 0);
});

Deno.test("whole head: eval-mode forward = headForwardRef, unary = navigatorMaps", () => {
  const weights = randomHeadWeights(21);
  const { Z, refMask, B, h, w } = tinyBatch(22);
  const L = h * w, C = weights.dims.C;
  const fw = headTrainForwardRef(weights, Z, refMask, B, h, w, { batchNorm: "eval" });
  const ref = headForwardRef(weights, Z, refMask, B, h, w);
  for (let i = 0; i < ref.length; i++) {
    assert.ok(Math.abs(fw.logits[i] - ref[i]) < 1e-4 * (1 + Math.abs(ref[i])), `logit ${i}`);
  }
  const R = new Float32Array(B * C * L);
  for (let b = 0; b < B; b++) R.set(Z.subarray(b * 2 * C * L, (b * 2 + 1) * C * L), b * C * L);
  const nm = navigatorMaps(R, B, C, L, weights.unaryW, weights.unaryB[0]);
  for (let i = 0; i < B * L; i++) assert.ok(Math.abs(fw.unary[i] - nm.unary[i]) < 1e-6);
});

function wholeHeadCheck(opts: { dropout?: { p: number; seed: number } }, label: string): void {
  const weights = randomHeadWeights(31);
  const { Z, refMask, target, B, h, w } = tinyBatch(32);
  const res = headForwardBackwardRef(weights, Z, refMask, B, h, w, target, opts);
  const params = headParameters(weights);
  // every trainable official tensor has a gradient of its size, and nothing else
  const trainable = weightSpecs(TINY_CFG).filter((s) =>
    s.dtype === "F32" && !/running_(mean|var)$/.test(s.name)
  );
  assert.deepEqual([...params.keys()], trainable.map((s) => s.name));
  assert.deepEqual([...res.grads.keys()].sort(), trainable.map((s) => s.name).sort());
  for (const [n, p] of params) assert.equal(res.grads.get(n)!.length, p.length, n);
  assert.ok(
    Math.abs(res.loss - headLossRef(weights, Z, refMask, B, h, w, target, opts).loss) < 1e-15,
  );
  assert.ok(res.headLoss > 0 && res.unaryLoss > 0);
  const f = () => headLossRef(weights, Z, refMask, B, h, w, target, opts).loss;
  let gmax = 0;
  for (const g of res.grads.values()) for (const v of g) gmax = Math.max(gmax, Math.abs(v));
  const pick = rng(33);
  let worst = 0, worstName = "";
  const perKind = new Map<string, number>();
  for (const [name, p] of params) {
    const n = p.length;
    const idx = new Set<number>();
    while (idx.size < Math.min(4, n)) idx.add(Math.floor(Math.abs(pick() * 1e6)) % n);
    const e = fdMaxRel(f, p, res.grads.get(name)!, {
      eps: 1e-4,
      idx: [...idx],
      floor: 1e-6 * gmax,
      tol: 1e-5,
    });
    const kind = name.replace(/\.\d+(\.\d+)?\./, ".*.").replace(/^head_list\.\*\./, "head_list.*.");
    perKind.set(kind, Math.max(perKind.get(kind) ?? 0, e));
    if (e > worst) [worst, worstName] = [e, name];
  }
  for (const [k, e] of perKind) {
    REPORT.push([`whole head ${label} / ${k}`, e]);
    console.log(`  whole head ${label} / ${k}: max rel err ${e.toExponential(2)}`);
  }
  assert.ok(worst <= 1e-5, `whole head ${label}: worst ${worstName} rel err ${worst}`);
}

Deno.test("whole head: gradient of every parameter tensor vs finite differences (train BN)", () => {
  wholeHeadCheck({}, "(train BN)");
});

Deno.test("whole head: gradients with dropout p = 0.1 before the final LayerNorm", () => {
  wholeHeadCheck({ dropout: { p: 0.1, seed: 5 } }, "(dropout)");
});

Deno.test("whole head: running stats, refMask carries no gradient, bad inputs", () => {
  const weights = randomHeadWeights(41);
  const { Z, refMask, target, B, h, w } = tinyBatch(42);
  const res = headForwardBackwardRef(weights, Z, refMask, B, h, w, target);
  assert.equal(res.runningStats.size, 2 * weights.dims.nHeads);
  for (let j = 0; j < weights.dims.nHeads; j++) {
    const m = res.runningStats.get(`head_list.${j}.0.norm.running_mean`)!;
    assert.equal(m.length, weights.dims.d);
    for (let k = 0; k < m.length; k++) {
      assert.notEqual(m[k], weights.heads[j].bnMean[k]); // updated
    }
  }
  // unary predictor gradient comes only from its own loss term: zero with unaryWeight 0
  const r0 = headForwardBackwardRef(weights, Z, refMask, B, h, w, target, {
    loss: { unaryWeight: 0 },
  });
  assert.ok(r0.grads.get("simple_predictor.weight")!.every((v) => v === 0));
  assert.ok(r0.grads.get("simple_predictor.bias")!.every((v) => v === 0));
  // ... and the head gradients do not depend on the unary term
  const a = r0.grads.get("conv_list.0.weight")!, b = res.grads.get("conv_list.0.weight")!;
  for (let i = 0; i < a.length; i++) assert.equal(a[i], b[i]);
  assert.throws(
    () => headForwardBackwardRef(weights, Z, refMask, B, h, w, target.subarray(1)),
    /target/,
  );
  const bad = refMask.slice();
  bad[bad.indexOf(1)] = 0;
  assert.throws(() => headForwardBackwardRef(weights, Z, bad, B, h, w, target), /suspicious/);
  assert.throws(
    () => headForwardBackwardRef(weights, Z.subarray(1), refMask, B, h, w, target),
    /Z:/,
  );
});

// ---------------------------------------------------------------- AdamW and schedule

Deno.test("adamw: two steps equal the hand-computed PyTorch AdamW update", () => {
  const lr = 0.1, wd = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  const p = new Float64Array([0.5, -1.0]), bias = new Float64Array([0.2]);
  const params = new Map<string, Float64Array>([["lin.weight", p], ["lin.bias", bias]]);
  const opt = new AdamW(params, { lr, weightDecay: wd });
  const g1 = [0.3, -0.2], g2 = [-0.1, 0.4], gb1 = [0.5], gb2 = [0.25];
  opt.step(new Map([["lin.weight", g1], ["lin.bias", gb1]]));
  opt.step(new Map([["lin.weight", g2], ["lin.bias", gb2]]));
  // by hand: step 1 (m̂ = g, v̂ = g²), step 2 with m = 0.9·0.1·g1 + 0.1·g2, v = …
  const hand = (th0: number, ga: number, gb: number, decay: boolean) => {
    const dk = decay ? 1 - lr * wd : 1;
    let th = th0 * dk;
    let m = (1 - b1) * ga, v = (1 - b2) * ga * ga;
    th -= (lr / (1 - b1)) * m / (Math.sqrt(v) / Math.sqrt(1 - b2) + eps);
    th *= dk;
    m = b1 * m + (1 - b1) * gb;
    v = b2 * v + (1 - b2) * gb * gb;
    th -= (lr / (1 - b1 ** 2)) * m / (Math.sqrt(v) / Math.sqrt(1 - b2 ** 2) + eps);
    return th;
  };
  // numbers: θ = 0.5 → 0.5·0.999 − 0.1 = 0.3995 → 0.3995·0.999 − 0.1·(0.017/0.19)/(√(…)) …
  assert.ok(Math.abs(p[0] - hand(0.5, 0.3, -0.1, true)) < 1e-12);
  assert.ok(Math.abs(p[1] - hand(-1.0, -0.2, 0.4, true)) < 1e-12);
  assert.ok(Math.abs(bias[0] - hand(0.2, 0.5, 0.25, false)) < 1e-12); // bias: no weight decay
  // step 1 alone moves each weight by ≈ lr·sign(g) after decay
  const q = new Float64Array([0.5]);
  new AdamW(new Map([["w", q]]), { lr, weightDecay: wd }).step(new Map([["w", [0.3]]]));
  assert.ok(Math.abs(q[0] - (0.5 * (1 - lr * wd) - lr * 0.3 / (0.3 + eps))) < 1e-12);
  assert.equal(opt.t, 2);
  assert.throws(() => opt.step(new Map([["nope", [1]]])), /unknown parameter/);
  assert.throws(() => opt.step(new Map([["lin.bias", [NaN]]])), /non-finite/);
});

Deno.test("adamw: no-weight-decay set over the official names", () => {
  const names = weightSpecs(TINY_CFG).map((s) => s.name);
  const nd = names.filter(isNoWeightDecay);
  for (const n of nd) {
    assert.ok(/\.bias$|A_log$|mixer\.D$|norm/.test(n), n);
  }
  for (const n of names.filter((x) => !isNoWeightDecay(x))) {
    assert.ok(/\.weight$/.test(n) && !/norm/.test(n), `${n} should decay`);
  }
  for (
    const n of [
      "mamba_list.0.1.mixer.A_log",
      "mamba_list.1.0.mixer.D",
      "mamba_list.0.0.norm.weight",
      "norm_list.1.weight",
      "norm_list.1.bias",
      "head_list.3.0.norm.weight",
      "head_list.3.1.bias",
      "simple_predictor.bias",
      "mamba_list.0.0.mixer.dt_proj.bias",
    ]
  ) assert.ok(isNoWeightDecay(n), n);
  for (
    const n of [
      "mamba_list.0.0.mixer.in_proj.weight",
      "mamba_list.0.0.mixer.dt_proj.weight",
      "mamba_list.0.0.conv.weight",
      "conv_list.0.weight",
      "head_list.0.0.conv.weight",
      "head_list.0.1.weight",
      "simple_predictor.weight",
    ]
  ) assert.ok(!isNoWeightDecay(n), n);
});

Deno.test("lr schedule: warm-up linspace then cosine (Dinomaly WarmCosineScheduler)", () => {
  const o = { baseLr: 1e-3, finalLr: 1e-5, totalSteps: 100, warmupSteps: 10, warmupStartLr: 0 };
  assert.equal(warmCosineLr(0, o), 0);
  assert.ok(Math.abs(warmCosineLr(9, o) - 1e-3) < 1e-18); // linspace includes its end
  assert.ok(Math.abs(warmCosineLr(4, o) - 1e-3 * 4 / 9) < 1e-18);
  assert.ok(Math.abs(warmCosineLr(10, o) - 1e-3) < 1e-18); // cosine i = 0
  const i = 45 - 10, n = 90;
  assert.ok(
    Math.abs(warmCosineLr(45, o) - (1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + Math.cos(Math.PI * i / n)))) <
      1e-18,
  );
  assert.equal(warmCosineLr(100, o), 1e-5);
  assert.equal(warmCosineLr(5000, o), 1e-5);
  for (let s = 11; s < 100; s++) assert.ok(warmCosineLr(s, o) < warmCosineLr(s - 1, o));
  assert.ok(warmCosineLr(99, o) > 1e-5);
  assert.equal(warmCosineLr(0, { baseLr: 1, finalLr: 0, totalSteps: 4 }), 1);
  assert.throws(() => warmCosineLr(-1, o), /step/);
  assert.throws(() => warmCosineLr(0, { ...o, warmupSteps: 200 }), /warmupSteps/);
});

Deno.test("grad check summary", () => {
  const worst = REPORT.reduce((a, b) => (b[1] > a[1] ? b : a), ["", 0] as [string, number]);
  console.log(
    `  ${REPORT.length} gradient checks; worst ${worst[0]}: ${worst[1].toExponential(2)}; ` +
      `${retries} entries retried with a 10× smaller step`,
  );
});

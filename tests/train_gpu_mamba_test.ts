/**
 * Tests of the Mamba training kernels (lib/train/gpu/mamba_ops.ts) on the real adapter:
 * causal depthwise conv1d forward/backward and the selective scan forward/backward against the
 * float64 references of lib/ops/mamba.ts, plus directional central finite-difference
 * checks of every gradient with both forward evaluations run by the GPU forward kernel.
 * Operands are strided column slices at non-zero offsets, and written gradients share tensors, to
 * exercise the addressing and the one-binding-per-tensor rule.
 */
import assert from "node:assert/strict";
import { gpuTest, requireGpu } from "./_gpu.ts";
import { KernelSequence, type Tensor } from "../lib/train/gpu/graph.ts";
import {
  recordCausalConv1dBackward,
  recordCausalConv1dForward,
  recordSelectiveScanBackward,
  recordSelectiveScanForward,
  scanBackwardScratch,
} from "../lib/train/gpu/mamba_ops.ts";
import {
  causalConv1dBackward,
  causalConv1dForward,
  selectiveScanBackward,
  selectiveScanForward,
} from "../lib/ops/mamba.ts";

/** Forward tolerance |gpu − ref| ≤ TOL·(1 + |ref|); backward ≤ TOL·max|ref| (f32 vs f64). */
const TOL = 1e-4;
/** Finite-difference step (f32) and the relative tolerance of the directional check. */
const EPS = 1e-2;
const FD_TOL = 2e-3;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function uniform(r: () => number, n: number, lo = -1, hi = 1): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * r();
  return a;
}

/** Place a dense `(rows, width)` matrix at `off` with leading dimension `ld` in `buf`. */
function place(
  buf: Float32Array,
  m: ArrayLike<number>,
  rows: number,
  width: number,
  off: number,
  ld: number,
) {
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < width; c++) buf[off + r * ld + c] = m[r * width + c];
  }
}

function extract(
  buf: Float32Array,
  rows: number,
  width: number,
  off: number,
  ld: number,
): Float64Array {
  const m = new Float64Array(rows * width);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < width; c++) m[r * width + c] = buf[off + r * ld + c];
  }
  return m;
}

function checkForward(what: string, gpu: ArrayLike<number>, ref: ArrayLike<number>): void {
  assert.equal(gpu.length, ref.length, what);
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    const e = Math.abs(gpu[i] - ref[i]) / (1 + Math.abs(ref[i]));
    assert.ok(Number.isFinite(gpu[i]), `${what}[${i}] = ${gpu[i]}`);
    if (e > TOL) assert.fail(`${what}[${i}]: gpu ${gpu[i]} vs ref ${ref[i]}`);
    worst = Math.max(worst, e);
  }
  console.log(`  ${what}: max err/(1+|ref|) ${worst.toExponential(2)}`);
}

function checkGrad(what: string, gpu: ArrayLike<number>, ref: ArrayLike<number>): void {
  assert.equal(gpu.length, ref.length, what);
  let scale = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]));
  assert.ok(scale > 0, `${what}: reference gradient is all zero`);
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    const e = Math.abs(gpu[i] - ref[i]) / scale;
    assert.ok(Number.isFinite(gpu[i]), `${what}[${i}] = ${gpu[i]}`);
    if (e > TOL) assert.fail(`${what}[${i}]: gpu ${gpu[i]} vs ref ${ref[i]} (max |ref| ${scale})`);
    worst = Math.max(worst, e);
  }
  console.log(`  ${what}: max err/max|ref| ${worst.toExponential(2)}`);
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * Directional check: Σ v·grad vs Σ g·(F(x+εv) − F(x−εv))/(2ε), F evaluated by `forward` (GPU)
 * after `set(values)` uploads a perturbed copy of the input.
 */
async function fdCheck(
  what: string,
  x: Float64Array,
  grad: ArrayLike<number>,
  g: ArrayLike<number>,
  r: () => number,
  set: (v: Float64Array) => void,
  forward: () => Promise<Float64Array>,
): Promise<void> {
  const v = uniform(r, x.length);
  const xp = new Float64Array(x.length), xm = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    xp[i] = Math.fround(x[i] + EPS * v[i]);
    xm[i] = Math.fround(x[i] - EPS * v[i]);
  }
  set(xp);
  const fp = dot(g, await forward());
  set(xm);
  const fm = dot(g, await forward());
  set(x);
  let analytic = 0;
  for (let i = 0; i < x.length; i++) analytic += (xp[i] - xm[i]) * grad[i];
  const numeric = fp - fm;
  const rel = Math.abs(analytic - numeric) / Math.max(Math.abs(numeric), Math.abs(analytic), 1e-30);
  console.log(
    `  FD ${what}: directional ${(analytic / (2 * EPS)).toPrecision(7)} vs ` +
      `${(numeric / (2 * EPS)).toPrecision(7)}, rel ${rel.toExponential(2)}`,
  );
  assert.ok(rel <= FD_TOL, `FD ${what}: relative error ${rel} > ${FD_TOL}`);
}

// -------------------------------------------------------------------------------------------
// conv1d

async function conv1dCase(
  nSeq: number,
  Ls: number,
  C: number,
  K: number,
  seed: number,
  fd: boolean,
) {
  const gpu = requireGpu();
  const r = rng(seed);
  const rows = nSeq * Ls;
  const x = uniform(r, rows * C),
    w = uniform(r, C * K),
    b = uniform(r, C),
    dy = uniform(r, rows * C);
  // x at offset 5 with ld C + 4; w and b in one parameter tensor; y, dx strided; dW, dB share one tensor
  const xOff = 5,
    ldx = C + 4,
    yOff = 3,
    ldy = C + 2,
    dyOff = 1,
    lddy = C + 3,
    dxOff = 7,
    lddx = C + 1;
  const wOff = 2, bOff = 2 + C * K + 1, pLen = bOff + C + 2;
  const seq = new KernelSequence(gpu, "conv1d test");
  try {
    const xBuf = new Float32Array(xOff + rows * ldx);
    place(xBuf, x, rows, C, xOff, ldx);
    const pBuf = new Float32Array(pLen);
    place(pBuf, w, 1, C * K, wOff, C * K);
    place(pBuf, b, 1, C, bOff, C);
    const dyBuf = new Float32Array(dyOff + rows * lddy);
    place(dyBuf, dy, rows, C, dyOff, lddy);
    const tx = seq.tensor(xBuf, "x"), tp = seq.tensor(pBuf, "conv params");
    const ty = seq.tensor(yOff + rows * ldy, "y"), tdy = seq.tensor(dyBuf, "dy");
    const tdx = seq.tensor(dxOff + rows * lddx + 2, "dx");
    const tg = seq.tensor(pLen, "conv grads");
    await recordCausalConv1dForward(seq, {
      x: { t: tx, off: xOff },
      ldx,
      nSeq,
      Ls,
      C,
      K,
      w: { t: tp, off: wOff },
      b: { t: tp, off: bOff },
      y: { t: ty, off: yOff },
      ldy,
    });
    const bwd = new KernelSequence(gpu, "conv1d test backward");
    await recordCausalConv1dBackward(bwd, {
      x: { t: tx, off: xOff },
      ldx,
      nSeq,
      Ls,
      C,
      K,
      w: { t: tp, off: wOff },
      dy: { t: tdy, off: dyOff },
      lddy,
      dx: { t: tdx, off: dxOff },
      lddx,
      dW: { t: tg, off: wOff },
      dB: { t: tg, off: bOff },
    });
    await seq.run();
    await bwd.run();
    const forward = async () => extract(await seq.read(ty), rows, C, yOff, ldy);
    checkForward("conv1d y", await forward(), causalConv1dForward(x, nSeq, Ls, C, w, b, K));
    const ref = causalConv1dBackward(x, nSeq, Ls, C, w, K, dy);
    const dx = extract(await seq.read(tdx), rows, C, dxOff, lddx);
    const gBuf = await seq.read(tg);
    const dW = extract(gBuf, 1, C * K, wOff, C * K), dB = extract(gBuf, 1, C, bOff, C);
    checkGrad("conv1d dx", dx, ref.dx);
    checkGrad("conv1d dW", dW, ref.dw);
    checkGrad("conv1d dB", dB, ref.db);
    if (!fd) return;
    const up =
      (t: Tensor, base: Float32Array, off: number, ld: number, n: number, width: number) =>
      (v: Float64Array) => {
        const buf = base.slice();
        place(buf, v, n, width, off, ld);
        seq.upload(t, buf);
      };
    const fwd = async () => {
      await seq.run();
      return await forward();
    };
    await fdCheck("conv1d x", x, dx, dy, r, up(tx, xBuf, xOff, ldx, rows, C), fwd);
    await fdCheck("conv1d w", w, dW, dy, r, up(tp, pBuf, wOff, C * K, 1, C * K), fwd);
    await fdCheck("conv1d b", b, dB, dy, r, up(tp, pBuf, bOff, C, 1, C), fwd);
  } finally {
    seq.destroy();
  }
}

Deno.test({
  name: "train gpu: causal conv1d forward/backward vs reference and finite differences",
  ...gpuTest,
  async fn() {
    await conv1dCase(3, 37, 13, 4, 1, true);
  },
});

Deno.test({
  name: "train gpu: causal conv1d with short sequences (chunks span sequences, K = 3)",
  ...gpuTest,
  async fn() {
    await conv1dCase(41, 5, 11, 3, 2, false);
    await conv1dCase(7, 2, 9, 4, 3, false);
  },
});

// -------------------------------------------------------------------------------------------
// selective scan

async function scanCase(
  nSeq: number,
  Ls: number,
  dI: number,
  S: number,
  seed: number,
  fd: boolean,
) {
  const gpu = requireGpu();
  const r = rng(seed);
  const rows = nSeq * Ls;
  const u = uniform(r, rows * dI);
  const dlt = uniform(r, rows * dI, 0.1, 1.0); // Δ > 0 (after softplus)
  const Bm = uniform(r, rows * S), Cm = uniform(r, rows * S);
  const aLog = new Float64Array(dI * S); // Mamba init A = −(n+1), jittered
  for (let c = 0; c < dI; c++) {
    for (let n = 0; n < S; n++) aLog[c * S + n] = Math.log(n + 1) + 0.3 * (r() - 0.5);
  }
  const D = uniform(r, dI), dy = uniform(r, rows * dI);
  // u and Δ share one "xz"-like tensor; B, C are column slices of an x_proj-like output
  const ldx = 2 * dI + 3, uOff = 2, dOff = 2 + dI + 1;
  const R = 3, ldB = R + 2 * S + 1, bOff = R, cOff = R + S;
  const aOff = 1, DOff = 1 + dI * S + 2, pLen = DOff + dI + 1;
  const yOff = 4, ldy = dI + 2, dyOff = 3, lddy = dI + 5;
  const gLd = 2 * dI + 1, duOff = 1, ddOff = 1 + dI; // du and dΔ share one tensor
  const dbOff = 0, dcOff = S + 2, lddB = 2 * S + 3; // dB and dC share one tensor
  const xzBuf = new Float32Array(rows * ldx + 4);
  place(xzBuf, u, rows, dI, uOff, ldx);
  place(xzBuf, dlt, rows, dI, dOff, ldx);
  const xpBuf = new Float32Array(rows * ldB);
  place(xpBuf, Bm, rows, S, bOff, ldB);
  place(xpBuf, Cm, rows, S, cOff, ldB);
  const pBuf = new Float32Array(pLen);
  place(pBuf, aLog, 1, dI * S, aOff, dI * S);
  place(pBuf, D, 1, dI, DOff, dI);
  const dyBuf = new Float32Array(dyOff + rows * lddy);
  place(dyBuf, dy, rows, dI, dyOff, lddy);

  const seq = new KernelSequence(gpu, "scan test");
  try {
    const txz = seq.tensor(xzBuf, "xz"), txp = seq.tensor(xpBuf, "x_proj out");
    const tp = seq.tensor(pBuf, "scan params"), ty = seq.tensor(yOff + rows * ldy, "y");
    const states = seq.tensor(rows * dI * S, "states"), tdy = seq.tensor(dyBuf, "dy");
    const tduD = seq.tensor(rows * gLd + 1, "du|dΔ"), tdbc = seq.tensor(rows * lddB, "dB|dC");
    const tgp = seq.tensor(pLen, "scan grads");
    const scratch = seq.tensor(scanBackwardScratch(nSeq, Ls, dI, S), "scan scratch");
    const fwdArgs = {
      u: { t: txz, off: uOff },
      ldu: ldx,
      delta: { t: txz, off: dOff },
      lddelta: ldx,
      aLog: { t: tp, off: aOff },
      Bm: { t: txp, off: bOff },
      ldB,
      Cm: { t: txp, off: cOff },
      ldC: ldB,
      D: { t: tp, off: DOff },
      nSeq,
      Ls,
      dI,
      S,
    };
    await recordSelectiveScanForward(seq, { ...fwdArgs, y: { t: ty, off: yOff }, ldy, states });
    const bwd = new KernelSequence(gpu, "scan test backward");
    await recordSelectiveScanBackward(bwd, {
      ...fwdArgs,
      states,
      dy: { t: tdy, off: dyOff },
      lddy,
      du: { t: tduD, off: duOff },
      lddu: gLd,
      dDelta: { t: tduD, off: ddOff },
      lddDelta: gLd,
      dALog: { t: tgp, off: aOff },
      dBm: { t: tdbc, off: dbOff },
      lddB,
      dCm: { t: tdbc, off: dcOff },
      lddC: lddB,
      dD: { t: tgp, off: DOff },
      scratch,
    });
    await seq.run();
    await bwd.run();
    const forward = async () => extract(await seq.read(ty), rows, dI, yOff, ldy);
    // the reference applies softplus(delta + dt bias): feed softplus⁻¹(Δ) with a zero bias
    const pre = dlt.map((d) => Math.log(Math.expm1(d)));
    const inputs = { u, delta: pre, B: Bm, C: Cm, aLog, D, dtBias: new Float64Array(dI) };
    checkForward("scan y", await forward(), selectiveScanForward(inputs, nSeq, Ls, dI, S));
    const ref = selectiveScanBackward(inputs, nSeq, Ls, dI, S, dy);
    const refDDelta = ref.delta.map((g, i) => g / (1 - Math.exp(-dlt[i]))); // ÷ softplus′(pre)
    const gBuf = await seq.read(tduD), bcBuf = await seq.read(tdbc), pgBuf = await seq.read(tgp);
    const grads = {
      u: extract(gBuf, rows, dI, duOff, gLd),
      delta: extract(gBuf, rows, dI, ddOff, gLd),
      B: extract(bcBuf, rows, S, dbOff, lddB),
      C: extract(bcBuf, rows, S, dcOff, lddB),
      aLog: extract(pgBuf, 1, dI * S, aOff, dI * S),
      D: extract(pgBuf, 1, dI, DOff, dI),
    };
    checkGrad("scan du", grads.u, ref.u);
    checkGrad("scan dΔ", grads.delta, refDDelta);
    checkGrad("scan dB", grads.B, ref.B);
    checkGrad("scan dC", grads.C, ref.C);
    checkGrad("scan dA_log", grads.aLog, ref.aLog);
    checkGrad("scan dD", grads.D, ref.D);
    if (!fd) return;
    const up =
      (t: Tensor, base: Float32Array, off: number, ld: number, n: number, width: number) =>
      (v: Float64Array) => {
        const buf = base.slice();
        place(buf, v, n, width, off, ld);
        seq.upload(t, buf);
      };
    const fwd = async () => {
      await seq.run();
      return await forward();
    };
    await fdCheck("scan u", u, grads.u, dy, r, up(txz, xzBuf, uOff, ldx, rows, dI), fwd);
    await fdCheck("scan Δ", dlt, grads.delta, dy, r, up(txz, xzBuf, dOff, ldx, rows, dI), fwd);
    await fdCheck("scan B", Bm, grads.B, dy, r, up(txp, xpBuf, bOff, ldB, rows, S), fwd);
    await fdCheck("scan C", Cm, grads.C, dy, r, up(txp, xpBuf, cOff, ldB, rows, S), fwd);
    await fdCheck(
      "scan A_log",
      aLog,
      grads.aLog,
      dy,
      r,
      up(tp, pBuf, aOff, dI * S, 1, dI * S),
      fwd,
    );
    await fdCheck("scan D", D, grads.D, dy, r, up(tp, pBuf, DOff, dI, 1, dI), fwd);
  } finally {
    seq.destroy();
  }
}

Deno.test({
  name: "train gpu: selective scan forward/backward vs reference and finite differences",
  ...gpuTest,
  async fn() {
    await scanCase(3, 37, 13, 4, 11, true);
  },
});

Deno.test({
  name: "train gpu: selective scan with d_state 16 and 3, two-token sequences",
  ...gpuTest,
  async fn() {
    await scanCase(2, 29, 9, 16, 12, false);
    await scanCase(5, 2, 70, 3, 13, false);
  },
});

Deno.test({
  name: "train gpu: mamba ops reject operands that do not fit",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const seq = new KernelSequence(gpu, "bad args");
    try {
      const t = seq.tensor(100, "small");
      await assert.rejects(
        recordCausalConv1dForward(seq, {
          x: { t },
          ldx: 10,
          nSeq: 2,
          Ls: 6,
          C: 10,
          K: 4,
          w: { t },
          b: { t },
          y: { t, off: 5 },
          ldy: 10,
        }),
        /conv1d x \(small\).*needs 120/,
      );
      await assert.rejects(
        recordSelectiveScanForward(seq, {
          u: { t },
          ldu: 4,
          delta: { t },
          lddelta: 4,
          aLog: { t },
          Bm: { t },
          ldB: 2,
          Cm: { t },
          ldC: 4,
          D: { t },
          nSeq: 1,
          Ls: 5,
          dI: 4,
          S: 4,
          y: { t },
          ldy: 4,
          states: t,
        }),
        /scan B: leading dimension 2 is smaller than the width 4/,
      );
    } finally {
      seq.destroy();
    }
  },
});

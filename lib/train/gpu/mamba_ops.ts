/**
 * WGSL training kernels of the Mamba v1 mixer (spec §6 "Mamba v1 (S6) computation"): the causal
 * depthwise conv1d (step 2, before SiLU) and the selective scan (step 5, without the gate), each
 * as a forward (saving what the backward needs) and a backward writing every gradient.
 *
 * Layout: nSeq sequences of Ls tokens; token (s, t) is row `s·Ls + t`; every token operand is a
 * channels-last row-major f32 matrix addressed by a {@link Ref} (element offset) and a leading
 * dimension (elements between consecutive rows), so operands may be column slices of wider
 * matrices (e.g. B and C inside the x_proj output). Operands may share tensors (even written ones):
 * each distinct tensor is bound once per dispatch.
 *
 * TypeScript references (float64): lib/ops/mamba.ts causalConv1dForward/Backward and
 * selectiveScanForward/Backward (which take delta before dt bias + softplus; these kernels take
 * Δ itself). Tests: tests/train_gpu_mamba_test.ts.
 * @module
 */
import { grid2d, type KernelSequence, type Ref, type Tensor } from "./graph.ts";

/** Largest d_state the scan kernels are generated for (states live in registers). */
export const MAX_D_STATE = 16;
/** Largest conv1d kernel width. */
export const MAX_D_CONV = 8;

// ---------------------------------------------------------------------------------------------
// validation and binding

function dim(what: string, v: number, max = Infinity): void {
  if (!Number.isInteger(v) || v < 1 || v > max) {
    throw new Error(`${what} = ${v}: expected an integer in 1..${max}`);
  }
}

/** Check a strided matrix operand: rows × width elements, leading dimension ld, inside its tensor. */
function mat(what: string, r: Ref, rows: number, width: number, ld: number): number {
  const off = r.off ?? 0;
  if (!Number.isInteger(off) || off < 0) throw new Error(`${what}: offset ${off} is not ≥ 0`);
  if (!Number.isInteger(ld) || ld < width) {
    throw new Error(`${what}: leading dimension ${ld} is smaller than the width ${width}`);
  }
  const end = off + (rows - 1) * ld + width;
  if (end > r.t.length) {
    throw new Error(
      `${what} (${r.t.label}): (${rows} × ${width}, ld ${ld}) at offset ${off} needs ${end} ` +
        `elements, the tensor has ${r.t.length}`,
    );
  }
  return off;
}

function vec(what: string, r: Ref, n: number): number {
  return mat(what, r, 1, n, n);
}

interface Operand {
  /** Template placeholder naming the buffer in the shader. */
  key: string;
  t: Tensor;
  write: boolean;
}

/**
 * Bind each distinct tensor once (WebGPU forbids a writable buffer bound twice): returns the
 * storage declarations for `{{DECLS}}`, the bindings in order and the buffer name per operand.
 */
function bindOperands(ops: Operand[]): {
  template: Record<string, string>;
  bindings: Tensor[];
} {
  const bindings: Tensor[] = [];
  const write: boolean[] = [];
  const template: Record<string, string> = {};
  for (const o of ops) {
    let i = bindings.indexOf(o.t);
    if (i < 0) {
      i = bindings.length;
      bindings.push(o.t);
      write.push(false);
    }
    if (o.write) write[i] = true;
    template[o.key] = `buf${i}`;
  }
  template.DECLS = bindings.map((_, i) =>
    `@group(0) @binding(${i + 1}) var<storage, ${
      write[i] ? "read_write" : "read"
    }> buf${i}: array<f32>;`
  ).join("\n");
  return { template, bindings };
}

function lines(n: number, f: (i: number) => string): string {
  return Array.from({ length: n }, (_, i) => f(i)).join("\n");
}

// ---------------------------------------------------------------------------------------------
// causal depthwise conv1d

/** Arguments of {@link recordCausalConv1dForward}. */
export interface CausalConv1dForwardArgs {
  /** Input `(nSeq·Ls, ·)` rows, channel c at `x.off + row·ldx + c`. */
  x: Ref;
  ldx: number;
  nSeq: number;
  Ls: number;
  /** Channels (d_inner). */
  C: number;
  /** Kernel width (d_conv, 4 in SNARM); ≤ {@link MAX_D_CONV}. */
  K: number;
  /** Weight `(C, K)` row-major (PyTorch `(C, 1, K)`). */
  w: Ref;
  /** Bias `(C)`. */
  b: Ref;
  /** Output `(nSeq·Ls, ·)`, written at `y.off + row·ldy + c`. */
  y: Ref;
  ldy: number;
}

/**
 * Record the causal depthwise conv1d (spec §6 Mamba step 2, pre-activation):
 * `y[s,t,c] = b[c] + Σ_k w[c,k]·x[s, t−(K−1)+k, c]`, zero before t = 0 of each sequence.
 * One invocation per output element. Reference: lib/ops/mamba.ts causalConv1dForward.
 * @throws {Error} naming the operand when a size, offset or leading dimension does not fit.
 */
export async function recordCausalConv1dForward(
  seq: KernelSequence,
  a: CausalConv1dForwardArgs,
): Promise<void> {
  dim("conv1d nSeq", a.nSeq);
  dim("conv1d Ls", a.Ls);
  dim("conv1d C", a.C);
  dim("conv1d K", a.K, MAX_D_CONV);
  const rows = a.nSeq * a.Ls;
  const xOff = mat("conv1d x", a.x, rows, a.C, a.ldx);
  const wOff = vec("conv1d w", a.w, a.C * a.K);
  const bOff = vec("conv1d b", a.b, a.C);
  const yOff = mat("conv1d y", a.y, rows, a.C, a.ldy);
  const { template, bindings } = bindOperands([
    { key: "X", t: a.x.t, write: false },
    { key: "W", t: a.w.t, write: false },
    { key: "B", t: a.b.t, write: false },
    { key: "Y", t: a.y.t, write: true },
  ]);
  const K = a.K;
  template.K = String(K);
  template.TAPS = lines(K, (k) => {
    const back = K - 1 - k; // x[t − back]
    if (back === 0) {
      return `  s += ${template.W}[wb + ${k}u] * ${template.X}[P.xOff + row * P.ldx + c];`;
    }
    return `  s += select(0.0, ${template.W}[wb + ${k}u] * ${template.X}[P.xOff + (row - ` +
      `select(0u, ${back}u, t >= ${back}u)) * P.ldx + c], t >= ${back}u);`;
  });
  await seq.dispatch({
    shader: "train/conv1d.wgsl",
    label: "conv1d forward",
    template,
    params: [rows, a.Ls, a.C, xOff, a.ldx, wOff, bOff, yOff, a.ldy, 0, 0, 0],
    bindings,
    workgroups: grid2d(Math.ceil(rows * a.C / 64)),
  });
}

/** Arguments of {@link recordCausalConv1dBackward}. */
export interface CausalConv1dBackwardArgs {
  /** Forward input `(nSeq·Ls, ·)`, leading dimension ldx. */
  x: Ref;
  ldx: number;
  nSeq: number;
  Ls: number;
  C: number;
  K: number;
  /** Weight `(C, K)`. */
  w: Ref;
  /** Output cotangent `(nSeq·Ls, ·)`. */
  dy: Ref;
  lddy: number;
  /** Input gradient (written, not accumulated). */
  dx: Ref;
  lddx: number;
  /** Weight gradient `(C, K)` (written). */
  dW: Ref;
  /** Bias gradient `(C)` (written). */
  dB: Ref;
}

/**
 * Record the VJP of {@link recordCausalConv1dForward}: `dx[s,c] = Σ_k w[c,k]·dy[s+(K−1)−k, c]`
 * (within the sequence), `dW[c,k] = Σ_rows x[s,c]·dy[s+(K−1)−k, c]`, `dB[c] = Σ_rows dy[s,c]`;
 * all written, not accumulated. One dispatch (workgroup per 8 channels, 32 row chunks per
 * channel reduced in workgroup memory). Reference: lib/ops/mamba.ts causalConv1dBackward.
 * @throws {Error} naming the operand when a size, offset or leading dimension does not fit.
 */
export async function recordCausalConv1dBackward(
  seq: KernelSequence,
  a: CausalConv1dBackwardArgs,
): Promise<void> {
  dim("conv1d nSeq", a.nSeq);
  dim("conv1d Ls", a.Ls);
  dim("conv1d C", a.C);
  dim("conv1d K", a.K, MAX_D_CONV);
  const rows = a.nSeq * a.Ls;
  const xOff = mat("conv1d x", a.x, rows, a.C, a.ldx);
  const wOff = vec("conv1d w", a.w, a.C * a.K);
  const dyOff = mat("conv1d dy", a.dy, rows, a.C, a.lddy);
  const dxOff = mat("conv1d dx", a.dx, rows, a.C, a.lddx);
  const dwOff = vec("conv1d dW", a.dW, a.C * a.K);
  const dbOff = vec("conv1d dB", a.dB, a.C);
  const { template, bindings } = bindOperands([
    { key: "X", t: a.x.t, write: false },
    { key: "WT", t: a.w.t, write: false },
    { key: "DY", t: a.dy.t, write: false },
    { key: "DX", t: a.dx.t, write: true },
    { key: "DW", t: a.dW.t, write: true },
    { key: "DB", t: a.dB.t, write: true },
  ]);
  const K = a.K;
  const { WT, DY, DW, DB } = template;
  template.K = String(K);
  template.W = lines(K, (k) => `  let w${k} = ${WT}[wb + ${k}u];`);
  // g_j = dy[s + j] of the current row s; before the loop: the window of row `end`.
  template.PRELOAD = lines(
    K,
    (j) =>
      j === K - 1
        ? `  var g${j} = 0.0;`
        : `  var g${j} = select(0.0, ${DY}[P.dyOff + min(end + ${j}u, ` +
          `P.rows - 1u) * P.lddy + cc], n > 0u && tl + ${j + 1}u < P.Ls);`,
  );
  template.ACC = lines(K, (k) => `  var dw${k} = 0.0;`);
  template.SHIFT = lines(K - 1, (i) => {
    const j = K - 1 - i;
    return `    g${j} = select(g${j - 1}, 0.0, last);`;
  });
  template.STEP =
    `    let dxv = ${lines(K, (k) => `w${k} * g${K - 1 - k}`).replaceAll("\n", " + ")};\n` +
    lines(K, (k) => `    dw${k} += xv * g${K - 1 - k};`);
  template.STORE = lines(K, (k) => `  red[rb + ${k}u] = dw${k};`);
  template.SUMDECL = lines(K + 1, (k) => `    var s${k} = 0.0;`);
  template.SUM = lines(K + 1, (k) => `      s${k} += red[pb + ${k}u];`);
  template.WRITE = lines(K, (k) => `    ${DW}[P.dwOff + c * ${K}u + ${k}u] = s${k};`) +
    `\n    ${DB}[P.dbOff + c] = s${K};`;
  const chunk = Math.ceil(rows / 32);
  await seq.dispatch({
    shader: "train/conv1d_bwd.wgsl",
    label: "conv1d backward",
    template,
    params: [
      rows,
      a.Ls,
      a.C,
      chunk,
      xOff,
      a.ldx,
      wOff,
      dyOff,
      a.lddy,
      dxOff,
      a.lddx,
      dwOff,
      dbOff,
      0,
      0,
      0,
    ],
    bindings,
    workgroups: [Math.ceil(a.C / 8)],
  });
}

// ---------------------------------------------------------------------------------------------
// selective scan

/** Arguments of {@link recordSelectiveScanForward}. */
export interface SelectiveScanForwardArgs {
  /** Input u `(nSeq·Ls, ·)` (conv1d + SiLU output), channel c at `u.off + row·ldu + c`. */
  u: Ref;
  ldu: number;
  /** Δ `(nSeq·Ls, ·)` after dt bias and softplus (> 0). */
  delta: Ref;
  lddelta: number;
  /** A_log `(dI, S)`; A = −exp(A_log). */
  aLog: Ref;
  /** B_t `(nSeq·Ls, ·)`, state n at `Bm.off + row·ldB + n`. */
  Bm: Ref;
  ldB: number;
  /** C_t `(nSeq·Ls, ·)`, state n at `Cm.off + row·ldC + n`. */
  Cm: Ref;
  ldC: number;
  /** Skip D `(dI)`. */
  D: Ref;
  nSeq: number;
  Ls: number;
  /** Channels (d_inner). */
  dI: number;
  /** d_state, ≤ {@link MAX_D_STATE}. */
  S: number;
  /** Output `(nSeq·Ls, ·)` written at `y.off + row·ldy + c`. */
  y: Ref;
  ldy: number;
  /** Saved states, ≥ nSeq·Ls·dI·S elements: h_t at `(row·dI + c)·S + n` (from element 0). */
  states: Tensor;
}

function scanDims(a: { nSeq: number; Ls: number; dI: number; S: number }): number {
  dim("scan nSeq", a.nSeq);
  dim("scan Ls", a.Ls);
  dim("scan dI", a.dI);
  dim("scan S (d_state)", a.S, MAX_D_STATE);
  return a.nSeq * a.Ls;
}

function scanInputs(a: SelectiveScanForwardArgs | SelectiveScanBackwardArgs, rows: number) {
  const { dI, S } = a;
  const uOff = mat("scan u", a.u, rows, dI, a.ldu);
  const dOff = mat("scan delta", a.delta, rows, dI, a.lddelta);
  const aOff = vec("scan A_log", a.aLog, dI * S);
  const bOff = mat("scan B", a.Bm, rows, S, a.ldB);
  const cOff = mat("scan C", a.Cm, rows, S, a.ldC);
  const DOff = vec("scan D", a.D, dI);
  if (a.states.length < rows * dI * S) {
    throw new Error(
      `scan states (${a.states.label}): ${a.states.length} elements, expected ≥ ` +
        `nSeq·Ls·dI·S = ${rows * dI * S}`,
    );
  }
  return { uOff, dOff, aOff, bOff, cOff, DOff };
}

/**
 * Record the selective scan forward (spec §6 Mamba step 5, no gate) saving every state:
 * per sequence, channel c, state n: `h_t = exp(Δ_t·A_c,n)·h_{t−1} + Δ_t·B_t,n·u_t` (h_{−1} = 0),
 * `y_t = Σ_n C_t,n·h_t,n + D_c·u_t`, A = −exp(A_log). One invocation per (sequence, channel),
 * sequential over time (Ls loop back-edges; states unrolled). Reference: lib/ops/mamba.ts
 * selectiveScanForward with delta = softplus⁻¹(Δ), dt bias 0.
 * @throws {Error} naming the operand when a size, offset or leading dimension does not fit.
 */
export async function recordSelectiveScanForward(
  seq: KernelSequence,
  a: SelectiveScanForwardArgs,
): Promise<void> {
  const rows = scanDims(a);
  const { uOff, dOff, aOff, bOff, cOff, DOff } = scanInputs(a, rows);
  const yOff = mat("scan y", a.y, rows, a.dI, a.ldy);
  const { template, bindings } = bindOperands([
    { key: "U", t: a.u.t, write: false },
    { key: "DELTA", t: a.delta.t, write: false },
    { key: "ALOG", t: a.aLog.t, write: false },
    { key: "BM", t: a.Bm.t, write: false },
    { key: "CM", t: a.Cm.t, write: false },
    { key: "D", t: a.D.t, write: false },
    { key: "Y", t: a.y.t, write: true },
    { key: "ST", t: a.states, write: true },
  ]);
  const S = a.S;
  const { ALOG, BM, CM, ST } = template;
  template.S = String(S);
  template.INIT = lines(S, (n) => `  let A${n} = -exp(${ALOG}[ab + ${n}u]);\n  var h${n} = 0.0;`);
  template.STEP = lines(
    S,
    (n) =>
      `    h${n} = exp(dl * A${n}) * h${n} + dlu * ${BM}[bb + ${n}u];\n` +
      `    acc += ${CM}[cb + ${n}u] * h${n};\n    ${ST}[sb + ${n}u] = h${n};`,
  );
  await seq.dispatch({
    shader: "train/scan.wgsl",
    label: "selective scan forward",
    template,
    params: [
      a.nSeq,
      a.Ls,
      a.dI,
      uOff,
      a.ldu,
      dOff,
      a.lddelta,
      aOff,
      bOff,
      a.ldB,
      cOff,
      a.ldC,
      DOff,
      yOff,
      a.ldy,
      0,
    ],
    bindings,
    workgroups: grid2d(Math.ceil(a.nSeq * a.dI / 64)),
  });
}

/** Arguments of {@link recordSelectiveScanBackward} (forward operands as in the forward). */
export interface SelectiveScanBackwardArgs {
  u: Ref;
  ldu: number;
  delta: Ref;
  lddelta: number;
  aLog: Ref;
  Bm: Ref;
  ldB: number;
  Cm: Ref;
  ldC: number;
  D: Ref;
  nSeq: number;
  Ls: number;
  dI: number;
  S: number;
  /** States saved by {@link recordSelectiveScanForward} on the same operands. */
  states: Tensor;
  /** Output cotangent `(nSeq·Ls, ·)`. */
  dy: Ref;
  lddy: number;
  /** Gradient w.r.t. u (written). */
  du: Ref;
  lddu: number;
  /** Gradient w.r.t. Δ (written; the caller chains softplus′ and the dt bias). */
  dDelta: Ref;
  lddDelta: number;
  /** Gradient w.r.t. A_log `(dI, S)` (written). */
  dALog: Ref;
  /** Gradient w.r.t. B_t `(nSeq·Ls, ·)` at `dBm.off + row·lddB + n`: sum over channels (written). */
  dBm: Ref;
  lddB: number;
  /** Gradient w.r.t. C_t, likewise (written). */
  dCm: Ref;
  lddC: number;
  /** Gradient w.r.t. D `(dI)` (written). */
  dD: Ref;
  /** Scratch of ≥ {@link scanBackwardScratch}(nSeq, Ls, dI, S) elements. */
  scratch: Tensor;
}

/**
 * Elements of the scratch tensor {@link recordSelectiveScanBackward} needs:
 * `nSeq·Ls·dI·S` per-channel dB terms + `nSeq·dI·(S+1)` per-sequence dA_log / dD partials.
 */
export function scanBackwardScratch(nSeq: number, Ls: number, dI: number, S: number): number {
  return nSeq * Ls * dI * S + nSeq * dI * (S + 1);
}

/**
 * Record the VJP of {@link recordSelectiveScanForward} (three dispatches): reverse-time adjoint
 * per (sequence, channel) with λ_t = C_t·dy_t + a_{t+1}·λ_{t+1}, a = exp(Δ·A):
 * `dΔ_t = Σ_n λ_n(A_n·a·h_{t−1} + B_t,n·u_t)`, `du_t = D·dy_t + Σ_n λ_n·Δ_t·B_t,n`,
 * `dA_log = A·Σ_t λ·Δ·a·h_{t−1}`, `dD = Σ dy·u`, `dB_t,n = Σ_c λ_n·Δ_t·u_t`,
 * `dC_t,n = Σ_c dy_t·h_t,n` (h from the saved states). All gradients written, not accumulated.
 * Reference: lib/ops/mamba.ts selectiveScanBackward (its delta gradient = dΔ·softplus′).
 * @throws {Error} naming the operand when a size, offset or leading dimension does not fit.
 */
export async function recordSelectiveScanBackward(
  seq: KernelSequence,
  a: SelectiveScanBackwardArgs,
): Promise<void> {
  const rows = scanDims(a);
  const { nSeq, Ls, dI, S } = a;
  const { uOff, dOff, aOff, bOff, cOff, DOff } = scanInputs(a, rows);
  const dyOff = mat("scan dy", a.dy, rows, dI, a.lddy);
  const duOff = mat("scan du", a.du, rows, dI, a.lddu);
  const ddOff = mat("scan dDelta", a.dDelta, rows, dI, a.lddDelta);
  const daOff = vec("scan dA_log", a.dALog, dI * S);
  const dbOff = mat("scan dB", a.dBm, rows, S, a.lddB);
  const dcOff = mat("scan dC", a.dCm, rows, S, a.lddC);
  const dDOff = vec("scan dD", a.dD, dI);
  const need = scanBackwardScratch(nSeq, Ls, dI, S);
  if (a.scratch.length < need) {
    throw new Error(
      `scan scratch (${a.scratch.label}): ${a.scratch.length} elements, expected ≥ ${need} ` +
        `(scanBackwardScratch)`,
    );
  }
  const part = rows * dI * S;

  // 1. reverse-time adjoint: du, dΔ, per-channel dB terms, per-sequence dA_log / dD
  const m = bindOperands([
    { key: "U", t: a.u.t, write: false },
    { key: "DELTA", t: a.delta.t, write: false },
    { key: "ALOG", t: a.aLog.t, write: false },
    { key: "BM", t: a.Bm.t, write: false },
    { key: "CM", t: a.Cm.t, write: false },
    { key: "D", t: a.D.t, write: false },
    { key: "ST", t: a.states, write: false },
    { key: "DY", t: a.dy.t, write: false },
    { key: "DU", t: a.du.t, write: true },
    { key: "DDELTA", t: a.dDelta.t, write: true },
    { key: "SCR", t: a.scratch, write: true },
  ]);
  const { ALOG, BM, CM, ST, SCR } = m.template;
  m.template.S = String(S);
  m.template.INIT = lines(
    S,
    (n) => `  let A${n} = -exp(${ALOG}[ab + ${n}u]);\n  var lam${n} = 0.0;\n  var dA${n} = 0.0;`,
  );
  m.template.STEP = lines(S, (n) =>
    [
      `    let b${n} = ${BM}[bb + ${n}u];`,
      `    lam${n} += gy * ${CM}[cb + ${n}u];`,
      `    let a${n} = exp(dl * A${n});`,
      `    let ahp${n} = select(0.0, a${n} * ${ST}[pb + ${n}u], has);`,
      `    ddl += lam${n} * (A${n} * ahp${n} + b${n} * u);`,
      `    dA${n} += lam${n} * dl * ahp${n};`,
      `    ${SCR}[sb + ${n}u] = lam${n} * dlu;`,
      `    du += lam${n} * dl * b${n};`,
      `    lam${n} *= a${n};`,
    ].join("\n"));
  m.template.FINISH = lines(S, (n) => `  ${SCR}[ob + ${n}u] = dA${n} * A${n};`);
  await seq.dispatch({
    shader: "train/scan_bwd.wgsl",
    label: "selective scan backward",
    template: m.template,
    params: [
      nSeq,
      Ls,
      dI,
      uOff,
      a.ldu,
      dOff,
      a.lddelta,
      aOff,
      bOff,
      a.ldB,
      cOff,
      a.ldC,
      DOff,
      dyOff,
      a.lddy,
      duOff,
      a.lddu,
      ddOff,
      a.lddDelta,
      part,
    ],
    bindings: m.bindings,
    workgroups: grid2d(Math.ceil(nSeq * dI / 64)),
  });

  // 2. dB, dC: sums over channels per token row
  const r = bindOperands([
    { key: "DY", t: a.dy.t, write: false },
    { key: "ST", t: a.states, write: false },
    { key: "SCR", t: a.scratch, write: false },
    { key: "DBM", t: a.dBm.t, write: true },
    { key: "DCM", t: a.dCm.t, write: true },
  ]);
  const t2 = r.template;
  t2.S = String(S);
  t2.DECL = lines(S, (n) => `  var db${n} = 0.0;\n  var dc${n} = 0.0;`);
  t2.STEP = lines(
    S,
    (n) => `    db${n} += ${t2.SCR}[sb + ${n}u];\n    dc${n} += gy * ${t2.ST}[sb + ${n}u];`,
  );
  t2.WRITE = lines(
    S,
    (n) =>
      `  ${t2.DBM}[P.dbOff + row * P.lddb + ${n}u] = db${n};\n` +
      `  ${t2.DCM}[P.dcOff + row * P.lddc + ${n}u] = dc${n};`,
  );
  await seq.dispatch({
    shader: "train/scan_reduce_bc.wgsl",
    label: "selective scan backward dB dC",
    template: t2,
    params: [rows, dI, dyOff, a.lddy, dbOff, a.lddB, dcOff, a.lddC],
    bindings: r.bindings,
    workgroups: grid2d(Math.ceil(rows / 64)),
  });

  // 3. dA_log, dD: sums over sequences
  const p = bindOperands([
    { key: "SCR", t: a.scratch, write: false },
    { key: "DA", t: a.dALog.t, write: true },
    { key: "DD", t: a.dD.t, write: true },
  ]);
  p.template.S = String(S);
  await seq.dispatch({
    shader: "train/scan_reduce_param.wgsl",
    label: "selective scan backward dA_log dD",
    template: p.template,
    params: [nSeq, dI, part, daOff, dDOff, 0, 0, 0],
    bindings: p.bindings,
    workgroups: [Math.ceil(dI * (S + 1) / 64)],
  });
}

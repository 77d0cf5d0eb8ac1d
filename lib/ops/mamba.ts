/**
 * The Mamba v1 mixer (spec §6 "Mamba v1 (S6) computation", mamba_ssm v1.1.1 slow path) with its
 * vector-Jacobian products, float64: causal depthwise conv1d, the selective scan, the y·SiLU(z)
 * gate and the whole mixer (the mixer of lib/model/reference.ts `headForward64`; the scan as
 * lib/model/selective_scan_ref.ts). All token tensors are token-major `(N, Ls, ·)`.
 * @module
 */
import type { HeadDims } from "../model/config.ts";
import type { MixerWeights } from "../model/weights.ts";
import { linearBackward, linearForward } from "./dense.ts";
import { silu, siluGrad, softplus, softplusGrad } from "./pointwise.ts";

function need(a: ArrayLike<number>, n: number, what: string): void {
  if (a.length !== n) throw new Error(`${what}: ${a.length} values, expected ${n}`);
}

/**
 * Causal depthwise conv1d (kernel k, left zero-padding k − 1, bias), pre-activation:
 * y[q,t,c] = b_c + Σ_j w[c,j] · x[q, t + j − (k − 1), c].
 * @param x `(N, Ls, C)`; @param w `(C, k)` (PyTorch `(C, 1, k)`); @param b `(C)`.
 * @returns `(N, Ls, C)`.
 */
export function causalConv1dForward(
  x: ArrayLike<number>,
  N: number,
  Ls: number,
  C: number,
  w: ArrayLike<number>,
  b: ArrayLike<number>,
  k: number,
): Float64Array {
  need(x, N * Ls * C, "conv1d x");
  need(w, C * k, "conv1d weight");
  need(b, C, "conv1d bias");
  const out = new Float64Array(N * Ls * C);
  for (let q = 0; q < N; q++) {
    for (let t = 0; t < Ls; t++) {
      for (let c = 0; c < C; c++) {
        let s = b[c];
        for (let j = 0; j < k; j++) {
          const tt = t + j - (k - 1);
          if (tt >= 0) s += w[c * k + j] * x[(q * Ls + tt) * C + c];
        }
        out[(q * Ls + t) * C + c] = s;
      }
    }
  }
  return out;
}

/** VJP of {@link causalConv1dForward}: dx `(N, Ls, C)`, dw `(C, k)`, db `(C)`. */
export function causalConv1dBackward(
  x: ArrayLike<number>,
  N: number,
  Ls: number,
  C: number,
  w: ArrayLike<number>,
  k: number,
  dy: ArrayLike<number>,
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  need(dy, N * Ls * C, "conv1d dy");
  const dx = new Float64Array(N * Ls * C), dw = new Float64Array(C * k), db = new Float64Array(C);
  for (let q = 0; q < N; q++) {
    for (let t = 0; t < Ls; t++) {
      for (let c = 0; c < C; c++) {
        const g = dy[(q * Ls + t) * C + c];
        db[c] += g;
        for (let j = 0; j < k; j++) {
          const tt = t + j - (k - 1);
          if (tt < 0) continue;
          const xi = (q * Ls + tt) * C + c;
          dw[c * k + j] += g * x[xi];
          dx[xi] += g * w[c * k + j];
        }
      }
    }
  }
  return { dx, dw, db };
}

/** Operands of the selective scan (token-major, ungated). */
export interface ScanInputs {
  /** `(N, Ls, di)` input u (conv1d + SiLU output). */
  u: ArrayLike<number>;
  /** `(N, Ls, di)` dt_proj(dt_raw) before the dt bias and softplus. */
  delta: ArrayLike<number>;
  /** `(N, Ls, ns)` input matrix B_t. */
  B: ArrayLike<number>;
  /** `(N, Ls, ns)` output matrix C_t. */
  C: ArrayLike<number>;
  /** `(di, ns)` A_log; A = −exp(A_log). */
  aLog: ArrayLike<number>;
  /** `(di)` skip D. */
  D: ArrayLike<number>;
  /** `(di)` dt_proj bias (the "delta bias"). */
  dtBias: ArrayLike<number>;
}

/** Gradients of the selective scan w.r.t. every operand of {@link ScanInputs}. */
export interface ScanGrads {
  u: Float64Array;
  /** w.r.t. delta before bias and softplus (equal to the gradient w.r.t. delta + dt bias). */
  delta: Float64Array;
  B: Float64Array;
  C: Float64Array;
  aLog: Float64Array;
  D: Float64Array;
  dtBias: Float64Array;
}

function checkScan(s: ScanInputs, N: number, Ls: number, di: number, ns: number): void {
  need(s.u, N * Ls * di, "scan u");
  need(s.delta, N * Ls * di, "scan delta");
  need(s.B, N * Ls * ns, "scan B");
  need(s.C, N * Ls * ns, "scan C");
  need(s.aLog, di * ns, "scan A_log");
  need(s.D, di, "scan D");
  need(s.dtBias, di, "scan dt bias");
}

/**
 * Selective scan without the gate (spec §6 Mamba step 5), per sequence q, channel c, state n:
 * Δ = softplus(delta + dt_bias), h_t = exp(Δ_t·A_c,n)·h_{t−1} + Δ_t·B_t,n·u_t, h_0 = 0,
 * y_t = Σ_n C_t,n·h_t,n + D_c·u_t. Returns y `(N, Ls, di)`.
 */
export function selectiveScanForward(
  s: ScanInputs,
  N: number,
  Ls: number,
  di: number,
  ns: number,
): Float64Array {
  checkScan(s, N, Ls, di, ns);
  const y = new Float64Array(N * Ls * di);
  const h = new Float64Array(ns), A = new Float64Array(ns);
  for (let q = 0; q < N; q++) {
    for (let c = 0; c < di; c++) {
      h.fill(0);
      for (let n = 0; n < ns; n++) A[n] = -Math.exp(s.aLog[c * ns + n]);
      for (let t = 0; t < Ls; t++) {
        const i = (q * Ls + t) * di + c;
        const dl = softplus(s.delta[i] + s.dtBias[c]);
        const u = s.u[i];
        let acc = s.D[c] * u;
        for (let n = 0; n < ns; n++) {
          const bi = (q * Ls + t) * ns + n;
          h[n] = Math.exp(dl * A[n]) * h[n] + dl * s.B[bi] * u;
          acc += s.C[bi] * h[n];
        }
        y[i] = acc;
      }
    }
  }
  return y;
}

/**
 * VJP of {@link selectiveScanForward} (reverse-time recurrence; the states are recomputed per
 * sequence and channel, memory `Ls·ns`). With a = exp(Δ·A) and the state adjoint λ
 * (λ_t = C_t·dy_t + a_{t+1}·λ_{t+1}): dΔ_t = Σ_n λ_n·(A_n·a·h_{t−1} + B_t,n·u_t),
 * dA_n += λ_n·Δ_t·a·h_{t−1}, dB_t,n += λ_n·Δ_t·u_t, du_t = D·dy_t + Σ_n λ_n·Δ_t·B_t,n,
 * dC_t,n += dy_t·h_t,n, dD += dy_t·u_t; d(delta) = dΔ·softplus′, dA_log = dA·A.
 * @param dy `(N, Ls, di)`.
 */
export function selectiveScanBackward(
  s: ScanInputs,
  N: number,
  Ls: number,
  di: number,
  ns: number,
  dy: ArrayLike<number>,
): ScanGrads {
  checkScan(s, N, Ls, di, ns);
  need(dy, N * Ls * di, "scan dy");
  const g: ScanGrads = {
    u: new Float64Array(N * Ls * di),
    delta: new Float64Array(N * Ls * di),
    B: new Float64Array(N * Ls * ns),
    C: new Float64Array(N * Ls * ns),
    aLog: new Float64Array(di * ns),
    D: new Float64Array(di),
    dtBias: new Float64Array(di),
  };
  const hist = new Float64Array((Ls + 1) * ns); // hist[(t + 1)·ns + n] = h_t,n; row 0 = h_{−1} = 0
  const dls = new Float64Array(Ls);
  const A = new Float64Array(ns), dA = new Float64Array(ns), lam = new Float64Array(ns);
  for (let q = 0; q < N; q++) {
    for (let c = 0; c < di; c++) {
      for (let n = 0; n < ns; n++) A[n] = -Math.exp(s.aLog[c * ns + n]);
      for (let t = 0; t < Ls; t++) {
        const i = (q * Ls + t) * di + c;
        const dl = softplus(s.delta[i] + s.dtBias[c]);
        dls[t] = dl;
        const u = s.u[i];
        for (let n = 0; n < ns; n++) {
          hist[(t + 1) * ns + n] = Math.exp(dl * A[n]) * hist[t * ns + n] +
            dl * s.B[(q * Ls + t) * ns + n] * u;
        }
      }
      lam.fill(0);
      dA.fill(0);
      for (let t = Ls - 1; t >= 0; t--) {
        const i = (q * Ls + t) * di + c;
        const gy = dy[i], u = s.u[i], dl = dls[t];
        g.D[c] += gy * u;
        let du = gy * s.D[c];
        let ddl = 0;
        for (let n = 0; n < ns; n++) {
          const bi = (q * Ls + t) * ns + n;
          const ht = hist[(t + 1) * ns + n], hp = hist[t * ns + n];
          lam[n] += gy * s.C[bi];
          g.C[bi] += gy * ht;
          const a = Math.exp(dl * A[n]);
          ddl += lam[n] * (A[n] * a * hp + s.B[bi] * u);
          dA[n] += lam[n] * dl * a * hp;
          g.B[bi] += lam[n] * dl * u;
          du += lam[n] * dl * s.B[bi];
          lam[n] *= a;
        }
        g.u[i] = du;
        const dpre = ddl * softplusGrad(s.delta[i] + s.dtBias[c]);
        g.delta[i] = dpre;
        g.dtBias[c] += dpre;
      }
      for (let n = 0; n < ns; n++) g.aLog[c * ns + n] += dA[n] * A[n];
    }
  }
  return g;
}

/** The gate y ⊙ SiLU(z) (spec §6 Mamba step 6). */
export function gateForward(y: ArrayLike<number>, z: ArrayLike<number>): Float64Array {
  need(z, y.length, "gate z");
  const out = new Float64Array(y.length);
  for (let i = 0; i < y.length; i++) out[i] = y[i] * silu(z[i]);
  return out;
}

/** VJP of {@link gateForward}: dy = dout·SiLU(z), dz = dout·y·SiLU′(z). */
export function gateBackward(
  y: ArrayLike<number>,
  z: ArrayLike<number>,
  dout: ArrayLike<number>,
): { dy: Float64Array; dz: Float64Array } {
  need(dout, y.length, "gate dout");
  const dy = new Float64Array(y.length), dz = new Float64Array(y.length);
  for (let i = 0; i < y.length; i++) {
    dy[i] = dout[i] * silu(z[i]);
    dz[i] = dout[i] * y[i] * siluGrad(z[i]);
  }
  return { dy, dz };
}

/** Gradients of one mixer, field names as {@link MixerWeights}. */
export type MixerGrads = { [K in keyof MixerWeights]: Float64Array };

/** Everything the mixer backward needs (token-major f64). */
export interface MixerCache {
  N: number;
  Ls: number;
  /** `(N, Ls, d)` mixer input. */
  x: Float64Array;
  /** `(N, Ls, di)` in_proj first half (conv1d input) and second half (gate z). */
  xc: Float64Array;
  z: Float64Array;
  /** `(N, Ls, di)` conv1d output before SiLU, and u = SiLU of it. */
  pre: Float64Array;
  u: Float64Array;
  /** `(N, Ls, R)` dt_raw; `(N, Ls, di)` delta = dt_proj(dt_raw) before bias. */
  dtRaw: Float64Array;
  delta: Float64Array;
  /** `(N, Ls, ns)`. */
  B: Float64Array;
  C: Float64Array;
  /** `(N, Ls, di)` scan output before the gate, and the gated y. */
  yss: Float64Array;
  y: Float64Array;
}

/**
 * Mamba v1 mixer on N sequences x `(N, Ls, d)` → `(N, Ls, d)` (spec §6 Mamba steps 1–7).
 * @returns the output and the cache for {@link mixerBackward}.
 */
export function mixerForward(
  x: ArrayLike<number>,
  N: number,
  Ls: number,
  m: MixerWeights,
  dims: HeadDims,
): { out: Float64Array; cache: MixerCache } {
  const { d, dInner: di, dtRank: R, dState: ns, dConv: kc } = dims;
  const rows = N * Ls;
  need(x, rows * d, "mixer x");
  const xz = linearForward(x, rows, d, m.inProj, 2 * di);
  const xc = new Float64Array(rows * di), z = new Float64Array(rows * di);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < di; c++) {
      xc[r * di + c] = xz[r * 2 * di + c];
      z[r * di + c] = xz[r * 2 * di + di + c];
    }
  }
  const pre = causalConv1dForward(xc, N, Ls, di, m.conv1dW, m.conv1dB, kc);
  const u = new Float64Array(rows * di);
  for (let i = 0; i < u.length; i++) u[i] = silu(pre[i]);
  const P = R + 2 * ns;
  const xdbl = linearForward(u, rows, di, m.xProj, P);
  const dtRaw = new Float64Array(rows * R);
  const Bm = new Float64Array(rows * ns), Cm = new Float64Array(rows * ns);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < R; k++) dtRaw[r * R + k] = xdbl[r * P + k];
    for (let n = 0; n < ns; n++) {
      Bm[r * ns + n] = xdbl[r * P + R + n];
      Cm[r * ns + n] = xdbl[r * P + R + ns + n];
    }
  }
  const delta = linearForward(dtRaw, rows, R, m.dtProjW, di);
  const yss = selectiveScanForward(
    { u, delta, B: Bm, C: Cm, aLog: m.aLog, D: m.D, dtBias: m.dtProjB },
    N,
    Ls,
    di,
    ns,
  );
  const y = gateForward(yss, z);
  const out = linearForward(y, rows, di, m.outProj, d);
  return {
    out,
    cache: { N, Ls, x: Float64Array.from(x), xc, z, pre, u, dtRaw, delta, B: Bm, C: Cm, yss, y },
  };
}

/** VJP of {@link mixerForward}: gradient w.r.t. the input `(N, Ls, d)` and every mixer weight. */
export function mixerBackward(
  cache: MixerCache,
  m: MixerWeights,
  dims: HeadDims,
  dout: ArrayLike<number>,
): { dx: Float64Array; grads: MixerGrads } {
  const { d, dInner: di, dtRank: R, dState: ns, dConv: kc } = dims;
  const { N, Ls } = cache;
  const rows = N * Ls;
  const P = R + 2 * ns;
  const op = linearBackward(cache.y, rows, di, m.outProj, d, dout, false);
  const gt = gateBackward(cache.yss, cache.z, op.dx);
  const sg = selectiveScanBackward(
    {
      u: cache.u,
      delta: cache.delta,
      B: cache.B,
      C: cache.C,
      aLog: m.aLog,
      D: m.D,
      dtBias: m.dtProjB,
    },
    N,
    Ls,
    di,
    ns,
    gt.dy,
  );
  const dt = linearBackward(cache.dtRaw, rows, R, m.dtProjW, di, sg.delta, false);
  const dxdbl = new Float64Array(rows * P);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < R; k++) dxdbl[r * P + k] = dt.dx[r * R + k];
    for (let n = 0; n < ns; n++) {
      dxdbl[r * P + R + n] = sg.B[r * ns + n];
      dxdbl[r * P + R + ns + n] = sg.C[r * ns + n];
    }
  }
  const xp = linearBackward(cache.u, rows, di, m.xProj, P, dxdbl, false);
  const dpre = new Float64Array(rows * di);
  for (let i = 0; i < dpre.length; i++) dpre[i] = (sg.u[i] + xp.dx[i]) * siluGrad(cache.pre[i]);
  const cv = causalConv1dBackward(cache.xc, N, Ls, di, m.conv1dW, kc, dpre);
  const dxz = new Float64Array(rows * 2 * di);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < di; c++) {
      dxz[r * 2 * di + c] = cv.dx[r * di + c];
      dxz[r * 2 * di + di + c] = gt.dz[r * di + c];
    }
  }
  const ip = linearBackward(cache.x, rows, d, m.inProj, 2 * di, dxz, false);
  return {
    dx: ip.dx,
    grads: {
      inProj: ip.dW,
      conv1dW: cv.dw,
      conv1dB: cv.db,
      xProj: xp.dW,
      dtProjW: dt.dW,
      dtProjB: sg.dtBias,
      aLog: sg.aLog,
      D: sg.D,
      outProj: op.dW,
    },
  };
}

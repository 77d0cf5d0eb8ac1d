/**
 * Plain-TypeScript reference of the Self-Navigated Mamba head (spec §6), operation by operation as
 * the official PyTorch forward (SNARM b65542f `model/mamba_util.py`, mamba_ssm v1.1.1 slow path).
 * Every WGSL kernel of the head is tested against these functions, and {@link headForwardRef} is
 * the fallback when no WebGPU adapter exists.
 *
 * Layouts (all row-major f32): Z `(B, 2C, h, w)` channels-first (the model input); token tensors
 * channels-last `(rows, d)`: a branch's embedding `(B, L, d)` in row-major position order, its
 * sequences `(nScan·B, L, d)` in scan order (sequence index s·B + b), branch features
 * `(nScan, B, L, d)` back in row-major order, logits `(nHeads, B, L)`.
 * @module
 */
import type { HeadDims } from "./config.ts";
import { navigationIndex, scanPermutations } from "./scan_order.ts";
import { layoutNLD, selectiveScanRef } from "./selective_scan_ref.ts";
import type { BranchWeights, DecoderWeights, HeadWeights, MixerWeights } from "./weights.ts";

/** Epsilon of RMSNorm, LayerNorm and BatchNorm (all 1e-5 in the official modules). */
export const NORM_EPS = 1e-5;

/**
 * y = x · Wᵀ (+ bias): x `(rows, K)`, W `(N, K)` (PyTorch Linear layout) → `(rows, N)`.
 * f64 accumulation.
 */
export function linearRef(
  x: Float32Array,
  rows: number,
  K: number,
  W: Float32Array,
  N: number,
  bias?: Float32Array | null,
): Float32Array {
  const out = new Float32Array(rows * N);
  for (let r = 0; r < rows; r++) {
    const xo = r * K;
    for (let n = 0; n < N; n++) {
      let s = bias ? bias[n] : 0;
      const wo = n * K;
      for (let k = 0; k < K; k++) s += x[xo + k] * W[wo + k];
      out[r * N + n] = s;
    }
  }
  return out;
}

/**
 * Patch embedding E (spec §6 step 1): 1×1 conv of the channels-first input `(B, Cin, L)` with
 * W `(d, Cin)` and bias → channels-last `(B, L, d)`.
 */
export function embedRef(
  Z: Float32Array,
  B: number,
  Cin: number,
  L: number,
  W: Float32Array,
  bias: Float32Array,
  d: number,
): Float32Array {
  const out = new Float32Array(B * L * d);
  const acc = new Float64Array(L);
  for (let b = 0; b < B; b++) {
    for (let o = 0; o < d; o++) {
      acc.fill(bias[o]);
      for (let c = 0; c < Cin; c++) {
        const wv = W[o * Cin + c];
        const zo = (b * Cin + c) * L;
        for (let p = 0; p < L; p++) acc[p] += wv * Z[zo + p];
      }
      for (let p = 0; p < L; p++) out[(b * L + p) * d + o] = acc[p];
    }
  }
  return out;
}

/**
 * 3×3 convolution with dilation r and padding r ("same"), on N channels-last grids
 * `(N, h, w, Ci)` with PyTorch weights `(Co, Ci, 3, 3)` and optional bias → `(N, h, w, Co)`.
 * The block conv is r = 1 on the scan-ordered grid; the decoder conv is r = scale_list[branch].
 */
export function conv3x3Ref(
  x: Float32Array,
  N: number,
  h: number,
  w: number,
  Ci: number,
  W: Float32Array,
  Co: number,
  bias: Float32Array | null,
  r: number,
): Float32Array {
  // Weights re-laid as [ky][kx][ci][co] so the inner loop runs over contiguous co.
  const Wt = new Float64Array(9 * Ci * Co);
  for (let o = 0; o < Co; o++) {
    for (let c = 0; c < Ci; c++) {
      for (let t = 0; t < 9; t++) Wt[(t * Ci + c) * Co + o] = W[(o * Ci + c) * 9 + t];
    }
  }
  const out = new Float32Array(N * h * w * Co);
  const acc = new Float64Array(Co);
  for (let n = 0; n < N; n++) {
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        if (bias) { for (let o = 0; o < Co; o++) acc[o] = bias[o]; }
        else acc.fill(0);
        for (let ky = 0; ky < 3; ky++) {
          const sy = y + r * (ky - 1);
          if (sy < 0 || sy >= h) continue;
          for (let kx = 0; kx < 3; kx++) {
            const sx = xx + r * (kx - 1);
            if (sx < 0 || sx >= w) continue;
            const xo = ((n * h + sy) * w + sx) * Ci;
            const wo = (ky * 3 + kx) * Ci * Co;
            for (let c = 0; c < Ci; c++) {
              const v = x[xo + c];
              if (v === 0) continue;
              const wc = wo + c * Co;
              for (let o = 0; o < Co; o++) acc[o] += v * Wt[wc + o];
            }
          }
        }
        const oo = ((n * h + y) * w + xx) * Co;
        for (let o = 0; o < Co; o++) out[oo + o] = acc[o];
      }
    }
  }
  return out;
}

/** RMSNorm of each row of `(rows, d)`: x · rsqrt(mean(x²) + eps) · weight (mamba_ssm rms_norm_ref). */
export function rmsNormRef(
  x: Float32Array,
  rows: number,
  d: number,
  weight: Float32Array,
): Float32Array {
  const out = new Float32Array(rows * d);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let k = 0; k < d; k++) ss += x[r * d + k] * x[r * d + k];
    const rs = 1 / Math.sqrt(ss / d + NORM_EPS);
    for (let k = 0; k < d; k++) out[r * d + k] = x[r * d + k] * rs * weight[k];
  }
  return out;
}

/** LayerNorm of each row of `(rows, d)` (biased variance, eps 1e-5, affine). */
export function layerNormRef(
  x: Float32Array,
  rows: number,
  d: number,
  weight: Float32Array,
  bias: Float32Array,
): Float32Array {
  const out = new Float32Array(rows * d);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let k = 0; k < d; k++) m += x[r * d + k];
    m /= d;
    let v = 0;
    for (let k = 0; k < d; k++) v += (x[r * d + k] - m) ** 2;
    const rs = 1 / Math.sqrt(v / d + NORM_EPS);
    for (let k = 0; k < d; k++) out[r * d + k] = (x[r * d + k] - m) * rs * weight[k] + bias[k];
  }
  return out;
}

/** Intermediates of one mixer call (all token-major `(N, Ls, ·)`). */
export interface MixerTrace {
  /** Conv1d + SiLU output (the scan's u), `(N, Ls, dInner)`. */
  u: Float32Array;
  /** dt_proj(dt_raw) before bias and softplus, `(N, Ls, dInner)`. */
  delta: Float32Array;
  /** `(N, Ls, dState)`. */
  B: Float32Array;
  C: Float32Array;
  /** Gate `(N, Ls, dInner)`. */
  z: Float32Array;
  /** Scan output y·SiLU(z) before out_proj, `(N, Ls, dInner)`. */
  y: Float32Array;
}

/**
 * Mamba v1 mixer (spec §6 "Mamba v1 (S6) computation"), mamba_ssm v1.1.1 slow path, on N
 * independent sequences `(N, Ls, d)` → `(N, Ls, d)`.
 */
export function mambaMixerRef(
  x: Float32Array,
  N: number,
  Ls: number,
  m: MixerWeights,
  dims: HeadDims,
  trace?: (t: MixerTrace) => void,
): Float32Array {
  const { d, dInner: di, dtRank: R, dState: ns, dConv: kc } = dims;
  const rows = N * Ls;
  const xz = linearRef(x, rows, d, m.inProj, 2 * di);
  const u = new Float32Array(rows * di), z = new Float32Array(rows * di);
  for (let q = 0; q < N; q++) {
    for (let t = 0; t < Ls; t++) {
      const r = q * Ls + t;
      for (let c = 0; c < di; c++) {
        let s = m.conv1dB[c];
        for (let j = 0; j < kc; j++) {
          const tt = t + j - (kc - 1);
          if (tt >= 0) s += m.conv1dW[c * kc + j] * xz[(q * Ls + tt) * 2 * di + c];
        }
        u[r * di + c] = s / (1 + Math.exp(-s));
        z[r * di + c] = xz[r * 2 * di + di + c];
      }
    }
  }
  const xdbl = linearRef(u, rows, di, m.xProj, R + 2 * ns);
  const dtRaw = new Float32Array(rows * R),
    Bm = new Float32Array(rows * ns),
    Cm = new Float32Array(rows * ns);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < R; k++) dtRaw[r * R + k] = xdbl[r * (R + 2 * ns) + k];
    for (let n = 0; n < ns; n++) {
      Bm[r * ns + n] = xdbl[r * (R + 2 * ns) + R + n];
      Cm[r * ns + n] = xdbl[r * (R + 2 * ns) + R + ns + n];
    }
  }
  const delta = linearRef(dtRaw, rows, R, m.dtProjW, di);
  const A = new Float32Array(di * ns);
  for (let i = 0; i < A.length; i++) A[i] = -Math.exp(m.aLog[i]);
  const dimsScan = { nSeq: N, L: Ls, dInner: di, dState: ns };
  const y = selectiveScanRef(
    { u, delta, z, B: Bm, C: Cm, A, D: m.D, deltaBias: m.dtProjB },
    dimsScan,
    layoutNLD(dimsScan),
  );
  trace?.({ u, delta, B: Bm, C: Cm, z, y });
  return linearRef(y, rows, di, m.outProj, d);
}

/** Optional capture of branch-0 intermediates under the fixtures' tensor names. */
export type Capture = Map<string, Float32Array>;

/**
 * One branch (spec §6 steps 1–4) from its embedding.
 * @param E `(B, L, d)` patch embedding in row-major position order.
 * @param refMask `(B, L)` 1 = reference.
 * @returns branch features `(nScan, B, L, d)` in row-major position order.
 */
export function branchForwardRef(
  E: Float32Array,
  refMask: Uint8Array,
  B: number,
  h: number,
  w: number,
  bw: BranchWeights,
  dims: HeadDims,
  capture?: Capture,
  tag = "b0",
): Float32Array {
  const { d, nScan } = dims;
  const L = h * w;
  const perms = scanPermutations(h, w, nScan);
  const nav = navigationIndex(refMask, B, h, w, nScan);
  const N = nScan * B, Ls = nav.Ls;
  // Scan-ordered sequences (N, L, d).
  const seq = new Float32Array(N * L * d);
  for (let s = 0; s < nScan; s++) {
    for (let b = 0; b < B; b++) {
      const q = s * B + b;
      for (let i = 0; i < L; i++) {
        seq.set(
          E.subarray((b * L + perms[s][i]) * d, (b * L + perms[s][i] + 1) * d),
          (q * L + i) * d,
        );
      }
    }
  }
  let hcur: Float32Array = seq;
  let stream: Float32Array | null = null;
  bw.blocks.forEach((blk, k) => {
    // a. fused add + RMSNorm (residual stream in fp32; first block: stream = input).
    if (stream === null) stream = hcur;
    else {
      const s2 = new Float32Array(stream.length);
      for (let i = 0; i < s2.length; i++) s2[i] = hcur[i] + stream[i];
      stream = s2;
    }
    const hn = rmsNormRef(stream, N * L, d, blk.normW);
    // b. 3×3 conv on each scan-ordered sequence reshaped to an h×w grid.
    const hc = conv3x3Ref(hn, N, h, w, d, blk.convW, d, blk.convB, 1);
    // c. gather suspicious tokens in scan order → mixer → scatter back (replacing them).
    const xin = new Float32Array(N * Ls * d);
    for (let q = 0; q < N; q++) {
      for (let j = 0; j < Ls; j++) {
        const i = nav.gather[q * Ls + j];
        xin.set(hc.subarray((q * L + i) * d, (q * L + i + 1) * d), (q * Ls + j) * d);
      }
    }
    const xout = mambaMixerRef(xin, N, Ls, blk.mixer, dims, (t) => {
      if (capture && k === 0) {
        capture.set(`scan_${tag}_d0_y`, t.y);
      }
    });
    for (let q = 0; q < N; q++) {
      for (let j = 0; j < Ls; j++) {
        const i = nav.gather[q * Ls + j];
        hc.set(xout.subarray((q * Ls + j) * d, (q * Ls + j + 1) * d), (q * L + i) * d);
      }
    }
    if (capture) {
      capture.set(`mixer_${tag}_d${k}_in`, xin);
      capture.set(`mixer_${tag}_d${k}_out`, xout);
      capture.set(`block_${tag}_d${k}_out_h`, hc);
    }
    hcur = hc;
  });
  // Final: LayerNorm(Dropout(h) + stream), Dropout = identity in eval.
  const sum = new Float32Array(N * L * d);
  const st = stream as Float32Array | null;
  for (let i = 0; i < sum.length; i++) sum[i] = hcur[i] + (st ? st[i] : 0);
  const ln = layerNormRef(sum, N * L, d, bw.lnW, bw.lnB);
  // Un-permute to row-major: (nScan, B, L, d).
  const feat = new Float32Array(N * L * d);
  for (let s = 0; s < nScan; s++) {
    for (let b = 0; b < B; b++) {
      const q = s * B + b;
      for (let i = 0; i < L; i++) {
        feat.set(ln.subarray((q * L + i) * d, (q * L + i + 1) * d), (q * L + perms[s][i]) * d);
      }
    }
  }
  if (capture) capture.set(`branch_features_${tag}`, feat);
  return feat;
}

/**
 * One decoder head (spec §6 step 5): dilated 3×3 conv (no bias) → BatchNorm (eval) → ReLU →
 * 1×1 conv to one logit. `feat` `(B, L, d)` row-major positions → logits `(B, L)`.
 */
export function decoderHeadRef(
  feat: Float32Array,
  B: number,
  h: number,
  w: number,
  hw: DecoderWeights,
  d: number,
  rate: number,
): Float32Array {
  const c = conv3x3Ref(feat, B, h, w, d, hw.convW, d, null, rate);
  const L = h * w;
  const out = new Float32Array(B * L);
  for (let r = 0; r < B * L; r++) {
    let s = hw.outB[0];
    for (let k = 0; k < d; k++) {
      const v = (c[r * d + k] - hw.bnMean[k]) / Math.sqrt(hw.bnVar[k] + NORM_EPS) * hw.bnW[k] +
        hw.bnB[k];
      if (v > 0) s += v * hw.outW[k];
    }
    out[r] = s;
  }
  return out;
}

/** Options of {@link headForwardRef}. */
export interface HeadRefOptions {
  /** Collect branch-0 intermediates under the fixtures' names (E_b0, mixer_b0_d0_in, …). */
  capture?: Capture;
}

/**
 * Reference forward of the Mamba head from the hybrid residual (spec §6): per branch the patch
 * embedding, scans, blocks and final LayerNorm; then the decoder heads.
 * @param Z `(B, in_chans, h, w)` channels-first hybrid residual [R ‖ S_enc].
 * @param refMask `(B, h·w)` row-major navigation mask, 1 = reference.
 * @returns head logits `(nHeads, B, h·w)`, head index = branch·nScan + scan.
 * @throws {Error} on a non-square grid or mismatched sizes.
 */
export function headForwardRef(
  weights: HeadWeights,
  Z: Float32Array,
  refMask: Uint8Array,
  B: number,
  h: number,
  w: number,
  opts: HeadRefOptions = {},
): Float32Array {
  const dims = weights.dims;
  const Cin = weights.config.in_chans;
  const L = h * w;
  if (h !== w) throw new Error(`grid must be square for the scan-ordered 3×3 conv, got ${h}×${w}`);
  if (Z.length !== B * Cin * L) {
    throw new Error(
      `Z: ${Z.length} values, expected (B, in_chans, h, w) = (${B}, ${Cin}, ${h}, ${w})`,
    );
  }
  const logits = new Float32Array(dims.nHeads * B * L);
  weights.branches.forEach((bw, i) => {
    const E = embedRef(Z, B, Cin, L, bw.embedW, bw.embedB, dims.d);
    const cap = i === 0 ? opts.capture : undefined;
    if (cap) {
      // fixture layout (B, d, h, w)
      const Ecf = new Float32Array(E.length);
      for (let b = 0; b < B; b++) {
        for (let p = 0; p < L; p++) {
          for (let k = 0; k < dims.d; k++) {
            Ecf[(b * dims.d + k) * L + p] = E[(b * L + p) * dims.d + k];
          }
        }
      }
      cap.set("E_b0", Ecf);
    }
    const feat = branchForwardRef(E, refMask, B, h, w, bw, dims, cap, `b${i}`);
    for (let s = 0; s < dims.nScan; s++) {
      const j = i * dims.nScan + s;
      const lg = decoderHeadRef(
        feat.subarray(s * B * L * dims.d, (s + 1) * B * L * dims.d),
        B,
        h,
        w,
        weights.heads[j],
        dims.d,
        weights.config.scale_list[i],
      );
      logits.set(lg, j * B * L);
    }
  });
  return logits;
}

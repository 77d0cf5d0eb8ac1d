/**
 * Dense layers of the SNARM head with their vector-Jacobian products, float64 (spec §5–6):
 * Linear (Mamba in_proj / x_proj / dt_proj / out_proj, the decoder's final 1×1 conv), the patch
 * embedding 1×1 conv on the channels-first input, and the 3×3 convolution with dilation r and
 * padding r (block conv r = 1 with bias; decoder conv r = scale_list[branch], no bias).
 * The head reference (lib/model/reference.ts) is built from these forwards (linearRef and
 * conv3x3Ref round them to f32).
 * @module
 */

/** Gradients of a layer with weight W and optional bias. */
export interface DenseGrads {
  /** Gradient w.r.t. the layer input (same layout as the input). */
  dx: Float64Array;
  /** Gradient w.r.t. W (same layout as W). */
  dW: Float64Array;
  /** Gradient w.r.t. the bias, null when the layer has none. */
  db: Float64Array | null;
}

function need(a: ArrayLike<number>, n: number, what: string): void {
  if (a.length !== n) throw new Error(`${what}: ${a.length} values, expected ${n}`);
}

/**
 * y = x · Wᵀ (+ bias): x `(rows, K)`, W `(N, K)` (PyTorch Linear layout) → `(rows, N)` f64.
 * @throws {Error} on mismatched sizes.
 */
export function linearForward(
  x: ArrayLike<number>,
  rows: number,
  K: number,
  W: ArrayLike<number>,
  N: number,
  bias?: ArrayLike<number> | null,
): Float64Array {
  need(x, rows * K, "linear x");
  need(W, N * K, "linear W");
  if (bias) need(bias, N, "linear bias");
  const out = new Float64Array(rows * N);
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
 * VJP of {@link linearForward}: dx = dy·W `(rows, K)`, dW = dyᵀ·x `(N, K)`, db = Σ_rows dy `(N)`.
 * @param hasBias whether the layer has a bias (db is null otherwise).
 */
export function linearBackward(
  x: ArrayLike<number>,
  rows: number,
  K: number,
  W: ArrayLike<number>,
  N: number,
  dy: ArrayLike<number>,
  hasBias: boolean,
): DenseGrads {
  need(dy, rows * N, "linear dy");
  const dx = new Float64Array(rows * K);
  const dW = new Float64Array(N * K);
  const db = hasBias ? new Float64Array(N) : null;
  for (let r = 0; r < rows; r++) {
    const xo = r * K;
    for (let n = 0; n < N; n++) {
      const g = dy[r * N + n];
      if (g === 0) continue;
      if (db) db[n] += g;
      const wo = n * K;
      for (let k = 0; k < K; k++) {
        dx[xo + k] += g * W[wo + k];
        dW[wo + k] += g * x[xo + k];
      }
    }
  }
  return { dx, dW, db };
}

/**
 * 1×1 convolution of a channels-first input (the patch embedding E, spec §6 step 1; the unary
 * predictor, §5 step 2): Z `(B, Cin, L)`, W `(Co, Cin)` (PyTorch `(Co, Cin, 1, 1)`), bias `(Co)` →
 * channels-last `(B, L, Co)` f64.
 */
export function conv1x1Forward(
  Z: ArrayLike<number>,
  B: number,
  Cin: number,
  L: number,
  W: ArrayLike<number>,
  Co: number,
  bias: ArrayLike<number> | null,
): Float64Array {
  need(Z, B * Cin * L, "conv1x1 input");
  need(W, Co * Cin, "conv1x1 weight");
  if (bias) need(bias, Co, "conv1x1 bias");
  const out = new Float64Array(B * L * Co);
  const acc = new Float64Array(L); // one output channel over all positions: Z rows contiguous
  for (let b = 0; b < B; b++) {
    for (let o = 0; o < Co; o++) {
      acc.fill(bias ? bias[o] : 0);
      for (let c = 0; c < Cin; c++) {
        const wv = W[o * Cin + c];
        const zo = (b * Cin + c) * L;
        for (let p = 0; p < L; p++) acc[p] += wv * Z[zo + p];
      }
      for (let p = 0; p < L; p++) out[(b * L + p) * Co + o] = acc[p];
    }
  }
  return out;
}

/**
 * VJP of {@link conv1x1Forward}; dx is channels-first `(B, Cin, L)` like Z.
 * @param dy `(B, L, Co)` channels-last.
 */
export function conv1x1Backward(
  Z: ArrayLike<number>,
  B: number,
  Cin: number,
  L: number,
  W: ArrayLike<number>,
  Co: number,
  dy: ArrayLike<number>,
  hasBias: boolean,
): DenseGrads {
  need(dy, B * L * Co, "conv1x1 dy");
  const dx = new Float64Array(B * Cin * L);
  const dW = new Float64Array(Co * Cin);
  const db = hasBias ? new Float64Array(Co) : null;
  for (let b = 0; b < B; b++) {
    for (let p = 0; p < L; p++) {
      for (let o = 0; o < Co; o++) {
        const g = dy[(b * L + p) * Co + o];
        if (g === 0) continue;
        if (db) db[o] += g;
        for (let c = 0; c < Cin; c++) {
          const zi = (b * Cin + c) * L + p;
          dW[o * Cin + c] += g * Z[zi];
          dx[zi] += g * W[o * Cin + c];
        }
      }
    }
  }
  return { dx, dW, db };
}

/**
 * 3×3 convolution, dilation r, zero padding r ("same" size), on N channels-last grids
 * x `(N, h, w, Ci)` with PyTorch weights W `(Co, Ci, 3, 3)` and optional bias → `(N, h, w, Co)` f64.
 */
export function conv3x3Forward(
  x: ArrayLike<number>,
  N: number,
  h: number,
  w: number,
  Ci: number,
  W: ArrayLike<number>,
  Co: number,
  bias: ArrayLike<number> | null,
  r: number,
): Float64Array {
  need(x, N * h * w * Ci, "conv3x3 input");
  need(W, Co * Ci * 9, "conv3x3 weight");
  if (bias) need(bias, Co, "conv3x3 bias");
  // Weights re-laid as [ky][kx][ci][co] so the inner loop runs over contiguous co.
  const Wt = new Float64Array(9 * Ci * Co);
  for (let o = 0; o < Co; o++) {
    for (let c = 0; c < Ci; c++) {
      for (let t = 0; t < 9; t++) Wt[(t * Ci + c) * Co + o] = W[(o * Ci + c) * 9 + t];
    }
  }
  const out = new Float64Array(N * h * w * Co);
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
              const wc = wo + c * Co;
              for (let o = 0; o < Co; o++) acc[o] += v * Wt[wc + o];
            }
          }
        }
        out.set(acc, ((n * h + y) * w + xx) * Co);
      }
    }
  }
  return out;
}

/**
 * VJP of {@link conv3x3Forward}: dx `(N, h, w, Ci)`, dW `(Co, Ci, 3, 3)`, db `(Co)` (null without
 * bias). @param dy `(N, h, w, Co)`.
 */
export function conv3x3Backward(
  x: ArrayLike<number>,
  N: number,
  h: number,
  w: number,
  Ci: number,
  W: ArrayLike<number>,
  Co: number,
  dy: ArrayLike<number>,
  hasBias: boolean,
  r: number,
): DenseGrads {
  need(dy, N * h * w * Co, "conv3x3 dy");
  const dx = new Float64Array(N * h * w * Ci);
  const dW = new Float64Array(Co * Ci * 9);
  const db = hasBias ? new Float64Array(Co) : null;
  for (let n = 0; n < N; n++) {
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        const oo = ((n * h + y) * w + xx) * Co;
        if (db) { for (let o = 0; o < Co; o++) db[o] += dy[oo + o]; }
        for (let ky = 0; ky < 3; ky++) {
          const sy = y + r * (ky - 1);
          if (sy < 0 || sy >= h) continue;
          for (let kx = 0; kx < 3; kx++) {
            const sx = xx + r * (kx - 1);
            if (sx < 0 || sx >= w) continue;
            const xo = ((n * h + sy) * w + sx) * Ci;
            const t = ky * 3 + kx;
            for (let o = 0; o < Co; o++) {
              const g = dy[oo + o];
              if (g === 0) continue;
              for (let c = 0; c < Ci; c++) {
                const wi = (o * Ci + c) * 9 + t;
                dW[wi] += g * x[xo + c];
                dx[xo + c] += g * W[wi];
              }
            }
          }
        }
      }
    }
  }
  return { dx, dW, db };
}

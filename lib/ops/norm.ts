/**
 * Normalisations of the SNARM head with their vector-Jacobian products, float64 (spec §6):
 * RMSNorm and the Mamba fused add + RMSNorm residual stream (step 3a), the branch's final
 * LayerNorm (step 3), and the decoder's BatchNorm2d in training mode with PyTorch's running-stat
 * update (step 5). All eps = 1e-5 as in the official modules. Rows are channels-last `(rows, d)`.
 * @module
 */

/** eps of RMSNorm, LayerNorm and BatchNorm2d in the official modules. */
export const EPS = 1e-5;

function need(a: ArrayLike<number>, n: number, what: string): void {
  if (a.length !== n) throw new Error(`${what}: ${a.length} values, expected ${n}`);
}

/** RMSNorm output plus the per-row 1/rms the backward needs. */
export interface RmsNormOut {
  /** `(rows, d)` x · rstd · weight. */
  y: Float64Array;
  /** `(rows)` 1 / sqrt(mean(x²) + eps). */
  rstd: Float64Array;
}

/** RMSNorm of every row (mamba_ssm `rms_norm_ref`): y = x · (mean(x²) + eps)^−½ · weight. */
export function rmsNormForward(
  x: ArrayLike<number>,
  rows: number,
  d: number,
  weight: ArrayLike<number>,
): RmsNormOut {
  need(x, rows * d, "rmsnorm x");
  need(weight, d, "rmsnorm weight");
  const y = new Float64Array(rows * d), rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let k = 0; k < d; k++) ss += x[r * d + k] ** 2;
    const rs = 1 / Math.sqrt(ss / d + EPS);
    rstd[r] = rs;
    for (let k = 0; k < d; k++) y[r * d + k] = x[r * d + k] * rs * weight[k];
  }
  return { y, rstd };
}

/**
 * VJP of {@link rmsNormForward}:
 * dx_k = rstd·w_k·dy_k − x_k·rstd³/d · Σ_j dy_j·w_j·x_j; dweight_k = Σ_rows dy_k·x_k·rstd.
 */
export function rmsNormBackward(
  x: ArrayLike<number>,
  rows: number,
  d: number,
  weight: ArrayLike<number>,
  rstd: ArrayLike<number>,
  dy: ArrayLike<number>,
): { dx: Float64Array; dWeight: Float64Array } {
  need(dy, rows * d, "rmsnorm dy");
  const dx = new Float64Array(rows * d), dWeight = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    const rs = rstd[r];
    let dot = 0;
    for (let k = 0; k < d; k++) {
      const i = r * d + k;
      dot += dy[i] * weight[k] * x[i];
      dWeight[k] += dy[i] * x[i] * rs;
    }
    const c = dot * rs * rs * rs / d;
    for (let k = 0; k < d; k++) {
      const i = r * d + k;
      dx[i] = rs * weight[k] * dy[i] - x[i] * c;
    }
  }
  return { dx, dWeight };
}

/** Fused add + RMSNorm output (mamba_ssm `Block` with `fused_add_norm`, fp32 residual). */
export interface AddRmsNormOut extends RmsNormOut {
  /** `(rows, d)` the new residual stream: h + stream, or h for the first block. */
  stream: Float64Array;
}

/**
 * Pre-norm with residual stream (spec §6 step 3a): stream′ = h + stream (stream′ = h when
 * `stream` is null, i.e. the first block), y = RMSNorm(stream′).
 */
export function addRmsNormForward(
  h: ArrayLike<number>,
  stream: ArrayLike<number> | null,
  rows: number,
  d: number,
  weight: ArrayLike<number>,
): AddRmsNormOut {
  need(h, rows * d, "add+rmsnorm h");
  const s = new Float64Array(rows * d);
  if (stream) {
    need(stream, rows * d, "add+rmsnorm stream");
    for (let i = 0; i < s.length; i++) s[i] = h[i] + stream[i];
  } else s.set(h);
  return { stream: s, ...rmsNormForward(s, rows, d, weight) };
}

/**
 * VJP of {@link addRmsNormForward} given the upstream gradients of both outputs (the normed
 * tokens `dy` and the new stream `dStream`, either may be null = 0). Since stream′ = h + stream,
 * dh = dstream_in = dStream + RMSNorm-VJP(dy); `dStreamIn` is null when the block had no stream.
 */
export function addRmsNormBackward(
  out: AddRmsNormOut,
  hadStream: boolean,
  rows: number,
  d: number,
  weight: ArrayLike<number>,
  dy: ArrayLike<number> | null,
  dStream: ArrayLike<number> | null,
): { dh: Float64Array; dStreamIn: Float64Array | null; dWeight: Float64Array } {
  let dS: Float64Array, dWeight: Float64Array;
  if (dy) {
    const r = rmsNormBackward(out.stream, rows, d, weight, out.rstd, dy);
    dS = r.dx;
    dWeight = r.dWeight;
  } else {
    dS = new Float64Array(rows * d);
    dWeight = new Float64Array(d);
  }
  if (dStream) {
    need(dStream, rows * d, "add+rmsnorm dStream");
    for (let i = 0; i < dS.length; i++) dS[i] += dStream[i];
  }
  return { dh: dS, dStreamIn: hadStream ? dS.slice() : null, dWeight };
}

/** LayerNorm output plus what the backward needs. */
export interface LayerNormOut {
  /** `(rows, d)` x̂ · weight + bias. */
  y: Float64Array;
  /** `(rows, d)` x̂ = (x − mean) · rstd. */
  xhat: Float64Array;
  /** `(rows)` 1 / sqrt(biased var + eps). */
  rstd: Float64Array;
}

/** LayerNorm of every row (biased variance, eps 1e-5, affine), as `nn.LayerNorm`. */
export function layerNormForward(
  x: ArrayLike<number>,
  rows: number,
  d: number,
  weight: ArrayLike<number>,
  bias: ArrayLike<number>,
): LayerNormOut {
  need(x, rows * d, "layernorm x");
  need(weight, d, "layernorm weight");
  need(bias, d, "layernorm bias");
  const y = new Float64Array(rows * d), xhat = new Float64Array(rows * d);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let k = 0; k < d; k++) m += x[r * d + k];
    m /= d;
    let v = 0;
    for (let k = 0; k < d; k++) v += (x[r * d + k] - m) ** 2;
    const rs = 1 / Math.sqrt(v / d + EPS);
    rstd[r] = rs;
    for (let k = 0; k < d; k++) {
      const i = r * d + k;
      xhat[i] = (x[i] - m) * rs;
      y[i] = xhat[i] * weight[k] + bias[k];
    }
  }
  return { y, xhat, rstd };
}

/**
 * VJP of {@link layerNormForward}: with g = dy·weight,
 * dx = rstd · (g − mean(g) − x̂·mean(g·x̂)); dweight = Σ dy·x̂; dbias = Σ dy.
 */
export function layerNormBackward(
  out: LayerNormOut,
  rows: number,
  d: number,
  weight: ArrayLike<number>,
  dy: ArrayLike<number>,
): { dx: Float64Array; dWeight: Float64Array; dBias: Float64Array } {
  need(dy, rows * d, "layernorm dy");
  const { xhat, rstd } = out;
  const dx = new Float64Array(rows * d);
  const dWeight = new Float64Array(d), dBias = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    let mg = 0, mgx = 0;
    for (let k = 0; k < d; k++) {
      const i = r * d + k;
      const g = dy[i] * weight[k];
      mg += g;
      mgx += g * xhat[i];
      dWeight[k] += dy[i] * xhat[i];
      dBias[k] += dy[i];
    }
    mg /= d;
    mgx /= d;
    for (let k = 0; k < d; k++) {
      const i = r * d + k;
      dx[i] = rstd[r] * (dy[i] * weight[k] - mg - xhat[i] * mgx);
    }
  }
  return { dx, dWeight, dBias };
}

/** BatchNorm2d forward output (per channel over all M = B·h·w rows). */
export interface BatchNormOut {
  /** `(M, C)` γ·x̂ + β. */
  y: Float64Array;
  /** `(M, C)` normalised input (batch statistics in training, running statistics in eval). */
  xhat: Float64Array;
  /** `(C)` 1 / sqrt(var + eps) of the statistics used. */
  rstd: Float64Array;
  /** `(C)` batch mean (training) or running mean (eval). */
  mean: Float64Array;
  /** `(C)` biased batch variance (training) or running variance (eval). */
  var: Float64Array;
  /** Rows M the statistics were taken over. */
  M: number;
  training: boolean;
}

/**
 * BatchNorm2d on channels-last rows x `(M, C)` (M = B·h·w positions of a `(B, C, h, w)` map).
 * Training mode (`running` null): batch mean and biased batch variance, as `nn.BatchNorm2d.train()`.
 * Eval mode: the given running statistics.
 * @throws {Error} on mismatched sizes, or training with M < 2 (PyTorch refuses one value per channel).
 */
export function batchNormForward(
  x: ArrayLike<number>,
  M: number,
  C: number,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  running: { mean: ArrayLike<number>; var: ArrayLike<number> } | null,
): BatchNormOut {
  need(x, M * C, "batchnorm x");
  need(gamma, C, "batchnorm weight");
  need(beta, C, "batchnorm bias");
  const mean = new Float64Array(C), vr = new Float64Array(C);
  if (running) {
    need(running.mean, C, "batchnorm running_mean");
    need(running.var, C, "batchnorm running_var");
    mean.set(running.mean);
    vr.set(running.var);
  } else {
    if (M < 2) throw new Error(`batchnorm: training needs more than 1 value per channel, got ${M}`);
    for (let r = 0; r < M; r++) for (let c = 0; c < C; c++) mean[c] += x[r * C + c];
    for (let c = 0; c < C; c++) mean[c] /= M;
    for (let r = 0; r < M; r++) for (let c = 0; c < C; c++) vr[c] += (x[r * C + c] - mean[c]) ** 2;
    for (let c = 0; c < C; c++) vr[c] /= M;
  }
  const rstd = new Float64Array(C);
  for (let c = 0; c < C; c++) rstd[c] = 1 / Math.sqrt(vr[c] + EPS);
  const y = new Float64Array(M * C), xhat = new Float64Array(M * C);
  for (let r = 0; r < M; r++) {
    for (let c = 0; c < C; c++) {
      const i = r * C + c;
      xhat[i] = (x[i] - mean[c]) * rstd[c];
      y[i] = gamma[c] * xhat[i] + beta[c];
    }
  }
  return { y, xhat, rstd, mean, var: vr, M, training: !running };
}

/**
 * VJP of {@link batchNormForward}. Training mode (statistics depend on x):
 * dx = γ·rstd/M · (M·dy − Σdy − x̂·Σ(dy·x̂)); eval mode: dx = γ·rstd·dy.
 * dγ = Σ dy·x̂, dβ = Σ dy (sums over the M rows).
 */
export function batchNormBackward(
  out: BatchNormOut,
  C: number,
  gamma: ArrayLike<number>,
  dy: ArrayLike<number>,
): { dx: Float64Array; dGamma: Float64Array; dBeta: Float64Array } {
  const { M, xhat, rstd } = out;
  need(dy, M * C, "batchnorm dy");
  const dGamma = new Float64Array(C), dBeta = new Float64Array(C);
  for (let r = 0; r < M; r++) {
    for (let c = 0; c < C; c++) {
      dBeta[c] += dy[r * C + c];
      dGamma[c] += dy[r * C + c] * xhat[r * C + c];
    }
  }
  const dx = new Float64Array(M * C);
  for (let r = 0; r < M; r++) {
    for (let c = 0; c < C; c++) {
      const i = r * C + c;
      dx[i] = out.training
        ? gamma[c] * rstd[c] / M * (M * dy[i] - dBeta[c] - xhat[i] * dGamma[c])
        : gamma[c] * rstd[c] * dy[i];
    }
  }
  return { dx, dGamma, dBeta };
}

/**
 * PyTorch's BatchNorm running-statistics update after a training-mode forward over M rows:
 * running_mean ← (1 − m)·running_mean + m·mean, running_var ← (1 − m)·running_var +
 * m·var·M/(M − 1) (unbiased batch variance), momentum m = 0.1 by default.
 * @returns new `(C)` arrays (the inputs are not modified).
 * @throws {Error} when `out` is not a training-mode result.
 */
export function batchNormRunningUpdate(
  runningMean: ArrayLike<number>,
  runningVar: ArrayLike<number>,
  out: BatchNormOut,
  momentum = 0.1,
): { mean: Float64Array; var: Float64Array } {
  if (!out.training) throw new Error("batchnorm running update: forward was not in training mode");
  const C = out.mean.length;
  need(runningMean, C, "batchnorm running_mean");
  need(runningVar, C, "batchnorm running_var");
  const mean = new Float64Array(C), vr = new Float64Array(C);
  const unbias = out.M / (out.M - 1);
  for (let c = 0; c < C; c++) {
    mean[c] = (1 - momentum) * runningMean[c] + momentum * out.mean[c];
    vr[c] = (1 - momentum) * runningVar[c] + momentum * out.var[c] * unbias;
  }
  return { mean, var: vr };
}

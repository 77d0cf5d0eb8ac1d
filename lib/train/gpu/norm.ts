/**
 * Normalisation training kernels of the SNARM head on the GPU (spec §6), forward with saved
 * statistics and backward: fused add + RMSNorm of the Mamba residual stream (step 3a), the
 * branch's final LayerNorm (step 3) and the decoder's BatchNorm2d in training mode with PyTorch's
 * running-statistics update (step 5). eps = 1e-5 (lib/ops/norm.ts EPS). All token tensors
 * are channels-last rows `(rows, d)` row-major f32, contiguous (leading dimension d).
 * Shaders: `wgsl/train/norm.wgsl`, `wgsl/train/batchnorm.wgsl`. TypeScript references:
 * lib/ops/norm.ts.
 * @module
 */
import type { KernelSequence, Ref, Tensor } from "./graph.ts";
import { f32bits, grid2d } from "./graph.ts";
import { checkSize } from "./check.ts";
import { elementGrid, recordTrainKernel } from "./pointwise.ts";

const NORM = "train/norm.wgsl";
const BN = "train/batchnorm.wgsl";

function rowGrid(rows: number): [number, number, number] {
  return grid2d(Math.ceil(rows / 64));
}

function checkRowsD(what: string, rows: number, d: number): void {
  checkSize(`${what} rows`, rows);
  checkSize(`${what} d`, d, 1);
}

function off(r: Ref | null): number {
  return r?.off ?? 0;
}

/** Record out (+)= column sums of A `(rows, cols)` (leading dimension ld) — weight gradients. */
async function recordColumnSum(
  seq: KernelSequence,
  label: string,
  A: Ref,
  rows: number,
  cols: number,
  ld: number,
  out: Ref,
  accumulate: boolean,
): Promise<void> {
  await recordTrainKernel(seq, {
    shader: NORM,
    entry: "colsum",
    label,
    operands: [
      { key: "A", ref: A, extent: rows === 0 ? 0 : (rows - 1) * ld + cols, what: `${label} input` },
      { key: "OUT", ref: out, extent: cols, what: `${label} output` },
    ],
    params: [rows, cols, ld, off(A), off(out), accumulate ? 1 : 0],
    workgroups: [Math.ceil(cols / 8)],
  });
}

/**
 * Record the Mamba block's fused add + RMSNorm (spec §6 step 3a; mamba_ssm `Block` with
 * `fused_add_norm`, fp32 residual): streamOut = h + streamIn (= h when `streamIn` is null, the
 * first block), y = streamOut · rstd · weight, rstd = 1/sqrt(mean(streamOut²) + 1e-5).
 * Shapes: h, streamIn, streamOut, y `(rows, d)`; weight `(d)`; rstd `(rows)` (saved for the
 * backward). streamOut may alias h or streamIn exactly (in place); y must not overlap them.
 * Reference: lib/ops/norm.ts addRmsNormForward.
 * @throws {Error} on a size or range error (naming the operand).
 */
export async function recordAddRmsNormForward(
  seq: KernelSequence,
  a: {
    h: Ref;
    streamIn: Ref | null;
    rows: number;
    d: number;
    weight: Ref;
    streamOut: Ref;
    y: Ref;
    rstd: Ref;
  },
): Promise<void> {
  checkRowsD("add+rmsnorm", a.rows, a.d);
  const n = a.rows * a.d;
  await recordTrainKernel(seq, {
    shader: NORM,
    entry: "rms_fwd",
    label: "add+rmsnorm forward",
    operands: [
      { key: "H", ref: a.h, extent: n, what: "add+rmsnorm h" },
      { key: "SIN", ref: a.streamIn, extent: n, what: "add+rmsnorm streamIn" },
      { key: "W", ref: a.weight, extent: a.d, what: "add+rmsnorm weight" },
      { key: "SOUT", ref: a.streamOut, extent: n, what: "add+rmsnorm streamOut" },
      { key: "Y", ref: a.y, extent: n, what: "add+rmsnorm y" },
      { key: "RSTD", ref: a.rstd, extent: a.rows, what: "add+rmsnorm rstd" },
    ],
    params: [
      a.rows,
      a.d,
      off(a.h),
      off(a.streamIn),
      a.streamIn ? 1 : 0,
      off(a.weight),
      off(a.streamOut),
      off(a.y),
      off(a.rstd),
    ],
    workgroups: rowGrid(a.rows),
  });
}

/**
 * Record the VJP of {@link recordAddRmsNormForward}: dStream = dStreamOut (when given) +
 * RMSNorm-VJP(dy) = rstd·w·dy − s·rstd³/d·Σ_k dy_k·w_k·s_k (s = streamOut); this is both d(h)
 * and d(streamIn). dWeight (+)= Σ_rows dy·s·rstd (accumulated when `accumulateDWeight`).
 * Shapes: streamOut, dy, dStreamOut, dStream `(rows, d)`; rstd `(rows)`; weight, dWeight `(d)`;
 * scratch ≥ rows·d elements (per-row dWeight terms). dStream may alias dStreamOut exactly.
 * Reference: lib/ops/norm.ts addRmsNormBackward / rmsNormBackward.
 * @throws {Error} on a size or range error.
 */
export async function recordAddRmsNormBackward(
  seq: KernelSequence,
  a: {
    streamOut: Ref;
    rstd: Ref;
    rows: number;
    d: number;
    weight: Ref;
    dy: Ref;
    dStreamOut: Ref | null;
    dStream: Ref;
    dWeight: Ref;
    accumulateDWeight?: boolean;
    scratch: Tensor;
  },
): Promise<void> {
  checkRowsD("add+rmsnorm backward", a.rows, a.d);
  const n = a.rows * a.d;
  const scratch: Ref = { t: a.scratch };
  await recordTrainKernel(seq, {
    shader: NORM,
    entry: "rms_bwd",
    label: "add+rmsnorm backward",
    operands: [
      { key: "SOUT", ref: a.streamOut, extent: n, what: "add+rmsnorm backward streamOut" },
      { key: "RSTD", ref: a.rstd, extent: a.rows, what: "add+rmsnorm backward rstd" },
      { key: "W", ref: a.weight, extent: a.d, what: "add+rmsnorm backward weight" },
      { key: "DY", ref: a.dy, extent: n, what: "add+rmsnorm backward dy" },
      { key: "DSO", ref: a.dStreamOut, extent: n, what: "add+rmsnorm backward dStreamOut" },
      { key: "DS", ref: a.dStream, extent: n, what: "add+rmsnorm backward dStream" },
      { key: "SCR", ref: scratch, extent: n, what: "add+rmsnorm backward scratch" },
    ],
    params: [
      a.rows,
      a.d,
      off(a.streamOut),
      off(a.rstd),
      off(a.weight),
      off(a.dy),
      off(a.dStreamOut),
      a.dStreamOut ? 1 : 0,
      off(a.dStream),
      0,
    ],
    workgroups: rowGrid(a.rows),
  });
  await recordColumnSum(
    seq,
    "add+rmsnorm backward dWeight",
    scratch,
    a.rows,
    a.d,
    a.d,
    a.dWeight,
    !!a.accumulateDWeight,
  );
}

/**
 * Record LayerNorm of every row (nn.LayerNorm: biased variance, eps 1e-5, affine; spec §6 step 3):
 * y = (x − mean)·rstd·weight + bias. Shapes: x, y `(rows, d)`; weight, bias `(d)`; mean, rstd
 * `(rows)` saved for the backward. Reference: lib/ops/norm.ts layerNormForward.
 * @throws {Error} on a size or range error.
 */
export async function recordLayerNormForward(
  seq: KernelSequence,
  a: {
    x: Ref;
    rows: number;
    d: number;
    weight: Ref;
    bias: Ref;
    y: Ref;
    mean: Ref;
    rstd: Ref;
  },
): Promise<void> {
  checkRowsD("layernorm", a.rows, a.d);
  const n = a.rows * a.d;
  await recordTrainKernel(seq, {
    shader: NORM,
    entry: "ln_fwd",
    label: "layernorm forward",
    operands: [
      { key: "X", ref: a.x, extent: n, what: "layernorm x" },
      { key: "W", ref: a.weight, extent: a.d, what: "layernorm weight" },
      { key: "B", ref: a.bias, extent: a.d, what: "layernorm bias" },
      { key: "Y", ref: a.y, extent: n, what: "layernorm y" },
      { key: "MEAN", ref: a.mean, extent: a.rows, what: "layernorm mean" },
      { key: "RSTD", ref: a.rstd, extent: a.rows, what: "layernorm rstd" },
    ],
    params: [a.rows, a.d, off(a.x), off(a.weight), off(a.bias), off(a.y), off(a.mean), off(a.rstd)],
    workgroups: rowGrid(a.rows),
  });
}

/**
 * Record the VJP of {@link recordLayerNormForward}: with x̂ = (x − mean)·rstd and g = dy·weight,
 * dx = rstd·(g − mean(g) − x̂·mean(g·x̂)); dWeight = Σ_rows dy·x̂; dBias = Σ_rows dy (both
 * written, not accumulated). Shapes: x, dy, dx `(rows, d)`; mean, rstd `(rows)`; weight, dWeight,
 * dBias `(d)`; scratch ≥ rows·d. dx may alias dy exactly. Reference: layerNormBackward.
 * @throws {Error} on a size or range error.
 */
export async function recordLayerNormBackward(
  seq: KernelSequence,
  a: {
    x: Ref;
    mean: Ref;
    rstd: Ref;
    rows: number;
    d: number;
    weight: Ref;
    dy: Ref;
    dx: Ref;
    dWeight: Ref;
    dBias: Ref;
    scratch: Tensor;
  },
): Promise<void> {
  checkRowsD("layernorm backward", a.rows, a.d);
  const n = a.rows * a.d;
  const scratch: Ref = { t: a.scratch };
  // dBias first: dx may overwrite dy in place.
  await recordColumnSum(seq, "layernorm backward dBias", a.dy, a.rows, a.d, a.d, a.dBias, false);
  await recordTrainKernel(seq, {
    shader: NORM,
    entry: "ln_bwd",
    label: "layernorm backward",
    operands: [
      { key: "X", ref: a.x, extent: n, what: "layernorm backward x" },
      { key: "MEAN", ref: a.mean, extent: a.rows, what: "layernorm backward mean" },
      { key: "RSTD", ref: a.rstd, extent: a.rows, what: "layernorm backward rstd" },
      { key: "W", ref: a.weight, extent: a.d, what: "layernorm backward weight" },
      { key: "DY", ref: a.dy, extent: n, what: "layernorm backward dy" },
      { key: "DX", ref: a.dx, extent: n, what: "layernorm backward dx" },
      { key: "SCR", ref: scratch, extent: n, what: "layernorm backward scratch" },
    ],
    params: [
      a.rows,
      a.d,
      off(a.x),
      off(a.mean),
      off(a.rstd),
      off(a.weight),
      off(a.dy),
      off(a.dx),
      0,
    ],
    workgroups: rowGrid(a.rows),
  });
  await recordColumnSum(
    seq,
    "layernorm backward dWeight",
    scratch,
    a.rows,
    a.d,
    a.d,
    a.dWeight,
    false,
  );
}

/**
 * Record BatchNorm2d in training mode (nn.BatchNorm2d.train(); spec §6 step 5) over channels-last
 * x `(rows, C)` (rows = B·h·w positions): per channel the batch mean and biased variance,
 * rstd = 1/sqrt(var + 1e-5), y = gamma·(x − mean)·rstd + beta, and PyTorch's running update
 * runningMean ← (1 − momentum)·runningMean + momentum·mean, runningVar ← (1 − momentum)·runningVar
 * + momentum·var·rows/(rows − 1) (in place, every run). Shapes: x, y `(rows, C)`; gamma, beta,
 * mean, rstd, runningMean, runningVar `(C)`. References: lib/ops/norm.ts
 * batchNormForward (training) and batchNormRunningUpdate.
 * @throws {Error} on a size or range error, or rows < 2 (as PyTorch).
 */
export async function recordBatchNormForward(
  seq: KernelSequence,
  a: {
    x: Ref;
    rows: number;
    C: number;
    gamma: Ref;
    beta: Ref;
    y: Ref;
    mean: Ref;
    rstd: Ref;
    runningMean: Ref;
    runningVar: Ref;
    momentum: number;
  },
): Promise<void> {
  checkSize("batchnorm rows (more than 1 value per channel)", a.rows, 2);
  checkSize("batchnorm C", a.C, 1);
  if (!(a.momentum >= 0 && a.momentum <= 1)) {
    throw new Error(`batchnorm: momentum must be in [0, 1], got ${a.momentum}`);
  }
  const n = a.rows * a.C;
  await recordTrainKernel(seq, {
    shader: BN,
    entry: "bn_stats",
    label: "batchnorm statistics",
    operands: [
      { key: "X", ref: a.x, extent: n, what: "batchnorm x" },
      { key: "MEAN", ref: a.mean, extent: a.C, what: "batchnorm mean" },
      { key: "RSTD", ref: a.rstd, extent: a.C, what: "batchnorm rstd" },
      { key: "RM", ref: a.runningMean, extent: a.C, what: "batchnorm runningMean" },
      { key: "RV", ref: a.runningVar, extent: a.C, what: "batchnorm runningVar" },
    ],
    params: [
      a.rows,
      a.C,
      off(a.x),
      off(a.mean),
      off(a.rstd),
      off(a.runningMean),
      off(a.runningVar),
      f32bits(a.momentum),
    ],
    workgroups: [Math.ceil(a.C / 8)],
  });
  await recordTrainKernel(seq, {
    shader: BN,
    entry: "bn_apply",
    label: "batchnorm forward",
    operands: [
      { key: "X", ref: a.x, extent: n, what: "batchnorm x" },
      { key: "MEAN", ref: a.mean, extent: a.C, what: "batchnorm mean" },
      { key: "RSTD", ref: a.rstd, extent: a.C, what: "batchnorm rstd" },
      { key: "G", ref: a.gamma, extent: a.C, what: "batchnorm gamma" },
      { key: "B", ref: a.beta, extent: a.C, what: "batchnorm beta" },
      { key: "Y", ref: a.y, extent: n, what: "batchnorm y" },
    ],
    params: [
      a.rows,
      a.C,
      off(a.x),
      off(a.mean),
      off(a.rstd),
      off(a.gamma),
      off(a.beta),
      off(a.y),
    ],
    workgroups: elementGrid(n),
  });
}

/**
 * Record the training-mode VJP of {@link recordBatchNormForward}: dBeta = Σ_rows dy,
 * dGamma = Σ_rows dy·x̂ (written, not accumulated), dx = gamma·rstd/rows·(rows·dy − dBeta −
 * x̂·dGamma), x̂ = (x − mean)·rstd. Shapes: x, dy, dx `(rows, C)`; mean, rstd, gamma, dGamma,
 * dBeta `(C)`. dx may alias dy exactly. Reference: lib/ops/norm.ts batchNormBackward.
 * @throws {Error} on a size or range error.
 */
export async function recordBatchNormBackward(
  seq: KernelSequence,
  a: {
    x: Ref;
    mean: Ref;
    rstd: Ref;
    rows: number;
    C: number;
    gamma: Ref;
    dy: Ref;
    dx: Ref;
    dGamma: Ref;
    dBeta: Ref;
  },
): Promise<void> {
  checkSize("batchnorm backward rows", a.rows, 1);
  checkSize("batchnorm backward C", a.C, 1);
  const n = a.rows * a.C;
  await recordTrainKernel(seq, {
    shader: BN,
    entry: "bn_bstats",
    label: "batchnorm backward statistics",
    operands: [
      { key: "X", ref: a.x, extent: n, what: "batchnorm backward x" },
      { key: "MEAN", ref: a.mean, extent: a.C, what: "batchnorm backward mean" },
      { key: "RSTD", ref: a.rstd, extent: a.C, what: "batchnorm backward rstd" },
      { key: "DY", ref: a.dy, extent: n, what: "batchnorm backward dy" },
      { key: "DG", ref: a.dGamma, extent: a.C, what: "batchnorm backward dGamma" },
      { key: "DB", ref: a.dBeta, extent: a.C, what: "batchnorm backward dBeta" },
    ],
    params: [
      a.rows,
      a.C,
      off(a.x),
      off(a.mean),
      off(a.rstd),
      off(a.dy),
      off(a.dGamma),
      off(a.dBeta),
    ],
    workgroups: [Math.ceil(a.C / 8)],
  });
  await recordTrainKernel(seq, {
    shader: BN,
    entry: "bn_bapply",
    label: "batchnorm backward",
    operands: [
      { key: "X", ref: a.x, extent: n, what: "batchnorm backward x" },
      { key: "MEAN", ref: a.mean, extent: a.C, what: "batchnorm backward mean" },
      { key: "RSTD", ref: a.rstd, extent: a.C, what: "batchnorm backward rstd" },
      { key: "G", ref: a.gamma, extent: a.C, what: "batchnorm backward gamma" },
      { key: "DY", ref: a.dy, extent: n, what: "batchnorm backward dy" },
      { key: "DX", ref: a.dx, extent: n, what: "batchnorm backward dx" },
      { key: "DG", ref: a.dGamma, extent: a.C, what: "batchnorm backward dGamma" },
      { key: "DB", ref: a.dBeta, extent: a.C, what: "batchnorm backward dBeta" },
    ],
    params: [
      a.rows,
      a.C,
      off(a.x),
      off(a.mean),
      off(a.rstd),
      off(a.gamma),
      off(a.dy),
      off(a.dx),
      off(a.dGamma),
      off(a.dBeta),
    ],
    workgroups: elementGrid(n),
  });
}

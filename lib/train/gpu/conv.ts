/**
 * 3×3 convolution of the training step (spec §5 block conv, r = 1 with bias; §6 decoder convs,
 * dilation r = scale, no bias) as im2col + GEMM, its backward (dW = dYᵀ·im2col(X),
 * dX = col2im(dY·W), dBias = Σ_rows dY), and column sums. Zero padding = dilation, stride 1,
 * "same" size; activations channels-last `(n, h, w, C)` row-major f32; weights in the PyTorch
 * layout `(Cout, Cin, 3, 3)`, i.e. a `(Cout, 9·Cin)` matrix whose column index ci·9 + ky·3 + kx is
 * the im2col column index. Kernels: `wgsl/train/im2col.wgsl`, `wgsl/train/col2im.wgsl`,
 * `wgsl/train/colsum.wgsl`, `wgsl/train/gemm.wgsl`. TypeScript references: {@link im2colRef},
 * {@link col2imRef}, {@link colSumRef}; the convolution itself is lib/ops/dense.ts
 * `conv3x3Forward` / `conv3x3Backward`.
 * @module
 */
import type { KernelSequence, Ref, Tensor } from "./graph.ts";
import { grid2d } from "./graph.ts";
import { checkDims, checkRef } from "./check.ts";
import { recordGemm, scratchTensor } from "./gemm.ts";

/** Arguments of {@link recordIm2col}. */
export interface Im2colArgs {
  /** Input `(n, h, w, C)` channels-last. */
  X: Ref;
  n: number;
  h: number;
  w: number;
  C: number;
  /** Dilation (= zero padding). */
  dil: number;
  /** Output `(n·h·w, 9·C)`, column ci·9 + ky·3 + kx. */
  col: Ref;
}

/**
 * Record im2col of a "same" 3×3 convolution with dilation `dil`:
 * col[p, ci·9 + ky·3 + kx] = X[n, y + dil·(ky−1), x + dil·(kx−1), ci] (0 outside the grid), p = (n, y, x).
 * @throws {Error} on non-positive sizes or operands too short.
 */
export async function recordIm2col(seq: KernelSequence, a: Im2colArgs): Promise<void> {
  const { n, h, w, C, dil } = a;
  checkDims("recordIm2col", { n, h, w, C, dil });
  const total = n * h * w * 9 * C;
  checkRef("recordIm2col: X", a.X, n * h * w * C);
  checkRef("recordIm2col: col", a.col, total);
  if (a.X.t === a.col.t) throw new Error("recordIm2col: X and col must be different tensors");
  await seq.dispatch({
    shader: "train/im2col.wgsl",
    params: [n, h, w, C, dil, a.X.off ?? 0, a.col.off ?? 0, total / 9],
    bindings: [a.X.t, a.col.t],
    workgroups: grid2d(Math.ceil(total / 9 / 64)),
    label: `im2col ${n}×${h}×${w}×${C} dil ${dil}`,
  });
}

/** Arguments of {@link recordCol2im}. */
export interface Col2imArgs {
  /** Gradient of the im2col output `(n·h·w, 9·C)`. */
  dcol: Ref;
  n: number;
  h: number;
  w: number;
  C: number;
  dil: number;
  /** Input gradient `(n, h, w, C)`: written, or added to when `accumulate`. */
  dX: Ref;
  accumulate?: boolean;
}

/**
 * Record col2im, the adjoint of {@link recordIm2col}: dX[n, y, x, ci] (+)= Σ_{ky,kx}
 * dcol[(n, y − dil·(ky−1), x − dil·(kx−1)), ci·9 + ky·3 + kx] over the in-grid taps.
 * @throws {Error} on non-positive sizes or operands too short.
 */
export async function recordCol2im(seq: KernelSequence, a: Col2imArgs): Promise<void> {
  const { n, h, w, C, dil } = a;
  checkDims("recordCol2im", { n, h, w, C, dil });
  const total = n * h * w * C;
  checkRef("recordCol2im: dcol", a.dcol, total * 9);
  checkRef("recordCol2im: dX", a.dX, total);
  if (a.dX.t === a.dcol.t) throw new Error("recordCol2im: dcol and dX must be different tensors");
  await seq.dispatch({
    shader: "train/col2im.wgsl",
    params: [n, h, w, C, dil, a.dcol.off ?? 0, a.dX.off ?? 0, total, a.accumulate ? 1 : 0],
    bindings: [a.dcol.t, a.dX.t],
    workgroups: grid2d(Math.ceil(total / 64)),
    label: `col2im ${n}×${h}×${w}×${C} dil ${dil}`,
  });
}

/** Arguments of {@link recordColSum}. */
export interface ColSumArgs {
  /** `(rows, cols)` with leading dimension `lda`. */
  A: Ref;
  rows: number;
  cols: number;
  lda: number;
  /** Optional elementwise factor `(rows, cols)` with leading dimension `ldb`. */
  B?: Ref;
  ldb?: number;
  /** `(cols)`: written, or added to when `accumulate`. */
  out: Ref;
  accumulate?: boolean;
}

/** Rows per lane per pass of the column sum. */
const COLSUM_R = 256;

/**
 * Record out[c] (+)= Σ_r A[r·lda + c] (· B[r·ldb + c] when B is given), c < cols: chunks of 256
 * rows per workgroup into partials, then the partials are summed the same way (no lane sums more
 * than 256 values serially). `rows` = 0 gives out = 0 (or leaves it when accumulating).
 * @throws {Error} on bad sizes, operands too short, or `out` sharing a tensor with A or B.
 */
export async function recordColSum(seq: KernelSequence, a: ColSumArgs): Promise<void> {
  await colSumLevel(seq, a, 0);
}

async function colSumLevel(seq: KernelSequence, a: ColSumArgs, depth: number): Promise<void> {
  const what = "recordColSum";
  const { rows, cols, lda } = a;
  checkDims(what, { cols, lda });
  if (!Number.isInteger(rows) || rows < 0) throw new Error(`${what}: rows = ${rows} invalid`);
  if (lda < cols) throw new Error(`${what}: lda ${lda} < cols ${cols}`);
  const ldb = a.ldb ?? cols;
  if (a.B && ldb < cols) throw new Error(`${what}: ldb ${ldb} < cols ${cols}`);
  if (rows > 0) checkRef(`${what}: A`, a.A, (rows - 1) * lda + cols);
  if (a.B && rows > 0) checkRef(`${what}: B`, a.B, (rows - 1) * ldb + cols);
  checkRef(`${what}: out`, a.out, cols);
  if (a.out.t === a.A.t || a.out.t === a.B?.t) {
    throw new Error(`${what}: out (${a.out.t.label}) must not be the same tensor as A or B`);
  }
  const chunks = Math.max(1, Math.ceil(rows / COLSUM_R));
  const gx = Math.ceil(cols / 64);
  if (chunks > 65535 || gx > 65535) throw new Error(`${what}: ${rows}×${cols} too large`);
  const pass = (outT: Tensor, outOff: number, flags: number) =>
    seq.dispatch({
      shader: "train/colsum.wgsl",
      params: [
        rows,
        cols,
        a.A.off ?? 0,
        lda,
        a.B?.off ?? 0,
        ldb,
        outOff,
        flags | (a.B ? 2 : 0),
        COLSUM_R,
      ],
      bindings: [a.A.t, (a.B ?? a.A).t, outT],
      workgroups: [gx, chunks, 1],
      label: `colsum ${rows}×${cols}`,
    });
  if (chunks === 1) {
    await pass(a.out.t, a.out.off ?? 0, a.accumulate ? 1 : 0);
    return;
  }
  const part = scratchTensor(seq, `colsum.${depth}`, chunks * cols);
  await pass(part, 0, 0);
  await colSumLevel(
    seq,
    { A: { t: part }, rows: chunks, cols, lda: cols, out: a.out, accumulate: a.accumulate },
    depth + 1,
  );
}

/** Arguments of {@link recordConv3x3Forward}. */
export interface Conv3x3ForwardArgs {
  /** Input `(n, h, w, Cin)`. */
  X: Ref;
  n: number;
  h: number;
  w: number;
  Cin: number;
  Cout: number;
  dil: number;
  /** Weights `(Cout, Cin, 3, 3)`. */
  W: Ref;
  /** `(Cout)`. */
  bias?: Ref;
  /** Output `(n, h, w, Cout)` (written). */
  Y: Ref;
  /** Scratch of ≥ n·h·w·9·Cin elements (holds im2col(X) afterwards). */
  col: Tensor;
}

/**
 * Record Y = conv3x3(X; W, dil) (+ bias): im2col, then Y = col·Wᵀ (+ bias) (lib/ops/dense.ts
 * conv3x3Forward semantics).
 * @throws {Error} on bad sizes or operands too short.
 */
export async function recordConv3x3Forward(
  seq: KernelSequence,
  a: Conv3x3ForwardArgs,
): Promise<void> {
  const { n, h, w, Cin, Cout, dil } = a;
  checkDims("recordConv3x3Forward", { n, h, w, Cin, Cout, dil });
  const rows = n * h * w, K = 9 * Cin;
  checkRef("recordConv3x3Forward: col", { t: a.col }, rows * K);
  checkRef("recordConv3x3Forward: W", a.W, Cout * K);
  await recordIm2col(seq, { X: a.X, n, h, w, C: Cin, dil, col: { t: a.col } });
  await recordGemm(seq, {
    M: rows,
    N: Cout,
    K,
    A: { t: a.col },
    lda: K,
    B: a.W,
    ldb: K,
    transB: true,
    C: a.Y,
    ldc: Cout,
    bias: a.bias,
  });
}

/** Arguments of {@link recordConv3x3Backward}. */
export interface Conv3x3BackwardArgs {
  /** The forward input `(n, h, w, Cin)`. */
  X: Ref;
  n: number;
  h: number;
  w: number;
  Cin: number;
  Cout: number;
  dil: number;
  /** Weights `(Cout, Cin, 3, 3)`. */
  W: Ref;
  /** Output gradient `(n, h, w, Cout)`. */
  dY: Ref;
  /** Input gradient `(n, h, w, Cin)`, or null when not needed. */
  dX: Ref | null;
  /** Add into dX instead of writing it. */
  accumulateDX?: boolean;
  /** Weight gradient `(Cout, Cin, 3, 3)`. */
  dW: Ref;
  /** Bias gradient `(Cout)`. */
  dBias?: Ref;
  /** Add into dW and dBias instead of writing them. */
  accumulateDW?: boolean;
  /** Scratch ≥ n·h·w·9·Cin (im2col(X) is recomputed into it). */
  col: Tensor;
  /** Scratch ≥ n·h·w·9·Cin (dY·W). */
  dcol: Tensor;
}

/**
 * Record the VJP of {@link recordConv3x3Forward} (lib/ops/dense.ts conv3x3Backward):
 * dW (+)= dYᵀ·im2col(X), dBias (+)= Σ_rows dY, dX (+)= col2im(dY·W).
 * @throws {Error} on bad sizes or operands too short.
 */
export async function recordConv3x3Backward(
  seq: KernelSequence,
  a: Conv3x3BackwardArgs,
): Promise<void> {
  const { n, h, w, Cin, Cout, dil } = a;
  const what = "recordConv3x3Backward";
  checkDims(what, { n, h, w, Cin, Cout, dil });
  const rows = n * h * w, K = 9 * Cin;
  checkRef(`${what}: col`, { t: a.col }, rows * K);
  checkRef(`${what}: W`, a.W, Cout * K);
  checkRef(`${what}: dY`, a.dY, rows * Cout);
  await recordIm2col(seq, { X: a.X, n, h, w, C: Cin, dil, col: { t: a.col } });
  await recordGemm(seq, {
    M: Cout,
    N: K,
    K: rows,
    A: a.dY,
    lda: Cout,
    transA: true,
    B: { t: a.col },
    ldb: K,
    C: a.dW,
    ldc: K,
    accumulate: a.accumulateDW,
  });
  if (a.dBias) {
    await recordColSum(seq, {
      A: a.dY,
      rows,
      cols: Cout,
      lda: Cout,
      out: a.dBias,
      accumulate: a.accumulateDW,
    });
  }
  if (a.dX) {
    checkRef(`${what}: dcol`, { t: a.dcol }, rows * K);
    await recordGemm(seq, {
      M: rows,
      N: K,
      K: Cout,
      A: a.dY,
      lda: Cout,
      B: a.W,
      ldb: K,
      C: { t: a.dcol },
      ldc: K,
    });
    await recordCol2im(seq, {
      dcol: { t: a.dcol },
      n,
      h,
      w,
      C: Cin,
      dil,
      dX: a.dX,
      accumulate: a.accumulateDX,
    });
  }
}

/** Host operand (array and element offset) of the TypeScript references. */
interface HostArr {
  t: Float32Array | Float64Array;
  off?: number;
}

/** TypeScript reference of {@link recordIm2col} (writes into `col.t`). */
export function im2colRef(
  X: HostArr,
  n: number,
  h: number,
  w: number,
  C: number,
  dil: number,
  col: HostArr,
): void {
  const xo = X.off ?? 0, co = col.off ?? 0;
  for (let p = 0; p < n * h * w; p++) {
    const x = p % w, y = Math.floor(p / w) % h, b = Math.floor(p / (w * h));
    for (let ci = 0; ci < C; ci++) {
      for (let t = 0; t < 9; t++) {
        const sy = y + dil * (Math.floor(t / 3) - 1), sx = x + dil * ((t % 3) - 1);
        col.t[co + p * 9 * C + ci * 9 + t] = sy >= 0 && sy < h && sx >= 0 && sx < w
          ? X.t[xo + ((b * h + sy) * w + sx) * C + ci]
          : 0;
      }
    }
  }
}

/** TypeScript reference of {@link recordCol2im} (writes or adds into `dX.t`). */
export function col2imRef(
  dcol: HostArr,
  n: number,
  h: number,
  w: number,
  C: number,
  dil: number,
  dX: HostArr,
  accumulate = false,
): void {
  const xo = dX.off ?? 0, co = dcol.off ?? 0;
  if (!accumulate) dX.t.fill(0, xo, xo + n * h * w * C);
  for (let p = 0; p < n * h * w; p++) {
    const x = p % w, y = Math.floor(p / w) % h, b = Math.floor(p / (w * h));
    for (let ci = 0; ci < C; ci++) {
      for (let t = 0; t < 9; t++) {
        const sy = y + dil * (Math.floor(t / 3) - 1), sx = x + dil * ((t % 3) - 1);
        if (sy >= 0 && sy < h && sx >= 0 && sx < w) {
          dX.t[xo + ((b * h + sy) * w + sx) * C + ci] += dcol.t[co + p * 9 * C + ci * 9 + t];
        }
      }
    }
  }
}

/** TypeScript reference of {@link recordColSum} (float64 sums; writes or adds into `out.t`). */
export function colSumRef(
  A: HostArr,
  rows: number,
  cols: number,
  lda: number,
  out: HostArr,
  B?: HostArr,
  ldb = cols,
  accumulate = false,
): void {
  const ao = A.off ?? 0, bo = B?.off ?? 0, oo = out.off ?? 0;
  for (let c = 0; c < cols; c++) {
    let s = 0;
    for (let r = 0; r < rows; r++) {
      s += A.t[ao + r * lda + c] * (B ? B.t[bo + r * ldb + c] : 1);
    }
    out.t[oo + c] = accumulate ? out.t[oo + c] + s : s;
  }
}

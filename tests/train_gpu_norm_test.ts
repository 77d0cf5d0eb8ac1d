/**
 * Group B training kernels on the real adapter (lib/train/gpu/norm.ts, pointwise.ts, loss.ts,
 * adamw.ts): every forward vs the float64 TypeScript reference (|gpu − ref| ≤ 1e-4·(1 + |ref|)),
 * every backward vs the reference VJP (≤ 1e-4·(1 + max|ref|)), and a directional central
 * finite-difference check on the adapter (Σ v·grad vs Σ g·(F(x+εv) − F(x−εv))/2ε, ε = 1e-2, both
 * forwards on the GPU, sums in float64, relative error ≤ 2e-3). Operands sit at non-zero offsets
 * inside shared tensors (weight and bias in one parameter tensor, their gradients in one tensor)
 * and odd sizes (rows 37) exercise the bounds.
 */
import assert from "node:assert/strict";
import { gpuTest, requireGpu } from "./_gpu.ts";
import { KernelSequence, type Tensor } from "../lib/train/gpu/graph.ts";
import {
  recordAddRmsNormBackward,
  recordAddRmsNormForward,
  recordBatchNormBackward,
  recordBatchNormForward,
  recordLayerNormBackward,
  recordLayerNormForward,
} from "../lib/train/gpu/norm.ts";
import {
  type PointwiseOp,
  recordGateBackward,
  recordGateForward,
  recordMul,
  recordPointwise,
  recordPointwiseBackward,
} from "../lib/train/gpu/pointwise.ts";
import { recordSnarmLoss } from "../lib/train/gpu/loss.ts";
import { recordAdamW } from "../lib/train/gpu/adamw.ts";
import {
  addRmsNormBackward,
  addRmsNormForward,
  batchNormBackward,
  batchNormForward,
  batchNormRunningUpdate,
  layerNormBackward,
  layerNormForward,
} from "../lib/ops/norm.ts";
import {
  mulberry32,
  relu,
  reluGrad,
  sigmoid,
  silu,
  siluGrad,
  softplus,
  softplusGrad,
} from "../lib/ops/pointwise.ts";
import { gateBackward, gateForward } from "../lib/ops/mamba.ts";
import { snarmLoss } from "../lib/train/loss.ts";
import { AdamW } from "../lib/train/adamw.ts";

const FWD_TOL = 1e-4;
const BWD_TOL = 1e-4;
const FD_EPS = 1e-2;
const FD_TOL = 2e-3;

const rnd = mulberry32(1234);
function rand(n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rnd();
  return a;
}

/** Elementwise |gpu − ref| ≤ tol·(1 + |ref|). */
function closeElem(gpu: ArrayLike<number>, ref: ArrayLike<number>, what: string, tol = FWD_TOL) {
  assert.equal(gpu.length, ref.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    const e = Math.abs(gpu[i] - ref[i]) / (1 + Math.abs(ref[i]));
    assert.ok(Number.isFinite(gpu[i]) && e <= tol, `${what}[${i}]: gpu ${gpu[i]} vs ref ${ref[i]}`);
    worst = Math.max(worst, e);
  }
  return worst;
}

/** Elementwise |gpu − ref| ≤ tol·(1 + max|ref|) (gradients). */
function closeGrad(gpu: ArrayLike<number>, ref: ArrayLike<number>, what: string, tol = BWD_TOL) {
  assert.equal(gpu.length, ref.length, `${what}: length`);
  let mx = 0;
  for (let i = 0; i < ref.length; i++) mx = Math.max(mx, Math.abs(ref[i]));
  for (let i = 0; i < ref.length; i++) {
    assert.ok(
      Number.isFinite(gpu[i]) && Math.abs(gpu[i] - ref[i]) <= tol * (1 + mx),
      `${what}[${i}]: gpu ${gpu[i]} vs ref ${ref[i]} (max |ref| ${mx})`,
    );
  }
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** A forward input (region of a tensor) whose perturbation the FD check applies. */
interface FdInput {
  name: string;
  t: Tensor;
  off: number;
  base: Float32Array;
  /** Gradient computed by the backward kernel. */
  grad: ArrayLike<number>;
  /** Direction generator (default uniform in [−1, 1]). */
  dir?: () => Float32Array;
}
/** A forward output region and its cotangent. */
interface FdOutput {
  t: Tensor;
  off: number;
  g: ArrayLike<number>;
}

/**
 * Directional central FD on the adapter: for each input, Σ v·grad vs Σ_outputs Σ g·(F(x+εv) −
 * F(x−εv))/2ε with `fwd` (a GPU forward sequence) evaluating F.
 */
async function fdCheck(fwd: KernelSequence, inputs: FdInput[], outputs: FdOutput[], what: string) {
  for (const inp of inputs) {
    const v = inp.dir ? inp.dir() : rand(inp.base.length);
    const evalAt = async (s: number) => {
      const x = new Float32Array(inp.base.length);
      for (let i = 0; i < x.length; i++) x[i] = inp.base[i] + s * FD_EPS * v[i];
      fwd.upload(inp.t, x, inp.off);
      await fwd.run();
      let acc = 0;
      for (const o of outputs) acc += dot(o.g, await fwd.read(o.t, o.off, o.g.length));
      return acc;
    };
    const fd = (await evalAt(1) - await evalAt(-1)) / (2 * FD_EPS);
    fwd.upload(inp.t, inp.base, inp.off);
    const an = dot(v, inp.grad);
    const rel = Math.abs(an - fd) / Math.max(Math.abs(an), Math.abs(fd), 1e-12);
    console.log(
      `  FD ${what} d/d${inp.name}: analytic ${an.toFixed(6)} fd ${fd.toFixed(6)} rel ${
        rel.toExponential(2)
      }`,
    );
    assert.ok(
      rel <= FD_TOL,
      `${what}: FD check for ${inp.name}: analytic ${an}, FD ${fd}, rel ${rel}`,
    );
  }
}

Deno.test({
  name: "train gpu: add + RMSNorm forward/backward vs reference and finite differences",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const rows = 37, d = 19, n = rows * d;
    for (const withStream of [true, false]) {
      const h = rand(n), s = rand(n), w = rand(d, 0.5, 1.5);
      const dy = rand(n), dso = rand(n);
      const seq = new KernelSequence(gpu, "rms");
      const tIn = seq.tensor(2 * n + 5, "inputs"); // h at 5, streamIn at 5 + n
      const tP = seq.tensor(d + 3, "params"); // weight at 3
      const tSo = seq.tensor(n, "streamOut"),
        tY = seq.tensor(n + 2, "y"),
        tR = seq.tensor(rows, "rstd");
      const tDy = seq.tensor(dy, "dy"), tDso = seq.tensor(dso, "dStreamOut");
      const tDs = seq.tensor(n, "dStream"), tG = seq.tensor(d + 7, "grads"); // dWeight at 7
      const scratch = seq.tensor(n, "scratch");
      seq.upload(tIn, h, 5);
      seq.upload(tIn, s, 5 + n);
      seq.upload(tP, w, 3);
      const gInit = rand(d);
      seq.upload(tG, gInit, 7);
      const fwdArgs = {
        h: { t: tIn, off: 5 },
        streamIn: withStream ? { t: tIn, off: 5 + n } : null,
        rows,
        d,
        weight: { t: tP, off: 3 },
        streamOut: { t: tSo },
        y: { t: tY, off: 2 },
        rstd: { t: tR },
      };
      await recordAddRmsNormForward(seq, fwdArgs);
      await recordAddRmsNormBackward(seq, {
        streamOut: { t: tSo },
        rstd: { t: tR },
        rows,
        d,
        weight: { t: tP, off: 3 },
        dy: { t: tDy },
        dStreamOut: { t: tDso },
        dStream: { t: tDs },
        dWeight: { t: tG, off: 7 },
        accumulateDWeight: true,
        scratch,
      });
      await seq.run();
      const ref = addRmsNormForward(h, withStream ? s : null, rows, d, w);
      closeElem(await seq.read(tSo), ref.stream, "streamOut");
      closeElem(await seq.read(tY, 2, n), ref.y, "y");
      closeElem(await seq.read(tR), ref.rstd, "rstd");
      const rb = addRmsNormBackward(ref, withStream, rows, d, w, dy, dso);
      const dS = await seq.read(tDs);
      closeGrad(dS, rb.dh, "dStream");
      const dW = await seq.read(tG, 7, d);
      closeGrad(dW, rb.dWeight.map((v, i) => v + gInit[i]), "dWeight (accumulated)");

      const fwd = new KernelSequence(gpu, "rms fwd");
      await recordAddRmsNormForward(fwd, fwdArgs);
      const outs = [{ t: tSo, off: 0, g: dso }, { t: tY, off: 2, g: dy }];
      const inputs: FdInput[] = [
        { name: "h", t: tIn, off: 5, base: h, grad: dS },
        {
          name: "weight",
          t: tP,
          off: 3,
          base: w,
          grad: rb.dWeight.map((_, i) => dW[i] - gInit[i]),
        },
      ];
      if (withStream) inputs.push({ name: "streamIn", t: tIn, off: 5 + n, base: s, grad: dS });
      await fdCheck(fwd, inputs, outs, `add+rmsnorm (stream ${withStream})`);
      seq.destroy();
      fwd.destroy();
    }
  },
});

Deno.test({
  name: "train gpu: LayerNorm forward/backward vs reference and finite differences",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const rows = 37, d = 23, n = rows * d;
    const x = rand(n, -2, 2), w = rand(d, 0.5, 1.5), b = rand(d), dy = rand(n);
    const seq = new KernelSequence(gpu, "ln");
    const tX = seq.tensor(x, "x");
    const tP = seq.tensor(2 * d + 1, "params"); // weight at 1, bias at 1 + d
    seq.upload(tP, w, 1);
    seq.upload(tP, b, 1 + d);
    const tY = seq.tensor(n, "y"), tStat = seq.tensor(2 * rows + 4, "stats"); // mean 4, rstd 4+rows
    const tDy = seq.tensor(dy, "dy"), tDx = seq.tensor(n, "dx");
    const tG = seq.tensor(2 * d + 3, "grads"); // dWeight at 3, dBias at 3 + d
    const scratch = seq.tensor(n, "scratch");
    const fwdArgs = {
      x: { t: tX },
      rows,
      d,
      weight: { t: tP, off: 1 },
      bias: { t: tP, off: 1 + d },
      y: { t: tY },
      mean: { t: tStat, off: 4 },
      rstd: { t: tStat, off: 4 + rows },
    };
    await recordLayerNormForward(seq, fwdArgs);
    await recordLayerNormBackward(seq, {
      x: { t: tX },
      mean: { t: tStat, off: 4 },
      rstd: { t: tStat, off: 4 + rows },
      rows,
      d,
      weight: { t: tP, off: 1 },
      dy: { t: tDy },
      dx: { t: tDx },
      dWeight: { t: tG, off: 3 },
      dBias: { t: tG, off: 3 + d },
      scratch,
    });
    await seq.run();
    const ref = layerNormForward(x, rows, d, w, b);
    closeElem(await seq.read(tY), ref.y, "y");
    closeElem(await seq.read(tStat, 4 + rows, rows), ref.rstd, "rstd");
    const rb = layerNormBackward(ref, rows, d, w, dy);
    const dx = await seq.read(tDx),
      dW = await seq.read(tG, 3, d),
      dB = await seq.read(tG, 3 + d, d);
    closeGrad(dx, rb.dx, "dx");
    closeGrad(dW, rb.dWeight, "dWeight");
    closeGrad(dB, rb.dBias, "dBias");
    const fwd = new KernelSequence(gpu, "ln fwd");
    await recordLayerNormForward(fwd, fwdArgs);
    await fdCheck(
      fwd,
      [
        { name: "x", t: tX, off: 0, base: x, grad: dx },
        { name: "weight", t: tP, off: 1, base: w, grad: dW },
        { name: "bias", t: tP, off: 1 + d, base: b, grad: dB },
      ],
      [{ t: tY, off: 0, g: dy }],
      "layernorm",
    );
    seq.destroy();
    fwd.destroy();
  },
});

Deno.test({
  name: "train gpu: BatchNorm training forward (running stats)/backward vs reference and FD",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const rows = 37, C = 11, n = rows * C;
    const x = rand(n, -1, 3), g = rand(C, 0.5, 1.5), be = rand(C), dy = rand(n);
    const rm = rand(C), rv = rand(C, 0.5, 2);
    const seq = new KernelSequence(gpu, "bn");
    const tX = seq.tensor(x, "x");
    const tP = seq.tensor(2 * C + 2, "params"); // gamma 2, beta 2 + C
    seq.upload(tP, g, 2);
    seq.upload(tP, be, 2 + C);
    const tY = seq.tensor(n, "y");
    const tS = seq.tensor(4 * C + 1, "stats"); // mean 1, rstd 1+C, running mean 1+2C, var 1+3C
    seq.upload(tS, rm, 1 + 2 * C);
    seq.upload(tS, rv, 1 + 3 * C);
    const tDy = seq.tensor(dy, "dy"), tDx = seq.tensor(n, "dx");
    const tG = seq.tensor(2 * C + 5, "grads"); // dGamma 5, dBeta 5 + C
    const fwdArgs = {
      x: { t: tX },
      rows,
      C,
      gamma: { t: tP, off: 2 },
      beta: { t: tP, off: 2 + C },
      y: { t: tY },
      mean: { t: tS, off: 1 },
      rstd: { t: tS, off: 1 + C },
      runningMean: { t: tS, off: 1 + 2 * C },
      runningVar: { t: tS, off: 1 + 3 * C },
      momentum: 0.1,
    };
    await recordBatchNormForward(seq, fwdArgs);
    await recordBatchNormBackward(seq, {
      x: { t: tX },
      mean: { t: tS, off: 1 },
      rstd: { t: tS, off: 1 + C },
      rows,
      C,
      gamma: { t: tP, off: 2 },
      dy: { t: tDy },
      dx: { t: tDx },
      dGamma: { t: tG, off: 5 },
      dBeta: { t: tG, off: 5 + C },
    });
    await seq.run();
    const ref = batchNormForward(x, rows, C, g, be, null);
    closeElem(await seq.read(tY), ref.y, "y");
    closeElem(await seq.read(tS, 1, C), ref.mean, "mean");
    closeElem(await seq.read(tS, 1 + C, C), ref.rstd, "rstd");
    const run = batchNormRunningUpdate(rm, rv, ref, 0.1);
    closeElem(await seq.read(tS, 1 + 2 * C, C), run.mean, "running mean");
    closeElem(await seq.read(tS, 1 + 3 * C, C), run.var, "running var");
    const rb = batchNormBackward(ref, C, g, dy);
    const dx = await seq.read(tDx),
      dG = await seq.read(tG, 5, C),
      dB = await seq.read(tG, 5 + C, C);
    closeGrad(dx, rb.dx, "dx");
    closeGrad(dG, rb.dGamma, "dGamma");
    closeGrad(dB, rb.dBeta, "dBeta");
    const fwd = new KernelSequence(gpu, "bn fwd");
    await recordBatchNormForward(fwd, fwdArgs);
    await fdCheck(
      fwd,
      [
        { name: "x", t: tX, off: 0, base: x, grad: dx },
        { name: "gamma", t: tP, off: 2, base: g, grad: dG },
        { name: "beta", t: tP, off: 2 + C, base: be, grad: dB },
      ],
      [{ t: tY, off: 0, g: dy }],
      "batchnorm",
    );
    seq.destroy();
    fwd.destroy();
  },
});

/** x values for an op: away from the kinks (relu 0, softplus threshold 20) by more than ε. */
function opInput(op: PointwiseOp, n: number): Float32Array {
  const x = rand(n, -4, 4);
  for (let i = 0; i < n; i++) {
    if (op === "relu" && Math.abs(x[i]) < 0.05) x[i] += x[i] < 0 ? -0.1 : 0.1;
    if (op === "softplus" && i % 7 === 0) x[i] = 21 + rnd() * 5; // threshold branch
    if (op === "sigmoid" || op === "silu") x[i] *= 2;
  }
  return x;
}

const REF: Record<PointwiseOp, [(x: number) => number, (x: number) => number]> = {
  relu: [relu, reluGrad],
  silu: [silu, siluGrad],
  softplus: [softplus, softplusGrad],
  sigmoid: [sigmoid, (x) => sigmoid(x) * (1 - sigmoid(x))],
};

Deno.test({
  name: "train gpu: pointwise relu/silu/softplus/sigmoid (strided) vs reference and FD",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const rows = 37, cols = 13, ldx = 17, ldy = 15, lddy = 14, lddx = 16;
    for (const op of ["relu", "silu", "softplus", "sigmoid"] as PointwiseOp[]) {
      const xs = opInput(op, rows * cols);
      const dys = rand(rows * cols), dxInit = rand(rows * lddx);
      const pad = (v: Float32Array, ld: number) => {
        const o = new Float32Array(rows * ld).fill(NaN);
        for (let r = 0; r < rows; r++) o.set(v.subarray(r * cols, r * cols + cols), r * ld);
        return o;
      };
      const dense = (v: Float32Array, ld: number) => {
        const o = new Float32Array(rows * cols);
        for (let r = 0; r < rows; r++) o.set(v.subarray(r * ld, r * ld + cols), r * cols);
        return o;
      };
      const seq = new KernelSequence(gpu, `pw ${op}`);
      const tX = seq.tensor(rows * ldx + 3, "x");
      seq.upload(tX, pad(xs, ldx), 3);
      const tY = seq.tensor(rows * ldy, "y"), tDy = seq.tensor(rows * lddy, "dy");
      seq.upload(tDy, pad(dys, lddy));
      const tDx = seq.tensor(dxInit, "dx");
      await recordPointwise(seq, { op, x: { t: tX, off: 3 }, ldx, y: { t: tY }, ldy, rows, cols });
      // sigmoid's backward takes the forward output
      const bx = op === "sigmoid" ? { t: tY } : { t: tX, off: 3 };
      await recordPointwiseBackward(seq, {
        op,
        x: bx,
        ldx: op === "sigmoid" ? ldy : ldx,
        dy: { t: tDy },
        ldy: lddy,
        dx: { t: tDx },
        lddx,
        rows,
        cols,
        accumulate: true,
      });
      await seq.run();
      const [f, fp] = REF[op];
      const y = dense(await seq.read(tY), ldy);
      closeElem(y, Array.from(xs, f), `${op} y`);
      const dxAll = await seq.read(tDx);
      const dx = dense(dxAll, lddx);
      const grad = Array.from(xs, (v, i) => dys[i] * fp(v));
      closeGrad(
        dx,
        grad.map((v, i) => v + dxInit[Math.floor(i / cols) * lddx + i % cols]),
        `${op} dx`,
      );
      for (let r = 0; r < rows; r++) {
        for (let c = cols; c < lddx && r * lddx + c < dxAll.length; c++) {
          assert.equal(dxAll[r * lddx + c], dxInit[r * lddx + c], `${op}: dx padding touched`);
        }
      }
      const fwd = new KernelSequence(gpu, `pw ${op} fwd`);
      await recordPointwise(fwd, { op, x: { t: tX, off: 3 }, ldx, y: { t: tY }, ldy, rows, cols });
      const gx = dx.map((v, i) => v - dxInit[Math.floor(i / cols) * lddx + i % cols]);
      await fdCheck(
        fwd,
        [{
          name: "x",
          t: tX,
          off: 3,
          base: pad(xs, ldx),
          grad: pad(gx, ldx).map((v) => Number.isNaN(v) ? 0 : v),
          dir: () => pad(rand(rows * cols), ldx).map((v) => Number.isNaN(v) ? 0 : v),
        }],
        [{ t: tY, off: 0, g: pad(dys, ldy).map((v) => Number.isNaN(v) ? 0 : v) }],
        op,
      );
      seq.destroy();
      fwd.destroy();
    }
  },
});

Deno.test({
  name: "train gpu: gate y·silu(z) and mul forward/backward vs reference and FD",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const rows = 37, cols = 11, ld = 24, n = rows * cols;
    // y and z interleaved in one (rows, 24) tensor: y at column 0, z at column 12 (like in_proj's output)
    const yz = new Float32Array(rows * ld);
    const y = rand(n, -2, 2), z = rand(n, -4, 4), dOut = rand(n);
    for (let r = 0; r < rows; r++) {
      yz.set(y.subarray(r * cols, (r + 1) * cols), r * ld);
      yz.set(z.subarray(r * cols, (r + 1) * cols), r * ld + 12);
    }
    const seq = new KernelSequence(gpu, "gate");
    const tYZ = seq.tensor(yz, "yz"), tO = seq.tensor(n, "out"), tDo = seq.tensor(dOut, "dOut");
    const tD = seq.tensor(rows * ld, "dyz");
    const fwdArgs = {
      y: { t: tYZ },
      ldy: ld,
      z: { t: tYZ, off: 12 },
      ldz: ld,
      out: { t: tO },
      ldo: cols,
      rows,
      cols,
    };
    await recordGateForward(seq, fwdArgs);
    await recordGateBackward(seq, {
      y: { t: tYZ },
      ldy: ld,
      z: { t: tYZ, off: 12 },
      ldz: ld,
      dOut: { t: tDo },
      ldo: cols,
      dy: { t: tD },
      lddy: ld,
      dz: { t: tD, off: 12 },
      lddz: ld,
      rows,
      cols,
    });
    await seq.run();
    closeElem(await seq.read(tO), gateForward(y, z), "gate out");
    const rb = gateBackward(y, z, dOut);
    const dyz = await seq.read(tD);
    const dyG = new Float32Array(n), dzG = new Float32Array(n);
    for (let r = 0; r < rows; r++) {
      dyG.set(dyz.subarray(r * ld, r * ld + cols), r * cols);
      dzG.set(dyz.subarray(r * ld + 12, r * ld + 12 + cols), r * cols);
    }
    closeGrad(dyG, rb.dy, "gate dy");
    closeGrad(dzG, rb.dz, "gate dz");
    const fwd = new KernelSequence(gpu, "gate fwd");
    await recordGateForward(fwd, fwdArgs);
    // perturb y and z separately via a masked direction over the shared tensor
    const mask = (col0: number) => () => {
      const v = new Float32Array(rows * ld);
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) v[r * ld + col0 + c] = 2 * rnd() - 1;
      }
      return v;
    };
    await fdCheck(
      fwd,
      [
        { name: "y", t: tYZ, off: 0, base: yz, grad: dyz, dir: mask(0) },
        { name: "z", t: tYZ, off: 0, base: yz, grad: dyz, dir: mask(12) },
      ],
      [{ t: tO, off: 0, g: dOut }],
      "gate",
    );
    seq.destroy();
    fwd.destroy();

    // mul: out = x·m (then out += x·m accumulates); backward is the same op with dy
    const m = 101, x = rand(m), msk = rand(m, 0, 2), o0 = rand(m);
    const s2 = new KernelSequence(gpu, "mul");
    const tXM = s2.tensor(2 * m + 1, "xm");
    s2.upload(tXM, x, 1);
    s2.upload(tXM, msk, 1 + m);
    const tOut = s2.tensor(o0, "out"), tOut2 = s2.tensor(m + 4, "out2");
    await recordMul(s2, {
      x: { t: tXM, off: 1 },
      m: { t: tXM, off: 1 + m },
      out: { t: tOut },
      n: m,
      accumulate: true,
    });
    await recordMul(s2, {
      x: { t: tXM, off: 1 },
      m: { t: tXM, off: 1 + m },
      out: { t: tOut2, off: 4 },
      n: m,
    });
    await s2.run();
    closeElem(await s2.read(tOut), Array.from(x, (v, i) => o0[i] + v * msk[i]), "mul accumulate");
    closeElem(await s2.read(tOut2, 4, m), Array.from(x, (v, i) => v * msk[i]), "mul");
    s2.destroy();
  },
});

Deno.test({
  name: "train gpu: SNARM focal loss value and gradients vs snarmLoss, and FD",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const nHeads = 3, n = 37;
    for (
      const opts of [{}, { alpha: 0.4, gamma: 1.5, unaryWeight: 0.7 }, { alpha: -1, gamma: 0 }]
    ) {
      // u kept in [0.15, 0.85]: with γ = 1.5 the factor q^(γ−1) near q = 0 makes the ε = 1e-2
      // central difference itself inaccurate (truncation), not the kernel.
      const logits = rand(nHeads * n, -5, 5), u = rand(n, 0.15, 0.85);
      const t = rand(n, 0, 1);
      for (let i = 0; i < n; i += 5) t[i] = i % 2 ? 1 : 0; // hard targets too
      const seq = new KernelSequence(gpu, "loss");
      const tIn = seq.tensor(nHeads * n + 2 * n + 2, "inputs"); // logits at 2, u, target after
      seq.upload(tIn, logits, 2);
      seq.upload(tIn, u, 2 + nHeads * n);
      seq.upload(tIn, t, 2 + nHeads * n + n);
      const tG = seq.tensor(nHeads * n + n + 1, "grads"); // dLogits at 1, dUnary after
      const tT = seq.tensor((nHeads + 1) * n + 3, "terms");
      const args = {
        logits: { t: tIn, off: 2 },
        nHeads,
        n,
        unary: { t: tIn, off: 2 + nHeads * n },
        target: { t: tIn, off: 2 + nHeads * n + n },
        ...opts,
        dLogits: { t: tG, off: 1 },
        dUnary: { t: tG, off: 1 + nHeads * n },
        terms: { t: tT, off: 3 },
      };
      await recordSnarmLoss(seq, args);
      await seq.run();
      const ref = snarmLoss(logits, u, t, nHeads, opts);
      const terms = await seq.read(tT, 3, (nHeads + 1) * n);
      const total = terms.reduce((a, b) => a + b, 0);
      assert.ok(
        Math.abs(total - ref.loss) <= 1e-5 * (1 + ref.loss),
        `loss ${total} vs ${ref.loss}`,
      );
      let head = 0;
      for (let i = 0; i < nHeads * n; i++) head += terms[i];
      assert.ok(
        Math.abs(head - ref.headLoss) <= 1e-5 * (1 + ref.headLoss),
        `head loss ${head} vs ${ref.headLoss}`,
      );
      const dL = await seq.read(tG, 1, nHeads * n), dU = await seq.read(tG, 1 + nHeads * n, n);
      closeGrad(dL, ref.dLogits, "dLogits");
      closeGrad(dU, ref.dUnary, "dUnary");
      const ones = new Float32Array((nHeads + 1) * n).fill(1);
      await fdCheck(
        seq,
        [
          { name: "logits", t: tIn, off: 2, base: logits, grad: dL },
          { name: "unary", t: tIn, off: 2 + nHeads * n, base: u, grad: dU },
        ],
        [{ t: tT, off: 3, g: ones }],
        `loss ${JSON.stringify(opts)}`,
      );
      seq.destroy();
    }
  },
});

Deno.test({
  name: "train gpu: AdamW several steps vs lib/train/adamw.ts AdamW",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const nA = 61, nB = 42, n = nA + nB;
    const p0 = rand(n, -1, 1);
    const seq = new KernelSequence(gpu, "adamw");
    const tP = seq.tensor(p0, "params"), tGr = seq.tensor(n, "grads");
    const tM = seq.tensor(n, "m"), tV = seq.tensor(n, "v");
    const decay = new Float32Array(n);
    decay.fill(1, 0, nA); // "a.weight" decays, "a.bias" does not
    const tD = seq.tensor(decay, "decay");
    const opts = { betas: [0.85, 0.995] as [number, number], eps: 1e-7, weightDecay: 0.05 };
    const rec = await recordAdamW(seq, {
      params: tP,
      grads: tGr,
      m: tM,
      v: tV,
      decay: tD,
      n,
      ...opts,
    });
    const pa = p0.slice(0, nA), pb = p0.slice(nA);
    const ref = new AdamW(new Map([["a.weight", pa], ["a.bias", pb]]), { lr: 1e-2, ...opts });
    for (let t = 1; t <= 5; t++) {
      const g = rand(n, -1, 1);
      if (t === 3) g.fill(0, 0, 10); // zero gradients
      const lr = 1e-2 * (1 - 0.1 * t);
      seq.upload(tGr, g);
      rec.setStep(t, lr);
      await seq.run();
      ref.step(new Map([["a.weight", g.subarray(0, nA)], ["a.bias", g.subarray(nA)]]), lr);
      const got = await seq.read(tP);
      const want = [...pa, ...pb];
      for (let i = 0; i < n; i++) {
        assert.ok(
          Math.abs(got[i] - want[i]) <= 1e-6 * Math.max(1, Math.abs(want[i])),
          `step ${t} param ${i}: gpu ${got[i]} vs ref ${want[i]}`,
        );
      }
    }
    const m = await seq.read(tM);
    const refM = [...ref.state.get("a.weight")!.m, ...ref.state.get("a.bias")!.m];
    closeElem(m, refM, "m", 1e-6);
    assert.throws(() => rec.setStep(0, 1e-3), /step/);
    seq.destroy();
  },
});

Deno.test({
  name: "train gpu: Group B record functions reject out-of-range operands",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const seq = new KernelSequence(gpu, "errors");
    const t = seq.tensor(10, "small");
    await assert.rejects(
      recordLayerNormForward(seq, {
        x: { t },
        rows: 3,
        d: 4,
        weight: { t },
        bias: { t },
        y: { t },
        mean: { t },
        rstd: { t },
      }),
      /layernorm x: needs elements \[0, 12\) of tensor "small", which has 10/,
    );
    await assert.rejects(
      recordPointwise(seq, {
        op: "relu",
        x: { t },
        ldx: 2,
        y: { t, off: 9 },
        ldy: 3,
        rows: 2,
        cols: 3,
      }),
      /leading dimension 2 < cols 3/,
    );
    await assert.rejects(
      recordAdamW(seq, { params: t, grads: t, m: t, v: t, decay: t, n: 4 }),
      /distinct/,
    );
    seq.destroy();
  },
});

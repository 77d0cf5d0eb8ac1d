/**
 * Tests of the dense training kernels (lib/train/gpu/gemm.ts, conv.ts, rows.ts, upsample.ts) on
 * the real adapter: forward and backward against the float64 TypeScript references
 * (lib/ops/dense.ts, navigation.ts, upsample.ts and the module references), elementwise
 * |gpu − ref| ≤ 1e-4·(1 + |ref|) (backward: relative to max |ref|), and a directional central
 * finite-difference check of every backward through the GPU forward kernel (ε = 1e-2, relative
 * error ≤ 2e-3). Sizes are small and odd to exercise bounds (rows 37, 70, widths not multiples
 * of 4, K split across workgroups, several K windows).
 */
import assert from "node:assert/strict";
import { gpuTest, requireGpu } from "./_gpu.ts";
import { KernelSequence, type Tensor } from "../lib/train/gpu/graph.ts";
import { type GemmArgs, gemmRef, type GemmTuning, recordGemm } from "../lib/train/gpu/gemm.ts";
import {
  col2imRef,
  colSumRef,
  im2colRef,
  recordCol2im,
  recordColSum,
  recordConv3x3Backward,
  recordConv3x3Forward,
  recordIm2col,
} from "../lib/train/gpu/conv.ts";
import {
  gatherRowsRef,
  recordGatherRows,
  recordScatterRows,
  scatterRowsRef,
} from "../lib/train/gpu/rows.ts";
import {
  recordUpsampleBilinear,
  recordUpsampleBilinearBackward,
} from "../lib/train/gpu/upsample.ts";
import {
  conv3x3Backward,
  conv3x3Forward,
  linearBackward,
  linearForward,
} from "../lib/ops/dense.ts";
import { gatherTokens, gatherTokensBackward } from "../lib/ops/navigation.ts";
import { upsampleBilinearBackward, upsampleBilinearForward } from "../lib/ops/upsample.ts";

import { mulberry32 } from "../lib/util/rng.ts";

const TOL = 1e-4;
const EPS = 1e-2;
const FD_TOL = 2e-3;

/** The library's seeded generator (lib/util/rng.ts). */
const rng = mulberry32;

function randn(n: number, r: () => number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}

/** Elementwise |got − ref| ≤ TOL·(1 + |ref|) (or ≤ TOL·(1 + max|ref|) with `global`). */
function assertClose(
  name: string,
  got: ArrayLike<number>,
  ref: ArrayLike<number>,
  global = false,
): void {
  assert.equal(got.length, ref.length, `${name}: length`);
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) maxRef = Math.max(maxRef, Math.abs(ref[i]));
  let worst = 0, at = -1;
  for (let i = 0; i < ref.length; i++) {
    const scale = 1 + (global ? maxRef : Math.abs(ref[i]));
    const e = Math.abs(got[i] - ref[i]) / scale;
    if (!(e <= worst)) {
      worst = e;
      at = i;
    }
  }
  console.log(`  ${name}: max scaled error ${worst.toExponential(2)}`);
  assert.ok(
    worst <= TOL,
    `${name}: element ${at} gpu ${got[at]} vs ref ${ref[at]} (scaled error ${worst})`,
  );
}

/**
 * Directional central finite difference: Σ v·grad vs Σ g·(F(x+εv) − F(x−εv))/(2ε) in float64,
 * F evaluated by the GPU forward kernel. Relative error ≤ FD_TOL.
 */
async function assertDirectional(
  name: string,
  x: Float32Array,
  grad: ArrayLike<number>,
  g: ArrayLike<number>,
  F: (x: Float32Array) => Promise<Float32Array>,
  r: () => number,
): Promise<void> {
  const v = randn(x.length, r);
  const xp = x.map((a, i) => a + EPS * v[i]);
  const xm = x.map((a, i) => a - EPS * v[i]);
  const fp = Float64Array.from(await F(xp));
  const fm = Float64Array.from(await F(xm));
  let lhs = 0, rhs = 0, mag = 0;
  for (let i = 0; i < x.length; i++) lhs += v[i] * grad[i];
  for (let i = 0; i < g.length; i++) {
    const d = g[i] * (fp[i] - fm[i]) / (2 * EPS);
    rhs += d;
    mag += Math.abs(d);
  }
  const rel = Math.abs(lhs - rhs) / Math.max(Math.abs(rhs), 1e-3 * mag, 1e-12);
  console.log(
    `  ${name}: directional FD ${lhs.toFixed(6)} vs ${rhs.toFixed(6)} (rel ${
      rel.toExponential(2)
    })`,
  );
  assert.ok(rel <= FD_TOL, `${name}: directional derivative ${lhs} vs FD ${rhs} (rel ${rel})`);
}

async function run(seq: KernelSequence, t: Tensor, off = 0, count?: number) {
  await seq.run();
  return await seq.read(t, off, count);
}

Deno.test({
  name: "train gpu gemm: every transpose / offset / accumulate / split path vs gemmRef",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const r = rng(1);
    const cases: Array<[number, number, number, boolean, boolean, GemmTuning]> = [
      [37, 19, 45, false, true, {}],
      [37, 19, 45, false, false, { lanes: "n" }],
      [19, 70, 333, true, false, {}], // lanes over n, K split over slots, 3 K windows
      [19, 70, 333, true, true, { slots: 1, lanes: "m" }],
      [70, 13, 5, false, false, { slots: 1 }],
      [9, 11, 700, true, false, { slots: 3 }], // several split rounds
      [5, 6, 0, false, false, {}], // K = 0: C = bias (+ C)
      [150, 3, 1, false, true, {}], // K = 1 (one partial sum)
      [40, 150, 12, false, false, { lanes: "m" }], // wide column tile (JW 192) for small K
      [2, 13, 2100, true, false, {}], // tiny output, long K: windows of the cap, split
    ];
    for (const [M, N, K, tA, tB, tune] of cases) {
      for (const accumulate of [false, true]) {
        const seq = new KernelSequence(gpu, "gemm test");
        const lda = (tA ? M : K) + 3, ldb = (tB ? K : N) + 1, ldc = N + 2;
        const Ah = randn(5 + lda * Math.max(1, tA ? K : M), r);
        const Bh = randn(ldb * Math.max(1, tB ? N : K), r);
        const Ch = randn(7 + ldc * M, r), bh = randn(N + 1, r);
        const A = seq.tensor(Ah, "A"), B = seq.tensor(Bh, "B");
        const C = seq.tensor(Ch, "C"), bias = seq.tensor(bh, "bias");
        const args: GemmArgs = {
          M,
          N,
          K,
          A: { t: A, off: 5 },
          lda,
          transA: tA,
          B: { t: B },
          ldb,
          transB: tB,
          C: { t: C, off: 7 },
          ldc,
          accumulate,
          bias: { t: bias, off: 1 },
          alpha: 0.7,
        };
        await recordGemm(seq, args, tune);
        const got = await run(seq, C);
        const ref = Float64Array.from(Ch);
        gemmRef({
          ...args,
          A: { t: Ah, off: 5 },
          B: { t: Bh },
          C: { t: ref, off: 7 },
          bias: { t: bh, off: 1 },
        });
        assertClose(
          `gemm M${M} N${N} K${K} tA ${tA} tB ${tB} acc ${accumulate} ${JSON.stringify(tune)}`,
          got,
          ref,
        );
        seq.destroy();
      }
    }
    // bad input is reported with the operand name
    const seq = new KernelSequence(gpu, "gemm errors");
    const t = seq.tensor(10, "small");
    const u = seq.tensor(100, "big");
    await assert.rejects(
      () =>
        recordGemm(seq, {
          M: 4,
          N: 4,
          K: 4,
          A: { t },
          lda: 4,
          B: { t: u },
          ldb: 4,
          C: { t: u, off: 50 },
          ldc: 4,
        }),
      /A needs 4×4/,
    );
    await assert.rejects(
      () =>
        recordGemm(seq, {
          M: 2,
          N: 2,
          K: 2,
          A: { t: u },
          lda: 2,
          B: { t },
          ldb: 2,
          C: { t: u, off: 50 },
          ldc: 2,
        }),
      /must not be the same tensor/,
    );
    seq.destroy();
  },
});

Deno.test({
  name: "train gpu linear (gemm + colsum): forward, backward vs dense.ts, directional FD",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const r = rng(2);
    const rows = 37, K = 45, N = 19;
    const xh = randn(rows * K, r), Wh = randn(N * K, r, 0.3), bh = randn(N, r);
    const seq = new KernelSequence(gpu, "linear");
    const X = seq.tensor(xh, "X"), W = seq.tensor(Wh, "W"), b = seq.tensor(bh, "b");
    const Y = seq.tensor(rows * N, "Y");
    await recordGemm(seq, {
      M: rows,
      N,
      K,
      A: { t: X },
      lda: K,
      B: { t: W },
      ldb: K,
      transB: true,
      C: { t: Y },
      ldc: N,
      bias: { t: b },
    });
    const y = await run(seq, Y);
    assertClose("linear forward", y, linearForward(xh, rows, K, Wh, N, bh));

    const gh = randn(rows * N, r);
    const bw = new KernelSequence(gpu, "linear backward");
    const G = bw.tensor(gh, "dY"), X2 = bw.tensor(xh, "X"), W2 = bw.tensor(Wh, "W");
    const dX = bw.tensor(rows * K, "dX"), dW = bw.tensor(N * K, "dW"), db = bw.tensor(N, "db");
    await recordGemm(bw, {
      M: rows,
      N: K,
      K: N,
      A: { t: G },
      lda: N,
      B: { t: W2 },
      ldb: K,
      C: { t: dX },
      ldc: K,
    });
    await recordGemm(bw, {
      M: N,
      N: K,
      K: rows,
      A: { t: G },
      lda: N,
      transA: true,
      B: { t: X2 },
      ldb: K,
      C: { t: dW },
      ldc: K,
    });
    await recordColSum(bw, { A: { t: G }, rows, cols: N, lda: N, out: { t: db } });
    await bw.run();
    const ref = linearBackward(xh, rows, K, Wh, N, gh, true);
    const gdX = await bw.read(dX), gdW = await bw.read(dW), gdb = await bw.read(db);
    assertClose("linear dX", gdX, ref.dx, true);
    assertClose("linear dW", gdW, ref.dW, true);
    assertClose("linear db", gdb, ref.db!, true);

    const F = (which: Tensor, t: Tensor) => async (v: Float32Array) => {
      seq.upload(which, v);
      const out = await run(seq, t);
      seq.upload(which, which === X ? xh : which === W ? Wh : bh);
      return out;
    };
    await assertDirectional("linear dX", xh, gdX, gh, F(X, Y), r);
    await assertDirectional("linear dW", Wh, gdW, gh, F(W, Y), r);
    await assertDirectional("linear db", bh, gdb, gh, F(b, Y), r);
    seq.destroy();
    bw.destroy();
  },
});

Deno.test({
  name: "train gpu colsum: chunked multi-level sums, products, accumulate vs colSumRef",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const r = rng(3);
    for (
      const [rows, cols, lda, withB] of [[600, 37, 40, true], [66001, 3, 3, false], [
        1,
        5,
        7,
        true,
      ]] as const
    ) {
      for (const accumulate of [false, true]) {
        const seq = new KernelSequence(gpu, "colsum");
        const Ah = randn(2 + rows * lda, r), Bh = randn(rows * (cols + 1), r);
        const oh = randn(cols + 3, r);
        const A = seq.tensor(Ah, "A"), B = seq.tensor(Bh, "B"), out = seq.tensor(oh, "out");
        await recordColSum(seq, {
          A: { t: A, off: 2 },
          rows,
          cols,
          lda,
          B: withB ? { t: B } : undefined,
          ldb: cols + 1,
          out: { t: out, off: 3 },
          accumulate,
        });
        const got = await run(seq, out);
        const ref = Float64Array.from(oh);
        colSumRef(
          { t: Ah, off: 2 },
          rows,
          cols,
          lda,
          { t: ref, off: 3 },
          withB ? { t: Bh } : undefined,
          cols + 1,
          accumulate,
        );
        assertClose(`colsum ${rows}×${cols} B ${withB} acc ${accumulate}`, got, ref, true);
        seq.destroy();
      }
    }
  },
});

Deno.test({
  name: "train gpu conv3x3: im2col/col2im, forward and backward vs dense.ts, directional FD",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const r = rng(4);
    const n = 2, h = 5, w = 7, Cin = 3, Cout = 5;
    for (const dil of [1, 2]) {
      const rows = n * h * w, K = 9 * Cin;
      const xh = randn(rows * Cin, r), Wh = randn(Cout * K, r, 0.3), bh = randn(Cout, r);
      // im2col / col2im against their references (with offsets).
      const s0 = new KernelSequence(gpu, "im2col");
      const X0 = s0.tensor(new Float32Array([9, ...xh]), "X");
      const col0 = s0.tensor(2 + rows * K, "col");
      await recordIm2col(s0, {
        X: { t: X0, off: 1 },
        n,
        h,
        w,
        C: Cin,
        dil,
        col: { t: col0, off: 2 },
      });
      const colRef = new Float64Array(rows * K);
      im2colRef({ t: xh }, n, h, w, Cin, dil, { t: colRef });
      assertClose(`im2col dil ${dil}`, await run(s0, col0, 2), colRef);
      const dcolh = randn(rows * K, r), dxh = randn(rows * Cin, r);
      const s1 = new KernelSequence(gpu, "col2im");
      const dcol = s1.tensor(dcolh, "dcol"), dX1 = s1.tensor(dxh, "dX");
      await recordCol2im(s1, {
        dcol: { t: dcol },
        n,
        h,
        w,
        C: Cin,
        dil,
        dX: { t: dX1 },
        accumulate: true,
      });
      const dxRef = Float64Array.from(dxh);
      col2imRef({ t: dcolh }, n, h, w, Cin, dil, { t: dxRef }, true);
      assertClose(`col2im dil ${dil} accumulate`, await run(s1, dX1), dxRef);
      s0.destroy();
      s1.destroy();

      const hasBias = dil === 1;
      const seq = new KernelSequence(gpu, "conv fwd");
      const X = seq.tensor(xh, "X"), W = seq.tensor(Wh, "W"), b = seq.tensor(bh, "b");
      const Y = seq.tensor(rows * Cout, "Y"), col = seq.tensor(rows * K, "col");
      await recordConv3x3Forward(seq, {
        X: { t: X },
        n,
        h,
        w,
        Cin,
        Cout,
        dil,
        W: { t: W },
        bias: hasBias ? { t: b } : undefined,
        Y: { t: Y },
        col,
      });
      const y = await run(seq, Y);
      assertClose(
        `conv3x3 forward dil ${dil}`,
        y,
        conv3x3Forward(xh, n, h, w, Cin, Wh, Cout, hasBias ? bh : null, dil),
      );

      const gh = randn(rows * Cout, r);
      const ref = conv3x3Backward(xh, n, h, w, Cin, Wh, Cout, gh, hasBias, dil);
      for (const acc of [false, true]) {
        const bw = new KernelSequence(gpu, "conv bwd");
        const X2 = bw.tensor(xh, "X"), W2 = bw.tensor(Wh, "W"), G = bw.tensor(gh, "dY");
        const pre = randn(rows * Cin + Cout * K + Cout, r);
        const dX = bw.tensor(pre.slice(0, rows * Cin), "dX");
        const dW = bw.tensor(pre.slice(rows * Cin, rows * Cin + Cout * K), "dW");
        const db = bw.tensor(pre.slice(rows * Cin + Cout * K), "db");
        await recordConv3x3Backward(bw, {
          X: { t: X2 },
          n,
          h,
          w,
          Cin,
          Cout,
          dil,
          W: { t: W2 },
          dY: { t: G },
          dX: { t: dX },
          accumulateDX: acc,
          dW: { t: dW },
          dBias: hasBias ? { t: db } : undefined,
          accumulateDW: acc,
          col: bw.tensor(rows * K, "col"),
          dcol: bw.tensor(rows * K, "dcol"),
        });
        await bw.run();
        const gdX = await bw.read(dX), gdW = await bw.read(dW), gdb = await bw.read(db);
        const plus = (base: Float32Array, d: Float64Array) =>
          acc ? d.map((x, i) => x + base[i]) : d;
        assertClose(
          `conv3x3 dX dil ${dil} acc ${acc}`,
          gdX,
          plus(pre.slice(0, rows * Cin), ref.dx),
          true,
        );
        assertClose(
          `conv3x3 dW dil ${dil} acc ${acc}`,
          gdW,
          plus(pre.slice(rows * Cin, rows * Cin + Cout * K), ref.dW),
          true,
        );
        if (hasBias) {
          assertClose(
            `conv3x3 dBias acc ${acc}`,
            gdb,
            plus(pre.slice(rows * Cin + Cout * K), ref.db!),
            true,
          );
        }
        if (!acc) {
          const F = (which: Tensor, base: Float32Array) => async (v: Float32Array) => {
            seq.upload(which, v);
            const out = await run(seq, Y);
            seq.upload(which, base);
            return out;
          };
          await assertDirectional(`conv3x3 dX dil ${dil}`, xh, gdX, gh, F(X, xh), r);
          await assertDirectional(`conv3x3 dW dil ${dil}`, Wh, gdW, gh, F(W, Wh), r);
          if (hasBias) await assertDirectional("conv3x3 dBias", bh, gdb, gh, F(b, bh), r);
        }
        bw.destroy();
      }
      seq.destroy();
    }
  },
});

Deno.test({
  name: "train gpu rows: gather / scatter vs references and navigation.ts, directional FD",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const r = rng(5);
    const srcRows = 41, rows = 37, width = 13, srcLd = 15, dstLd = 14;
    // unique indices, a few −1
    const perm = Array.from({ length: srcRows }, (_, i) => i).sort(() => r() - 0.5);
    const idx = Int32Array.from({ length: rows }, (_, i) => (i % 9 === 4 ? -1 : perm[i]));
    const srch = randn(srcRows * srcLd, r), dsth = randn(rows * dstLd + 1, r);
    for (const accumulate of [false, true]) {
      const seq = new KernelSequence(gpu, "gather");
      const S = seq.tensor(srch, "src"), I = seq.tensor(idx, "idx");
      const D = seq.tensor(dsth, "dst");
      await recordGatherRows(seq, {
        src: { t: S },
        srcLd,
        idx: { t: I },
        rows,
        width,
        dst: { t: D, off: 1 },
        dstLd,
        accumulate,
      });
      const ref = Float64Array.from(dsth);
      gatherRowsRef({
        src: { t: srch },
        srcLd,
        idx,
        rows,
        width,
        dst: { t: ref, off: 1 },
        dstLd,
        accumulate,
      });
      assertClose(`gather acc ${accumulate}`, await run(seq, D), ref);
      seq.destroy();

      const sq = new KernelSequence(gpu, "scatter");
      const S2 = sq.tensor(dsth, "src"), I2 = sq.tensor(idx, "idx");
      const D2 = sq.tensor(srch, "dst");
      await recordScatterRows(sq, {
        src: { t: S2, off: 1 },
        srcLd: dstLd,
        idx: { t: I2 },
        rows,
        width,
        dst: { t: D2 },
        dstLd: srcLd,
        accumulate,
      });
      const ref2 = Float64Array.from(srch);
      scatterRowsRef({
        src: { t: dsth, off: 1 },
        srcLd: dstLd,
        idx,
        rows,
        width,
        dst: { t: ref2 },
        dstLd: srcLd,
        accumulate,
      });
      assertClose(`scatter acc ${accumulate}`, await run(sq, D2), ref2);
      sq.destroy();
    }

    // Whole-sequence navigation gather (navigation.ts gatherTokens) and its VJP = scatter-add.
    const N = 2, L = 11, d = 5, Ls = 7;
    const gi = new Int32Array(N * Ls), flat = new Int32Array(N * Ls);
    for (let q = 0; q < N; q++) {
      const p = Array.from({ length: L }, (_, i) => i).sort(() => r() - 0.5);
      for (let j = 0; j < Ls; j++) {
        gi[q * Ls + j] = p[j];
        flat[q * Ls + j] = q * L + p[j];
      }
    }
    const xh = randn(N * L * d, r), gh = randn(N * Ls * d, r);
    const fw = new KernelSequence(gpu, "nav gather");
    const X = fw.tensor(xh, "x"), I = fw.tensor(flat, "idx"), Y = fw.tensor(N * Ls * d, "y");
    await recordGatherRows(fw, {
      src: { t: X },
      srcLd: d,
      idx: { t: I },
      rows: N * Ls,
      width: d,
      dst: { t: Y },
      dstLd: d,
    });
    assertClose("navigation gather", await run(fw, Y), gatherTokens(xh, N, L, d, gi, Ls));
    const bw = new KernelSequence(gpu, "nav gather backward");
    const G = bw.tensor(gh, "g"), I2 = bw.tensor(flat, "idx"), dX = bw.tensor(N * L * d, "dx");
    bw.clear(dX);
    await recordScatterRows(bw, {
      src: { t: G },
      srcLd: d,
      idx: { t: I2 },
      rows: N * Ls,
      width: d,
      dst: { t: dX },
      dstLd: d,
      accumulate: true,
    });
    const gdX = await run(bw, dX);
    assertClose("navigation gather backward", gdX, gatherTokensBackward(gh, N, L, d, gi, Ls), true);
    await assertDirectional(
      "navigation gather",
      xh,
      gdX,
      gh,
      async (v) => {
        fw.upload(X, v);
        return await run(fw, Y);
      },
      r,
    );
    fw.destroy();
    bw.destroy();
  },
});

Deno.test({
  name: "train gpu upsample: bilinear forward / backward vs upsample.ts, directional FD",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const r = rng(6);
    for (const [n, h, w, H, W] of [[2, 5, 7, 17, 23], [3, 6, 4, 3, 9], [1, 1, 3, 5, 1]]) {
      const xh = randn(n * h * w, r), gh = randn(n * H * W, r);
      const fw = new KernelSequence(gpu, "upsample");
      const X = fw.tensor(new Float32Array([0, ...xh]), "X"), Y = fw.tensor(n * H * W + 2, "Y");
      await recordUpsampleBilinear(fw, { X: { t: X, off: 1 }, n, h, w, H, W, Y: { t: Y, off: 2 } });
      const name = `${n}×${h}×${w} → ${H}×${W}`;
      assertClose(
        `upsample ${name}`,
        await run(fw, Y, 2),
        upsampleBilinearForward(xh, n, h, w, H, W),
      );
      const bw = new KernelSequence(gpu, "upsample backward");
      const G = bw.tensor(new Float32Array([0, 0, 0, ...gh]), "dY"),
        dX = bw.tensor(n * h * w, "dX");
      await recordUpsampleBilinearBackward(bw, {
        dY: { t: G, off: 3 },
        n,
        h,
        w,
        H,
        W,
        dX: { t: dX },
      });
      const gdX = await run(bw, dX);
      assertClose(
        `upsample backward ${name}`,
        gdX,
        upsampleBilinearBackward(gh, n, h, w, H, W),
        true,
      );
      await assertDirectional(
        `upsample ${name}`,
        xh,
        gdX,
        gh,
        async (v) => {
          fw.upload(X, v, 1);
          return await run(fw, Y, 2);
        },
        r,
      );
      fw.destroy();
      bw.destroy();
    }
  },
});

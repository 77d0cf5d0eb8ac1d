/**
 * Tests of the SNARM head (lib/model, wgsl/head/*.wgsl):
 * every kernel against its TypeScript reference on the real adapter, the whole head against the
 * official PyTorch fixtures (tiny; paper), weights I/O and bad-input errors.
 */
import assert from "node:assert/strict";
import { gpuTest, requireGpu } from "./_gpu.ts";
import { createStorage, readF32 } from "../lib/gpu/buffers.ts";
import { readSafeTensors, type SafeTensors, SafeTensorsError } from "../lib/io/safetensors.ts";
import {
  type Capture,
  conv3x3Ref,
  decoderHeadRef,
  Head,
  headForwardRef,
  headMaps,
  headMapsGpu,
  headWeightsFromSafeTensors,
  headWeightsToTensors,
  layoutNDL,
  layoutNLD,
  linearRef,
  loadHead,
  parseHeadConfig,
  saveHeadWeights,
  scanRecurrence,
  selectiveScan,
  selectiveScanRef,
} from "../lib/model/mod.ts";
import { gate } from "../lib/model/native_head.ts";
import {
  createGemmDummies,
  createWeightTexture,
  gemmPipeline,
  gemmShapeFor,
  gemmSteps,
} from "../lib/model/gemm.ts";
import { encodeSteps } from "../lib/gpu/steps.ts";
import { createActTexture, writeActTexture } from "../lib/gpu/textures.ts";
import {
  blockOutputStep,
  headOutputStep,
  inputTransformStep,
  packHeadParams,
  positionsOf,
  tileAxis,
  winogradPipelines,
  type WinogradTile,
  winogradWeights,
  winogradWeightsInterleaved,
} from "../lib/model/winograd.ts";
import { main as headCli } from "../cli/head.ts";
import { fuseResidualsRef } from "../lib/residual/mod.ts";
import { mulberry32 } from "../lib/util/rng.ts";
import { fixtureZ } from "./_official.ts";

const FIX = new URL("../../shared/fixtures/snarm_official/", import.meta.url);
const TOL = 1e-4;

async function fixture(name: "tiny" | "paper"): Promise<{ io: SafeTensors; weightsPath: URL }> {
  return {
    io: await readSafeTensors(new URL(`${name}/io.safetensors`, FIX)),
    weightsPath: new URL(`${name}/weights.safetensors`, FIX),
  };
}

function t(st: SafeTensors, name: string): Float32Array {
  const x = st.tensors.get(name);
  if (!x) throw new Error(`fixture lacks ${name}`);
  return x.data as Float32Array;
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>, what: string): number {
  assert.equal(a.length, b.length, `${what}: length ${a.length} vs ${b.length}`);
  let e = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= e)) e = d; // NaN-propagating max
  }
  return e;
}

function close(a: ArrayLike<number>, b: ArrayLike<number>, what: string, tol = TOL): void {
  const e = maxAbs(a, b, what);
  assert.ok(e <= tol, `${what}: max |error| ${e} > ${tol}`);
}

/** Deterministic N(0,1)-ish values (mulberry32 + Box–Muller). */
function rng(seed: number): () => number {
  const u = mulberry32(seed);
  return () => Math.sqrt(-2 * Math.log(u() + 1e-12)) * Math.cos(2 * Math.PI * u());
}

function randn(n: number, seed: number, scale = 1): Float32Array<ArrayBuffer> {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = r() * scale;
  return out;
}

function fixtureMask(io: SafeTensors): Uint8Array {
  return Uint8Array.from(t(io, "ref_mask"));
}

/** Compare every captured intermediate that the fixture holds (same names and layouts). */
function compareCaptures(io: SafeTensors, cap: Capture, tol: number): string[] {
  const seen: string[] = [];
  for (const [k, v] of cap) {
    if (!io.tensors.has(k)) continue;
    close(v, t(io, k), k, tol);
    seen.push(k);
  }
  return seen;
}

// ---------------------------------------------------------------- weights and configuration

Deno.test("model: weights load with official names, save round trip, config from metadata", async () => {
  const { weightsPath } = await fixture("tiny");
  const st = await readSafeTensors(weightsPath);
  const w = headWeightsFromSafeTensors(st);
  assert.deepEqual(w.config.scale_list, [3, 6]);
  assert.equal(w.dims.nHeads, 8);
  assert.equal(w.dims.dInner, 64);
  assert.equal(w.dims.dtRank, 2);
  const path = await Deno.makeTempFile({ suffix: ".safetensors" });
  try {
    await saveHeadWeights(path, w);
    const back = await readSafeTensors(path);
    assert.equal(back.tensors.size, st.tensors.size);
    for (const [k, v] of st.tensors) {
      const b = back.tensors.get(k);
      assert.ok(b, `saved file lacks ${k}`);
      assert.equal(b.dtype, v.dtype, k);
      assert.deepEqual(b.shape, v.shape, k);
      if (v.dtype === "F32") assert.deepEqual(b.data, v.data, k);
    }
    const w2 = headWeightsFromSafeTensors(back);
    assert.deepEqual(w2.config, w.config);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("model: bad weights name the tensor (missing, wrong shape, wrong dtype, unexpected)", async () => {
  const { weightsPath } = await fixture("tiny");
  const st = await readSafeTensors(weightsPath);
  const base = headWeightsFromSafeTensors(st);
  const mutate = (f: (m: SafeTensors["tensors"]) => void): SafeTensors => {
    const m = new Map(headWeightsToTensors(base));
    f(m);
    return { tensors: m, metadata: st.metadata };
  };
  assert.throws(
    () => headWeightsFromSafeTensors(mutate((m) => m.delete("mamba_list.1.0.mixer.A_log"))),
    (e: Error) =>
      e instanceof SafeTensorsError &&
      /missing tensor mamba_list\.1\.0\.mixer\.A_log/.test(e.message),
  );
  assert.throws(
    () =>
      headWeightsFromSafeTensors(mutate((m) => {
        m.set("head_list.3.0.conv.weight", {
          dtype: "F32",
          shape: [32, 32, 5, 5],
          data: new Float32Array(32 * 32 * 25),
        });
      })),
    /head_list\.3\.0\.conv\.weight has shape \[32,32,5,5\], expected \[32,32,3,3\]/,
  );
  assert.throws(
    () =>
      headWeightsFromSafeTensors(mutate((m) => {
        m.set("norm_list.0.bias", { dtype: "I32", shape: [32], data: new Int32Array(32) });
      })),
    /norm_list\.0\.bias has dtype I32, expected F32/,
  );
  assert.throws(
    () =>
      headWeightsFromSafeTensors(mutate((m) => {
        m.set("vit.conv_list.0.bias", { dtype: "F32", shape: [32], data: new Float32Array(32) });
      })),
    /unexpected tensor vit\.conv_list\.0\.bias/,
  );
  assert.throws(
    () => headWeightsFromSafeTensors({ tensors: st.tensors, metadata: {} }),
    /no "config" entry/,
  );
  assert.throws(
    () =>
      parseHeadConfig(
        { ...base.config, scale_list: undefined } as unknown as Record<string, unknown>,
      ),
    /scale_list/,
  );
  assert.throws(
    () => parseHeadConfig({ ...base.config, scan: 2 } as unknown as Record<string, unknown>),
    /scan must be 1 \(row-major only\) or 4/,
  );
});

Deno.test("model: bad input X is rejected naming X (channels, non-square grid, NaN)", async () => {
  const { weightsPath } = await fixture("tiny");
  const head = await loadHead(weightsPath);
  const good = new Float32Array(1 * 64 * 12 * 12);
  assert.throws(
    () => head.checkInput(new Float32Array(1 * 60 * 144), 1, 12, 12),
    /X: 60 channels, the head expects in_chans = 64/,
  );
  assert.throws(
    () => head.checkInput(new Float32Array(64 * 12 * 10), 1, 12, 10),
    /X: grid 12×10 is not square/,
  );
  const nan = good.slice();
  nan[3 * 144 + 5 * 12 + 7] = NaN;
  assert.throws(
    () => head.checkInput(nan, 1, 12, 12),
    /X: non-finite value NaN at image 0, channel 3, y 5, x 7/,
  );
  await assert.rejects(() => head.forward(nan, 1, 12, 12), /X: non-finite/);
  head.checkInput(good, 1, 12, 12);
});

// ---------------------------------------------------------------- TypeScript reference

Deno.test("model: TypeScript reference forward equals the official tiny fixture", async () => {
  const { io, weightsPath } = await fixture("tiny");
  const head = await loadHead(weightsPath);
  const cap: Capture = new Map();
  const lg = headForwardRef(head.weights, fixtureZ(io), fixtureMask(io), 2, 12, 12, {
    capture: cap,
  });
  close(lg, t(io, "head_logits"), "head_logits (reference)");
  const seen = compareCaptures(io, cap, TOL);
  assert.ok(seen.length >= 8, `compared ${seen.join(", ")}`);
});

// ---------------------------------------------------------------- selective scan kernel

Deno.test({
  name: "selective scan kernel: official tiny scan_b0_d0_* inputs give scan_b0_d0_out",
  ...gpuTest,
  async fn() {
    requireGpu();
    const { io } = await fixture("tiny");
    const [nSeq, dInner, L] = io.tensors.get("scan_b0_d0_u")!.shape;
    const dims = { nSeq, L, dInner, dState: 4 };
    const ops = {
      u: t(io, "scan_b0_d0_u"),
      delta: t(io, "scan_b0_d0_delta"),
      z: t(io, "scan_b0_d0_z"),
      B: t(io, "scan_b0_d0_B"),
      C: t(io, "scan_b0_d0_C"),
      A: t(io, "scan_b0_d0_A"),
      D: t(io, "scan_b0_d0_D"),
      deltaBias: t(io, "scan_b0_d0_delta_bias"),
    };
    const want = t(io, "scan_b0_d0_out");
    close(selectiveScanRef(ops, dims, layoutNDL(dims)), want, "selective scan (reference)", 1e-5);
    close(await selectiveScan(ops, dims, layoutNDL(dims)), want, "selective scan (WGSL)", 1e-5);
  },
});

Deno.test({
  name:
    "selective scan kernel: L = 2401, d_inner = 512 (past lavapipe's loop limit per lane group) vs reference",
  ...gpuTest,
  async fn() {
    requireGpu();
    const dims = { nSeq: 2, L: 2401, dInner: 512, dState: 4 };
    const n = dims.nSeq * dims.L * dims.dInner;
    const A = randn(dims.dInner * 4, 5).map((v) => -Math.exp(0.5 * v));
    const ops = {
      u: randn(n, 1),
      delta: randn(n, 2, 0.5),
      z: randn(n, 3),
      B: randn(dims.nSeq * dims.L * 4, 4),
      C: randn(dims.nSeq * dims.L * 4, 6),
      A,
      D: randn(dims.dInner, 7),
      deltaBias: randn(dims.dInner, 8, 0.5),
    };
    const lay = layoutNLD(dims);
    const ref = selectiveScanRef(ops, dims, lay);
    const got = await selectiveScan(ops, dims, lay);
    let worst = 0;
    for (let i = 0; i < ref.length; i++) {
      worst = Math.max(worst, Math.abs(got[i] - ref[i]) / (1 + Math.abs(ref[i])));
    }
    assert.ok(worst < 1e-5, `relative error ${worst}`);
    // the last time step of the last sequence is computed (no silent early loop exit)
    const last = (dims.nSeq * dims.L - 1) * dims.dInner;
    assert.ok(ref.subarray(last).some((v) => v !== 0));
    close(got.subarray(last), ref.subarray(last), "last step", 1e-4);
  },
});

// ---------------------------------------------------------------- GEMM and Winograd kernels

Deno.test({
  name: "head_gemm kernel: K windows, bias, batches and row scatter vs linearRef",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const d = 32;
    const shape = gemmShapeFor(d);
    const pipe = await gemmPipeline(gpu, shape);
    const dm = createGemmDummies(gpu);
    const M = 300, K = 3 * d, N = 72, RPL = 100, batches = 2;
    const x = randn(batches * M * K, 11);
    const W = randn(batches * N * K, 12);
    const bias = randn(N, 13);
    const aTex = createActTexture(gpu, K, RPL, (batches * M) / RPL, "A", false);
    writeActTexture(gpu, aTex, x, K, RPL, (batches * M) / RPL);
    const ldo = 128;
    const out = createStorage(gpu, batches * M * ldo * 4);
    // scatter: row m of batch 0 goes to row (M − 1 − m)
    const idx = Uint32Array.from({ length: M }, (_, m) => M - 1 - m);
    const steps = [
      ...gemmSteps(gpu, pipe, shape, {
        label: "test gemm",
        M,
        N,
        K,
        aTex,
        RPL,
        aLayersPerBatch: M / RPL,
        W: createWeightTexture(gpu, W, batches, N, K, "W"),
        batches,
        bias: createStorage(gpu, bias),
        out: { buf: out, ldo, oBatchRows: M },
      }, dm),
    ];
    const out2 = createStorage(gpu, M * ldo * 4);
    steps.push(...gemmSteps(gpu, pipe, shape, {
      label: "test scatter",
      M,
      N,
      K,
      aTex,
      RPL,
      W: createWeightTexture(gpu, W.subarray(0, N * K), 1, N, K, "W0"),
      out: { buf: out2, ldo, idx: createStorage(gpu, idx) },
    }, dm));
    const enc = gpu.device.createCommandEncoder();
    encodeSteps(enc, steps);
    gpu.device.queue.submit([enc.finish()]);
    const got = await readF32(gpu, out, batches * M * ldo);
    const got2 = await readF32(gpu, out2, M * ldo);
    for (let z = 0; z < batches; z++) {
      const ref = linearRef(
        x.subarray(z * M * K, (z + 1) * M * K),
        M,
        K,
        W.subarray(z * N * K, (z + 1) * N * K),
        N,
        bias,
      );
      const g = new Float32Array(M * N);
      for (let m = 0; m < M; m++) {
        g.set(got.subarray((z * M + m) * ldo, (z * M + m) * ldo + N), m * N);
      }
      close(g, ref, `gemm batch ${z}`, 1e-5);
    }
    const ref0 = linearRef(x.subarray(0, M * K), M, K, W.subarray(0, N * K), N);
    const g2 = new Float32Array(M * N);
    for (let m = 0; m < M; m++) {
      g2.set(got2.subarray((M - 1 - m) * ldo, (M - 1 - m) * ldo + N), m * N);
    }
    close(g2, ref0, "gemm scatter", 1e-5);
  },
});

Deno.test({
  name:
    "Winograd F(2×2) and F(4×4) 3×3 convs (dilations 1–12, block and decoder outputs) vs conv3x3Ref",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const C = 32, n = 11, nSeq = 4, L = n * n, C4 = C / 4, ld = 64;
    const shape = gemmShapeFor(C);
    const gp = await gemmPipeline(gpu, shape);
    const dm = createGemmDummies(gpu);
    const x = randn(nSeq * L * C, 21, 0.5);
    const src = createActTexture(gpu, C, L, nSeq, "src", false);
    writeActTexture(gpu, src, x, C, L, nSeq);
    const Wc = randn(C * C * 9, 22, 0.2);
    const bc = randn(C, 23);
    const heads = [0, 1, 2, 3].map((s) => ({
      convW: randn(C * C * 9, 30 + s, 0.2),
      bnW: randn(C, 40 + s, 0.2).map((v) => 1 + v),
      bnB: randn(C, 50 + s, 0.1),
      bnMean: randn(C, 60 + s, 0.2),
      bnVar: randn(C, 70 + s, 0.1).map((v) => 0.5 + Math.abs(v)),
      outW: randn(C, 80 + s),
      outB: new Float32Array([0.1 * s]),
    }));
    for (const m of [2, 4] as WinogradTile[]) {
      const wp = await winogradPipelines(gpu, m);
      const P = positionsOf(m);
      for (const r of [1, 2, 3, 5, 12]) {
        const ax = tileAxis(n, r, m);
        const Ta = ax.length, T = Ta * Ta;
        const geo = { nSeq, h: n, w: n, C4, r, axis: createStorage(gpu, ax), Ta };
        const V = createStorage(gpu, P * nSeq * T * ld * 4),
          Mb = createStorage(gpu, P * nSeq * T * ld * 4);
        const Vt = createActTexture(gpu, ld, T, P * nSeq, "V", false),
          Mt = createActTexture(gpu, ld, T, P * nSeq, "M", false);
        const copy = (b: GPUBuffer, tx: GPUTexture) => ({
          kind: "copy" as const,
          label: "copy",
          encode: (e: GPUCommandEncoder) =>
            e.copyBufferToTexture({ buffer: b, bytesPerRow: ld * 4, rowsPerImage: T }, {
              texture: tx,
            }, [ld / 4, T, P * nSeq]),
        });
        const dst = createStorage(gpu, nSeq * L * ld * 4),
          xin = createStorage(gpu, nSeq * L * ld * 4);
        // every position is "suspicious" with j = its row-major index: xin must equal dst
        const inv = createStorage(gpu, Uint32Array.from({ length: nSeq * L }, (_, i) => i % L));
        const lg = createStorage(gpu, nSeq * L * 4), lgp = createStorage(gpu, L * 64 * 4);
        const U = createWeightTexture(gpu, winogradWeights(Wc, C, C, m), P, C, C, "U");
        const Uh = createWeightTexture(
          gpu,
          winogradWeightsInterleaved(heads.map((h) => h.convW), C, C, m),
          P * nSeq,
          C,
          C,
          "Uh",
        );
        const steps = [
          inputTransformStep(gpu, wp, geo, src, V, ld / 4, "in"),
          copy(V, Vt),
          ...gemmSteps(gpu, gp, shape, {
            label: "g",
            M: nSeq * T,
            N: C,
            K: C,
            aTex: Vt,
            RPL: T,
            aLayersPerBatch: nSeq,
            W: U,
            batches: P,
            out: { buf: Mb, ldo: ld, oBatchRows: nSeq * T },
          }, dm),
          copy(Mb, Mt),
          blockOutputStep(
            gpu,
            wp,
            geo,
            Mt,
            createStorage(gpu, bc),
            dst,
            inv,
            xin,
            ld / 4,
            L,
            "out",
          ),
          ...gemmSteps(gpu, gp, shape, {
            label: "gh",
            M: T,
            N: C,
            K: C,
            aTex: Vt,
            RPL: T,
            aLayersPerBatch: 1,
            W: Uh,
            batches: P * nSeq,
            out: { buf: Mb, ldo: ld, oBatchRows: T },
          }, dm),
          copy(Mb, Mt),
          headOutputStep(
            gpu,
            wp,
            geo,
            Mt,
            createStorage(gpu, packHeadParams(heads, C)),
            lg,
            0,
            L,
            1,
            lgp,
            0,
            64,
            "hout",
          ),
        ];
        const enc = gpu.device.createCommandEncoder();
        encodeSteps(enc, steps);
        gpu.device.queue.submit([enc.finish()]);
        const unpad = (a: Float32Array) => {
          const o = new Float32Array(nSeq * L * C);
          for (let i = 0; i < nSeq * L; i++) o.set(a.subarray(i * ld, i * ld + C), i * C);
          return o;
        };
        const got = unpad(await readF32(gpu, dst, nSeq * L * ld));
        const ref = conv3x3Ref(x, nSeq, n, n, C, Wc, C, bc, r);
        // F(4×4)'s ±1/±2 points amplify f32 rounding more than F(2×2) (relative ~1e-5 here)
        const tol = m === 2 ? 2e-5 : 1e-4;
        close(got, ref, `F(${m}×${m}) block conv r=${r}`, tol);
        close(
          unpad(await readF32(gpu, xin, nSeq * L * ld)),
          ref,
          `F(${m}×${m}) fused gather r=${r}`,
          tol,
        );
        const gl = await readF32(gpu, lg, nSeq * L);
        const gpos = await readF32(gpu, lgp, L * 64);
        for (let s = 0; s < nSeq; s++) {
          for (let p = 0; p < L; p++) {
            assert.equal(gpos[p * 64 + s], gl[s * L + p], "position-major logits");
          }
          const rf = decoderHeadRef(
            x.subarray(s * L * C, (s + 1) * L * C),
            1,
            n,
            n,
            heads[s],
            C,
            r,
          );
          close(
            gl.subarray(s * L, (s + 1) * L),
            rf,
            `F(${m}×${m}) decoder head ${s} r=${r}`,
            2 * tol,
          );
        }
      }
    }
  },
});

Deno.test({
  name: "head_maps kernels (pixel map, per-image Gaussian) vs lib/maps headMaps on odd sizes",
  ...gpuTest,
  async fn() {
    requireGpu();
    for (
      const [nH, B, h, w, H, W] of [[6, 2, 7, 7, 37, 37], [8, 1, 12, 12, 16, 18], [
        5,
        1,
        3,
        3,
        20,
        16,
      ]]
    ) {
      const lg = randn(nH * B * h * w, 90 + nH, 2);
      const ref = headMaps(lg, nH, B, h, w, H, W);
      const got = await headMapsGpu(lg, nH, B, h, w, H, W);
      const tag = `${nH} heads ${h}×${w} → ${H}×${W}`;
      close(got.pixelMap, ref.pixelMap, `pixel map ${tag}`, 1e-6);
      close(got.smoothed, ref.smoothed, `smoothed ${tag}`, 1e-6);
      close(got.imageScores, ref.imageScores, `image score ${tag}`, 1e-6);
    }
  },
});

// ---------------------------------------------------------------- the whole head

Deno.test({
  name:
    "head forward (WebGPU) equals the official tiny fixture: maps, scores, ref_mask, intermediates",
  ...gpuTest,
  async fn() {
    requireGpu();
    const { io, weightsPath } = await fixture("tiny");
    const head = await loadHead(weightsPath);
    const [B, , h, w] = io.tensors.get("X")!.shape;
    const cap: Capture = new Map();
    const r = await head.forward(t(io, "X"), B, h, w, { capture: cap });
    assert.deepEqual([...r.refMask], [...t(io, "ref_mask")], "ref_mask");
    close(r.unary, t(io, "unary"), "unary");
    close(r.headLogits, t(io, "head_logits"), "head_logits");
    close(r.pixelMap, t(io, "pixel_map"), "pixel_map");
    close(r.smoothed, t(io, "pixel_map_smoothed_per_image"), "pixel_map_smoothed_per_image");
    close(r.imageScores, t(io, "image_score_per_image"), "image_score_per_image");
    const seen = compareCaptures(io, cap, TOL);
    for (
      const k of [
        "E_b0",
        "mixer_b0_d0_in",
        "mixer_b0_d0_out",
        "mixer_b0_d1_in",
        "mixer_b0_d1_out",
        "block_b0_d0_out_h",
        "block_b0_d1_out_h",
        "branch_features_b0",
      ]
    ) assert.ok(seen.includes(k), `intermediate ${k} compared`);
    // without capture (the recorded production program) the logits are the same
    const r2 = await head.forward(t(io, "X"), B, h, w, { engine: "webgpu" });
    close(r2.headLogits, r.headLogits, "logits with/without capture", 1e-6);
  },
});

Deno.test({
  name: "cli/head.ts writes the fixture's output tensors (tiny)",
  ...gpuTest,
  async fn() {
    requireGpu();
    const { io, weightsPath } = await fixture("tiny");
    const out = await Deno.makeTempFile({ suffix: ".safetensors" });
    try {
      await headCli([
        "--weights",
        weightsPath.pathname,
        "--input",
        new URL("tiny/io.safetensors", FIX).pathname,
        "--out",
        out,
      ]);
      const o = await readSafeTensors(out);
      for (
        const k of [
          "unary",
          "ref_mask",
          "head_logits",
          "pixel_map",
          "pixel_map_smoothed_per_image",
          "image_score_per_image",
        ]
      ) {
        const a = o.tensors.get(k), b = io.tensors.get(k)!;
        assert.ok(a, `output lacks ${k}`);
        assert.deepEqual(a.shape, b.shape, `${k} shape`);
        close(a.data as Float32Array, b.data as Float32Array, `cli ${k}`);
      }
      await assert.rejects(
        () =>
          headCli([
            "--weights",
            weightsPath.pathname,
            "--input",
            new URL("paper/io.safetensors", FIX).pathname,
            "--out",
            out,
          ]),
        /tensor X has 1024 channels, the head expects in_chans = 64/,
      );
    } finally {
      await Deno.remove(out);
    }
  },
});

Deno.test({
  name: "head forward (WebGPU) equals the official paper fixture (1024 in, 49×49, 16 heads)",
  ...gpuTest,
  async fn() {
    requireGpu();
    const { io, weightsPath } = await fixture("paper");
    const head = new Head((await loadHead(weightsPath)).weights);
    const cap: Capture = new Map();
    const r = await head.forward(t(io, "X"), 1, 49, 49, { capture: cap });
    assert.deepEqual([...r.refMask], [...t(io, "ref_mask")], "ref_mask");
    close(r.headLogits, t(io, "head_logits"), "head_logits");
    close(r.pixelMap, t(io, "pixel_map"), "pixel_map");
    close(r.smoothed, t(io, "pixel_map_smoothed_per_image"), "pixel_map_smoothed_per_image");
    close(r.imageScores, t(io, "image_score_per_image"), "image_score_per_image");
    const seen = compareCaptures(io, cap, TOL);
    assert.ok(
      seen.includes("mixer_b0_d0_out") && seen.includes("branch_features_b0"),
      seen.join(", "),
    );
  },
});

Deno.test({
  name:
    "head forward (native engine: onnxruntime-node) equals the official tiny and paper fixtures",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    for (const name of ["tiny", "paper"] as const) {
      const { io, weightsPath } = await fixture(name);
      const head = await loadHead(weightsPath);
      const [B, , h, w] = io.tensors.get("X")!.shape;
      const r = await head.forward(t(io, "X"), B, h, w, { engine: "native" });
      assert.deepEqual([...r.refMask], [...t(io, "ref_mask")], `${name} ref_mask`);
      close(r.unary, t(io, "unary"), `${name} unary`);
      close(r.headLogits, t(io, "head_logits"), `${name} head_logits`);
      close(r.pixelMap, t(io, "pixel_map"), `${name} pixel_map`);
      close(r.smoothed, t(io, "pixel_map_smoothed_per_image"), `${name} smoothed`);
      close(r.imageScores, t(io, "image_score_per_image"), `${name} image scores`);
      // The logits of the native engine equal the TypeScript reference's on the same Z.
      const fu = fuseResidualsRef(
        t(io, "X"),
        B,
        h,
        w,
        head.weights.unaryW,
        head.weights.unaryB[0],
        {
          ratio: head.config.self_ratio,
          method: head.config.residual_method,
        },
      );
      const ref = headForwardRef(head.weights, fu.Z, fu.refMask, B, h, w);
      close(
        await head.logits(fu.Z, fu.refMask, B, h, w, { engine: "native" }),
        ref,
        `${name} vs ref`,
      );
    }
  },
});

/** A head of random weights for 12×12 grids of 16-d features (in_chans 32), seeded. */
async function smallRandomHead(
  scan: number,
  depth: number,
  scaleList = [1],
  seed = 1,
  embedDim = 16,
) {
  const { initHeadWeights } = await import("../lib/train/init.ts");
  const cfg = parseHeadConfig({
    image_size: [3, 96, 96],
    stride: 8,
    in_chans: 32,
    embed_dim: embedDim,
    depth,
    scan,
    self_ratio: 0.75,
    scale_list: scaleList,
    residual_method: "concat_abs_square",
  });
  return new Head(initHeadWeights(cfg, seed));
}

Deno.test({
  name:
    "native head: d_inner 10 and 32, depth 2, two atrous rates: equals the reference after another input",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    for (const d of [5, 16]) {
      const head = await smallRandomHead(4, 2, [1, 2], 5, d);
      assert.equal(head.dims.dInner, 2 * d);
      const X = randn(32 * 144, 9, 1);
      const ref = await head.forward(X, 1, 12, 12, { engine: "reference" });
      await head.forward(randn(32 * 144, 10, 1), 1, 12, 12, { engine: "native" });
      const r = await head.forward(X, 1, 12, 12, { engine: "native" });
      // f32 rounding only (a 0.5 % error in one mixer's scan moves these logits by ~2e-4)
      close(r.headLogits, ref.headLogits, `d ${d} native logits`, 2e-6);
      close(r.smoothed, ref.smoothed, `d ${d} native smoothed`, 1e-6);
    }
  },
});

Deno.test("native head's host scan: scanRecurrence + gate on the graph's operands = selectiveScanRef", () => {
  // the native engine's split: the graph computes Δ = softplus(δ + bias), dA = exp(Δ·A), Δ·u and
  // SiLU(z) in f32; the host runs the recurrence and the gate (lib/model/native_head.ts)
  for (const [N, Ls, di, ns] of [[1, 1, 3, 1], [4, 37, 16, 4], [2, 150, 8, 16]]) {
    const r = mulberry32(N * 100 + ns);
    const sym = (n: number, a = 1) => Float32Array.from({ length: n }, () => a * (2 * r() - 1));
    const dims = { nSeq: N, L: Ls, dInner: di, dState: ns };
    const ops = {
      u: sym(N * Ls * di),
      delta: sym(N * Ls * di),
      z: sym(N * Ls * di, 2),
      B: sym(N * Ls * ns),
      C: sym(N * Ls * ns),
      A: Float32Array.from({ length: di * ns }, () => -Math.exp(2 * r() - 1)),
      D: sym(di),
      deltaBias: sym(di, 0.5),
    };
    const want = selectiveScanRef(ops, dims, layoutNLD(dims));
    const fr = Math.fround;
    const dA = new Float32Array(N * Ls * ns * di), du = new Float32Array(N * Ls * di);
    const g = new Float32Array(N * Ls * di);
    for (let row = 0; row < N * Ls; row++) {
      for (let c = 0; c < di; c++) {
        const i = row * di + c, x = ops.delta[i] + ops.deltaBias[c];
        const delta = fr(x > 20 ? x : Math.log1p(Math.exp(x)));
        du[i] = fr(delta * ops.u[i]);
        g[i] = fr(ops.z[i] / (1 + Math.exp(-ops.z[i])));
        for (let n = 0; n < ns; n++) {
          dA[(row * ns + n) * di + c] = fr(Math.exp(delta * ops.A[c * ns + n]));
        }
      }
    }
    const y = scanRecurrence(dA, du, ops.B, ops.C, N, Ls, di, ns);
    gate(y, ops.u, g, ops.D);
    let worst = 0;
    for (let i = 0; i < y.length; i++) {
      worst = Math.max(worst, Math.abs(y[i] - want[i]) / (1e-3 + Math.abs(want[i])));
    }
    // f32 rounding of the operands and the state (a 0.5 % error in the scan would be 5e-3)
    assert.ok(worst < 1e-4, `(${N}, ${Ls}, ${di}, ${ns}): max relative error ${worst}`);
  }
});

Deno.test({
  name: "native head: Z of a wrong length or a non-square grid is refused by name",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { NativeHead } = await import("../lib/model/native_head.ts");
    const nh = await NativeHead.create((await smallRandomHead(4, 1)).weights);
    const mask = new Uint8Array(12 * 12).fill(1).fill(0, 0, 36);
    await assert.rejects(() => nh.run(new Float32Array(5), mask, 1, 12, 12), /Z: 5 values/);
    await assert.rejects(
      () => nh.run(new Float32Array(32 * 12 * 13), new Uint8Array(156), 1, 12, 13),
      /grid 12×13 is not square/,
    );
  },
});

Deno.test({
  name: "head engine: auto picks native on a CPU adapter or none; capture never runs native",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { resolveHeadEngine } = await import("../lib/model/head.ts");
    const { tryGetGpu } = await import("../lib/gpu/device.ts");
    const gpu = await tryGetGpu();
    const want = !gpu || gpu.info.isCpu ? "native" : "webgpu";
    assert.equal(await resolveHeadEngine("auto"), want);
    assert.equal(await resolveHeadEngine("reference"), "reference");
    assert.notEqual(await resolveHeadEngine("auto", true), "native");
    await assert.rejects(() => resolveHeadEngine("native", true), /capturing/);
    Deno.env.set("SNARM_HEAD", "reference");
    try {
      assert.equal(await resolveHeadEngine("auto"), "reference");
      assert.equal(await resolveHeadEngine("native"), "native", "an explicit engine wins");
      Deno.env.set("SNARM_HEAD", "gpu");
      await assert.rejects(() => resolveHeadEngine("auto"), /SNARM_HEAD='gpu'/);
    } finally {
      Deno.env.delete("SNARM_HEAD");
    }
  },
});

Deno.test({
  name:
    "scan = 1 and scan = 4 heads, B = 2, random weights: WebGPU and native forwards equal the TypeScript reference",
  ...gpuTest,
  async fn() {
    requireGpu();
    for (const scan of [1, 4]) {
      const head = await smallRandomHead(scan, 2, [1, 3], 3);
      assert.equal(head.dims.nHeads, 2 * scan);
      const X = randn(2 * 32 * 144, 7, 1);
      const ref = await head.forward(X, 2, 12, 12, { engine: "reference" });
      for (const engine of ["webgpu", "native"] as const) {
        // another input first: the native engine reuses its output buffers across forwards
        await head.forward(randn(2 * 32 * 144, 8, 1), 2, 12, 12, { engine });
        const r = await head.forward(X, 2, 12, 12, { engine });
        const what = `scan ${scan} ${engine}`;
        assert.deepEqual([...r.refMask], [...ref.refMask], `${what} refMask`);
        close(r.headLogits, ref.headLogits, `${what} logits`);
        close(r.smoothed, ref.smoothed, `${what} smoothed`);
        close(r.imageScores, ref.imageScores, `${what} image scores`);
      }
    }
  },
});

import assert from "node:assert/strict";
import { readSafeTensors, requireTensor, type SafeTensors } from "../lib/io/safetensors.ts";
import { pipelineCount } from "../lib/gpu/mod.ts";
import {
  encodeResidual,
  fuseResiduals,
  fuseResidualsRef,
  type FusionOut,
  pyRound,
  referenceCount,
  type ResidualMethod,
} from "../lib/residual/mod.ts";
import { gpuTest, requireGpu } from "./_gpu.ts";
import { mulberry32 } from "../lib/util/rng.ts";

const FIX = new URL("../../shared/fixtures/snarm_official/", import.meta.url);
const RESIDUAL = new URL("residual/io.safetensors", FIX);
const TINY_IO = new URL("tiny/io.safetensors", FIX);
const TINY_W = new URL("tiny/weights.safetensors", FIX);

/** Largest |a − b| / max(1, |b|): absolute error for values up to 1, relative above. */
function maxScaledDiff(a: ArrayLike<number>, b: ArrayLike<number>, what: string): number {
  assert.equal(a.length, b.length, `${what}: length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  }
  return m;
}

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  const e = maxScaledDiff(a, b, what);
  assert.ok(e <= tol, `${what}: max |diff| ${e} > ${tol}`);
}

function identical(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assert.equal(a.length, b.length, `${what}: length ${a.length} vs ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) assert.fail(`${what}: first difference at ${i}: ${a[i]} vs ${b[i]}`);
  }
}

function sameSetsPerRow(a: Int32Array, b: Int32Array, rows: number, what: string): void {
  const n = a.length / rows;
  for (let r = 0; r < rows; r++) {
    const x = [...a.subarray(r * n, (r + 1) * n)].sort((p, q) => p - q);
    const y = [...b.subarray(r * n, (r + 1) * n)].sort((p, q) => p - q);
    assert.deepEqual(x, y, `${what}: row ${r} differs as a set`);
  }
}

const f32 = (st: SafeTensors, name: string, shape: number[]) =>
  requireTensor(st, name, "F32", shape).data as Float32Array;
const i32 = (st: SafeTensors, name: string, shape: number[]) =>
  requireTensor(st, name, "I32", shape).data as Int32Array;

// ---------------------------------------------------------------------------------------------
// residual fixture (official prepocess_residual + SelfNavigatedMamba.forward up to Z; B=2, C=32,
// 12×12, K=108)

const ENC_NAMES: Record<ResidualMethod, string> = {
  abs: "enc_abs",
  square: "enc_square",
  concat_abs_square: "enc_concat_abs_square",
};

async function residualFixture() {
  const io = await readSafeTensors(RESIDUAL);
  const X = f32(io, "inter_model_input", [2, 64, 12, 12]);
  const weight = f32(io, "intra_simple_predictor_weight", [1, 32, 1, 1]);
  const bias = f32(io, "intra_simple_predictor_bias", [1])[0];
  return { io, X, weight, bias };
}

function checkResidualFixture(io: SafeTensors, out: FusionOut, what: string): void {
  assert.equal(out.Cp, 32);
  assert.equal(out.K, 108);
  close(out.unary, f32(io, "intra_unary", [2, 1, 12, 12]), 1e-5, `${what} intra_unary`);
  close(out.waypoint, f32(io, "intra_waypoint", [2, 1, 12, 12]), 1e-5, `${what} intra_waypoint`);
  identical(out.refMask, f32(io, "intra_ref_mask", [2, 144]), `${what} intra_ref_mask`);
  sameSetsPerRow(
    out.refIndices,
    i32(io, "intra_ref_indices", [2, 108]),
    2,
    `${what} intra_ref_indices`,
  );
  identical(out.intraNn, i32(io, "intra_nn", [2, 144]), `${what} intra_nn`);
  close(
    out.intraResidual,
    f32(io, "intra_intra_residual", [2, 32, 12, 12]),
    1e-5,
    `${what} intra_intra_residual`,
  );
  close(out.Renc, f32(io, "intra_R_enc", [2, 32, 12, 12]), 1e-5, `${what} intra_R_enc`);
  close(out.Senc, f32(io, "intra_S_enc", [2, 32, 12, 12]), 1e-5, `${what} intra_S_enc`);
  // Z = concat[R, S_enc] per image.
  for (let b = 0; b < 2; b++) {
    identical(
      out.Z.subarray(b * 64 * 144, b * 64 * 144 + 32 * 144),
      out.Renc.subarray(b * 32 * 144, (b + 1) * 32 * 144),
      `${what} Z[R]`,
    );
    identical(
      out.Z.subarray(b * 64 * 144 + 32 * 144, (b + 1) * 64 * 144),
      out.Senc.subarray(b * 32 * 144, (b + 1) * 32 * 144),
      `${what} Z[S]`,
    );
  }
}

Deno.test("residual: TS encodings abs/square/concat_abs_square match the official fixture", async () => {
  const io = await readSafeTensors(RESIDUAL);
  const r = f32(io, "inter_residual", [2, 32, 12, 12]);
  for (const m of Object.keys(ENC_NAMES) as ResidualMethod[]) {
    const e = encodeResidual(r, 2, 32, 12, 12, m);
    close(e, f32(io, ENC_NAMES[m], [2, 32, 12, 12]), 1e-6, `TS ${ENC_NAMES[m]}`);
  }
});

Deno.test("residual: TS reference fusion matches the official residual fixture", async () => {
  const { io, X, weight, bias } = await residualFixture();
  const opts = { ratio: 0.75, method: "concat_abs_square" } as const;
  checkResidualFixture(io, fuseResidualsRef(X, 2, 12, 12, weight, bias, opts), "TS");
  for (const m of Object.keys(ENC_NAMES) as ResidualMethod[]) {
    const out = fuseResidualsRef(X, 2, 12, 12, weight, bias, { ratio: 0.75, method: m });
    close(out.Renc, f32(io, ENC_NAMES[m], [2, 32, 12, 12]), 1e-6, `TS Renc ${m}`);
  }
});

Deno.test({
  name: "residual: WGSL kernels match the official residual fixture (encodings, selection, nn)",
  ...gpuTest,
  async fn() {
    requireGpu();
    const { io, X, weight, bias } = await residualFixture();
    const opts = { ratio: 0.75, method: "concat_abs_square", engine: "webgpu" } as const;
    checkResidualFixture(io, await fuseResiduals(X, 2, 12, 12, weight, bias, opts), "GPU");
    for (const m of Object.keys(ENC_NAMES) as ResidualMethod[]) {
      const out = await fuseResiduals(X, 2, 12, 12, weight, bias, {
        ratio: 0.75,
        method: m,
        engine: "webgpu",
      });
      close(out.Renc, f32(io, ENC_NAMES[m], [2, 32, 12, 12]), 1e-6, `GPU Renc ${m}`);
    }
  },
});

// ---------------------------------------------------------------------------------------------
// tiny fixture (official full forward; B=2, C=32, 12×12)

async function tinyFixture() {
  const io = await readSafeTensors(TINY_IO);
  const wt = await readSafeTensors(TINY_W);
  return {
    io,
    X: f32(io, "X", [2, 64, 12, 12]),
    weight: f32(wt, "simple_predictor.weight", [1, 32, 1, 1]),
    bias: f32(wt, "simple_predictor.bias", [1])[0],
  };
}

function checkTiny(io: SafeTensors, out: FusionOut, what: string): void {
  close(out.unary, f32(io, "unary", [2, 1, 12, 12]), 1e-5, `${what} unary`);
  close(out.waypoint, f32(io, "waypoint", [2, 1, 12, 12]), 1e-5, `${what} waypoint`);
  identical(out.refMask, f32(io, "ref_mask", [2, 144]), `${what} ref_mask`);
  sameSetsPerRow(out.refIndices, i32(io, "ref_indices", [2, 108]), 2, `${what} ref_indices`);
  identical(out.intraNn, i32(io, "intra_nn", [2, 144]), `${what} intra_nn`);
  close(out.Renc, f32(io, "R_enc", [2, 32, 12, 12]), 1e-5, `${what} R_enc`);
  close(out.Senc, f32(io, "S_enc", [2, 32, 12, 12]), 1e-5, `${what} S_enc`);
}

Deno.test("residual: TS reference matches the official tiny fixture", async () => {
  const { io, X, weight, bias } = await tinyFixture();
  const out = fuseResidualsRef(X, 2, 12, 12, weight, bias, {
    ratio: 0.75,
    method: "concat_abs_square",
  });
  checkTiny(io, out, "TS");
});

Deno.test({
  name: "residual: WGSL kernels match the official tiny fixture; pipelines are cached",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const { io, X, weight, bias } = await tinyFixture();
    const opts = { ratio: 0.75, method: "concat_abs_square", engine: "webgpu" } as const;
    checkTiny(io, await fuseResiduals(X, 2, 12, 12, weight, bias, opts), "GPU");
    const n = pipelineCount(gpu);
    checkTiny(io, await fuseResiduals(X, 2, 12, 12, weight, bias, opts), "GPU (2nd call)");
    assert.equal(pipelineCount(gpu), n, "second call compiled new pipelines");
  },
});

// ---------------------------------------------------------------------------------------------
// GPU vs TS reference on random data

/** Deterministic approximately-normal f32 values (sum of 4 uniforms, mulberry32). */
function randomNormal(n: number, seed: number, scale = 1): Float32Array {
  const u = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (u() + u() + u() + u() - 2) * Math.sqrt(3) * scale;
  return out;
}

/** Smallest gap between the K-th and (K+1)-th smallest waypoint over the images. */
function selectionGap(waypoint: Float32Array, B: number, L: number, K: number): number {
  let gap = Infinity;
  for (let b = 0; b < B; b++) {
    const s = [...waypoint.subarray(b * L, (b + 1) * L)].sort((x, y) => x - y);
    if (K < L) gap = Math.min(gap, s[K] - s[K - 1]);
  }
  return gap;
}

function compareGpuRef(g: FusionOut, t: FusionOut, B: number, L: number, what: string): void {
  assert.ok(
    selectionGap(t.waypoint, B, L, t.K) > 1e-4,
    `${what}: test input has a near-tie at the selection boundary; pick another seed`,
  );
  close(g.unary, t.unary, 1e-5, `${what} unary`);
  close(g.waypoint, t.waypoint, 1e-5, `${what} waypoint`);
  identical(g.refMask, t.refMask, `${what} refMask`);
  sameSetsPerRow(g.refIndices, t.refIndices, B, `${what} refIndices`);
  identical(g.intraNn, t.intraNn, `${what} intraNn`);
  identical(g.intraResidual, t.intraResidual, `${what} intraResidual`);
  close(g.Renc, t.Renc, 1e-6, `${what} Renc`);
  close(g.Senc, t.Senc, 1e-5, `${what} Senc`);
  close(g.Z, t.Z, 1e-6, `${what} Z`);
}

Deno.test({
  name: "residual: paper scale (B=1, C=512, 49×49, K=1801) GPU equals the TS reference",
  ...gpuTest,
  async fn() {
    requireGpu();
    const C = 512, h = 49, w = 49, L = h * w;
    const X = randomNormal(2 * C * L, 20250801);
    const weight = randomNormal(C, 7, 0.05);
    const opts = { ratio: 0.75, method: "concat_abs_square", engine: "webgpu" } as const;
    let t0 = performance.now();
    const g = await fuseResiduals(X, 1, h, w, weight, -0.3, opts);
    const tGpuFirst = performance.now() - t0;
    t0 = performance.now();
    const g2 = await fuseResiduals(X, 1, h, w, weight, -0.3, opts);
    const tGpu = performance.now() - t0;
    t0 = performance.now();
    const t = fuseResidualsRef(X, 1, h, w, weight, -0.3, opts);
    const tRef = performance.now() - t0;
    assert.equal(t.K, 1801);
    compareGpuRef(g, t, 1, L, "paper");
    identical(g2.intraNn, g.intraNn, "paper 2nd call intraNn");
    console.log(
      `paper scale: GPU first call ${tGpuFirst.toFixed(0)} ms (incl. JIT), GPU ${
        tGpu.toFixed(0)
      } ms, TS reference ${tRef.toFixed(0)} ms (ratio ${(tRef / tGpu).toFixed(2)}×)`,
    );
  },
});

Deno.test({
  name:
    "residual: odd shapes (C not a multiple of 4, B=3, wide C, K=1) GPU equals the TS reference",
  ...gpuTest,
  async fn() {
    requireGpu();
    const cases: Array<[number, number, number, number, number, ResidualMethod]> = [
      // B, C, h, w, ratio, method
      [3, 37, 5, 7, 0.5, "abs"],
      [2, 6, 9, 4, 0.75, "square"],
      [1, 1100, 4, 5, 0.6, "concat_abs_square"],
      [1, 9, 3, 3, 0.1, "concat_abs_square"], // K = round(0.9) = 1: the reference matches itself
    ];
    let seed = 1;
    for (const [B, C, h, w, ratio, method] of cases) {
      const X = randomNormal(B * 2 * C * h * w, seed++);
      const weight = randomNormal(C, seed++, 0.2);
      const what = `B=${B} C=${C} ${h}×${w} ratio=${ratio} ${method}`;
      const t = fuseResidualsRef(X, B, h, w, weight, 0.1, { ratio, method });
      const g = await fuseResiduals(X, B, h, w, weight, 0.1, { ratio, method, engine: "webgpu" });
      compareGpuRef(g, t, B, h * w, what);
    }
  },
});

Deno.test("residual: K = round(ratio·L) with Python rounding; the K=1 reference matches itself", () => {
  assert.equal(referenceCount(2401, 0.75), 1801);
  assert.equal(referenceCount(144, 0.75), 108);
  assert.equal(pyRound(2.5), 2);
  assert.equal(pyRound(3.5), 4);
  assert.equal(referenceCount(10, 0.25), 2); // Python round(2.5) = 2
  const X = randomNormal(2 * 3 * 9, 5);
  const out = fuseResidualsRef(X, 1, 3, 3, new Float32Array(3), 0, {
    ratio: 0.1,
    method: "abs",
  });
  assert.equal(out.K, 1);
  const ref = out.refIndices[0];
  assert.equal(out.intraNn[ref], ref);
  for (let p = 0; p < 9; p++) assert.equal(out.intraNn[p], ref);
});

// ---------------------------------------------------------------------------------------------
// bad input

Deno.test("residual: bad X / weight / options are rejected naming the tensor", async () => {
  const B = 1, h = 2, w = 3, C = 4;
  const good = randomNormal(B * 2 * C * h * w, 3);
  const weight = new Float32Array(C);
  const opts = { ratio: 0.75, method: "concat_abs_square" } as const;
  const cases: Array<[string, () => unknown, RegExp]> = [
    [
      "odd channel count",
      () => [new Float32Array(B * 7 * h * w), weight],
      /X has an odd channel count 7/,
    ],
    [
      "wrong length",
      () => [new Float32Array(good.length + 1), weight],
      /X has 49 values, not B·2C·h·w/,
    ],
    ["NaN", () => {
      const x = good.slice();
      x[2 * h * w + 4] = NaN;
      return [x, weight];
    }, /X: non-finite value NaN at index 16 \(image 0, channel 2, y 1, x 1\)/],
    [
      "weight length",
      () => [good, new Float32Array(C + 1)],
      /unaryWeight has 5 values, expected Cp = 4/,
    ],
  ];
  for (const [name, make, re] of cases) {
    const [x, wt] = make() as [Float32Array, Float32Array];
    assert.throws(() => fuseResidualsRef(x, B, h, w, wt, 0, opts), re, `TS: ${name}`);
    for (const engine of ["webgpu", "native"] as const) {
      await assert.rejects(() => fuseResiduals(x, B, h, w, wt, 0, { ...opts, engine }), re, engine);
    }
  }
  assert.throws(() => fuseResidualsRef(good, B, h, w, weight, NaN, opts), /unaryBias/);
  assert.throws(
    () => fuseResidualsRef(good, B, h, w, weight, 0, { ratio: 0, method: "abs" }),
    /ratio: self-reference ratio must be in \(0, 1\]/,
  );
  assert.throws(
    () =>
      fuseResidualsRef(good, B, h, w, weight, 0, { ratio: 0.5, method: "l1" as ResidualMethod }),
    /method: unknown residual encoding "l1"/,
  );
  assert.throws(() => encodeResidual(new Float32Array(5), 1, 2, 1, 2, "abs"), /r has 5 values/);
});

Deno.test("residual: without an adapter, auto fusion runs native; webgpu warns and returns the TS reference", async () => {
  const mod = new URL("../lib/residual/mod.ts", import.meta.url).href;
  const code = `
    import { fuseResiduals, fuseResidualsRef } from ${JSON.stringify(mod)};
    const X = new Float32Array(2 * 4 * 9).map((_, i) => Math.sin(i * 1.7));
    const wt = new Float32Array([0.1, -0.2, 0.3, 0.05]);
    const o = { ratio: 0.75, method: "concat_abs_square" };
    const a = await fuseResiduals(X, 1, 3, 3, wt, 0.2, o);
    console.error("-- auto done --");
    const g = await fuseResiduals(X, 1, 3, 3, wt, 0.2, { ...o, engine: "webgpu" });
    const t = fuseResidualsRef(X, 1, 3, 3, wt, 0.2, o);
    const same = (u) => [...u.Z].every((v, i) => v === t.Z[i]);
    console.log(JSON.stringify([[...g.intraNn], [...t.intraNn], same(g) && same(a)]));
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-check", code],
    env: { SNARM_NO_GPU: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, stderr);
  const [auto, webgpu] = stderr.split("-- auto done --");
  assert.doesNotMatch(auto, /residual fusion/, "auto runs native, no fallback warning");
  assert.match(webgpu, /residual fusion runs its TypeScript reference/);
  const [g, t, zEqual] = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.deepEqual(g, t);
  assert.equal(zEqual, true);
});

Deno.test({
  name:
    "residual: native fusion (nearest reference on onnxruntime-node) is identical to the TS reference",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // The official residual fixture.
    const { io, X, weight, bias } = await residualFixture();
    const opts = { ratio: 0.75, method: "concat_abs_square", engine: "native" } as const;
    const nat = await fuseResiduals(X, 2, 12, 12, weight, bias, opts);
    checkResidualFixture(io, nat, "native");
    // Paper scale, odd shapes, K = 1, and exact duplicates (ties at distance 0, incl. a position
    // whose duplicate reference lies before and after it).
    const cases: Array<[number, number, number, number, number, ResidualMethod, boolean]> = [
      [1, 512, 49, 49, 0.75, "concat_abs_square", false],
      [3, 37, 5, 7, 0.5, "abs", false],
      [1, 9, 3, 3, 0.1, "concat_abs_square", false],
      [2, 16, 8, 8, 0.75, "square", true],
    ];
    let seed = 50;
    for (const [B, C, h, w, ratio, method, dup] of cases) {
      const L = h * w;
      const X2 = randomNormal(B * 2 * C * L, seed++);
      if (dup) {
        // copy the features of position p to p + 1 and p + 2 (every 5th p) in each image
        for (let b = 0; b < B; b++) {
          for (let p = 0; p + 2 < L; p += 5) {
            for (let c = 0; c < C; c++) {
              const o = (b * 2 * C + C + c) * L;
              X2[o + p + 1] = X2[o + p];
              X2[o + p + 2] = X2[o + p];
            }
          }
        }
      }
      const wgt = randomNormal(C, seed++, 0.2);
      const what = `B=${B} C=${C} ${h}×${w} ratio=${ratio} ${method}${dup ? " duplicates" : ""}`;
      const t = fuseResidualsRef(X2, B, h, w, wgt, 0.1, { ratio, method });
      const n = await fuseResiduals(X2, B, h, w, wgt, 0.1, { ratio, method, engine: "native" });
      identical(n.intraNn, t.intraNn, `${what} intraNn`);
      identical(n.refMask, t.refMask, `${what} refMask`);
      identical(n.Z, t.Z, `${what} Z`);
    }
    // Tiny features (~1e-20: squared distances below f32's normal range, where the search's
    // relative error bound alone let near-ties through) on a few levels (exact ties).
    for (let s = 1; s <= 40; s++) {
      const u = mulberry32(s * 7919);
      const B = 1 + (s % 3), C = 1 + Math.floor(u() * 40);
      const h = 2 + Math.floor(u() * 12), w = 2 + Math.floor(u() * 12), levels = 1 + (s % 4);
      const X3 = new Float32Array(B * 2 * C * h * w).map(() =>
        (Math.floor(u() * levels) + (s % 3 === 0 ? u() * 1e-6 : 0)) * 1e-20
      );
      const wgt = Float32Array.from({ length: C }, () => u() - 0.5);
      const o = { ratio: [0.25, 0.5, 0.75, 1][s % 4], method: "abs" } as const;
      const t = fuseResidualsRef(X3, B, h, w, wgt, 0.1, o);
      const n = await fuseResiduals(X3, B, h, w, wgt, 0.1, { ...o, engine: "native" });
      identical(n.intraNn, t.intraNn, `tiny features, case ${s}: intraNn`);
    }
  },
});

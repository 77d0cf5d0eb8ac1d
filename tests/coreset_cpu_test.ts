import assert from "node:assert/strict";
import {
  coresetInitDistances,
  createRng,
  greedyCoresetReference,
  maxCode,
  resolveCoresetImpl,
  sampleWithoutReplacement,
} from "../lib/bank/coreset.ts";
import { greedyCoresetCpu } from "../lib/bank/coreset_cpu.ts";
import { buildBank } from "../lib/bank/bank.ts";
import type { FeatureGrid } from "../lib/types.ts";
import { gpu, gpuTest, requireGpu } from "./_gpu.ts";
import { clusteredPoints, coresetSetup, uniformPoints } from "./_points.ts";

/** Both CPU kernels equal the reference (indices and values); returns the reference result. */
function assertSame(codes: Int16Array, n: number, d: number, t: number, init: Int32Array) {
  const initCopy = init.slice();
  const r = greedyCoresetReference(codes, n, d, t, init);
  for (const kernel of ["wasm", "js"] as const) {
    if (kernel === "wasm" && d < 2) continue;
    let used = "";
    const c = greedyCoresetCpu(codes, n, d, t, init, { kernel, onKernel: (k) => (used = k) });
    if (t > 1) assert.equal(used, kernel === "wasm" ? "wasm-simd" : "js");
    assert.deepEqual([...c.indices], [...r.indices], `${kernel} indices n=${n} d=${d} t=${t}`);
    assert.deepEqual([...c.minDist], [...r.minDist], `${kernel} minDist n=${n} d=${d} t=${t}`);
  }
  assert.deepEqual(init, initCopy, "init not modified");
  return r;
}

Deno.test("coreset cpu: identical to the reference on uniform random codes (d=128, d=8, d=20)", () => {
  for (const [n, d, t, seed] of [[3000, 128, 300, 1], [4000, 8, 600, 2], [2500, 20, 400, 3]]) {
    const { codes, init } = coresetSetup(uniformPoints(n, d, createRng(seed)), n, d, seed + 10);
    assertSame(codes, n, d, t, init);
  }
});

Deno.test("coreset cpu: identical on clustered data (pruning active), d=128 and d=8", () => {
  for (const [n, d, t, seed] of [[6000, 128, 800, 4], [6000, 8, 1500, 5]]) {
    const { codes, init } = coresetSetup(clusteredPoints(n, d, 25, createRng(seed)), n, d, seed);
    const r = assertSame(codes, n, d, t, init);
    assert.equal(new Set(r.indices).size, t);
  }
});

Deno.test("coreset cpu: exact duplicates and tied distances (ties → lowest index)", () => {
  const rng = createRng(5);
  const distinct = 150, rep = 20, n = distinct * rep, d = 12, t = 400;
  const base = new Float32Array(distinct * d).map(() => rng.nextInt(4));
  const perm = sampleWithoutReplacement(n, n, rng);
  const x = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const b = perm[i] % distinct;
    x.set(base.subarray(b * d, b * d + d), i * d);
  }
  const { codes, init } = coresetSetup(x, n, d, 6);
  const r = assertSame(codes, n, d, t, init);
  // Once everything is covered (value 0), the lowest unselected indices come in order.
  const firstZero = r.minDist.findIndex((v, i) => i > 0 && v === 0);
  assert.ok(firstZero > 0);
  const chosen = new Set(r.indices.slice(0, firstZero));
  const rest = Array.from({ length: n }, (_, i) => i).filter((i) => !chosen.has(i));
  assert.deepEqual([...r.indices.slice(firstZero, firstZero + 20)], rest.slice(0, 20));
  // All points identical: anchors tie everywhere.
  const same = new Int16Array(50 * 8).fill(3);
  assertSame(same, 50, 8, 50, new Int32Array(50).fill(7));
  assertSame(same, 50, 8, 50, new Int32Array(50));
});

Deno.test("coreset cpu: T = n, T = 0, 1, 2, and d = 1 (TypeScript kernel)", () => {
  const n = 300;
  for (const d of [8, 3]) {
    const { codes, init } = coresetSetup(clusteredPoints(n, d, 7, createRng(7)), n, d, 8);
    const r = assertSame(codes, n, d, n, init);
    assert.deepEqual([...r.indices].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i));
    for (const t of [0, 1, 2]) assertSame(codes, n, d, t, init);
  }
  const { codes, init } = coresetSetup(uniformPoints(500, 1, createRng(9)), 500, 1, 9);
  assertSame(codes, 500, 1, 200, init);
  let used = "";
  greedyCoresetCpu(codes, 500, 1, 10, init, { onKernel: (k) => (used = k) });
  assert.equal(used, "js", "d = 1 uses the TypeScript kernel (i16 differences could overflow)");
});

Deno.test("coreset cpu: extreme codes (±maxCode) stay exact (d=128, d=2)", () => {
  for (const d of [128, 2, 17]) {
    const n = 400, mc = maxCode(d);
    const rng = createRng(d);
    const codes = new Int16Array(n * d).map(() => {
      const u = rng.nextInt(3);
      return u === 0 ? mc : u === 1 ? -mc : rng.nextInt(2 * mc + 1) - mc;
    });
    const starts = sampleWithoutReplacement(n, 10, rng);
    const init = coresetInitDistances(codes, n, d, starts);
    const r = assertSame(codes, n, d, 150, init);
    assert.ok(r.minDist[0] > 2 ** 29 || d !== 128);
  }
  // A pair at the largest representable distance d·(2·maxCode)².
  const d = 128, mc = maxCode(d);
  const codes = new Int16Array(3 * d);
  codes.fill(mc, 0, d);
  codes.fill(-mc, d, 2 * d);
  const r = assertSame(codes, 3, d, 3, new Int32Array([2147483647, 2147483647, 0]));
  assert.deepEqual([...r.indices], [0, 1, 2]);
  assert.equal(r.minDist[1], d * (2 * mc) ** 2);
});

Deno.test("coreset cpu: argument errors match the reference's", () => {
  const codes = new Int16Array(40);
  const init = new Int32Array(10);
  assert.throws(() => greedyCoresetCpu(codes, 10, 4, 11, init), /T must be an integer/);
  assert.throws(() => greedyCoresetCpu(codes, 10, 3, 2, init), /codes must be/);
  assert.throws(() => greedyCoresetCpu(codes, 10, 4, 2, new Int32Array(9)), /init must have/);
  codes[5] = 32767;
  assert.throws(() => greedyCoresetCpu(codes, 10, 4, 2, init), /flat index 5/);
});

Deno.test("coreset: resolveCoresetImpl (explicit, SNARM_CORESET, auto)", async () => {
  assert.equal(await resolveCoresetImpl("cpu"), "cpu");
  assert.equal(await resolveCoresetImpl("reference"), "reference");
  await assert.rejects(() => resolveCoresetImpl("gpu" as "cpu"), /unknown implementation "gpu"/);
  const old = Deno.env.get("SNARM_CORESET");
  try {
    Deno.env.set("SNARM_CORESET", "reference");
    assert.equal(await resolveCoresetImpl(), "reference");
    assert.equal(await resolveCoresetImpl("cpu"), "cpu", "an explicit request wins");
    Deno.env.set("SNARM_CORESET", "bogus");
    await assert.rejects(() => resolveCoresetImpl(), /SNARM_CORESET/);
    Deno.env.delete("SNARM_CORESET");
    const auto = await resolveCoresetImpl();
    assert.equal(auto, gpu && !gpu.info.isCpu ? "webgpu" : "cpu");
  } finally {
    if (old === undefined) Deno.env.delete("SNARM_CORESET");
    else Deno.env.set("SNARM_CORESET", old);
  }
});

function grids(images: number, h: number, w: number, c: number, seed: number): FeatureGrid[] {
  // Clustered patch features (a few "textures" plus noise), one grid per image.
  const rng = createRng(seed);
  const x = clusteredPoints(images * h * w, c, 9, rng);
  return Array.from({ length: images }, (_, i) => ({
    data: x.slice(i * h * w * c, (i + 1) * h * w * c),
    n: 1,
    h,
    w,
    c,
  }));
}

const bankOpts = {
  size: 300,
  cap: 3000,
  seed: 3,
  projDim: 32,
  backbone: "test",
  taps: [1],
  inputSize: 64,
  createdAt: "2026-01-01T00:00:00.000Z",
};

Deno.test({
  name: "coreset cpu: buildBank with coreset cpu equals the reference bank",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const g = grids(10, 16, 16, 48, 31);
    const cpu = await buildBank(g, { ...bankOpts, coreset: "cpu" });
    const ref = await buildBank(g, { ...bankOpts, reference: true });
    assert.equal(cpu.meta.sampler, "approx-greedy-coreset");
    assert.equal(cpu.meta.numCandidates, 2560);
    assert.deepEqual(cpu.imageIndex, ref.imageIndex);
    assert.deepEqual(cpu.position, ref.position);
    assert.deepEqual(cpu.features, ref.features);
  },
});

Deno.test({
  name: "coreset cpu: buildBank cpu and webgpu (WGSL on the adapter) give the same bank",
  ...gpuTest,
  async fn() {
    requireGpu();
    const g = grids(10, 16, 16, 48, 32);
    const cpu = await buildBank(g, { ...bankOpts, coreset: "cpu" });
    const wgsl = await buildBank(g, { ...bankOpts, coreset: "webgpu" });
    const auto = await buildBank(g, bankOpts);
    for (const b of [wgsl, auto]) {
      assert.deepEqual(b.imageIndex, cpu.imageIndex);
      assert.deepEqual(b.position, cpu.position);
      assert.deepEqual(b.features, cpu.features);
    }
  },
});

import assert from "node:assert/strict";
import {
  approximateGreedyCoreset,
  coresetInitDistances,
  createRng,
  greedyCoresetGpu,
  greedyCoresetReference,
  quantizeCoresetPoints,
  sampleWithoutReplacement,
} from "../lib/bank/coreset.ts";
import {
  type Bank,
  BankError,
  bankScopes,
  buildBank,
  loadBank,
  randomCap,
  saveBank,
} from "../lib/bank/bank.ts";
import { encodeSafeTensors, readSafeTensors } from "../lib/io/safetensors.ts";
import type { FeatureGrid } from "../lib/types.ts";
import { gpuTest, requireGpu } from "./_gpu.ts";
import { clusteredPoints, coresetSetup, uniformPoints } from "./_points.ts";

/** Max over all points of the f64 Euclidean distance to the nearest of `centres`. */
function coverageRadius(x: Float32Array, n: number, d: number, centres: ArrayLike<number>): number {
  let r = 0;
  for (let i = 0; i < n; i++) {
    let best = Infinity;
    for (let s = 0; s < centres.length; s++) {
      let sum = 0;
      for (let k = 0; k < d; k++) {
        const t = x[i * d + k] - x[centres[s] * d + k];
        sum += t * t;
      }
      if (sum < best) best = sum;
    }
    r = Math.max(r, Math.sqrt(best));
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Coreset

Deno.test({
  name: "coreset: GPU selection equals the TS reference (N=20000, D=64, T=200)",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const n = 20000, d = 64, t = 200;
    const { codes: pts, init } = coresetSetup(uniformPoints(n, d, createRng(11)), n, d, 12);
    const g = await greedyCoresetGpu(gpu, pts, n, d, t, init, { stepsPerSubmit: 64 });
    const r = greedyCoresetReference(pts, n, d, t, init);
    assert.deepEqual([...g.indices], [...r.indices]);
    assert.deepEqual([...g.minDist], [...r.minDist]);
    assert.equal(new Set(g.indices).size, t);
  },
});

Deno.test({
  name: "coreset: GPU equals reference with exact duplicates and tied distances (D=12)",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    // 150 distinct small-integer points (many equal distances), each repeated 20×, shuffled.
    const rng = createRng(5);
    const distinct = 150, rep = 20, n = distinct * rep, d = 12, t = 400;
    const base = new Float32Array(distinct * d).map(() => rng.nextInt(4));
    const perm = sampleWithoutReplacement(n, n, rng);
    const x = new Float32Array(n * d);
    for (let i = 0; i < n; i++) {
      const b = perm[i] % distinct;
      x.set(base.subarray(b * d, b * d + d), i * d);
    }
    const { codes: pts, init } = coresetSetup(x, n, d, 6);
    const g = await greedyCoresetGpu(gpu, pts, n, d, t, init);
    const r = greedyCoresetReference(pts, n, d, t, init);
    assert.deepEqual([...g.indices], [...r.indices]);
    assert.deepEqual([...g.minDist], [...r.minDist]);
    // Distinct indices; once every distinct point is a centre (anchor 0), ties go to the lowest
    // unselected index.
    assert.equal(new Set(g.indices).size, t);
    const key = (i: number) => x.subarray(i * d, i * d + d).join(",");
    const firstZero = g.minDist.findIndex((v, i) => i > 0 && v === 0);
    assert.ok(firstZero > 0);
    const covered = new Set([...g.indices.slice(0, firstZero)].map(key));
    assert.equal(covered.size, firstZero, "no duplicate picked while a point is uncovered");
    const distinctKeys = new Set(Array.from({ length: n }, (_, i) => key(i)));
    assert.equal(covered.size, distinctKeys.size);
    const chosen = new Set(g.indices.slice(0, firstZero));
    const rest = Array.from({ length: n }, (_, i) => i).filter((i) => !chosen.has(i));
    assert.deepEqual([...g.indices.slice(firstZero, firstZero + 20)], rest.slice(0, 20));
  },
});

Deno.test({
  // Runs on the GPU, or on the TS reference (fallback) when no adapter exists.
  name: "coreset: greedy property (independent check), shrinking coverage, beats random",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const n = 4000, c = 48, t = 120;
    const x = clusteredPoints(n, c, 30, createRng(21));
    const sel = await approximateGreedyCoreset(x, n, c, t, { seed: 3, projDim: 32 });
    // Recompute the projection and codes as the sampler does, then every step's anchors.
    const { projectFeatures, projectionMatrix } = await import("../lib/bank/coreset.ts");
    const rng = createRng(3);
    const d = 32;
    const p =
      quantizeCoresetPoints(projectFeatures(x, n, c, projectionMatrix(c, d, rng), d), d).codes;
    const starts = sampleWithoutReplacement(n, 10, rng);
    const anchor = Float64Array.from(coresetInitDistances(p, n, d, starts));
    const taken = new Uint8Array(n);
    for (let s = 0; s < t; s++) {
      let max = -1, arg = -1;
      for (let i = 0; i < n; i++) {
        if (!taken[i] && anchor[i] > max) {
          max = anchor[i];
          arg = i;
        }
      }
      const pick = sel.indices[s];
      assert.equal(taken[pick], 0, `step ${s} re-selected ${pick}`);
      assert.equal(
        pick,
        arg,
        `step ${s}: picked ${pick} (anchor ${anchor[pick]}), max ${max} at ${arg}`,
      );
      assert.equal(sel.minDist[s], max);
      taken[pick] = 1;
      for (let i = 0; i < n; i++) {
        let sum = 0;
        for (let k = 0; k < d; k++) {
          const e = p[i * d + k] - p[pick * d + k];
          sum += e * e;
        }
        if (sum < anchor[i]) anchor[i] = sum;
      }
    }
    // Coverage radius of the selected prefix (in the original space) never grows.
    const radii = [10, 30, 60, 120].map((k) => coverageRadius(x, n, c, sel.indices.slice(0, k)));
    for (let i = 1; i < radii.length; i++) assert.ok(radii[i] <= radii[i - 1]);
    // Every cluster is hit long before T and the greedy set covers better than random ones.
    const rnd = [1, 2, 3].map((s) =>
      coverageRadius(x, n, c, sampleWithoutReplacement(n, t, createRng(100 + s)))
    );
    assert.ok(radii[3] < Math.min(...rnd), `greedy ${radii[3]} vs random ${rnd}`);
  },
});

Deno.test({
  name: "coreset: sampler with the TS reference equals the GPU path (projection, seed)",
  ...gpuTest,
  async fn() {
    requireGpu();
    const n = 3000, c = 40, t = 60;
    const x = clusteredPoints(n, c, 12, createRng(8)).map((v) => v * 3000);
    const a = await approximateGreedyCoreset(x, n, c, t, { seed: 9, projDim: 16 });
    const b = await approximateGreedyCoreset(x, n, c, t, { seed: 9, projDim: 16, reference: true });
    assert.deepEqual([...a.indices], [...b.indices]);
    assert.deepEqual([...a.minDist], [...b.minDist]);
    const other = await approximateGreedyCoreset(x, n, c, t, { seed: 10, projDim: 16 });
    assert.notDeepEqual([...a.indices], [...other.indices]);
  },
});

Deno.test("coreset: non-finite feature is refused with its index", () => {
  const x = new Float32Array(40);
  x[17] = NaN;
  assert.throws(() => quantizeCoresetPoints(x, 4), /flat index 17/);
});

// ---------------------------------------------------------------------------------------------
// Random cap and build

function grids(images: number, h: number, w: number, c: number, seed: number, batch: number) {
  const rng = createRng(seed);
  const all = new Float32Array(images * h * w * c).map(() => rng.nextFloat());
  const out: FeatureGrid[] = [];
  for (let b = 0; b < images; b += batch) {
    const nb = Math.min(batch, images - b);
    const s = b * h * w * c;
    out.push({ data: all.slice(s, s + nb * h * w * c), n: nb, h, w, c });
  }
  return { all, out };
}

Deno.test("bank: random cap is deterministic per seed, batching-independent, exact rows", async () => {
  const { all, out } = grids(12, 5, 6, 8, 1, 5);
  const a = await randomCap(out, 100, 42);
  const b = await randomCap(grids(12, 5, 6, 8, 1, 1).out, 100, 42);
  const gen = function* () {
    yield* grids(12, 5, 6, 8, 1, 12).out;
  };
  const c = await randomCap(gen(), 100, 42);
  const d = await randomCap(out, 100, 43);
  assert.equal(a.imageIndex.length, 100);
  assert.equal(a.numPatches, 360);
  assert.equal(a.numImages, 12);
  for (const o of [b, c]) {
    assert.deepEqual(o.features, a.features);
    assert.deepEqual(o.imageIndex, a.imageIndex);
    assert.deepEqual(o.position, a.position);
  }
  assert.notDeepEqual([...d.imageIndex], [...a.imageIndex]);
  // Increasing (image, position), distinct, rows equal the source patches.
  for (let i = 0; i < 100; i++) {
    const g = a.imageIndex[i] * 30 + a.position[i];
    if (i > 0) assert.ok(g > a.imageIndex[i - 1] * 30 + a.position[i - 1]);
    assert.deepEqual(a.features.subarray(i * 8, i * 8 + 8), all.subarray(g * 8, g * 8 + 8));
  }
  // Under the cap everything is kept in order.
  const e = await randomCap(out, 1000, 42);
  assert.deepEqual(e.features, all);
  // Roughly uniform: each image keeps about 100/12 patches on average over seeds.
  const perImage = new Float64Array(12);
  for (let s = 0; s < 40; s++) {
    const r = await randomCap(out, 100, 1000 + s);
    for (const im of r.imageIndex) perImage[im]++;
  }
  for (const v of perImage) assert.ok(v / 40 > 5 && v / 40 < 12, `per-image mean ${v / 40}`);
});

Deno.test("bank: inconsistent grids and sourceIds are refused with a clear message", async () => {
  const g1: FeatureGrid = { data: new Float32Array(2 * 3 * 3 * 4), n: 2, h: 3, w: 3, c: 4 };
  const g2: FeatureGrid = { data: new Float32Array(3 * 3 * 5), n: 1, h: 3, w: 3, c: 5 };
  await assert.rejects(() => randomCap([g1, g2], 10, 0), /feature grid 1 has shape.*C=5/);
  await assert.rejects(() => randomCap([], 10, 0), /empty/);
  const meta = { backbone: "b", taps: [1], inputSize: 8 };
  await assert.rejects(
    () => buildBank([g1], { ...meta, size: 5, sourceIds: ["a"] }),
    /sourceIds has 1 ids but the features hold 2 images/,
  );
});

function smallBank(): Promise<Bank> {
  const { out } = grids(6, 7, 7, 16, 2, 4);
  return buildBank(out, {
    size: 40,
    cap: 200,
    seed: 7,
    projDim: 8,
    sourceIds: ["a/0", "a/1", "a/2", "b/0", "b/1", "b/2"],
    backbone: "dinov2-vitb14-reg4",
    taps: [[1, 2, 3, 4], [5, 6, 7, 8]],
    inputSize: [392, 392],
    unified: true,
    categories: ["a", "b"],
    createdAt: "2026-12-01T00:00:00.000Z",
    reference: true,
  });
}

Deno.test("bank: buildBank selects T entries that map back to their source patches", async () => {
  const { all } = grids(6, 7, 7, 16, 2, 4);
  const bank = await smallBank();
  assert.equal(bank.meta.T, 40);
  assert.equal(bank.features.length, 40 * 16);
  assert.equal(bank.meta.numPatches, 294);
  assert.equal(bank.meta.numCandidates, 200);
  assert.equal(bank.meta.sampler, "approx-greedy-coreset");
  assert.deepEqual(bank.meta.grid, [7, 7]);
  const seen = new Set<number>();
  for (let i = 0; i < 40; i++) {
    const g = bank.imageIndex[i] * 49 + bank.position[i];
    seen.add(g);
    assert.deepEqual(
      bank.features.subarray(i * 16, i * 16 + 16),
      all.subarray(g * 16, g * 16 + 16),
    );
  }
  assert.equal(seen.size, 40);
  const again = await smallBank();
  assert.deepEqual(again.features, bank.features);
  // T ≥ candidates keeps all of them.
  const { out } = grids(2, 3, 3, 4, 3, 2);
  const allKept = await buildBank(out, { size: 100, backbone: "b", taps: [], inputSize: 8 });
  assert.equal(allKept.meta.T, 18);
  assert.equal(allKept.meta.sampler, "all");
  assert.deepEqual(allKept.meta.sourceImageIds, ["0", "1"]);
  assert.deepEqual(bankScopes(["a", "b"], true), [
    { name: "unified", categories: ["a", "b"], unified: true },
  ]);
  assert.deepEqual(bankScopes(["a", "b"], false).map((s) => s.name), ["a", "b"]);
});

// ---------------------------------------------------------------------------------------------
// Save / load

Deno.test("bank: save → load round trip is bit-exact incl. metadata; atomic write", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bank = await smallBank();
    const path = `${dir}/bank.safetensors`;
    await saveBank(path, bank);
    const back = await loadBank(path, {
      backbone: "dinov2-vitb14-reg4",
      taps: [[1, 2, 3, 4], [5, 6, 7, 8]],
      dim: 16,
    });
    assert.deepEqual(new Uint8Array(back.features.buffer), new Uint8Array(bank.features.buffer));
    assert.deepEqual(back.imageIndex, bank.imageIndex);
    assert.deepEqual(back.position, bank.position);
    assert.deepEqual(back.meta, bank.meta);
    const raw = await readSafeTensors(path);
    assert.equal(raw.metadata.backbone, "dinov2-vitb14-reg4");
    assert.equal(raw.metadata.taps, "[[1,2,3,4],[5,6,7,8]]");
    assert.deepEqual([...raw.tensors.keys()].sort(), ["features", "image_index", "position"]);
    // Overwrite leaves no temp file; a failing write leaves the existing file untouched.
    await saveBank(path, bank);
    const before = await Deno.readFile(path);
    const broken = { ...bank, imageIndex: bank.imageIndex.subarray(0, 5) };
    await assert.rejects(
      () => saveBank(path, broken),
      /image_index has 5 entries, expected T = 40/,
    );
    assert.deepEqual(await Deno.readFile(path), before);
    const bad = { ...bank, position: bank.position.map(() => 49) };
    await assert.rejects(() => saveBank(path, bad), /position\[0\] = 49 is outside \[0, 49\)/);
    assert.deepEqual(await Deno.readFile(path), before);
    const missingDir = `${dir}/no/such/dir/bank.safetensors`;
    await assert.rejects(
      () => saveBank(missingDir, bank),
      (e) => e instanceof BankError && e.message.includes(missingDir),
    );
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names, ["bank.safetensors"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bank: loadBank refuses another backbone, taps or dim, naming both", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bank = await smallBank();
    const path = `${dir}/x.safetensors`;
    await saveBank(path, bank);
    const ok = { backbone: "dinov2-vitb14-reg4", taps: [[1, 2, 3, 4], [5, 6, 7, 8]], dim: 16 };
    for (
      const [exp, want] of [
        [{ ...ok, backbone: "mobilenetv2" }, /current backbone is "mobilenetv2"/],
        [{ ...ok, taps: [[0, 1], [2, 3]] }, /taps \[\[0,1\],\[2,3\]\]/],
        [{ ...ok, dim: 512 }, /dim 512$/],
      ] as const
    ) {
      await assert.rejects(
        () => loadBank(path, exp),
        (e) =>
          e instanceof BankError && want.test(e.message) &&
          e.message.includes(
            `bank ${path} was built with backbone "dinov2-vitb14-reg4" taps [[1,2,3,4],[5,6,7,8]] dim 16, but`,
          ),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bank: corrupt, truncated, tensor-less or foreign files fail naming path and tensor", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bank = await smallBank();
    const path = `${dir}/b.safetensors`;
    await saveBank(path, bank);
    const bytes = await Deno.readFile(path);
    const trunc = `${dir}/trunc.safetensors`;
    await Deno.writeFile(trunc, bytes.subarray(0, bytes.length - 100));
    await assert.rejects(
      () => loadBank(trunc),
      (e) => e instanceof BankError && e.message.includes(trunc),
    );
    const junk = `${dir}/junk.safetensors`;
    await Deno.writeFile(junk, new TextEncoder().encode("not a safetensors file at all"));
    await assert.rejects(
      () => loadBank(junk),
      (e) => e instanceof BankError && e.message.includes(junk),
    );
    await assert.rejects(
      () => loadBank(`${dir}/absent.safetensors`),
      /absent\.safetensors/,
    );
    const raw = await readSafeTensors(path);
    raw.tensors.delete("position");
    const noPos = `${dir}/nopos.safetensors`;
    await Deno.writeFile(noPos, encodeSafeTensors(raw.tensors, raw.metadata));
    await assert.rejects(
      () => loadBank(noPos),
      (e) =>
        e instanceof BankError && e.message.includes(noPos) &&
        /missing tensor position/.test(e.message),
    );
    const raw2 = await readSafeTensors(path);
    raw2.tensors.set("image_index", { ...raw2.tensors.get("image_index")!, dtype: "F32" });
    const wrongType = `${dir}/wrongtype.safetensors`;
    await Deno.writeFile(wrongType, encodeSafeTensors(raw2.tensors, raw2.metadata));
    await assert.rejects(
      () => loadBank(wrongType),
      /tensor image_index has dtype F32, expected I32/,
    );
    const foreign = `${dir}/foreign.safetensors`;
    await Deno.writeFile(foreign, encodeSafeTensors(raw.tensors, {}));
    await assert.rejects(() => loadBank(foreign), /not a snarm bank/);
    const noMeta = `${dir}/nometa.safetensors`;
    const md = { ...raw.metadata };
    delete md.grid;
    await Deno.writeFile(noMeta, encodeSafeTensors((await readSafeTensors(path)).tensors, md));
    await assert.rejects(() => loadBank(noMeta), /metadata key "grid" is missing/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

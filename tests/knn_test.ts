/**
 * Exact L2 top-k bank search (lib/bank/search.ts, wgsl/bank/knn_*.wgsl) and inter-residual
 * (lib/residual/inter.ts) against the TypeScript reference and the official fixture.
 */
import assert from "node:assert/strict";
import { pipelineCount } from "../lib/gpu/mod.ts";
import { readSafeTensors, requireTensor } from "../lib/io/safetensors.ts";
import type { FeatureGrid } from "../lib/types.ts";
import {
  allowedMaskFromImageIds,
  type BankIndex,
  createBankIndex,
  prepareBankSearch,
  searchTopK,
  searchTopKRef,
  type SearchVariant,
  type TopK,
} from "../lib/bank/search.ts";
import { computeInterResidual, interModelInput, interResidual } from "../lib/residual/inter.ts";
import { toChannelsFirst } from "../lib/types.ts";
import { gpuTest, requireGpu } from "./_gpu.ts";
import { assertSameTopK, rand } from "./_knn.ts";

/** Ascending order check and exact agreement with a full sort on (distance, index). */
function bruteForceTopK(
  queries: Float32Array,
  bank: Float32Array,
  d: number,
  k: number,
  allowed?: Uint8Array,
) {
  const q = queries.length / d, n = bank.length / d;
  const idx = new Int32Array(q * k);
  for (let i = 0; i < q; i++) {
    const all: Array<[number, number]> = [];
    for (let j = 0; j < n; j++) {
      if (allowed && !allowed[j]) continue;
      let s = 0;
      for (let c = 0; c < d; c++) s += (queries[i * d + c] - bank[j * d + c]) ** 2;
      all.push([s, j]);
    }
    all.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    for (let r = 0; r < k; r++) idx[i * k + r] = all[r][1];
  }
  return idx;
}

const refCache = new Map<string, { queries: Float32Array; bank: Float32Array; ref: TopK }>();
function randomCase(q: number, n: number, d: number, seed: number) {
  const key = `${q}:${n}:${d}:${seed}`;
  let c = refCache.get(key);
  if (!c) {
    const queries = rand(q * d, seed), bank = rand(n * d, seed + 1);
    c = { queries, bank, ref: searchTopKRef(queries, bank, d, 3) };
    refCache.set(key, c);
  }
  return c;
}

Deno.test("knn reference: equals a full sort on (distance, index), incl. ties and a mask", () => {
  const d = 5;
  const bank = rand(300 * d, 7, 2);
  bank.copyWithin(200 * d, 10 * d, 11 * d); // duplicate rows: 10 == 200
  const queries = rand(40 * d, 8, 2);
  queries.set(bank.subarray(10 * d, 11 * d), 0);
  const mask = new Uint8Array(300).map((_, i) => (i % 3 ? 1 : 0));
  for (const allowed of [undefined, mask]) {
    const r = searchTopKRef(queries, bank, d, 4, allowed);
    assert.deepEqual(
      Array.from(r.indices),
      Array.from(bruteForceTopK(queries, bank, d, 4, allowed)),
    );
    for (let i = 0; i < r.q; i++) {
      for (let t = 1; t < 4; t++) assert.ok(r.distances[i * 4 + t - 1] <= r.distances[i * 4 + t]);
    }
  }
  assert.deepEqual(Array.from(searchTopKRef(queries, bank, d, 2).indices.subarray(0, 2)), [
    10,
    200,
  ]);
});

for (const variant of ["broadcast", "tiled"] as SearchVariant[]) {
  Deno.test({
    name: `knn ${variant}: Q=300 N=70000 D=32 (many dispatches, > loop limit per lane) = reference`,
    ...gpuTest,
    async fn() {
      const gpu = requireGpu();
      const { queries, bank, ref } = randomCase(300, 70000, 32, 11);
      const index = await createBankIndex(gpu, bank, 32);
      try {
        assertSameTopK(await searchTopK(queries, index, 3, { variant }), ref, variant);
      } finally {
        index.destroy();
      }
    },
  });

  Deno.test({
    name: `knn ${variant}: Q=2401 N=5000 D=128 = reference`,
    ...gpuTest,
    async fn() {
      const gpu = requireGpu();
      const { queries, bank, ref } = randomCase(2401, 5000, 128, 21);
      const index = await createBankIndex(gpu, bank, 128);
      try {
        assertSameTopK(await searchTopK(queries, index, 3, { variant }), ref, variant);
      } finally {
        index.destroy();
      }
    },
  });

  Deno.test({
    name:
      `knn ${variant}: exact ties (duplicate rows across windows/segments, D=6 padded) → lower index`,
    ...gpuTest,
    async fn() {
      const gpu = requireGpu();
      const d = 6, n = 3000;
      const bank = rand(n * d, 31, 2); // small integers: the GEMM form is exact, ties are exact
      for (const dup of [700, 1500, 2999]) bank.copyWithin(dup * d, 3 * d, 4 * d);
      const queries = rand(500 * d, 32, 2);
      queries.set(bank.subarray(3 * d, 4 * d), 0);
      const index = await createBankIndex(gpu, bank, d);
      try {
        for (const k of [3, 5]) {
          const ref = searchTopKRef(queries, bank, d, k);
          const got = await searchTopK(queries, index, k, { variant });
          assertSameTopK(got, ref, `${variant} ties k=${k}`);
          assert.deepEqual(Array.from(got.indices.subarray(0, 3)), [3, 700, 1500]);
        }
      } finally {
        index.destroy();
      }
    },
  });

  Deno.test({
    name: `knn ${variant}: allowed-entry restriction (mask and image ids) = reference`,
    ...gpuTest,
    async fn() {
      const gpu = requireGpu();
      const d = 16, n = 4000;
      const bank = rand(n * d, 41), queries = rand(200 * d, 42);
      const imageIds = Int32Array.from({ length: n }, (_, j) => Math.floor(j / 100));
      const ids = [2, 5, 17, 33, 39];
      const mask = allowedMaskFromImageIds(imageIds, ids);
      const ref = searchTopKRef(queries, bank, d, 3, mask);
      const index = await createBankIndex(gpu, bank, d, imageIds);
      try {
        assertSameTopK(
          await searchTopK(queries, index, 3, { variant, allowedImageIds: ids }),
          ref,
          "ids",
        );
        assertSameTopK(
          await searchTopK(queries, index, 3, { variant, allowed: mask }),
          ref,
          "mask",
        );
        // the unrestricted search right after still uses the full bank
        assertSameTopK(
          await searchTopK(queries, index, 3, { variant }),
          searchTopKRef(queries, bank, d, 3),
          "full",
        );
      } finally {
        index.destroy();
      }
    },
  });
}

Deno.test({
  name:
    "knn broadcast: plan with 2 windows/dispatch (as at D=512), qpi 3, partial copy = reference",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const d = 32;
    const bank = rand(3000 * d, 81), queries = rand(300 * d, 82);
    const index = await createBankIndex(gpu, bank, d);
    try {
      // nb·d/4 = 128 vec4 per window with wg 48: two full copy rounds plus a partial one.
      const plan = { nb: 16, w: 2, qpi: 3, wg: 48 };
      const got = await searchTopK(queries, index, 4, { variant: "broadcast", plan });
      assertSameTopK(got, searchTopKRef(queries, bank, d, 4), "2 windows");
    } finally {
      index.destroy();
    }
  },
});

Deno.test({
  name: "knn broadcast: more queries than one texture holds (query chunks), plain-array bank",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const d = 4, q = gpu.limits.maxTextureDimension2D + 300;
    const bank = rand(600 * d, 51), queries = rand(q * d, 52);
    const got = await searchTopK(queries, bank, 3, { d, variant: "broadcast" });
    assertSameTopK(got, searchTopKRef(queries, bank, d, 3), "chunks");
  },
});

Deno.test({
  name: "knn: pipelines are cached (a second search compiles nothing)",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const d = 16;
    const bank = rand(1000 * d, 61), queries = rand(50 * d, 62);
    const index = await createBankIndex(gpu, bank, d);
    try {
      await prepareBankSearch(index, 3, { q: 50, variant: "webgpu" });
      const before = pipelineCount(gpu);
      const a = await searchTopK(queries, index, 3, { variant: "webgpu" });
      const b = await searchTopK(queries, index, 3, { variant: "webgpu" });
      assert.equal(pipelineCount(gpu), before);
      assert.deepEqual(a.indices, b.indices);
    } finally {
      index.destroy();
    }
  },
});

// ---------------------------------------------------------------------------------------------
// Official fixture

const FIXTURE = new URL(
  "../../shared/fixtures/snarm_official/residual/io.safetensors",
  import.meta.url,
);

async function loadFixture() {
  const st = await readSafeTensors(FIXTURE);
  const w = "residual/io.safetensors";
  const get = (name: string, dtype: "F32" | "I32", shape: number[]) =>
    requireTensor(st, name, dtype, shape, w).data;
  const bank = get("inter_bank", "F32", [500, 32]) as Float32Array;
  const query = get("inter_query", "F32", [2, 144, 32]) as Float32Array;
  return {
    bank,
    imageIdx: get("inter_bank_image_idx", "I32", [500]) as Int32Array,
    features: { data: query, n: 2, h: 12, w: 12, c: 32 } as FeatureGrid,
    nnIdx: get("inter_nn_idx", "I32", [2, 144, 3]) as Int32Array,
    top4: get("inter_nn_dist_top4", "F32", [2, 144, 4]) as Float32Array,
    residual: get("inter_residual", "F32", [2, 32, 12, 12]) as Float32Array,
    modelInput: get("inter_model_input", "F32", [2, 64, 12, 12]) as Float32Array,
    ids: Array.from(get("inter_ids", "I32", [4]) as Int32Array),
    residualIds: get("inter_residual_ids", "F32", [2, 32, 12, 12]) as Float32Array,
    idsNnIdx: get("inter_ids_nn_idx", "I32", [2, 144, 3]) as Int32Array,
  };
}

function assertClose(got: Float32Array, want: Float32Array, tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let worst = 0, at = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]) / Math.max(1, Math.abs(want[i]));
    if (e > worst) [worst, at] = [e, i];
  }
  assert.ok(worst <= tol, `${what}: max error ${worst} at ${at} (${got[at]} vs ${want[at]})`);
}

async function checkFixture(bank: Float32Array | BankIndex, variant: SearchVariant, gpuOpt?: null) {
  const fx = await loadFixture();
  const opts = { variant, ...(gpuOpt === null ? { gpu: null } : {}) };
  const r = await computeInterResidual(fx.features, bank, 3, opts);
  assert.deepEqual(Array.from(r.indices), Array.from(fx.nnIdx), "inter_nn_idx");
  const top3 = new Float32Array(288 * 3).map((_, i) => fx.top4[Math.floor(i / 3) * 4 + (i % 3)]);
  assertClose(r.distances, top3, 1e-5, "inter_nn_dist_top4[..., :3]");
  assertClose(toChannelsFirst(r.residual), fx.residual, 1e-5, "inter_residual");
  assertClose(interModelInput(r.residual, fx.features), fx.modelInput, 1e-5, "inter_model_input");
  const rr = await computeInterResidual(fx.features, bank, 3, {
    ...opts,
    allowedImageIds: fx.ids,
    entryImageIds: fx.imageIdx,
  });
  assert.deepEqual(Array.from(rr.indices), Array.from(fx.idsNnIdx), "inter_ids_nn_idx");
  assertClose(toChannelsFirst(rr.residual), fx.residualIds, 1e-5, "inter_residual_ids");
  // interResidual alone from the official indices reproduces the official residual
  const again = interResidual(fx.features, bank, fx.nnIdx);
  assertClose(toChannelsFirst(again), fx.residual, 1e-5, "interResidual(official indices)");
}

for (const variant of ["auto", "webgpu", "broadcast", "tiled"] as SearchVariant[]) {
  Deno.test({
    name:
      `knn fixture (official residual): ${variant} kernel, GPU-resident bank, full and restricted ids`,
    ...gpuTest,
    async fn() {
      const gpu = requireGpu();
      const fx = await loadFixture();
      const index = await createBankIndex(gpu, fx.bank, 32, fx.imageIdx);
      try {
        await checkFixture(index, variant);
      } finally {
        index.destroy();
      }
    },
  });
}

Deno.test("knn fixture (official residual): no adapter (native engine / reference) and reference variant", async () => {
  const fx = await loadFixture();
  await checkFixture(fx.bank, "auto", null); // plain array + gpu: null → native (or reference)
  const index = await createBankIndex(null, fx.bank, 32, fx.imageIdx); // host-only index
  await checkFixture(index, "auto");
  await checkFixture(fx.bank, "reference");
});

Deno.test("knn: bad input gives clear errors", async () => {
  const bank = rand(100 * 8, 71), queries = rand(10 * 8, 72);
  await assert.rejects(() => searchTopK(queries, bank, 3), /opts\.d/);
  await assert.rejects(
    () => searchTopK(queries.subarray(0, 79), bank, 3, { d: 8, gpu: null }),
    /not a multiple of D=8/,
  );
  await assert.rejects(() => searchTopK(queries, bank, 101, { d: 8, gpu: null }), /k=101/);
  const mask = new Uint8Array(100);
  mask[5] = mask[9] = 1;
  await assert.rejects(
    () => searchTopK(queries, bank, 3, { d: 8, gpu: null, allowed: mask }),
    /\[1, 2\]/,
  );
  await assert.rejects(
    () => searchTopK(queries, bank, 3, { d: 8, gpu: null, allowedImageIds: [1] }),
    /entryImageIds/,
  );
  const nan = queries.slice();
  nan[3] = NaN;
  await assert.rejects(() => searchTopK(nan, bank, 3, { d: 8, gpu: null }), /non-finite/);
  await assert.rejects(() => createBankIndex(null, bank.subarray(0, 13), 8), /\(N, D=8\)/);
  const grid: FeatureGrid = { data: queries, n: 1, h: 2, w: 5, c: 8 };
  assert.throws(() => interResidual(grid, bank, new Int32Array(7)), /expected \(10, k\)/);
  assert.throws(() => interResidual(grid, bank, new Int32Array(10).fill(100)), /outside the bank/);
  assert.throws(
    () => interModelInput(grid, { ...grid, c: 4, data: new Float32Array(40) }),
    /differ/,
  );
});

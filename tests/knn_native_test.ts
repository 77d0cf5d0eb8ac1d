/**
 * Exact L2 top-k bank search on ONNX Runtime's native CPU engine (lib/bank/search_native.ts):
 * indices IDENTICAL to the TypeScript reference on random, clustered, duplicated and near-tied
 * data, with and without an allowed-entry mask; the escalation and reference fallback paths;
 * variant dispatch (`auto` → native on CPU adapters and without an adapter, `SNARM_SEARCH`).
 */
import assert from "node:assert/strict";
import {
  allowedMaskFromImageIds,
  createBankIndex,
  lastNativeStats,
  nativeSearchAvailable,
  prepareBankSearch,
  searchTopK,
  searchTopKRef,
  type TopK,
} from "../lib/bank/search.ts";
import { gpu, gpuTest } from "./_gpu.ts";
import { assertSameTopK, rand } from "./_knn.ts";

/** The native search's distances are the reference's f64 sums rounded once: 1e-5 relative. */
const assertExact = (got: TopK, ref: TopK, what: string) => assertSameTopK(got, ref, what, 1e-5);

const available = await nativeSearchAvailable();
const nativeTest = { ignore: !available, sanitizeResources: false, sanitizeOps: false };

/**
 * "Real-ish" features: all-positive (ReLU-like, large common offset, so |q|² ≫ distances and the
 * GEMM form cancels badly), clustered around `clusters` centres with small spread.
 */
function clustered(n: number, d: number, clusters: number, seed: number, spread = 0.02) {
  const centres = rand(clusters * d, seed).map((v) => 4 + 3 * v);
  const noise = rand(n * d, seed + 1);
  const pick = rand(n, seed + 2);
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const c = Math.floor((pick[i] + 0.5) * clusters) % clusters;
    for (let e = 0; e < d; e++) out[i * d + e] = centres[c * d + e] + spread * noise[i * d + e];
  }
  return out;
}

Deno.test({
  name: "knn native: random Q=2000, N=12000 in 3 chunks, D=128, k=1/3/4 = reference",
  ...nativeTest,
  async fn() {
    const d = 128, n = 12000;
    const bank = rand(n * d, 1), queries = rand(2000 * d, 2);
    const index = await createBankIndex(null, bank, d);
    const native = { chunkRows: 4096 };
    for (const k of [1, 3, 4]) {
      const qk = k === 3 ? queries : queries.subarray(0, 400 * d);
      const got = await searchTopK(qk, index, k, { variant: "native", native });
      assertExact(got, searchTopKRef(qk, bank, d, k), `random k=${k}`);
    }
  },
});

Deno.test({
  name: "knn native: clustered D=256, leave-own-image-out mask (ids and mask) = reference",
  ...nativeTest,
  async fn() {
    const d = 256, n = 6000;
    const bank = clustered(n, d, 40, 11);
    const imageIds = Int32Array.from({ length: n }, (_, j) => Math.floor(j / 300)); // 20 images
    const queries = clustered(500, d, 40, 12);
    // the queries' own image (7) is left out, like the training residuals
    const ids = Array.from({ length: 20 }, (_, i) => i).filter((i) => i !== 7);
    const mask = allowedMaskFromImageIds(imageIds, ids);
    const index = await createBankIndex(null, bank, d, imageIds);
    const native = { chunkRows: 2000 };
    for (const k of [3, 4]) {
      const ref = searchTopKRef(queries, bank, d, k, mask);
      assertExact(
        await searchTopK(queries, index, k, { variant: "native", allowedImageIds: ids, native }),
        ref,
        `ids k=${k}`,
      );
      assertExact(
        await searchTopK(queries, index, k, { variant: "native", allowed: mask, native }),
        ref,
        `mask k=${k}`,
      );
    }
    // the unrestricted search afterwards uses the whole bank again
    assertExact(
      await searchTopK(queries, index, 3, { variant: "native", native }),
      searchTopKRef(queries, bank, d, 3),
      "unrestricted",
    );
  },
});

Deno.test({
  name: "knn native: exact duplicates and near ties across chunks → escalation, = reference",
  ...nativeTest,
  async fn() {
    const d = 128, n = 6000;
    const bank = clustered(n, d, 25, 21, 0.01);
    // row 5 duplicated 30 times, spread over the 3 chunks (10 per chunk > k + extra)
    for (let t = 0; t < 30; t++) bank.copyWithin((100 + t * 190) * d, 5 * d, 6 * d);
    // a near-tie pair: row 4000 is row 17 with one coordinate moved by one ulp-ish step
    bank.copyWithin(4000 * d, 17 * d, 18 * d);
    bank[4000 * d + 3] = Math.fround(bank[4000 * d + 3] * (1 + 2 ** -22));
    const queries = clustered(600, d, 25, 22, 0.01);
    queries.set(bank.subarray(5 * d, 6 * d), 0); // query 0 = the duplicated row
    queries.set(bank.subarray(17 * d, 18 * d), d); // query 1 = one side of the near tie
    for (let i = 0; i < d; i++) { // query 2 = midpoint of rows 5 and 17
      queries[2 * d + i] = (bank[5 * d + i] + bank[17 * d + i]) / 2;
    }
    const index = await createBankIndex(null, bank, d);
    const native = { chunkRows: 2000 };
    for (const k of [1, 3, 4]) {
      const got = await searchTopK(queries, index, k, { variant: "native", native });
      assertExact(got, searchTopKRef(queries, bank, d, k), `dups k=${k}`);
      assert.ok(lastNativeStats.accepted.length >= 2, "query 0 needed a second round");
    }
    const r = await searchTopK(queries.subarray(0, d), index, 4, { variant: "native", native });
    assert.deepEqual(Array.from(r.indices), [5, 100, 290, 480]);
    assert.deepEqual(Array.from(r.distances), [0, 0, 0, 0]);
  },
});

Deno.test({
  name: "knn native: small-integer data (exact ties everywhere), fallback to the reference",
  ...nativeTest,
  async fn() {
    const d = 6, n = 3000;
    const bank = rand(n * d, 31, 1); // values in {-1, 0, 1}: 729 distinct rows, many ties
    const queries = rand(300 * d, 32, 1);
    const index = await createBankIndex(null, bank, d);
    for (const k of [1, 3, 5]) {
      const got = await searchTopK(queries, index, k, {
        variant: "native",
        native: { chunkRows: 1000, extra: 2 },
      });
      assertExact(got, searchTopKRef(queries, bank, d, k), `ints k=${k}`);
    }
    // a row repeated 1200 times in one chunk: 3 rounds (k+2, ×8, ×64 = 320) cannot clear it
    const dup = new Float32Array(1500 * d);
    for (let j = 0; j < 1500; j++) {
      dup.set(j < 1200 ? [1, 0, 0, 0, 0, 0] : bank.subarray(j * d, j * d + d), j * d);
    }
    const q = new Float32Array([1, 0, 0, 0, 0, 0, 0.5, 0, 1, 0, 0, -1]);
    const got = await searchTopK(q, dup, 3, {
      d,
      gpu: null,
      variant: "native",
      native: { chunkRows: 1500, extra: 2 },
    });
    assertExact(got, searchTopKRef(q, dup, d, 3), "1200 duplicates");
    assert.ok(lastNativeStats.reference >= 1, "the duplicated query went to the reference");
  },
});

Deno.test({
  name: "knn native: mask leaving fewer than k + extra rows in a chunk, and exactly k in all",
  ...nativeTest,
  async fn() {
    const d = 32, n = 5000;
    const bank = rand(n * d, 41), queries = rand(200 * d, 42);
    const index = await createBankIndex(null, bank, d);
    const native = { chunkRows: 1700 };
    const sparse = new Uint8Array(n).map((_, j) => (j < 1700 ? (j % 400 === 0 ? 1 : 0) : 1));
    const three = new Uint8Array(n);
    three[10] = three[2600] = three[4999] = 1;
    for (const allowed of [sparse, three]) {
      assertExact(
        await searchTopK(queries, index, 3, { variant: "native", allowed, native }),
        searchTopKRef(queries, bank, d, 3, allowed),
        `mask ${allowed === three ? "exactly k" : "sparse chunk"}`,
      );
    }
  },
});

Deno.test({
  name: "knn native: default chunking, plain array bank, FeatureGrid queries, prepare",
  ...nativeTest,
  async fn() {
    const d = 64, n = 20000; // 2 chunks of 10000 with the default 16384-row target
    const bank = rand(n * d, 51), data = rand(2 * 10 * 15 * d, 52);
    const ref = searchTopKRef(data, bank, d, 3);
    assertExact(
      await searchTopK(data, bank, 3, { d, gpu: null, variant: "native" }),
      ref,
      "plain",
    );
    const index = await createBankIndex(null, bank, d);
    await prepareBankSearch(index, 3, { variant: "native" });
    const grid = { data, n: 2, h: 10, w: 15, c: d };
    assertExact(await searchTopK(grid, index, 3, { variant: "native" }), ref, "grid");
  },
});

async function ranNative(f: () => Promise<unknown>): Promise<boolean> {
  lastNativeStats.accepted = [];
  await f();
  return lastNativeStats.accepted.length > 0;
}

Deno.test({
  name: "knn native: auto picks native without an adapter; SNARM_SEARCH overrides auto only",
  ...nativeTest,
  async fn() {
    const d = 16, bank = rand(2000 * d, 61), queries = rand(50 * d, 62);
    const ref = searchTopKRef(queries, bank, d, 3);
    const index = await createBankIndex(null, bank, d);
    let got: TopK | undefined;
    assert.ok(await ranNative(async () => got = await searchTopK(queries, index, 3)));
    assertExact(got!, ref, "auto, host-only index");
    assert.ok(await ranNative(() => searchTopK(queries, bank, 3, { d, gpu: null })));
    const before = Deno.env.get("SNARM_SEARCH");
    try {
      Deno.env.set("SNARM_SEARCH", "reference");
      assert.ok(!(await ranNative(async () => got = await searchTopK(queries, index, 3))));
      assertExact(got!, ref, "SNARM_SEARCH=reference");
      assert.ok(await ranNative(() => searchTopK(queries, index, 3, { variant: "native" })));
      Deno.env.set("SNARM_SEARCH", "bogus");
      await assert.rejects(() => searchTopK(queries, index, 3), /SNARM_SEARCH='bogus'/);
    } finally {
      if (before === undefined) Deno.env.delete("SNARM_SEARCH");
      else Deno.env.set("SNARM_SEARCH", before);
    }
  },
});

Deno.test({
  name: "knn native: auto picks native on a CPU adapter (lavapipe), webgpu forces WGSL",
  ...gpuTest,
  ignore: gpuTest.ignore || !available || !gpu?.info.isCpu,
  async fn() {
    const d = 32, bank = rand(3000 * d, 71), queries = rand(100 * d, 72);
    const ref = searchTopKRef(queries, bank, d, 3);
    const index = await createBankIndex(gpu, bank, d);
    try {
      let got: TopK | undefined;
      assert.ok(await ranNative(async () => got = await searchTopK(queries, index, 3)));
      assertExact(got!, ref, "auto on lavapipe");
      assert.ok(
        !(await ranNative(async () =>
          got = await searchTopK(queries, index, 3, { variant: "webgpu" })
        )),
      );
      assertExact(got!, ref, "webgpu on lavapipe");
    } finally {
      index.destroy();
    }
  },
});

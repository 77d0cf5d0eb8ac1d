/**
 * Helpers of the bank-search tests (tests/knn_test.ts, tests/knn_native_test.ts): seeded values
 * and the top-k comparison with the reference.
 * @module
 */
import assert from "node:assert/strict";
import type { TopK } from "../lib/bank/search.ts";

/** Deterministic uniform values in [-0.5, 0.5) (LCG), or small integers when `ints` is given. */
export function rand(n: number, seed: number, ints = 0): Float32Array {
  let s = seed >>> 0;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = ints ? Math.floor((s / 2 ** 32) * (2 * ints + 1)) - ints : s / 2 ** 32 - 0.5;
  }
  return a;
}

/** Same neighbours as the reference `ref` (the first difference named), distances within relTol. */
export function assertSameTopK(got: TopK, ref: TopK, what: string, relTol = 1e-4): void {
  assert.equal(got.q, ref.q, `${what}: Q`);
  assert.equal(got.k, ref.k, `${what}: k`);
  let bad = 0;
  let first = "";
  for (let i = 0; i < ref.indices.length; i++) {
    if (got.indices[i] !== ref.indices[i]) {
      if (!bad) {
        first = `query ${Math.floor(i / ref.k)} rank ${i % ref.k}: got ${got.indices[i]}, ` +
          `reference ${ref.indices[i]} (d=${ref.distances[i]})`;
      }
      bad++;
    }
  }
  assert.equal(bad, 0, `${what}: ${bad} indices differ from the reference; first ${first}`);
  for (let i = 0; i < ref.distances.length; i++) {
    const r = ref.distances[i];
    assert.ok(
      Math.abs(got.distances[i] - r) <= relTol * Math.max(r, 1e-6),
      `${what}: distance ${i}: ${got.distances[i]} vs ${r}`,
    );
  }
}

/**
 * The fusion's nearest-reference search (spec §5 "Intra-residual") on ONNX Runtime's native CPU
 * engine (lib/bank/search_native.ts, exact: the same neighbours as the TypeScript reference); the
 * `"native"` engine of `fuseResiduals` (lib/residual/fuse.ts) runs every other step with the
 * reference's code (lib/residual/reference.ts `fusionFront` / `fusionBack`).
 *
 * The nearest reference of position p (self excluded, exact ties to the lower position) is the
 * first of p's two nearest references in (distance, position) order that is not p itself: the
 * search ranks by the same float64 direct differences and the same tie rule as
 * `nearestReferenceExact`, and only p itself lies at distance 0 ahead of its true nearest.
 * @module
 */
import { createBankIndex, searchTopK } from "../bank/search.ts";
import { featuresChannelsLast, nearestReferenceExact } from "./nearest.ts";
import type { FusionFront } from "./reference.ts";

/**
 * `(B, L)` nearest reference of every position, as `nearestReferences` (lib/residual/reference.ts)
 * returns it.
 * @throws {Error} when onnxruntime-node does not load.
 */
export async function nearestReferencesNative(
  X: Float32Array,
  front: FusionFront,
): Promise<Int32Array> {
  const { B, C, L, K, sel } = front;
  const intraNn = new Int32Array(B * L);
  for (let b = 0; b < B; b++) {
    const refs = sel.refSorted.subarray(b * K, (b + 1) * K);
    if (K < 2) {
      const f = featuresChannelsLast(X, b, C, L);
      for (let p = 0; p < L; p++) intraNn[b * L + p] = nearestReferenceExact(f, C, p, refs);
      continue;
    }
    // Channels-last f32 features of the image (queries) and of its references (the bank).
    const q = new Float32Array(L * C);
    const base = (b * 2 * C + C) * L;
    // (C, L) → (L, C) in 32 × 32 tiles (a plain strided copy misses the cache on every write)
    for (let c0 = 0; c0 < C; c0 += 32) {
      const c1 = Math.min(C, c0 + 32);
      for (let p0 = 0; p0 < L; p0 += 32) {
        const p1 = Math.min(L, p0 + 32);
        for (let c = c0; c < c1; c++) {
          const src = base + c * L;
          for (let p = p0; p < p1; p++) q[p * C + c] = X[src + p];
        }
      }
    }
    const bank = new Float32Array(K * C);
    for (let k = 0; k < K; k++) bank.set(q.subarray(refs[k] * C, (refs[k] + 1) * C), k * C);
    const index = await createBankIndex(null, bank, C);
    try {
      // 2 + 2 candidates per query for the exact re-rank, as the WGSL path's 4 (lib/residual/gpu.ts
      // NN_TOPK): on the paper fixture every query is accepted at once (6 extra: ~2.5 ms slower)
      const r = await searchTopK(q, index, 2, { variant: "native", native: { extra: 2 } });
      for (let p = 0; p < L; p++) {
        const first = refs[r.indices[2 * p]];
        intraNn[b * L + p] = first === p ? refs[r.indices[2 * p + 1]] : first;
      }
    } finally {
      index.destroy();
    }
  }
  return intraNn;
}

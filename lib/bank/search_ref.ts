/**
 * TypeScript reference of the exact L2 top-k bank search (snarm-method.md §3), the exact
 * neighbour-distance recomputation used after the kernels, and the `ids` allowed-entry mask.
 * @module
 */
import { INF } from "./search_common.ts";

/** Top-k result: `(Q, k)` row-major, ascending distance per query, ties to the lower index. */
export interface TopK {
  /** `(Q, k)` bank row indices (into the full bank, also when restricted). */
  indices: Int32Array;
  /** `(Q, k)` Euclidean distances ‖q − b‖₂ (not squared), f64-exact then rounded to f32. */
  distances: Float32Array;
  /** Number of queries Q. */
  q: number;
  /** Neighbours per query k. */
  k: number;
}

/**
 * TypeScript reference: exact top-k by f64 direct-difference squared distances Σ(q−b)², bank rows
 * visited in increasing index order with strict `<` (ties keep the lower index).
 * @param queries `(Q, D)` row-major f32.
 * @param bank `(N, D)` row-major f32.
 * @param d feature size D.
 * @param k neighbours per query (1 ≤ k ≤ number of allowed entries).
 * @param allowed optional `(N,)` mask, nonzero = entry takes part.
 * @returns {@link TopK} with Euclidean distances (sqrt of the f64 sum, rounded to f32).
 * @throws {Error} on inconsistent shapes or fewer than k allowed entries.
 */
export function searchTopKRef(
  queries: Float32Array,
  bank: Float32Array,
  d: number,
  k = 3,
  allowed?: Uint8Array,
): TopK {
  const { q, n } = checkShapes(queries, bank, d, k, allowed);
  const indices = new Int32Array(q * k);
  const distances = new Float32Array(q * k);
  const td = new Float64Array(k);
  const ti = new Int32Array(k);
  for (let qi = 0; qi < q; qi++) {
    td.fill(INF);
    ti.fill(-1);
    const qo = qi * d;
    for (let j = 0; j < n; j++) {
      if (allowed && !allowed[j]) continue;
      const bo = j * d;
      const thr = td[k - 1];
      let s = 0;
      let pruned = false;
      for (let c = 0; c < d; c++) {
        const t = queries[qo + c] - bank[bo + c];
        s += t * t;
        // Exact early exit: the partial sum only grows, and s ≥ thr can never be inserted.
        if ((c & 15) === 15 && s >= thr) {
          pruned = true;
          break;
        }
      }
      if (!pruned && s < thr) {
        let r = k - 1;
        while (r > 0 && s < td[r - 1]) {
          td[r] = td[r - 1];
          ti[r] = ti[r - 1];
          r--;
        }
        td[r] = s;
        ti[r] = j;
      }
    }
    for (let r = 0; r < k; r++) {
      indices[qi * k + r] = ti[r];
      distances[qi * k + r] = Math.sqrt(td[r]);
    }
  }
  return { indices, distances, q, k };
}

export function checkShapes(
  queries: Float32Array,
  bank: Float32Array,
  d: number,
  k: number,
  allowed?: Uint8Array,
): { q: number; n: number } {
  if (!Number.isInteger(d) || d < 1) {
    throw new Error(`bank search: feature size D=${d} must be a positive integer`);
  }
  if (queries.length % d !== 0) {
    throw new Error(
      `bank search: queries has ${queries.length} values, not a multiple of D=${d} (expected (Q, D))`,
    );
  }
  if (bank.length % d !== 0) {
    throw new Error(
      `bank search: bank has ${bank.length} values, not a multiple of D=${d} (expected (N, D))`,
    );
  }
  const q = queries.length / d;
  const n = bank.length / d;
  if (allowed && allowed.length !== n) {
    throw new Error(`bank search: allowed mask has ${allowed.length} entries, expected N=${n}`);
  }
  let avail = n;
  if (allowed) {
    avail = 0;
    for (let i = 0; i < n; i++) if (allowed[i]) avail++;
  }
  if (!Number.isInteger(k) || k < 1 || k > avail) {
    throw new Error(
      `bank search: k=${k} must be an integer in [1, ${avail}] (allowed bank entries)`,
    );
  }
  return { q, n };
}

/**
 * Exact Euclidean distances of chosen neighbours: f64 direct differences Σ(q−b)², then each query's
 * k entries are re-sorted in place by (exact distance, index), so a kernel that ranks with the f32
 * GEMM form still returns them in the reference's order. Distances are √ of the f64 sums,
 * rounded to f32.
 * @param indices `(Q, k)` bank row indices; reordered in place.
 * @returns `(Q, k)` distances, ascending per query.
 */
export function neighbourDistances(
  queries: Float32Array,
  bank: Float32Array,
  d: number,
  indices: Int32Array,
  k: number,
): Float32Array {
  const q = queries.length / d;
  const out = new Float32Array(q * k);
  const pairs: Array<[number, number]> = Array.from({ length: k }, () => [0, 0]);
  for (let qi = 0; qi < q; qi++) {
    const qo = qi * d;
    for (let r = 0; r < k; r++) {
      const j = indices[qi * k + r];
      const bo = j * d;
      let s = 0;
      for (let c = 0; c < d; c++) {
        const t = queries[qo + c] - bank[bo + c];
        s += t * t;
      }
      pairs[r][0] = s;
      pairs[r][1] = j;
    }
    pairs.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    for (let r = 0; r < k; r++) {
      indices[qi * k + r] = pairs[r][1];
      out[qi * k + r] = Math.sqrt(pairs[r][0]);
    }
  }
  return out;
}

/**
 * Per-entry allowed mask from the official `ids` restriction: entry j takes part iff
 * `entryImageIds[j]` is in `ids` (snarm-method.md §3, `_predict(ids=...)`).
 * @returns `(N,)` mask, 1 = allowed.
 */
export function allowedMaskFromImageIds(
  entryImageIds: ArrayLike<number>,
  ids: Iterable<number>,
): Uint8Array {
  const set = new Set<number>();
  for (const i of ids) set.add(Number(i));
  const out = new Uint8Array(entryImageIds.length);
  for (let j = 0; j < entryImageIds.length; j++) out[j] = set.has(Number(entryImageIds[j])) ? 1 : 0;
  return out;
}

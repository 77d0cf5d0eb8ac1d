/**
 * Token re-orderings of a branch (spec §6 steps 2, 3c and 4) with their vector-Jacobian products:
 * the four scan-order permutations (lib/model/scan_order.ts `scanPermutations`), the gather of the
 * navigated (mask = 0, suspicious) tokens in scan order, and their scatter back into the conv
 * output (replacing those tokens). All token tensors channels-last f64.
 * @module
 */

/**
 * Row-major embedding E `(B, L, d)` → scan-ordered sequences `(nScan·B, L, d)`; sequence s·B + b
 * at index i holds E[b, perms[s][i]].
 */
export function toScanOrder(
  E: ArrayLike<number>,
  B: number,
  L: number,
  d: number,
  perms: Int32Array[],
): Float64Array {
  if (E.length !== B * L * d) {
    throw new Error(`scan order: E has ${E.length}, expected ${B * L * d}`);
  }
  const S = perms.length;
  const out = new Float64Array(S * B * L * d);
  for (let s = 0; s < S; s++) {
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < L; i++) {
        const src = (b * L + perms[s][i]) * d, dst = ((s * B + b) * L + i) * d;
        for (let k = 0; k < d; k++) out[dst + k] = E[src + k];
      }
    }
  }
  return out;
}

/** VJP of {@link toScanOrder}: dE `(B, L, d)` = Σ over scans of the un-permuted gradients. */
export function toScanOrderBackward(
  dSeq: ArrayLike<number>,
  B: number,
  L: number,
  d: number,
  perms: Int32Array[],
): Float64Array {
  const dE = new Float64Array(B * L * d);
  for (let s = 0; s < perms.length; s++) {
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < L; i++) {
        const dst = (b * L + perms[s][i]) * d, src = ((s * B + b) * L + i) * d;
        for (let k = 0; k < d; k++) dE[dst + k] += dSeq[src + k];
      }
    }
  }
  return dE;
}

/**
 * Scan-ordered sequences `(nScan·B, L, d)` → row-major branch features `(nScan, B, L, d)`
 * (spec §6 step 4): out[s, b, perms[s][i]] = seq[s·B + b, i]. A pure permutation.
 */
export function fromScanOrder(
  seq: ArrayLike<number>,
  B: number,
  L: number,
  d: number,
  perms: Int32Array[],
): Float64Array {
  const out = new Float64Array(perms.length * B * L * d);
  for (let s = 0; s < perms.length; s++) {
    for (let b = 0; b < B; b++) {
      const q = s * B + b;
      for (let i = 0; i < L; i++) {
        const src = (q * L + i) * d, dst = (q * L + perms[s][i]) * d;
        for (let k = 0; k < d; k++) out[dst + k] = seq[src + k];
      }
    }
  }
  return out;
}

/** VJP of {@link fromScanOrder} (the inverse permutation): `(nScan, B, L, d)` → `(nScan·B, L, d)`. */
export function fromScanOrderBackward(
  dFeat: ArrayLike<number>,
  B: number,
  L: number,
  d: number,
  perms: Int32Array[],
): Float64Array {
  const out = new Float64Array(perms.length * B * L * d);
  for (let s = 0; s < perms.length; s++) {
    for (let b = 0; b < B; b++) {
      const q = s * B + b;
      for (let i = 0; i < L; i++) {
        const dst = (q * L + i) * d, src = (q * L + perms[s][i]) * d;
        for (let k = 0; k < d; k++) out[dst + k] = dFeat[src + k];
      }
    }
  }
  return out;
}

/**
 * Gather the navigated tokens (spec §6 step 3c): x `(N, L, d)`, `gather` `(N, Ls)` sequence
 * indices (lib/model/scan_order.ts `navigationIndex`) → `(N, Ls, d)`.
 */
export function gatherTokens(
  x: ArrayLike<number>,
  N: number,
  L: number,
  d: number,
  gather: Int32Array,
  Ls: number,
): Float64Array {
  if (gather.length !== N * Ls) {
    throw new Error(`gather: ${gather.length} indices, expected ${N * Ls}`);
  }
  const out = new Float64Array(N * Ls * d);
  for (let q = 0; q < N; q++) {
    for (let j = 0; j < Ls; j++) {
      const src = (q * L + gather[q * Ls + j]) * d, dst = (q * Ls + j) * d;
      for (let k = 0; k < d; k++) out[dst + k] = x[src + k];
    }
  }
  return out;
}

/** VJP of {@link gatherTokens}: scatter-add `(N, Ls, d)` into zeros `(N, L, d)`. */
export function gatherTokensBackward(
  dOut: ArrayLike<number>,
  N: number,
  L: number,
  d: number,
  gather: Int32Array,
  Ls: number,
): Float64Array {
  const dx = new Float64Array(N * L * d);
  for (let q = 0; q < N; q++) {
    for (let j = 0; j < Ls; j++) {
      const dst = (q * L + gather[q * Ls + j]) * d, src = (q * Ls + j) * d;
      for (let k = 0; k < d; k++) dx[dst + k] += dOut[src + k];
    }
  }
  return dx;
}

/**
 * Scatter the mixer output back (spec §6 step 3c): copy of `base` `(N, L, d)` with the gathered
 * tokens replaced by `vals` `(N, Ls, d)`; reference tokens keep the conv output.
 */
export function scatterTokens(
  base: ArrayLike<number>,
  vals: ArrayLike<number>,
  N: number,
  L: number,
  d: number,
  gather: Int32Array,
  Ls: number,
): Float64Array {
  const out = Float64Array.from(base);
  for (let q = 0; q < N; q++) {
    for (let j = 0; j < Ls; j++) {
      const dst = (q * L + gather[q * Ls + j]) * d, src = (q * Ls + j) * d;
      for (let k = 0; k < d; k++) out[dst + k] = vals[src + k];
    }
  }
  return out;
}

/**
 * VJP of {@link scatterTokens}: dBase = dOut with the replaced tokens zeroed, dVals = the gathered
 * dOut.
 */
export function scatterTokensBackward(
  dOut: ArrayLike<number>,
  N: number,
  L: number,
  d: number,
  gather: Int32Array,
  Ls: number,
): { dBase: Float64Array; dVals: Float64Array } {
  const dVals = gatherTokens(dOut, N, L, d, gather, Ls);
  const dBase = Float64Array.from(dOut);
  for (let q = 0; q < N; q++) {
    for (let j = 0; j < Ls; j++) {
      dBase.fill(0, (q * L + gather[q * Ls + j]) * d, (q * L + gather[q * Ls + j] + 1) * d);
    }
  }
  return { dBase, dVals };
}

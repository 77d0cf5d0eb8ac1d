/**
 * Token re-orderings of a branch (spec §6 steps 2, 3c and 4) with their vector-Jacobian products:
 * the four scan-order permutations (lib/model/scan_order.ts `scanPermutations`), the gather of the
 * navigated (mask = 0, suspicious) tokens in scan order, and their scatter back into the conv
 * output (replacing those tokens). All token tensors channels-last f64.
 * @module
 */

// All the re-orderings move whole rows of d values: a gather of rows by an index (the forward of a
// permutation or of the token gather, and the VJP of a permutation's scatter) and a scatter-add of
// rows (the VJP of a gather). Sums run in row order, as the index lists them.

/** out row r = x row idx[r] (rows of d values, f64). */
function takeRows(x: ArrayLike<number>, idx: ArrayLike<number>, d: number): Float64Array {
  const out = new Float64Array(idx.length * d);
  for (let r = 0; r < idx.length; r++) {
    const src = idx[r] * d, dst = r * d;
    for (let k = 0; k < d; k++) out[dst + k] = x[src + k];
  }
  return out;
}

/** `nRows × d` zeros, then row idx[r] += x row r for r in order (f64). */
function addRowsAt(x: ArrayLike<number>, idx: ArrayLike<number>, d: number, nRows: number) {
  const out = new Float64Array(nRows * d);
  for (let r = 0; r < idx.length; r++) {
    const dst = idx[r] * d, src = r * d;
    for (let k = 0; k < d; k++) out[dst + k] += x[src + k];
  }
  return out;
}

/** Row of E `(B, L)` read by sequence s·B + b at index i: b·L + perms[s][i]. */
function scanRows(B: number, L: number, perms: Int32Array[]): Int32Array {
  const idx = new Int32Array(perms.length * B * L);
  let r = 0;
  for (const perm of perms) {
    for (let b = 0; b < B; b++) for (let i = 0; i < L; i++) idx[r++] = b * L + perm[i];
  }
  return idx;
}

/** Row of `(nScan·B, L)` at which sequence q = s·B + b puts index i: q·L + perms[s][i]. */
function unscanRows(B: number, L: number, perms: Int32Array[]): Int32Array {
  const idx = new Int32Array(perms.length * B * L);
  let r = 0;
  perms.forEach((perm, s) => {
    for (let b = 0; b < B; b++) {
      const q = s * B + b;
      for (let i = 0; i < L; i++) idx[r++] = q * L + perm[i];
    }
  });
  return idx;
}

/** Row of `(N, L)` of gathered token j of sequence q: q·L + gather[q·Ls + j]. */
function tokenRows(N: number, L: number, gather: Int32Array, Ls: number): Int32Array {
  if (gather.length !== N * Ls) {
    throw new Error(`gather: ${gather.length} indices, expected ${N * Ls}`);
  }
  return gather.map((i, r) => Math.floor(r / Ls) * L + i);
}

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
  return takeRows(E, scanRows(B, L, perms), d);
}

/** VJP of {@link toScanOrder}: dE `(B, L, d)` = Σ over scans of the un-permuted gradients. */
export function toScanOrderBackward(
  dSeq: ArrayLike<number>,
  B: number,
  L: number,
  d: number,
  perms: Int32Array[],
): Float64Array {
  return addRowsAt(dSeq, scanRows(B, L, perms), d, B * L);
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
  return addRowsAt(seq, unscanRows(B, L, perms), d, perms.length * B * L);
}

/** VJP of {@link fromScanOrder} (the inverse permutation): `(nScan, B, L, d)` → `(nScan·B, L, d)`. */
export function fromScanOrderBackward(
  dFeat: ArrayLike<number>,
  B: number,
  L: number,
  d: number,
  perms: Int32Array[],
): Float64Array {
  return takeRows(dFeat, unscanRows(B, L, perms), d);
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
  return takeRows(x, tokenRows(N, L, gather, Ls), d);
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
  return addRowsAt(dOut, tokenRows(N, L, gather, Ls), d, N * L);
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
  tokenRows(N, L, gather, Ls).forEach((row, r) => {
    for (let k = 0; k < d; k++) out[row * d + k] = vals[r * d + k];
  });
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
  const rows = tokenRows(N, L, gather, Ls);
  const dBase = Float64Array.from(dOut);
  for (const row of rows) dBase.fill(0, row * d, (row + 1) * d);
  return { dBase, dVals: takeRows(dOut, rows, d) };
}

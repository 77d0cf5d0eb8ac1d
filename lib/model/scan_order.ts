/**
 * The four scan orders of a branch (spec §6 "Scan paths") and the navigation index lists.
 *
 * Sequence index i of scan s visits row-major position `perm[s][i]` (p = y·w + x):
 * s = 0 row-major (p = i), s = 1 column-major (i = x·h + y), s = 2 = scan 0 reversed,
 * s = 3 = scan 1 reversed. The 4·B sequences of a branch are stacked as index `s·B + b`.
 * Inside a block, each scan-ordered sequence is reshaped to an h×w grid (its own orientation:
 * transposed for s = 1, rotated 180° for s = 2, both for s = 3) before the 3×3 conv, which is why
 * the grid must be square.
 * @module
 */

/** `(nScan, L)` position visited at each sequence index, for a square h×h grid. */
export function scanPermutations(h: number, w: number, nScan = 4): Int32Array[] {
  const L = h * w;
  const row = new Int32Array(L), col = new Int32Array(L);
  for (let i = 0; i < L; i++) {
    row[i] = i;
    const x = Math.floor(i / h), y = i % h;
    col[i] = y * w + x;
  }
  const rev = (a: Int32Array) => {
    const r = new Int32Array(L);
    for (let i = 0; i < L; i++) r[i] = a[L - 1 - i];
    return r;
  };
  return [row, col, rev(row), rev(col)].slice(0, nScan);
}

/** Inverse permutation: `inv[p]` = sequence index at which position p is visited. */
export function invertPermutation(perm: Int32Array): Int32Array {
  const inv = new Int32Array(perm.length);
  for (let i = 0; i < perm.length; i++) inv[perm[i]] = i;
  return inv;
}

/** Navigation indices of one branch: which sequence indices go through the Mamba mixer. */
export interface NavigationIndex {
  /** Suspicious tokens per sequence, Ls = L − K (the same for every image). */
  Ls: number;
  /**
   * `(nScan·B, Ls)` sequence indices i (0 ≤ i < L) with mask 0, increasing, of sequence s·B + b:
   * the gather order of the mixer input (spec §6 step 3c).
   */
  gather: Int32Array;
  /** `(nScan, B, L)` scan-ordered masks (the official `all_mask`), 1 = reference. */
  scanMasks: Uint8Array;
}

/**
 * Build the navigation index lists from the `(B, L)` row-major reference mask.
 * @throws {Error} when images have different suspicious counts (the official gather needs equal
 *   counts) or no suspicious token.
 */
export function navigationIndex(
  refMask: Uint8Array,
  B: number,
  h: number,
  w: number,
  nScan = 4,
): NavigationIndex {
  const L = h * w;
  if (refMask.length !== B * L) {
    throw new Error(`refMask: ${refMask.length} values, expected B·L = ${B}·${L}`);
  }
  let Ls = -1;
  for (let b = 0; b < B; b++) {
    let n = 0;
    for (let p = 0; p < L; p++) {
      const m = refMask[b * L + p];
      if (m !== 0 && m !== 1) {
        throw new Error(`refMask: value ${m} at image ${b}, position ${p}; expected 0 or 1`);
      }
      if (m === 0) n++;
    }
    if (Ls < 0) Ls = n;
    else if (n !== Ls) {
      throw new Error(
        `refMask: image ${b} has ${n} suspicious positions, image 0 has ${Ls}; they must be equal`,
      );
    }
  }
  if (Ls <= 0) {
    throw new Error("refMask: no suspicious (mask 0) position; the Mamba mixer needs at least one");
  }
  const perms = scanPermutations(h, w, nScan);
  const gather = new Int32Array(nScan * B * Ls);
  const scanMasks = new Uint8Array(nScan * B * L);
  for (let s = 0; s < nScan; s++) {
    for (let b = 0; b < B; b++) {
      let j = 0;
      const q = s * B + b;
      for (let i = 0; i < L; i++) {
        const m = refMask[b * L + perms[s][i]];
        scanMasks[q * L + i] = m;
        if (m === 0) gather[q * Ls + j++] = i;
      }
    }
  }
  return { Ls, gather, scanMasks };
}

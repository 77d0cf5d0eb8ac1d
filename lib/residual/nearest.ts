/**
 * Exact nearest-reference search of the intra-residual (spec §5 "Intra-residual"), the
 * TypeScript reference and the recheck used by the GPU path for near-ties.
 *
 * Distances are squared L2 computed as direct differences Σ_c (f[ref,c] − f[p,c])² in float64
 * (the argmin equals that of the official `torch.cdist` L2 whenever the fixture's margins hold).
 * References are scanned in ascending position order with a strict `<`, so exact ties go to the
 * lower position index. A reference never matches itself (official: self-distance = +inf).
 * @module
 */

/**
 * Channels-last float64 copy `(L, C)` of the features f of image `b` of X.
 * @param X `(B, 2C, L)` channels-first f32 with f in channels [C, 2C).
 */
export function featuresChannelsLast(
  X: Float32Array,
  b: number,
  C: number,
  L: number,
): Float64Array {
  const out = new Float64Array(L * C);
  const base = (b * 2 * C + C) * L;
  for (let c = 0; c < C; c++) {
    const o = base + c * L;
    for (let p = 0; p < L; p++) out[p * C + c] = X[o + p];
  }
  return out;
}

/**
 * Position of the nearest reference of position `p` (self excluded).
 * @param f `(L, C)` channels-last float64 features of one image.
 * @param refs the K reference positions, ascending.
 * @returns the reference position; when `p` is the only reference (K = 1) it returns `p`
 *   itself, as the official topk over an all-inf row picks the single column.
 */
export function nearestReferenceExact(
  f: Float64Array,
  C: number,
  p: number,
  refs: Int32Array,
): number {
  let best = Infinity;
  let bestPos = -1;
  const qo = p * C;
  for (let k = 0; k < refs.length; k++) {
    const r = refs[k];
    if (r === p) continue;
    const ro = r * C;
    let d = 0;
    let c = 0;
    // Partial sums only grow (every term ≥ 0), so a candidate is dropped as soon as it cannot be
    // strictly smaller: same result as the full sum, fewer operations.
    while (c < C) {
      const end = Math.min(C, c + 64);
      for (; c < end; c++) {
        const e = f[ro + c] - f[qo + c];
        d += e * e;
      }
      if (!(d < best)) break;
    }
    if (d < best) {
      best = d;
      bestPos = r;
    }
  }
  return bestPos < 0 ? p : bestPos;
}

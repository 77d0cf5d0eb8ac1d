/**
 * The navigator of the SNARM head (spec §5 steps 2–4; official `SelfNavigatedMamba`): from the
 * encoded inter-residual R = P(r), the **unary map** u = sigmoid(conv1×1(R)) (the head's
 * `simple_predictor`), the **waypoint** map u + mean_c R, and the **self-references**: the K
 * positions of each image with the smallest waypoint (top-K, K = round(ratio·L)). The other
 * L − K positions are the suspicious tokens the multi-head Mamba scans, in the four scan orders of
 * lib/model/scan_order.ts (`scanPermutations`, `navigationIndex`). TypeScript reference; the WGSL
 * path is lib/residual/gpu.ts, the native one lib/residual/native.ts.
 * @module
 */

const fr = Math.fround;

/**
 * Navigator maps of B images from R = P(r) (spec §5 steps 2–3).
 * @param R `(B, C, L)` channels-first f32 P(r).
 * @returns unary u = sigmoid(Σ_c weight[c]·R[c] + bias) and waypoint u + mean_c R[c], each `(B, L)`.
 */
export function navigatorMaps(
  R: Float32Array,
  B: number,
  C: number,
  L: number,
  unaryWeight: Float32Array,
  unaryBias: number,
): { unary: Float32Array; waypoint: Float32Array } {
  const unary = new Float32Array(B * L);
  const waypoint = new Float32Array(B * L);
  const acc = new Float64Array(L);
  const sum = new Float64Array(L);
  for (let b = 0; b < B; b++) {
    acc.fill(unaryBias);
    sum.fill(0);
    for (let c = 0; c < C; c++) {
      const o = (b * C + c) * L;
      const wc = unaryWeight[c];
      for (let p = 0; p < L; p++) {
        const v = R[o + p];
        acc[p] += wc * v;
        sum[p] += v;
      }
    }
    for (let p = 0; p < L; p++) {
      const u = fr(1 / (1 + Math.exp(-fr(acc[p]))));
      unary[b * L + p] = u;
      waypoint[b * L + p] = fr(u + fr(sum[p] / C));
    }
  }
  return { unary, waypoint };
}

/** The self-reference set of every image. */
export interface ReferenceSelection {
  /** `(B, L)` 1 = reference, 0 = suspicious. */
  refMask: Uint8Array;
  /** `(B, K)` reference positions in ascending waypoint order, ties → lower position index. */
  refIndices: Int32Array;
  /** `(B, K)` the same positions sorted ascending (the bank order of the nearest-reference search). */
  refSorted: Int32Array;
}

/**
 * Top-K selection of the K smallest waypoints per image (spec §5 step 4; official
 * `torch.topk(filter_scores, K, largest=False)`). Done on the CPU: L values per image.
 * @param waypoint `(B, L)` f32.
 */
export function selectReferences(
  waypoint: Float32Array,
  B: number,
  L: number,
  K: number,
): ReferenceSelection {
  const refMask = new Uint8Array(B * L);
  const refIndices = new Int32Array(B * K);
  const refSorted = new Int32Array(B * K);
  const order = new Int32Array(L);
  for (let b = 0; b < B; b++) {
    const wp = waypoint.subarray(b * L, (b + 1) * L);
    for (let p = 0; p < L; p++) order[p] = p;
    order.sort((i, j) => (wp[i] - wp[j]) || (i - j));
    for (let k = 0; k < K; k++) {
      refIndices[b * K + k] = order[k];
      refMask[b * L + order[k]] = 1;
    }
    const s = refSorted.subarray(b * K, (b + 1) * K);
    s.set(order.subarray(0, K));
    s.sort();
  }
  return { refMask, refIndices, refSorted };
}

/**
 * Inter-residual (snarm-method.md §3) and the model input X (§1 "image-level feature", §5).
 *
 * r_i = mean(M[nn1(i)], …, M[nnk(i)]) − f_i, signed, no distance weighting (official
 * `_predict(topk=3)`); X = concat[r, f] over channels in the PyTorch `(B, 2C, h, w)` layout
 * (official `with_image_features=True`).
 * @module
 */
import type { FeatureGrid } from "../types.ts";
import { type BankIndex, type SearchOptions, searchTopK, type TopK } from "../bank/search.ts";

function bankRows(bank: Float32Array | BankIndex): Float32Array {
  return bank instanceof Float32Array ? bank : bank.data;
}

/**
 * Signed inter-residual: for each patch, the plain mean of its k nearest bank rows minus the patch
 * (snarm-method.md §3: r_i = mean(M[nn1(i)], M[nn2(i)], M[nn3(i)]) − f_i).
 * @param queries patch features, channels-last `(B, h, w, C)`.
 * @param bank `(N, C)` row-major f32 bank or a {@link BankIndex} (its host copy is used).
 * @param indices `(B·h·w, k)` neighbour indices from {@link searchTopK}.
 * @returns the residual as a channels-last `(B, h, w, C)` {@link FeatureGrid} (f64 mean, rounded).
 * @throws {Error} when `indices` is not `(B·h·w, k)` or an index is outside the bank.
 */
export function interResidual(
  queries: FeatureGrid,
  bank: Float32Array | BankIndex,
  indices: Int32Array,
): FeatureGrid {
  const { n, h, w, c, data } = queries;
  const p = n * h * w;
  if (data.length !== p * c) {
    throw new Error(
      `interResidual: query grid data has ${data.length} values, expected (${n}, ${h}, ${w}, ${c})`,
    );
  }
  if (p === 0 || indices.length % p !== 0 || indices.length === 0) {
    throw new Error(`interResidual: indices has ${indices.length} values, expected (${p}, k)`);
  }
  const k = indices.length / p;
  const rows = bankRows(bank);
  if (rows.length % c !== 0) {
    throw new Error(`interResidual: bank has ${rows.length} values, not (N, ${c})`);
  }
  const nb = rows.length / c;
  const out = new Float32Array(p * c);
  const acc = new Float64Array(c);
  for (let i = 0; i < p; i++) {
    acc.fill(0);
    for (let r = 0; r < k; r++) {
      const j = indices[i * k + r];
      if (!(j >= 0 && j < nb)) {
        throw new Error(
          `interResidual: neighbour index ${j} of patch ${i} outside the bank (N=${nb})`,
        );
      }
      const o = j * c;
      for (let ch = 0; ch < c; ch++) acc[ch] += rows[o + ch];
    }
    const qo = i * c;
    for (let ch = 0; ch < c; ch++) out[qo + ch] = acc[ch] / k - data[qo + ch];
  }
  return { data: out, n, h, w, c };
}

/**
 * Model input X = concat[residual, features] over channels, channels-first `(B, 2C, h, w)`
 * row-major f32 (official `_predict(with_image_features=True)`, snarm-method.md §1 and §5: the first
 * C channels are the inter-residual r, the last C the patch features f).
 * @throws {Error} when the two grids differ in shape.
 */
export function interModelInput(residual: FeatureGrid, features: FeatureGrid): Float32Array {
  const { n, h, w, c } = residual;
  if (features.n !== n || features.h !== h || features.w !== w || features.c !== c) {
    throw new Error(
      `interModelInput: residual (${n}, ${h}, ${w}, ${c}) and features (${features.n}, ${features.h}, ${features.w}, ${features.c}) differ`,
    );
  }
  const hw = h * w;
  const out = new Float32Array(n * 2 * c * hw);
  for (let b = 0; b < n; b++) {
    for (let pos = 0; pos < hw; pos++) {
      const src = (b * hw + pos) * c;
      const dst = b * 2 * c * hw + pos;
      for (let ch = 0; ch < c; ch++) {
        out[dst + ch * hw] = residual.data[src + ch];
        out[dst + (c + ch) * hw] = features.data[src + ch];
      }
    }
  }
  return out;
}

/** Result of {@link computeInterResidual}. */
export interface InterResidualResult extends TopK {
  /** Signed inter-residual, channels-last `(B, h, w, C)`. */
  residual: FeatureGrid;
}

/**
 * Bank search plus inter-residual in one call: top-k over the whole (or restricted) bank, then
 * r = mean of the k neighbours − f (snarm-method.md §3).
 * @param features patch features, channels-last `(B, h, w, C)`.
 * @param bank `(N, C)` bank (plain array, uploaded for this call) or a {@link BankIndex}.
 * @param k neighbours (default 3, official `--topk`).
 * @param opts search options (restriction by `allowedImageIds`, variant, …).
 * @throws as {@link searchTopK} and {@link interResidual}.
 */
export async function computeInterResidual(
  features: FeatureGrid,
  bank: Float32Array | BankIndex,
  k = 3,
  opts: SearchOptions = {},
): Promise<InterResidualResult> {
  const top = await searchTopK(features, bank, k, opts);
  return { ...top, residual: interResidual(features, bank, top.indices) };
}

// ---------------------------------------------------------------------------------------------
// Training-time inter-residuals with a leave-own-image-out bank (snarm-method.md §3, the `ids` hook of
// `_predict`; §13.1): a training image (or a synthetic anomaly made from it) must not be matched
// against bank entries taken from itself, otherwise its own patches are found at distance 0 and
// the residual vanishes.

/**
 * Per-entry allowed mask that excludes one source image: entry j is allowed iff
 * `entryImageIds[j] !== imageIdx`.
 * @param entryImageIds `(N,)` source image index per bank entry (`Bank.imageIndex`).
 * @returns `(N,)` u8 mask, 1 = allowed.
 */
export function leaveImageOutMask(entryImageIds: ArrayLike<number>, imageIdx: number): Uint8Array {
  const out = new Uint8Array(entryImageIds.length);
  for (let j = 0; j < out.length; j++) out[j] = entryImageIds[j] === imageIdx ? 0 : 1;
  return out;
}

/** Result of {@link trainingResidual}. */
export interface TrainingResidualResult extends InterResidualResult {
  /** Number of bank entries excluded (those from the training image itself). */
  excluded: number;
}

/**
 * Inter-residual of one training image against the bank without its own entries
 * (snarm-method.md §3): top-k search restricted to entries whose source image differs from
 * `sourceImageIdx`, then r = mean of the k neighbours − f.
 * @param features channels-last `(1, h, w, C)` patch features of the training image (or of a
 *   synthetic anomaly derived from it).
 * @param bankIndex a {@link BankIndex} created with `entryImageIds = bank.imageIndex`.
 * @param sourceImageIdx the image's index in the bank's source list (`Bank.imageIndex` values,
 *   i.e. its position in `bank.meta.sourceImageIds`); an index absent from the bank excludes nothing.
 * @param k neighbours (default 3, official `--topk`).
 * @param opts further search options (`variant`, an extra `allowed` mask ANDed with the exclusion).
 * @returns indices/distances `(h·w, k)` into the full bank, the signed residual `(1, h, w, C)` and
 *   the number of excluded entries.
 * @throws {Error} when the index has no entryImageIds, `features` is not a single image, or fewer
 *   than k entries remain; as `searchTopK` otherwise.
 */
export async function trainingResidual(
  features: FeatureGrid,
  bankIndex: BankIndex,
  sourceImageIdx: number,
  k = 3,
  opts: Omit<SearchOptions, "allowedImageIds" | "entryImageIds"> = {},
): Promise<TrainingResidualResult> {
  if (features.n !== 1) {
    throw new Error(
      `trainingResidual: features must be one image (1, h, w, C), got N=${features.n}`,
    );
  }
  const ids = bankIndex.entryImageIds;
  if (!ids) {
    throw new Error(
      "trainingResidual: the BankIndex has no entryImageIds; create it with " +
        "createBankIndex(gpu, bank.features, dim, bank.imageIndex)",
    );
  }
  if (!Number.isInteger(sourceImageIdx)) {
    throw new Error(`trainingResidual: sourceImageIdx=${sourceImageIdx} must be an integer`);
  }
  const allowed = leaveImageOutMask(ids, sourceImageIdx);
  let excluded = 0;
  for (let j = 0; j < allowed.length; j++) {
    if (opts.allowed && !opts.allowed[j]) allowed[j] = 0;
    if (ids[j] === sourceImageIdx) excluded++;
  }
  const r = await computeInterResidual(features, bankIndex, k, { ...opts, allowed });
  return { ...r, excluded };
}

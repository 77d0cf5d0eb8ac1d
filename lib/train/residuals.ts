/**
 * Training-time inter-residuals with a leave-own-image-out bank (snarm-method.md §3, the `ids`
 * hook of `_predict`; §13.1): a training image (or a synthetic anomaly made from it) must not be
 * matched against bank entries taken from itself, otherwise its own patches are found at distance 0
 * and the residual vanishes.
 * @module
 */
import { computeInterResidual, type InterResidualResult } from "../bank/residual.ts";
import type { BankIndex, SearchOptions } from "../bank/search.ts";
import type { FeatureGrid } from "../types.ts";

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

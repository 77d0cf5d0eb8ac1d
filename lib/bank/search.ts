/**
 * Exact L2 top-k bank search (snarm-method.md §3: `torch.cdist(p=2)` + `topk(k, largest=False)`
 * over the WHOLE bank, no positional window, no class restriction) on WebGPU, with a TypeScript
 * reference and an optional allowed-entry restriction (the official `_predict(ids=...)` hook).
 *
 * Results are ascending Euclidean distances (square root of the squared L2 distance, like
 * `torch.cdist`); ties go to the lower bank index. The kernels rank by the GEMM form
 * dv = |b|² − 2 q·b (|q|² is constant per query); the returned distances of the chosen k entries are
 * then recomputed exactly (f64 direct differences) on the host.
 *
 * Kernel variants, chosen from the adapter (all tested against {@link searchTopKRef}):
 * - `"broadcast"` (CPU adapters such as lavapipe, `gpu.info.isCpu`): design E of
 *   shared/docs/webgpu-on-lavapipe.md, `wgsl/bank/knn_broadcast.wgsl`. One dispatch per W windows of
 *   NB bank rows; the bank lives in ONE buffer bound as small uniform windows (no 128 MiB storage
 *   binding limit); no loops, so lavapipe's 65535 loop back-edge limit never applies.
 * - `"tiled"` (real GPUs): `wgsl/bank/knn_tiled.wgsl` (shared-memory bank tiles, register-blocked
 *   accumulators, bank split into segments and storage-binding chunks) + `wgsl/bank/knn_merge.wgsl`.
 * - `"native"` (CPU adapters, or no adapter): ONNX Runtime's native CPU engine
 *   (onnxruntime-node; lib/bank/search_native.ts): Gemm + TopK over bank chunks of ≈ 16 k rows,
 *   k + 6 candidates per chunk, exact f64 re-rank with a proven acceptance bound (identical to the
 *   reference; queries near ties are searched again with more candidates, then by the reference).
 *
 * `"auto"` picks `"native"` when the adapter is a CPU (`gpu.info.isCpu`) or absent and
 * onnxruntime-node loads, else the WGSL kernel of the adapter (`"webgpu"`: broadcast on CPU
 * adapters, tiled on GPUs), else the reference. The environment variable
 * `SNARM_SEARCH=native|webgpu|reference` overrides what `"auto"` picks (explicit variants win).
 *
 * @example
 * ```ts
 * import { tryGetGpu } from "../gpu/device.ts";
 * import { createBankIndex, searchTopK } from "./search.ts";
 * const D = 4;
 * const bankRows = Float32Array.from({ length: 100 * D }, (_, i) => Math.sin(i)); // (N, D)
 * const patches = bankRows.slice(7 * D, 9 * D); // (Q, D): bank rows 7 and 8
 * // WGSL on a GPU adapter, the native CPU engine on a CPU adapter or none (same neighbours)
 * const index = await createBankIndex(await tryGetGpu(), bankRows, D); // uploaded once
 * const { indices, distances } = await searchTopK(patches, index, 3); // (Q, 3) each, nearest first
 * if (indices[0] !== 7 || indices[3] !== 8 || distances[0] !== 0) throw new Error("exact top-k");
 * index.destroy();
 * ```
 * @module
 */
import { type Gpu, tryGetGpu, warnFallback } from "../gpu/device.ts";
import type { FeatureGrid } from "../types.ts";
import { asImpl, type BankIndex, checkFinite, createBankIndex } from "./bank_index.ts";
import {
  broadcastGroups,
  broadcastPipeline,
  type BroadcastPlan,
  broadcastPlanFor,
  resolvePlan,
  searchBroadcast,
} from "./search_broadcast.ts";
import {
  allowedMaskFromImageIds,
  checkShapes,
  neighbourDistances,
  searchTopKRef,
  type TopK,
} from "./search_ref.ts";
import { searchTiled, tiledPipelines } from "./search_tiled.ts";
import {
  type NativeSearchOptions,
  prepareNative,
  requireNative,
  searchNative,
} from "./search_native.ts";
import { envChoice } from "../util/env.ts";
import { nativePreferred } from "../backbone/session.ts";

export type { TopK } from "./search_ref.ts";
export { allowedMaskFromImageIds, neighbourDistances, searchTopKRef } from "./search_ref.ts";
export type { BankIndex } from "./bank_index.ts";
export { createBankIndex } from "./bank_index.ts";
export type { BroadcastPlan } from "./search_broadcast.ts";
export { broadcastPlanFor, broadcastWgsl } from "./search_broadcast.ts";
export { mergeWgsl, tiledWgsl } from "./search_tiled.ts";
export type { NativeSearchOptions, NativeSearchStats } from "./search_native.ts";
export { lastNativeStats, nativeKnnModel, nativeSearchAvailable } from "./search_native.ts";

/**
 * Which implementation runs the search. `"auto"` picks by adapter (see module doc); `"webgpu"` is
 * the WGSL kernel `"auto"` would pick for the adapter (broadcast on CPU adapters, else tiled).
 */
export type SearchVariant =
  | "auto"
  | "broadcast"
  | "tiled"
  | "webgpu"
  | "native"
  | "reference";

const ENV_VARIANTS = ["native", "webgpu", "reference"] as const;

/** `SNARM_SEARCH` (native | webgpu | reference), or undefined when unset or unreadable. */
function envVariant(): SearchVariant | undefined {
  return envChoice("SNARM_SEARCH", ENV_VARIANTS);
}

/**
 * Resolve the variant's first level: `"native"` (ORT CPU), `"reference"`, or a WGSL choice
 * (`"auto"`/`"webgpu"`/`"broadcast"`/`"tiled"`, resolved later by {@link pickVariant}).
 * @throws Error on `"native"` requested explicitly when onnxruntime-node does not load.
 */
async function resolveVariant(
  v: SearchVariant,
  gpu: Gpu | null | undefined,
): Promise<SearchVariant> {
  if (v === "auto") v = envVariant() ?? "auto";
  if (v === "native") {
    await requireNative(); // throws with the reason
    return "native";
  }
  if (v === "auto" && (await nativePreferred(gpu ?? null))) return "native";
  return v;
}

/** Allowed-entry restriction and implementation choice for {@link searchTopK}. */
export interface SearchOptions {
  /** Feature size D; required only when both `queries` and `bank` are plain arrays. */
  d?: number;
  /**
   * Official `ids` hook (snarm-method.md §3): only bank entries whose source image id is in this
   * set take part. Needs per-entry image ids (`entryImageIds` here or in the {@link BankIndex}).
   */
  allowedImageIds?: Iterable<number>;
  /** `(N,)` source image id of each bank entry (`sample_image_indices`); overrides the index's. */
  entryImageIds?: ArrayLike<number>;
  /** `(N,)` per-entry mask, nonzero = allowed. Combined (AND) with `allowedImageIds`. */
  allowed?: Uint8Array;
  /** Implementation; default `"auto"`. */
  variant?: SearchVariant;
  /** Device when `bank` is a plain array (default: the process-wide {@link tryGetGpu}). */
  gpu?: Gpu | null;
  /** Tuning override of the broadcast kernel's plan (bench/tests only). */
  plan?: Partial<BroadcastPlan>;
  /** Tuning of the `"native"` variant (bench/tests only). */
  native?: NativeSearchOptions;
}

/**
 * Exact Euclidean top-k of every query over the whole bank (snarm-method.md §3).
 * @param queries `(Q, D)` row-major f32, or a channels-last {@link FeatureGrid} `(B, h, w, D)` whose
 *   patches are the queries (Q = B·h·w, row-major positions).
 * @param bank `(N, D)` row-major f32 (uploaded for this call only) or a {@link BankIndex} (uploaded
 *   once; use this for many query batches).
 * @param k neighbours per query (default 3, the official `--topk`).
 * @param opts allowed-entry restriction, variant, and D for plain arrays.
 * @returns `(Q, k)` indices (int32, into the full bank) and Euclidean distances, ascending; ties to
 *   the lower bank index.
 * @throws {Error} on bad shapes, non-finite queries, or fewer than k allowed entries;
 *   {@link GpuError} on a WebGPU failure.
 */
export async function searchTopK(
  queries: Float32Array | FeatureGrid,
  bank: Float32Array | BankIndex,
  k = 3,
  opts: SearchOptions = {},
): Promise<TopK> {
  const qdata = queries instanceof Float32Array ? queries : queries.data;
  const given = bank instanceof Float32Array ? null : asImpl(bank, "searchTopK");
  let d: number | undefined = given ? given.d : opts.d;
  if (!(queries instanceof Float32Array)) {
    if (d !== undefined && d !== queries.c) {
      throw new Error(`searchTopK: query grid has C=${queries.c} channels but the bank has D=${d}`);
    }
    if (queries.data.length !== queries.n * queries.h * queries.w * queries.c) {
      throw new Error(`searchTopK: query grid data length does not match (N, h, w, C)`);
    }
    d = queries.c;
  }
  if (d === undefined) {
    throw new Error(
      "searchTopK: pass opts.d (feature size D) when bank and queries are plain arrays",
    );
  }
  const bankData = given ? given.data : (bank as Float32Array);
  let allowed = opts.allowed;
  if (opts.allowedImageIds !== undefined) {
    const ent = opts.entryImageIds ?? given?.entryImageIds;
    if (!ent) {
      throw new Error("searchTopK: allowedImageIds needs entryImageIds (per bank entry image ids)");
    }
    if (ent.length !== bankData.length / d) {
      throw new Error(
        `searchTopK: entryImageIds has ${ent.length} entries, expected N=${bankData.length / d}`,
      );
    }
    const m = allowedMaskFromImageIds(ent, opts.allowedImageIds);
    if (allowed) { for (let i = 0; i < m.length; i++) m[i] = m[i] && allowed[i] ? 1 : 0; }
    allowed = m;
  }
  checkShapes(qdata, bankData, d, k, allowed);
  checkFinite(qdata, "queries");

  let variant = opts.variant ?? "auto";
  if (variant === "auto") variant = envVariant() ?? "auto";
  if (variant === "reference") return searchTopKRef(qdata, bankData, d, k, allowed);
  const gpu = given ? given.gpu : (opts.gpu !== undefined ? opts.gpu : await tryGetGpu());
  variant = await resolveVariant(variant, gpu);
  if (variant === "native") {
    const index = given ?? asImpl(await createBankIndex(null, bankData, d), "searchTopK");
    return await searchNative(index, qdata, k, allowed, opts.native);
  }
  if (!gpu) {
    warnFallback("bank search");
    return searchTopKRef(qdata, bankData, d, k, allowed);
  }
  const index = given ?? asImpl(await createBankIndex(gpu, bankData, d), "searchTopK");
  try {
    const indices = pickVariant(gpu, index.dp, variant) === "broadcast"
      ? await searchBroadcast(gpu, index, qdata, k, allowed, opts.plan)
      : await searchTiled(gpu, index, qdata, k, allowed);
    const distances = neighbourDistances(qdata, bankData, d, indices, k);
    return { indices, distances, q: qdata.length / d, k };
  } finally {
    if (!given) index.destroy();
  }
}

/**
 * The WGSL kernel a search runs: broadcast on lavapipe/llvmpipe (the CPU adapter it is tuned for,
 * when a plan fits D), else tiled. On SwiftShader (Chrome's CPU adapter) the broadcast kernel is
 * ~20× slower than tiled and long dispatches trip the browser's GPU watchdog (device lost).
 */
function pickVariant(gpu: Gpu, dp: number, v: SearchVariant): "broadcast" | "tiled" {
  if (v === "broadcast" || v === "tiled") return v;
  const lavapipe = gpu.info.isCpu && /llvmpipe|lavapipe/i.test(gpu.info.description);
  return lavapipe && broadcastPlanFor(gpu, dp) ? "broadcast" : "tiled";
}

/** Options of {@link prepareBankSearch}. */
export interface PrepareOptions {
  /** Number of queries per search call (the broadcast kernel's workgroup size depends on it). */
  q?: number;
  /** Implementation (default `"auto"`). */
  variant?: SearchVariant;
  /** Tuning override of the broadcast plan (bench/tests only). */
  plan?: Partial<BroadcastPlan>;
  /** Tuning of the `"native"` variant (bench/tests only). */
  native?: NativeSearchOptions;
}

/**
 * Compile the pipelines and build the bind groups that searches with this k (and this many
 * queries per call) will use, so that the first {@link searchTopK} call does not pay for them.
 * On lavapipe pipeline creation of the unrolled broadcast kernel takes seconds; its LLVM JIT
 * still happens at the first dispatch (and is cached on disk by Mesa for later processes).
 * For the `"native"` variant this creates the ONNX Runtime session and the bank chunk tensors.
 */
export async function prepareBankSearch(
  index: BankIndex,
  k = 3,
  opts: PrepareOptions = {},
): Promise<void> {
  const idx = asImpl(index, "prepareBankSearch");
  const gpu = idx.gpu;
  const variant = await resolveVariant(opts.variant ?? "auto", gpu);
  if (variant === "native") return await prepareNative(idx, opts.native);
  if (!gpu || variant === "reference") return;
  if (pickVariant(gpu, idx.dp, variant) === "broadcast") {
    const p = resolvePlan(gpu, idx.dp, opts.q, opts.plan);
    const pipe = await broadcastPipeline(gpu, idx.dp, k, p);
    broadcastGroups(gpu, idx, pipe.pipeline, pipe.key, p, null);
  } else {
    await tiledPipelines(gpu, idx.dp, k);
  }
}

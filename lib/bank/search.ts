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
 *   shared/docs/webgpu-on-lavapipe.md, `wgsl/knn_broadcast.wgsl`. One dispatch per W windows of
 *   NB bank rows; the bank lives in ONE buffer bound as small uniform windows (no 128 MiB storage
 *   binding limit); no loops, so lavapipe's 65535 loop back-edge limit never applies.
 * - `"tiled"` (real GPUs): `wgsl/knn_tiled.wgsl` (shared-memory bank tiles, register-blocked
 *   accumulators, bank split into segments and storage-binding chunks) + `wgsl/knn_merge.wgsl`.
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { createBankIndex, searchTopK } from "./search.ts";
 * const gpu = await getGpu();
 * const index = await createBankIndex(gpu, bankRows, 512); // (N, 512) row-major f32, uploaded once
 * const { indices, distances } = await searchTopK(patches, index, 3); // (Q, 3) each
 * index.destroy();
 * ```
 * @module
 */
import { type Gpu, GpuError, tryGetGpu, warnFallback, withErrorScope } from "../gpu/device.ts";
import { fillTemplate, getPipeline, loadWgsl } from "../gpu/pipeline.ts";
import type { FeatureGrid } from "../types.ts";

/** Which implementation runs the search. `"auto"` picks by adapter (see module doc). */
export type SearchVariant = "auto" | "broadcast" | "tiled" | "reference";

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
}

/** Parameters of the broadcast (design E) kernel. Code size = nb·w·dp·qpi unrolled MACs. */
export interface BroadcastPlan {
  /** Bank rows per window (multiple of 4; nb·dp·4 bytes of uniform binding and workgroup memory). */
  nb: number;
  /** Windows per dispatch. */
  w: number;
  /** Queries per invocation. */
  qpi: number;
  /** Workgroup size (multiple of 8). */
  wg: number;
}

const INF = Number.POSITIVE_INFINITY;
const NO_INDEX = 0xffffffff;

// ---------------------------------------------------------------------------------------------
// Reference

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

function checkShapes(
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

// ---------------------------------------------------------------------------------------------
// Bank index (GPU-resident bank)

const U_STORAGE = 0x80, U_UNIFORM = 0x40, U_COPY_DST = 0x08, U_COPY_SRC = 0x04, U_MAP_READ = 0x01;

/**
 * A bank uploaded once to the device, with |b|² precomputed (like faiss `add`). Create with
 * {@link createBankIndex}; reuse for many query batches; {@link BankIndex.destroy} frees it.
 */
export interface BankIndex {
  readonly kind: "snarm.BankIndex";
  /** Number of bank entries N. */
  readonly n: number;
  /** Feature size D. */
  readonly d: number;
  /** The host copy `(N, D)` row-major f32 (kept by reference; used for exact distances and residuals). */
  readonly data: Float32Array;
  /** `(N,)` source image id per entry (`sample_image_indices`), when given. */
  readonly entryImageIds?: Int32Array;
  /** The device holding the bank, or `null` (then every search runs the TypeScript reference). */
  readonly gpu: Gpu | null;
  /** Free the GPU buffers. The index must not be used afterwards. */
  destroy(): void;
}

class BankIndexImpl implements BankIndex {
  readonly kind = "snarm.BankIndex" as const;
  /** D padded to a multiple of 4. */
  dp: number;
  /** N padded to a multiple of {@link ROW_PAD}. */
  np: number;
  bankBuf: GPUBuffer | null = null;
  /** `(np,)` |b|² (f64-accurate, rounded), +inf on padding rows. */
  norms: Float32Array;
  /** Storage copy of {@link norms} (tiled variant), created on demand. */
  normsBuf: GPUBuffer | null = null;
  /** Per broadcast plan: default record buffer. */
  records = new Map<string, GPUBuffer>();
  /** Per pipeline key: bank-window bind groups (group 1) and record bind groups (group 2). */
  bankGroups = new Map<string, GPUBindGroup[]>();
  recGroups = new Map<string, GPUBindGroup[]>();
  destroyed = false;

  constructor(
    readonly gpu: Gpu | null,
    readonly data: Float32Array,
    readonly n: number,
    readonly d: number,
    readonly entryImageIds?: Int32Array,
  ) {
    this.dp = Math.ceil(d / 4) * 4;
    this.np = Math.max(ROW_PAD, Math.ceil(n / ROW_PAD) * ROW_PAD);
    this.norms = new Float32Array(this.np).fill(INF);
    for (let j = 0; j < n; j++) {
      let s = 0;
      const o = j * d;
      for (let c = 0; c < d; c++) s += data[o + c] * data[o + c];
      this.norms[j] = s;
    }
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.bankBuf?.destroy();
    this.normsBuf?.destroy();
    for (const b of this.records.values()) b.destroy();
    this.records.clear();
    this.bankGroups.clear();
    this.recGroups.clear();
  }
}

/** Bank rows are padded to this multiple (≥ every nb·w of the broadcast kernel, multiple of 64). */
const ROW_PAD = 256;

function asImpl(x: BankIndex, what: string): BankIndexImpl {
  if (!(x instanceof BankIndexImpl)) {
    throw new Error(`${what}: expected a BankIndex from createBankIndex`);
  }
  if (x.destroyed) throw new Error(`${what}: the BankIndex was destroyed`);
  return x;
}

function checkFinite(a: Float32Array, what: string): void {
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (v !== v || v === INF || v === -INF) {
      throw new Error(`bank search: ${what} has a non-finite value at flat index ${i}`);
    }
  }
}

/**
 * Upload a bank once and precompute |b|². With `gpu = null` the index only holds the host copy and
 * every search runs the TypeScript reference (after {@link warnFallback}).
 * @param bank `(N, D)` row-major f32 bank features (kept by reference, do not mutate).
 * @param d feature size D.
 * @param entryImageIds optional `(N,)` source image id per entry, for `allowedImageIds`.
 * @throws {Error} on a shape mismatch or non-finite values; {@link GpuError} when the device cannot
 * hold the bank (N·D·4 bytes must fit `maxBufferSize`).
 */
export async function createBankIndex(
  gpu: Gpu | null,
  bank: Float32Array,
  d: number,
  entryImageIds?: ArrayLike<number>,
): Promise<BankIndex> {
  if (!Number.isInteger(d) || d < 1) {
    throw new Error(`createBankIndex: D=${d} must be a positive integer`);
  }
  if (bank.length % d !== 0 || bank.length === 0) {
    throw new Error(
      `createBankIndex: bank has ${bank.length} values, expected (N, D=${d}) with N ≥ 1`,
    );
  }
  const n = bank.length / d;
  if (n >= 0x7fffffff) throw new Error(`createBankIndex: N=${n} too large`);
  checkFinite(bank, "bank");
  let ids: Int32Array | undefined;
  if (entryImageIds) {
    if (entryImageIds.length !== n) {
      throw new Error(
        `createBankIndex: entryImageIds has ${entryImageIds.length} entries, expected N=${n}`,
      );
    }
    ids = Int32Array.from(entryImageIds);
  }
  const idx = new BankIndexImpl(gpu, bank, n, d, ids);
  if (!gpu) return idx;
  const bytes = idx.np * idx.dp * 4;
  if (bytes > gpu.limits.maxBufferSize) {
    throw new GpuError(
      `createBankIndex: bank of ${idx.np}×${idx.dp} f32 (${bytes} bytes) exceeds maxBufferSize ${gpu.limits.maxBufferSize}`,
    );
  }
  await withErrorScope(gpu.device, "uploading the bank", () => {
    const buf = gpu.device.createBuffer({
      label: `bank ${n}x${d}`,
      size: bytes,
      usage: U_STORAGE | U_UNIFORM | U_COPY_DST,
      mappedAtCreation: true,
    });
    const dst = new Float32Array(buf.getMappedRange());
    if (idx.dp === d) dst.set(bank);
    else for (let j = 0; j < n; j++) dst.set(bank.subarray(j * d, j * d + d), j * idx.dp);
    buf.unmap();
    idx.bankBuf = buf;
  });
  return idx;
}

// ---------------------------------------------------------------------------------------------
// Public search

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

  const variant = opts.variant ?? "auto";
  if (variant === "reference") return searchTopKRef(qdata, bankData, d, k, allowed);
  const gpu = given ? given.gpu : (opts.gpu !== undefined ? opts.gpu : await tryGetGpu());
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

/** The kernel a search runs: broadcast on CPU adapters (when a plan fits D), tiled otherwise. */
function pickVariant(gpu: Gpu, dp: number, v: SearchVariant): "broadcast" | "tiled" {
  if (v === "broadcast" || v === "tiled") return v;
  return gpu.info.isCpu && broadcastPlanFor(gpu, dp) ? "broadcast" : "tiled";
}

/** Options of {@link prepareBankSearch}. */
export interface PrepareOptions {
  /** Number of queries per search call (the broadcast kernel's workgroup size depends on it). */
  q?: number;
  /** Implementation (default `"auto"`). */
  variant?: SearchVariant;
  /** Tuning override of the broadcast plan (bench/tests only). */
  plan?: Partial<BroadcastPlan>;
}

/**
 * Compile the pipelines and build the bind groups that searches with this k (and this many
 * queries per call) will use, so that the first {@link searchTopK} call does not pay for them.
 * On lavapipe pipeline creation of the unrolled broadcast kernel takes seconds; its LLVM JIT
 * still happens at the first dispatch (and is cached on disk by Mesa for later processes).
 */
export async function prepareBankSearch(
  index: BankIndex,
  k = 3,
  opts: PrepareOptions = {},
): Promise<void> {
  const idx = asImpl(index, "prepareBankSearch");
  const gpu = idx.gpu;
  const variant = opts.variant ?? "auto";
  if (!gpu || variant === "reference") return;
  if (pickVariant(gpu, idx.dp, variant) === "broadcast") {
    const p = resolvePlan(gpu, idx.dp, opts.q, opts.plan);
    const pipe = await broadcastPipeline(gpu, idx.dp, k, p);
    broadcastGroups(gpu, idx, pipe.pipeline, pipe.key, p, null);
  } else {
    await tiledPipelines(gpu, idx.dp, k);
  }
}

// ---------------------------------------------------------------------------------------------
// Broadcast (design E) variant

/**
 * Default broadcast plan for a padded feature size, or `null` when no window of ≥ 4 rows fits.
 * nb = largest power of two ≤ min(256, 32 KiB/(dp·4)) whose window (nb·dp·4 bytes, staged whole in
 * workgroup memory) is a multiple of the uniform offset alignment: 256 rows at D = 32, 64 at 128,
 * 16 at 512; w = 2 windows per dispatch for dp ≥ 256 (spreads the per-dispatch costs); qpi = 2.
 * Code size nb·w·dp·qpi ≤ 32 K unrolled MACs (pipeline creation ≈ 1–3 s, first-dispatch LLVM JIT
 * ≈ 5–15 s on lavapipe). The workgroup size is 128, or, when the query count `q` is known and large
 * (≥ 2048, one image of 49×49 patches or more), the multiple of 8 in [128, 256] that spreads the
 * workgroups most evenly over the adapter's worker threads (each dispatch waits for its slowest
 * thread): for q = 2401 on 2 threads that is 152 (8 workgroups).
 */
export function broadcastPlanFor(gpu: Gpu, dp: number, q?: number): BroadcastPlan | null {
  const lim = gpu.limits;
  const maxRows = Math.min(256, Math.floor(lim.maxComputeWorkgroupStorageSize / (dp * 4)));
  let nb = 1;
  while (nb * 2 <= maxRows) nb *= 2;
  while (
    nb >= 4 &&
    ((nb * dp * 4) % lim.minUniformBufferOffsetAlignment !== 0 ||
      nb * dp * 4 > lim.maxUniformBufferBindingSize)
  ) nb /= 2;
  if (nb < 4) return null;
  const qpi = 2;
  return { nb, w: dp >= 256 ? 2 : 1, qpi, wg: balancedWorkgroup(gpu, q, qpi) };
}

function balancedWorkgroup(gpu: Gpu, q: number | undefined, qpi: number): number {
  if (q === undefined || q < 2048) return 128;
  const threads = Math.max(1, navigator.hardwareConcurrency || 1);
  const rows = Math.min(q, gpu.limits.maxTextureDimension2D);
  let best = 128, bestCost = Infinity;
  for (let wg = 128; wg <= 256; wg += 8) {
    const groups = Math.ceil(rows / (wg * qpi));
    const cost = Math.ceil(groups / threads) * wg * (1 + 0.001 * groups); // ties: fewer dispatches units
    if (cost < bestCost) [best, bestCost] = [wg, cost];
  }
  return best;
}

function resolvePlan(
  gpu: Gpu,
  dp: number,
  q: number | undefined,
  over?: Partial<BroadcastPlan>,
): BroadcastPlan {
  const base = broadcastPlanFor(gpu, dp, q);
  if (!base && !over?.nb) {
    throw new GpuError(
      `bank search: no broadcast plan fits D=${dp} (uniform window / workgroup memory); use the tiled variant`,
    );
  }
  const p = {
    ...(base ?? { nb: 4, w: 1, qpi: 2, wg: 128 }),
    ...(over ?? {}),
  } as BroadcastPlan;
  const lim = gpu.limits;
  if (
    p.nb % 4 !== 0 || p.nb * p.w > ROW_PAD || ROW_PAD % (p.nb * p.w) !== 0 ||
    (p.nb * dp * 4) % lim.minUniformBufferOffsetAlignment !== 0 ||
    p.nb * dp * 4 > lim.maxUniformBufferBindingSize ||
    p.nb * dp * 4 > lim.maxComputeWorkgroupStorageSize ||
    p.wg % 8 !== 0 || p.wg < 8 || p.wg > lim.maxComputeInvocationsPerWorkgroup || p.qpi < 1 ||
    p.w < 1 || p.w > lim.maxUniformBuffersPerShaderStage - 1
  ) {
    throw new GpuError(`bank search: invalid broadcast plan ${JSON.stringify(p)} for D=${dp}`);
  }
  return p;
}

/** Generate the unrolled WGSL of the broadcast kernel for (dp, k, plan). */
export async function broadcastWgsl(dp: number, k: number, p: BroadcastPlan): Promise<string> {
  const { nb, w: W, qpi, wg } = p;
  const d4 = dp / 4;
  const nbd4 = nb * d4;
  const bind: string[] = [];
  for (let w = 0; w < W; w++) {
    bind.push(`@group(1) @binding(${w}) var<uniform> B${w}: array<vec4<f32>, ${nbd4}>;`);
  }
  const ql: string[] = [];
  for (let i = 0; i < qpi; i++) {
    for (let c = 0; c < d4; c++) {
      ql.push(`  let x${i}_${c} = textureLoad(qtex, vec2<i32>(${c}, i32(q0 + ${i}u)), 0);`);
    }
  }
  const sl: string[] = [];
  const ss: string[] = [];
  for (let i = 0; i < qpi; i++) {
    for (let r = 0; r < k; r++) {
      const at = `(q0 + ${i}u) * ${k}u + ${r}u`;
      sl.push(`  var t${i}_${r} = TD[${at}];`, `  var n${i}_${r} = TI[${at}];`);
      ss.push(`  TD[${at}] = t${i}_${r};`, `  TI[${at}] = n${i}_${r};`);
    }
  }
  const win: string[] = [];
  const full = Math.floor(nbd4 / wg);
  const rem = nbd4 % wg;
  for (let w = 0; w < W; w++) {
    if (w > 0) win.push("  workgroupBarrier();");
    for (let e = 0; e < full; e++) win.push(`  S[li + ${e * wg}u] = B${w}[li + ${e * wg}u];`);
    if (rem) win.push(`  if (li < ${rem}u) { S[li + ${full * wg}u] = B${w}[li + ${full * wg}u]; }`);
    win.push("  workgroupBarrier();");
    // One bank row at a time, 4 partial sums (a vec4) per query: 4·qpi independent add chains.
    for (let j = 0; j < nb; j++) {
      const m = w * nb + j;
      const lines: string[] = ["  {"];
      for (let c = 0; c < d4; c++) {
        const acc = [];
        for (let i = 0; i < qpi; i++) {
          acc.push(
            c === 0 ? `var a${i} = x${i}_0 * b0;` : `a${i} = fma(x${i}_${c}, b${c}, a${i});`,
          );
        }
        lines.push(`    let b${c} = S[${j * d4 + c}u]; ${acc.join(" ")}`);
      }
      lines.push(`    let id = base + ${m}u;`, `    let bn = R.bn[${m >> 2}].${"xyzw"[m & 3]};`);
      for (let i = 0; i < qpi; i++) {
        lines.push(`    let v${i} = bn - 2.0 * ((a${i}.x + a${i}.y) + (a${i}.z + a${i}.w));`);
        lines.push("    " + insertCode(k, `v${i}`, "id", `t${i}_`, `n${i}_`, `c${i}_`));
      }
      lines.push("  }");
      win.push(lines.join("\n"));
    }
  }
  const src = await loadWgsl("knn_broadcast.wgsl");
  return fillTemplate(src, {
    WG: wg,
    QPI: qpi,
    NBD4: nbd4,
    NBW4: (nb * W) / 4,
    BANK_BINDINGS: bind.join("\n"),
    QUERY_LOADS: ql.join("\n"),
    STATE_LOADS: sl.join("\n"),
    WINDOWS: win.join("\n"),
    STATE_STORES: ss.join("\n"),
  });
}

/** Branch-free sorted insertion of (v, id) into ascending t0..t{k-1} / n0..n{k-1} (strict `<`). */
function insertCode(k: number, v: string, id: string, t: string, n: string, c: string): string {
  const out: string[] = [];
  for (let r = 0; r < k; r++) out.push(`let ${c}${r} = ${v} < ${t}${r};`);
  for (let r = k - 1; r >= 1; r--) {
    out.push(`${t}${r} = select(${t}${r}, select(${v}, ${t}${r - 1}, ${c}${r - 1}), ${c}${r});`);
    out.push(`${n}${r} = select(${n}${r}, select(${id}, ${n}${r - 1}, ${c}${r - 1}), ${c}${r});`);
  }
  out.push(`${t}0 = select(${t}0, ${v}, ${c}0);`, `${n}0 = select(${n}0, ${id}, ${c}0);`);
  return out.join(" ");
}

async function broadcastPipeline(
  gpu: Gpu,
  dp: number,
  k: number,
  p: BroadcastPlan,
): Promise<{ pipeline: GPUComputePipeline; key: string }> {
  const key = `knn_broadcast:dp${dp}:k${k}:nb${p.nb}:w${p.w}:qpi${p.qpi}:wg${p.wg}`;
  const code = await broadcastWgsl(dp, k, p);
  return { pipeline: await getPipeline(gpu, key, code), key };
}

/** Record stride in bytes: base (16 B) + w·nb |b|² floats, aligned to the uniform offset alignment. */
function recordStride(gpu: Gpu, p: BroadcastPlan): number {
  const a = Math.max(16, gpu.limits.minUniformBufferOffsetAlignment);
  return Math.ceil((16 + p.nb * p.w * 4) / a) * a;
}

function makeRecords(
  gpu: Gpu,
  index: BankIndexImpl,
  p: BroadcastPlan,
  allowed: Uint8Array | null,
): GPUBuffer {
  const rows = p.nb * p.w;
  const nd = index.np / rows;
  const stride = recordStride(gpu, p);
  const bytes = new ArrayBuffer(nd * stride);
  const u = new Uint32Array(bytes);
  const f = new Float32Array(bytes);
  for (let c = 0; c < nd; c++) {
    const o = (c * stride) / 4;
    u[o] = c * rows;
    for (let m = 0; m < rows; m++) {
      const j = c * rows + m;
      f[o + 4 + m] = allowed && j < index.n && !allowed[j] ? INF : index.norms[j];
    }
  }
  const buf = gpu.device.createBuffer({
    label: "knn records",
    size: bytes.byteLength,
    usage: U_UNIFORM | U_COPY_DST,
  });
  gpu.device.queue.writeBuffer(buf, 0, bytes);
  return buf;
}

function broadcastGroups(
  gpu: Gpu,
  index: BankIndexImpl,
  pipeline: GPUComputePipeline,
  key: string,
  p: BroadcastPlan,
  allowed: Uint8Array | null,
): { bank: GPUBindGroup[]; rec: GPUBindGroup[]; tmp: GPUBuffer | null } {
  const rows = p.nb * p.w;
  const nd = index.np / rows;
  const winBytes = p.nb * index.dp * 4;
  let bank = index.bankGroups.get(key);
  if (!bank) {
    bank = [];
    const layout = pipeline.getBindGroupLayout(1);
    for (let c = 0; c < nd; c++) {
      const entries: GPUBindGroupEntry[] = [];
      for (let w = 0; w < p.w; w++) {
        entries.push({
          binding: w,
          resource: {
            buffer: index.bankBuf!,
            offset: (c * rows + w * p.nb) * index.dp * 4,
            size: winBytes,
          },
        });
      }
      bank.push(gpu.device.createBindGroup({ layout, entries }));
    }
    index.bankGroups.set(key, bank);
  }
  const recBytes = 16 + rows * 4;
  const stride = recordStride(gpu, p);
  const build = (buf: GPUBuffer) => {
    const layout = pipeline.getBindGroupLayout(2);
    const out: GPUBindGroup[] = [];
    for (let c = 0; c < nd; c++) {
      out.push(gpu.device.createBindGroup({
        layout,
        entries: [{ binding: 0, resource: { buffer: buf, offset: c * stride, size: recBytes } }],
      }));
    }
    return out;
  };
  if (allowed) {
    const tmp = makeRecords(gpu, index, p, allowed);
    return { bank, rec: build(tmp), tmp };
  }
  const planKey = `${p.nb}:${p.w}`;
  let recBuf = index.records.get(planKey);
  if (!recBuf) {
    recBuf = makeRecords(gpu, index, p, null);
    index.records.set(planKey, recBuf);
  }
  let rec = index.recGroups.get(key);
  if (!rec) {
    rec = build(recBuf);
    index.recGroups.set(key, rec);
  }
  return { bank, rec, tmp: null };
}

async function searchBroadcast(
  gpu: Gpu,
  index: BankIndexImpl,
  queries: Float32Array,
  k: number,
  allowed: Uint8Array | undefined,
  over?: Partial<BroadcastPlan>,
): Promise<Int32Array> {
  const p = resolvePlan(gpu, index.dp, queries.length / index.d, over);
  const { pipeline, key } = await broadcastPipeline(gpu, index.dp, k, p);
  const d = index.d, dp = index.dp;
  const q = queries.length / d;
  const per = p.wg * p.qpi;
  const maxRows = Math.floor(gpu.limits.maxTextureDimension2D / per) * per;
  const out = new Int32Array(q * k);
  return await withErrorScope(gpu.device, "bank search (broadcast kernel)", async () => {
    const groups = broadcastGroups(gpu, index, pipeline, key, p, allowed ?? null);
    try {
      for (let q0 = 0; q0 < q; q0 += maxRows) {
        const qc = Math.min(maxRows, q - q0);
        const qp = Math.ceil(qc / per) * per;
        const texData = new Float32Array(qp * dp);
        if (dp === d) texData.set(queries.subarray(q0 * d, (q0 + qc) * d));
        else {for (let i = 0; i < qc; i++) {
            texData.set(queries.subarray((q0 + i) * d, (q0 + i + 1) * d), i * dp);
          }}
        const tex = gpu.device.createTexture({
          label: "knn queries",
          size: [dp / 4, qp],
          format: "rgba32float",
          usage: 0x04 /* TEXTURE_BINDING */ | 0x02, /* COPY_DST */
        });
        gpu.device.queue.writeTexture({ texture: tex }, texData, {
          bytesPerRow: dp * 4,
          rowsPerImage: qp,
        }, [dp / 4, qp]);
        const td = new Float32Array(qp * k).fill(INF);
        const ti = new Uint32Array(qp * k).fill(NO_INDEX);
        const tdBuf = gpu.device.createBuffer({
          label: "knn TD",
          size: td.byteLength,
          usage: U_STORAGE | U_COPY_DST,
        });
        const tiBuf = gpu.device.createBuffer({
          label: "knn TI",
          size: ti.byteLength,
          usage: U_STORAGE | U_COPY_DST | U_COPY_SRC,
        });
        const staging = gpu.device.createBuffer({
          label: "knn TI readback",
          size: ti.byteLength,
          usage: U_MAP_READ | U_COPY_DST,
        });
        gpu.device.queue.writeBuffer(tdBuf, 0, td);
        gpu.device.queue.writeBuffer(tiBuf, 0, ti);
        const g0 = gpu.device.createBindGroup({
          layout: pipeline.getBindGroupLayout(0),
          entries: [
            { binding: 0, resource: tex.createView() },
            { binding: 1, resource: { buffer: tdBuf } },
            { binding: 2, resource: { buffer: tiBuf } },
          ],
        });
        const enc = gpu.device.createCommandEncoder({ label: "bank search" });
        const pass = enc.beginComputePass();
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, g0);
        const wgs = qp / per;
        for (let c = 0; c < groups.bank.length; c++) {
          pass.setBindGroup(1, groups.bank[c]);
          pass.setBindGroup(2, groups.rec[c]);
          pass.dispatchWorkgroups(wgs);
        }
        pass.end();
        enc.copyBufferToBuffer(tiBuf, 0, staging, 0, ti.byteLength);
        gpu.device.queue.submit([enc.finish()]);
        await staging.mapAsync(1);
        const res = new Uint32Array(staging.getMappedRange().slice(0));
        staging.unmap();
        for (const b of [staging, tdBuf, tiBuf]) b.destroy();
        tex.destroy();
        copyIndices(res, out, q0, qc, k);
      }
    } finally {
      groups.tmp?.destroy();
    }
    return out;
  });
}

function copyIndices(res: Uint32Array, out: Int32Array, q0: number, qc: number, k: number): void {
  for (let i = 0; i < qc * k; i++) {
    const v = res[i];
    if (v === NO_INDEX) {
      throw new GpuError(
        `bank search: query ${q0 + Math.floor(i / k)} got no neighbour (kernel fault)`,
      );
    }
    out[q0 * k + i] = v;
  }
}

// ---------------------------------------------------------------------------------------------
// Tiled (GPU) variant

const T_WG = 64, T_QPT = 2, T_TB = 32;
/** Loop-iteration budget per invocation (lavapipe allows 65535 back-edges per 8-lane group). */
const LOOP_BUDGET = 16000;

function tiledDc(dp: number): number {
  return dp % 16 === 0 ? 16 : dp % 8 === 0 ? 8 : 4;
}

/** Generate the WGSL of the tiled kernel for (dp, k). */
export async function tiledWgsl(dp: number, k: number): Promise<string> {
  const dc = tiledDc(dp);
  const tb4 = T_TB / 4;
  const init: string[] = [];
  const stores: string[] = [];
  for (let i = 0; i < T_QPT; i++) {
    init.push(`  let q${i} = qb + ${i * T_WG}u;`);
    for (let r = 0; r < k; r++) {
      init.push(`  var t${i}_${r} = P.inf;`, `  var n${i}_${r} = 0xffffffffu;`);
    }
    stores.push(`  let o${i} = ((P.seg_out0 + seg) * qp + q${i}) * ${k}u;`);
    for (let r = 0; r < k; r++) {
      stores.push(`  PD[o${i} + ${r}u] = t${i}_${r};`, `  PI[o${i} + ${r}u] = n${i}_${r};`);
    }
  }
  const acc: string[] = [];
  for (let i = 0; i < T_QPT; i++) {
    for (let j = 0; j < tb4; j++) acc.push(`    var a${i}_${j} = vec4<f32>();`);
  }
  const stage: string[] = [];
  for (let s = 0; s < (T_TB * dc) / T_WG; s++) {
    stage.push(
      `      { let e = li + ${s * T_WG}u; let j = e / ${dc}u; let d = e % ${dc}u; ` +
        `S[d * ${tb4}u + j / 4u][j % 4u] = BK[(r0 + j) * ${dp}u + d0 + d]; }`,
    );
  }
  const macs: string[] = [];
  for (let d = 0; d < dc; d++) {
    const l: string[] = [];
    for (let i = 0; i < T_QPT; i++) {
      l.push(`let qv${i} = vec4<f32>(QT[(d0 + ${d}u) * qp + q${i}]);`);
    }
    for (let j = 0; j < tb4; j++) {
      l.push(`let s${j} = S[${d * tb4 + j}u];`);
      for (let i = 0; i < T_QPT; i++) l.push(`a${i}_${j} = fma(qv${i}, s${j}, a${i}_${j});`);
    }
    macs.push(`      { ${l.join(" ")} }`);
  }
  const ins: string[] = [];
  for (let j = 0; j < T_TB; j++) {
    const l = [`let id = P.chunk_row0 + r0 + ${j}u;`, "let bn = BN[id];"];
    for (let i = 0; i < T_QPT; i++) {
      l.push(`let v${i} = bn - 2.0 * a${i}_${j >> 2}.${"xyzw"[j & 3]};`);
      l.push(insertCode(k, `v${i}`, "id", `t${i}_`, `n${i}_`, `c${i}_`));
    }
    ins.push(`    { ${l.join(" ")} }`);
  }
  const src = await loadWgsl("knn_tiled.wgsl");
  return fillTemplate(src, {
    WG: T_WG,
    QPT: T_QPT,
    TB: T_TB,
    DC: dc,
    DP: dp,
    SDEF: `vec4<f32>, ${(T_TB * dc) / 4}`,
    STATE_INIT: init.join("\n"),
    ACC_DECL: acc.join("\n"),
    STAGE: stage.join("\n"),
    MACS: macs.join("\n"),
    INSERT: ins.join("\n"),
    STATE_STORES: stores.join("\n"),
  });
}

/** Generate the WGSL of the merge kernel for k. */
export async function mergeWgsl(k: number): Promise<string> {
  const sl: string[] = [];
  const ss: string[] = [];
  for (let r = 0; r < k; r++) {
    sl.push(`  var t${r} = TD[q * ${k}u + ${r}u];`, `  var n${r} = TI[q * ${k}u + ${r}u];`);
    ss.push(`  TD[q * ${k}u + ${r}u] = t${r};`, `  TI[q * ${k}u + ${r}u] = n${r};`);
  }
  const src = await loadWgsl("knn_merge.wgsl");
  return fillTemplate(src, {
    WG: 64,
    K: k,
    STATE_LOADS: sl.join("\n"),
    INSERT: "      " + insertCode(k, "v", "id", "t", "n", "c"),
    STATE_STORES: ss.join("\n"),
  });
}

async function tiledPipelines(gpu: Gpu, dp: number, k: number) {
  const [tiled, merge] = await Promise.all([
    tiledWgsl(dp, k).then((c) => getPipeline(gpu, `knn_tiled:dp${dp}:k${k}`, c)),
    mergeWgsl(k).then((c) => getPipeline(gpu, `knn_merge:k${k}`, c)),
  ]);
  return { tiled, merge };
}

async function searchTiled(
  gpu: Gpu,
  index: BankIndexImpl,
  queries: Float32Array,
  k: number,
  allowed: Uint8Array | undefined,
): Promise<Int32Array> {
  const { tiled, merge } = await tiledPipelines(gpu, index.dp, k);
  const d = index.d, dp = index.dp, np = index.np;
  const q = queries.length / d;
  const per = T_WG * T_QPT;
  const qp = Math.ceil(q / per) * per;
  const dcs = dp / tiledDc(dp);
  // Segment rows: small enough for the loop budget and for parallelism (≥ ~64 segments).
  const budgetRows = Math.max(64, Math.floor(LOOP_BUDGET / (dcs + 2)) * T_TB);
  let segRows = Math.min(budgetRows, Math.max(256, Math.ceil(np / 64)));
  segRows = Math.max(64, Math.floor(segRows / 64) * 64);
  let chunkRows = Math.floor(gpu.limits.maxStorageBufferBindingSize / (dp * 4));
  chunkRows = Math.floor(chunkRows / segRows) * segRows;
  chunkRows = Math.min(chunkRows, segRows * gpu.limits.maxComputeWorkgroupsPerDimension);
  if (chunkRows < segRows) {
    throw new GpuError(
      `bank search: one segment of ${segRows} rows exceeds the storage binding limit`,
    );
  }
  const chunks: Array<[number, number]> = [];
  for (let s = 0; s < np; s += chunkRows) chunks.push([s, Math.min(np, s + chunkRows)]);
  const nseg = chunks.reduce((a, [s, e]) => a + Math.ceil((e - s) / segRows), 0);
  const partBytes = nseg * qp * k * 4;
  if (partBytes > gpu.limits.maxStorageBufferBindingSize) {
    throw new GpuError(
      `bank search: ${nseg} segments × ${qp} queries exceed the storage binding limit; search fewer queries per call`,
    );
  }
  return await withErrorScope(gpu.device, "bank search (tiled kernel)", async () => {
    const dev = gpu.device;
    const qt = new Float32Array(dp * qp);
    for (let i = 0; i < q; i++) for (let c = 0; c < d; c++) qt[c * qp + i] = queries[i * d + c];
    const mk = (label: string, size: number, usage = U_STORAGE | U_COPY_DST) =>
      dev.createBuffer({ label, size: Math.max(16, size), usage });
    const temps: GPUBuffer[] = [];
    const qtBuf = mk("knn QT", qt.byteLength);
    dev.queue.writeBuffer(qtBuf, 0, qt);
    temps.push(qtBuf);
    let bnBuf = index.normsBuf;
    if (allowed) {
      const bn = index.norms.slice();
      for (let j = 0; j < index.n; j++) if (!allowed[j]) bn[j] = INF;
      bnBuf = mk("knn BN restricted", bn.byteLength);
      dev.queue.writeBuffer(bnBuf, 0, bn);
      temps.push(bnBuf);
    } else if (!bnBuf) {
      bnBuf = index.normsBuf = mk("knn BN", index.norms.byteLength);
      dev.queue.writeBuffer(bnBuf, 0, index.norms as Float32Array<ArrayBuffer>);
    }
    const pd = mk("knn PD", partBytes), pi = mk("knn PI", partBytes);
    const td = new Float32Array(qp * k).fill(INF);
    const ti = new Uint32Array(qp * k).fill(NO_INDEX);
    const tdBuf = mk("knn TD", td.byteLength),
      tiBuf = mk("knn TI", ti.byteLength, U_STORAGE | U_COPY_DST | U_COPY_SRC);
    const staging = mk("knn TI readback", ti.byteLength, U_MAP_READ | U_COPY_DST);
    dev.queue.writeBuffer(tdBuf, 0, td);
    dev.queue.writeBuffer(tiBuf, 0, ti);
    temps.push(pd, pi, tdBuf, tiBuf, staging);
    // Per-dispatch parameters at a 256-byte stride.
    const mergeStep = Math.max(1, Math.floor(LOOP_BUDGET / k));
    const merges: Array<[number, number]> = [];
    for (let s = 0; s < nseg; s += mergeStep) merges.push([s, Math.min(nseg, s + mergeStep)]);
    const stride = Math.max(256, gpu.limits.minUniformBufferOffsetAlignment);
    const nPar = chunks.length + merges.length;
    const params = new ArrayBuffer(nPar * stride);
    const pu = new Uint32Array(params), pf = new Float32Array(params);
    let segOut = 0;
    chunks.forEach(([s, e], c) => {
      const o = (c * stride) / 4;
      pu.set([qp, s, segRows, segOut, e - s], o);
      pf[o + 5] = INF;
      segOut += Math.ceil((e - s) / segRows);
    });
    merges.forEach(([s0, s1], m) => pu.set([qp, s0, s1, 0], ((chunks.length + m) * stride) / 4));
    const parBuf = mk("knn params", params.byteLength, U_UNIFORM | U_COPY_DST);
    dev.queue.writeBuffer(parBuf, 0, params);
    temps.push(parBuf);

    const enc = dev.createCommandEncoder({ label: "bank search (tiled)" });
    const pass = enc.beginComputePass();
    pass.setPipeline(tiled);
    chunks.forEach(([s, e], c) => {
      const bg = dev.createBindGroup({
        layout: tiled.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: qtBuf } },
          {
            binding: 1,
            resource: { buffer: index.bankBuf!, offset: s * dp * 4, size: (e - s) * dp * 4 },
          },
          { binding: 2, resource: { buffer: bnBuf! } },
          { binding: 3, resource: { buffer: pd } },
          { binding: 4, resource: { buffer: pi } },
          { binding: 5, resource: { buffer: parBuf, offset: c * stride, size: 32 } },
        ],
      });
      pass.setBindGroup(0, bg);
      // The last segment of a chunk may be shorter: the kernel bounds its tiles by P.rows.
      pass.dispatchWorkgroups(qp / per, Math.ceil((e - s) / segRows));
    });
    pass.setPipeline(merge);
    merges.forEach((_, m) => {
      const bg = dev.createBindGroup({
        layout: merge.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: pd } },
          { binding: 1, resource: { buffer: pi } },
          { binding: 2, resource: { buffer: tdBuf } },
          { binding: 3, resource: { buffer: tiBuf } },
          {
            binding: 4,
            resource: { buffer: parBuf, offset: (chunks.length + m) * stride, size: 16 },
          },
        ],
      });
      pass.setBindGroup(0, bg);
      pass.dispatchWorkgroups(qp / 64);
    });
    pass.end();
    enc.copyBufferToBuffer(tiBuf, 0, staging, 0, ti.byteLength);
    dev.queue.submit([enc.finish()]);
    await staging.mapAsync(1);
    const res = new Uint32Array(staging.getMappedRange().slice(0));
    staging.unmap();
    for (const b of temps) b.destroy();
    const out = new Int32Array(q * k);
    copyIndices(res, out, 0, q, k);
    return out;
  });
}

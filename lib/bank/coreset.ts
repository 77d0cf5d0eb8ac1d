/**
 * PatchCore greedy k-centre coreset (`ApproximateGreedyCoresetSampler`), used to reduce the
 * randomly capped training patches to the T-entry memory bank (snarm-method.md §2, "Bank
 * construction" step 3).
 *
 * Algorithm (as PatchCore's `patchcore/sampler.py`, which SNARM's `residual/sampler.py` copies):
 * 1. Project the (N, C) features to `projDim` = 128 dims with a random bias-free linear map
 *    (`torch.nn.Linear(C, 128, bias=False)`); skipped when C already equals `projDim`, as in
 *    PatchCore's `_reduce_features`. See {@link projectionMatrix} for the init.
 * 2. Quantise the projected points to fixed-point i16 codes ({@link quantizeCoresetPoints}), so
 *    that squared distances are exact integers: the GPU and the reference then agree bit for bit
 *    on any hardware (float sums do not: lavapipe's compiler reorders f32 additions, which flipped
 *    the last bit of some distances in a test). Resolution: max |x| / 2047 at 128 dims.
 * 3. Pick `numStarts` = 10 distinct random starting points; every point's initial anchor value is
 *    its **mean** Euclidean distance to them (PatchCore: `torch.mean(cdist(x, starts), -1)`; the
 *    starting points are not added to the coreset).
 * 4. T times: select the point with the largest anchor value (ties → lowest index), then replace
 *    every anchor value by min(anchor, distance to the new centre).
 *
 * Values are tracked as **squared** distances (the mean distance is squared once): argmax and
 * min commute with the monotone square, so the selection is the same as with PatchCore's
 * Euclidean values. One deliberate difference: a selected point's value is set to −1, so a point
 * is never selected twice; PatchCore would re-select index 0 once every point is covered
 * (all anchors 0), here the lowest-index unselected point is taken instead.
 *
 * The iterations run on the GPU ({@link greedyCoresetGpu}): `wgsl/bank/coreset_update.wgsl` updates
 * the N anchors and emits per-invocation arg-max partials, `wgsl/bank/coreset_argmax.wgsl` reduces them
 * to the next centre and writes it to a buffer that the next update dispatch reads, so many
 * iterations are encoded per command buffer and nothing is read back until the end.
 * {@link greedyCoresetReference} is the TypeScript reference (same integers, same tie rule).
 *
 * Memory: the projection (n·128 f32), the codes (n·128 i16) and, on the GPU, a texture of the
 * codes (n·256 bytes: 256 MB at n = 10^6) — the 128 MiB storage-binding limit does not apply.
 * @module
 */
import { checkCoresetArgs, maxCode } from "./coreset_args.ts";
export { maxCode } from "./coreset_args.ts";
import {
  createStorage,
  createUniform,
  fillTemplate,
  getPipeline,
  type Gpu,
  GpuError,
  loadWgsl,
  readBuffer,
  tryGetGpu,
  warnFallback,
  withErrorScope,
} from "../gpu/mod.ts";
import { greedyCoresetCpu } from "./coreset_cpu.ts";
import { bindGroup } from "../gpu/pipeline.ts";
import { envChoice } from "../util/env.ts";

// Seeded PRNG: lib/util/rng.ts (re-exported for the bank's callers).
export { createRng, type Rng } from "../util/rng.ts";
import { createRng, type Rng } from "../util/rng.ts";

/**
 * `k` distinct indices drawn uniformly without replacement from [0, n), in draw order (a partial
 * Fisher–Yates shuffle over a virtual identity array; O(k) memory).
 * @throws {RangeError} when k > n.
 */
export function sampleWithoutReplacement(n: number, k: number, rng: Rng): Int32Array {
  if (k > n) throw new RangeError(`cannot draw ${k} distinct indices from ${n}`);
  const swapped = new Map<number, number>();
  const out = new Int32Array(k);
  for (let i = 0; i < k; i++) {
    const j = i + rng.nextInt(n - i);
    const vj = swapped.get(j) ?? j;
    const vi = swapped.get(i) ?? i;
    swapped.set(j, vi);
    out[i] = vj;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Projection

/**
 * The random bias-free projection weight, shape `(projDim, c)` row-major f32 (the layout of a
 * `torch.nn.Linear(c, projDim, bias=False).weight`). PatchCore uses the torch default init
 * (kaiming-uniform with a = √5), which is uniform(−1/√c, 1/√c); here each weight is
 * (2u − 1)/√c with u = `rng.nextFloat()`, drawn row by row. (The values differ from torch's,
 * which cannot be reproduced without torch's generator; only the distribution matters for the
 * Johnson–Lindenstrauss projection.)
 */
export function projectionMatrix(c: number, projDim: number, rng: Rng): Float32Array {
  const w = new Float32Array(projDim * c);
  const s = 1 / Math.sqrt(c);
  for (let i = 0; i < w.length; i++) w[i] = (2 * rng.nextFloat() - 1) * s;
  return w;
}

/**
 * Project features `(n, c)` row-major f32 with `weight` `(projDim, c)`: y = x·Wᵀ, accumulated in
 * f64 and rounded to f32, giving `(n, projDim)` row-major f32.
 * @throws {RangeError} when the array sizes do not match n, c, projDim.
 */
export function projectFeatures(
  features: Float32Array,
  n: number,
  c: number,
  weight: Float32Array,
  projDim: number,
  onProgress?: (done: number, total: number) => void,
): Float32Array {
  if (features.length < n * c) {
    throw new RangeError(
      `features: expected (${n}, ${c}) = ${n * c} values, got ${features.length}`,
    );
  }
  if (weight.length !== projDim * c) {
    throw new RangeError(
      `projection weight: expected (${projDim}, ${c}), got ${weight.length} values`,
    );
  }
  // Transposed weight (c, projDim) so the inner loop runs over contiguous outputs.
  const wt = new Float64Array(c * projDim);
  for (let o = 0; o < projDim; o++) {
    for (let k = 0; k < c; k++) wt[k * projDim + o] = weight[o * c + k];
  }
  const out = new Float32Array(n * projDim);
  const acc = new Float64Array(projDim);
  const step = Math.max(1, Math.floor(n / 100));
  for (let i = 0; i < n; i++) {
    acc.fill(0);
    const xo = i * c;
    for (let k = 0; k < c; k++) {
      const xk = features[xo + k];
      if (xk === 0) continue;
      const wo = k * projDim;
      for (let o = 0; o < projDim; o++) acc[o] += xk * wt[wo + o];
    }
    out.set(acc, i * projDim);
    if (onProgress && (i + 1) % step === 0) onProgress(i + 1, n);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Shared pieces of the greedy iteration

/** Result of a greedy coreset run. */
export interface CoresetSelection {
  /** Selected point indices in selection order, `(T)` i32; distinct. */
  indices: Int32Array;
  /**
   * `(T)` i32: the anchor value of each point when it was selected (the maximum over unselected
   * points), in squared code units (divide by `scale²` of {@link quantizeCoresetPoints} for squared
   * projected distances). Entry 0 is the squared mean distance to the starting points; entries
   * t ≥ 1 are ≤ the squared coverage radius of the first t centres.
   */
  minDist: Int32Array;
}

/** Fixed-point coreset points: `codes` `(n, d)` row-major i16 = round(x · scale). */
export interface CoresetCodes {
  codes: Int16Array;
  scale: number;
}

/**
 * Quantise coreset points to fixed-point i16 codes, as {@link greedyCoresetGpu} stores them:
 * code = round(x · scale) with scale = maxCode(d) / max |x|. Distances between codes are then exact
 * integers (identical on every GPU and in the reference, in any summation order). The resolution
 * is max |x| / maxCode(d) (max/2047 at d = 128, the precision of f16 near the maximum), far below
 * nearest-neighbour distances, so only exact-tie order can differ from a float computation.
 * @param points `(n, d)` row-major f32; not modified.
 * @throws {RangeError} when a value is NaN or infinite, naming its flat index.
 */
export function quantizeCoresetPoints(points: Float32Array, d: number): CoresetCodes {
  let maxAbs = 0;
  for (let i = 0; i < points.length; i++) {
    const v = Math.abs(points[i]);
    if (!Number.isFinite(v)) {
      throw new RangeError(`coreset: feature value ${points[i]} at flat index ${i} is not finite`);
    }
    if (v > maxAbs) maxAbs = v;
  }
  const scale = maxAbs > 0 ? maxCode(d) / maxAbs : 1;
  const codes = new Int16Array(points.length);
  for (let i = 0; i < points.length; i++) codes[i] = Math.round(points[i] * scale);
  return { codes, scale };
}

/**
 * Initial anchor values `(n)` i32: for each point, round((mean Euclidean distance to the
 * `starts`)²), computed in f64 from the `(n, d)` codes (PatchCore's approximate init, squared).
 */
export function coresetInitDistances(
  codes: Int16Array,
  n: number,
  d: number,
  starts: ArrayLike<number>,
): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let mean = 0;
    for (let s = 0; s < starts.length; s++) {
      mean += Math.sqrt(distanceCodes(codes, d, i, starts[s]));
    }
    mean /= starts.length;
    out[i] = Math.min(2147483647, Math.round(mean * mean));
  }
  return out;
}

/** Exact squared distance Σ (a − b)² between code rows i and j (what bank/coreset_update.wgsl computes). */
function distanceCodes(codes: Int16Array, d: number, i: number, j: number): number {
  const a = i * d, b = j * d;
  let sum = 0;
  for (let k = 0; k < d; k++) {
    const t = codes[a + k] - codes[b + k];
    sum += t * t;
  }
  return sum;
}

/** Progress callback of the greedy iterations: `done` of `total` centres selected. */
export type CoresetProgress = (done: number, total: number) => void;

/**
 * TypeScript reference of the greedy iterations (identical to {@link greedyCoresetGpu}: integer
 * distances, ties to the lowest index). Cost O(T·n·d).
 * @param codes `(n, d)` row-major i16 codes from {@link quantizeCoresetPoints}.
 * @param init `(n)` initial anchors from {@link coresetInitDistances}; not modified.
 * @param t number of centres T (≤ n).
 * @throws {RangeError} on inconsistent sizes or out-of-range codes.
 */
export function greedyCoresetReference(
  codes: Int16Array,
  n: number,
  d: number,
  t: number,
  init: Int32Array,
  onProgress?: CoresetProgress,
): CoresetSelection {
  checkCoresetArgs(codes, n, d, t, init);
  const mind = init.slice();
  const indices = new Int32Array(t);
  const minDist = new Int32Array(t);
  let cur = -1;
  for (let step = 0; step < t; step++) {
    let bv = -1, bi = -1;
    for (let p = 0; p < n; p++) {
      let m = mind[p];
      if (cur >= 0) {
        if (p === cur) m = -1;
        else if (m > 0) {
          const dist = distanceCodes(codes, d, p, cur);
          if (dist < m) m = dist;
        }
        mind[p] = m;
      }
      if (m > bv) {
        bv = m;
        bi = p;
      }
    }
    indices[step] = bi;
    minDist[step] = bv;
    cur = bi;
    if (onProgress && ((step + 1) % 64 === 0 || step + 1 === t)) onProgress(step + 1, t);
  }
  return { indices, minDist };
}

// ---------------------------------------------------------------------------------------------
// GPU

/** Tuning of {@link greedyCoresetGpu}. */
export interface CoresetGpuOptions {
  /** Greedy iterations encoded per command buffer (default 128; no readback in between). */
  stepsPerSubmit?: number;
  /** Points per invocation of the update kernel (default 16). */
  pointsPerInvocation?: number;
  onProgress?: CoresetProgress;
}

const WG = 64;
const RWG = 256;

function centreCode(dp8: number): string {
  const l: string[] = [];
  for (let j = 0; j < dp8; j++) {
    l.push(
      `  let u${j} = textureLoad(pts, vec2<i32>(cx + ${j}, cy), 0);`,
      `  let c${2 * j} = lo4(u${j});`,
      `  let c${2 * j + 1} = hi4(u${j});`,
    );
  }
  return l.join("\n");
}

function distCode(dp8: number): string {
  const l: string[] = [];
  for (let j = 0; j < dp8; j++) {
    l.push(
      `    {`,
      `      let u = textureLoad(pts, vec2<i32>(x + ${j}, y), 0);`,
      `      let e0 = lo4(u) - c${2 * j};`,
      `      let e1 = hi4(u) - c${2 * j + 1};`,
      `      a0 = a0 + e0 * e0;`,
      `      a1 = a1 + e1 * e1;`,
      `    }`,
    );
  }
  return l.join("\n");
}

/**
 * Greedy iterations on the GPU (same contract as {@link greedyCoresetReference}).
 *
 * The i16 codes are uploaded once into an rgba32uint texture (8 dims per texel, ceil(d/8) texels
 * per point, `floor(maxTextureDimension2D / ceil(d/8))` points per row), so no storage binding
 * holds them and the 128 MiB binding limit does not apply; n ≤ maxTextureDimension2D² / ceil(d/8) (4,194,304 at
 * d = 128 with the default 8192 limit). Memory: n·ceil(d/8)·16 bytes of texture (256 MB for 1M
 * points at d = 128) plus ≈ 4.5·n bytes of buffers.
 *
 * Per iteration: one update dispatch over all points (`bank/coreset_update.wgsl`, 16 points per
 * invocation) and one single-workgroup arg-max dispatch (`bank/coreset_argmax.wgsl`) that writes the
 * next centre into a state buffer read by the next update; `stepsPerSubmit` iterations per submit,
 * indices read back once at the end. Loop counts per invocation: 16 (update) and
 * ceil(n/16/256) (arg-max), far below lavapipe's 65535 limit. Speed (lavapipe, 2 shared cores):
 * 21 ms per iteration at n = 200,000, d = 128 (TypeScript reference: 48 ms).
 * @throws {RangeError} on inconsistent sizes or out-of-range codes.
 * @throws {GpuError} on a WebGPU error or when n is too large for the texture.
 */
export async function greedyCoresetGpu(
  gpu: Gpu,
  codes: Int16Array,
  n: number,
  d: number,
  t: number,
  init: Int32Array,
  opts: CoresetGpuOptions = {},
): Promise<CoresetSelection> {
  checkCoresetArgs(codes, n, d, t, init);
  if (t === 0) return { indices: new Int32Array(0), minDist: new Int32Array(0) };
  const dev = gpu.device;
  const dp8 = Math.ceil(d / 8);
  const maxTex = gpu.limits.maxTextureDimension2D;
  const ppr = Math.floor(maxTex / dp8);
  if (ppr < 1) throw new GpuError(`coreset: d=${d} needs ${dp8} texels per point > ${maxTex}`);
  const rows = Math.ceil(n / ppr);
  if (rows > maxTex) {
    throw new GpuError(
      `coreset: ${n} points of ${d} dims exceed one ${maxTex}×${maxTex} texture (max ${
        ppr * maxTex
      }); lower the cap`,
    );
  }
  const ppi = opts.pointsPerInvocation ?? 16;
  const stepsPerSubmit = opts.stepsPerSubmit ?? 128;
  const width = (rows === 1 ? n : ppr) * dp8;
  const numWg = Math.ceil(n / (ppi * WG));
  if (numWg > gpu.limits.maxComputeWorkgroupsPerDimension) {
    throw new GpuError(
      `coreset: ${numWg} workgroups exceed the dispatch limit; raise pointsPerInvocation`,
    );
  }
  const numParts = numWg * WG;

  const [updSrc, argSrc] = await Promise.all([
    loadWgsl("bank/coreset_update.wgsl"),
    loadWgsl("bank/coreset_argmax.wgsl"),
  ]);
  const upd = await getPipeline(
    gpu,
    `coreset_update:dp8=${dp8}:ppr=${ppr}:ppi=${ppi}:wg=${WG}`,
    fillTemplate(updSrc, {
      WG,
      PPI: ppi,
      PPR: ppr,
      DP8: dp8,
      CENTRE: centreCode(dp8),
      DIST: distCode(dp8),
    }),
  );
  const arg = await getPipeline(gpu, `coreset_argmax:rwg=${RWG}`, fillTemplate(argSrc, { RWG }));

  const owned: Array<GPUBuffer | GPUTexture> = [];
  try {
    return await withErrorScope(dev, "greedy coreset", async () => {
      const tex = dev.createTexture({
        label: "coreset points (i16 codes)",
        size: [width, rows],
        format: "rgba32uint",
        usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
      });
      owned.push(tex);
      // Upload in bands of rows (≤ ~16 MB each), zero-padding dims to 8·dp8.
      const rowsPerBand = Math.max(1, Math.floor((16 << 20) / (width * 16)));
      for (let r0 = 0; r0 < rows; r0 += rowsPerBand) {
        const r1 = Math.min(rows, r0 + rowsPerBand);
        const band = new Int16Array((r1 - r0) * width * 8);
        const p0 = r0 * ppr, p1 = Math.min(n, r1 * ppr);
        if (dp8 * 8 === d) band.set(codes.subarray(p0 * d, p1 * d));
        else {
          for (let p = p0; p < p1; p++) {
            band.set(codes.subarray(p * d, p * d + d), (p - p0) * dp8 * 8);
          }
        }
        dev.queue.writeTexture(
          { texture: tex, origin: [0, r0] },
          new Uint32Array(band.buffer),
          { bytesPerRow: width * 16, rowsPerImage: r1 - r0 },
          [width, r1 - r0],
        );
      }
      const mind = createStorage(gpu, new Int32Array(init), "coreset mind");
      const state = createStorage(gpu, new Uint32Array([0, 0xffffffff, 0, 0]), "coreset state");
      const partV = createStorage(gpu, numParts * 4, "coreset part_v");
      const partI = createStorage(gpu, numParts * 4, "coreset part_i");
      const sel = createStorage(gpu, t * 4, "coreset sel");
      const rad = createStorage(gpu, t * 4, "coreset rad");
      const pu = createUniform(gpu, new Uint32Array([n, 0, 0, 0]), "coreset update params");
      const pa = createUniform(gpu, new Uint32Array([numParts, t, 0, 0]), "coreset argmax params");
      owned.push(mind, state, partV, partI, sel, rad, pu, pa);
      const bgU = bindGroup(gpu, upd, [tex.createView(), mind, state, partV, partI, pu]);
      const bgA = bindGroup(gpu, arg, [partV, partI, state, sel, rad, pa]);
      for (let s0 = 0; s0 < t; s0 += stepsPerSubmit) {
        const s1 = Math.min(t, s0 + stepsPerSubmit);
        const enc = dev.createCommandEncoder({ label: "coreset steps" });
        const pass = enc.beginComputePass();
        for (let s = s0; s < s1; s++) {
          pass.setPipeline(upd);
          pass.setBindGroup(0, bgU);
          pass.dispatchWorkgroups(numWg);
          pass.setPipeline(arg);
          pass.setBindGroup(0, bgA);
          pass.dispatchWorkgroups(1);
        }
        pass.end();
        dev.queue.submit([enc.finish()]);
        await dev.queue.onSubmittedWorkDone();
        opts.onProgress?.(s1, t);
      }
      const indices = new Int32Array(await readBuffer(gpu, sel, t * 4));
      const minDist = new Int32Array(await readBuffer(gpu, rad, t * 4));
      return { indices, minDist };
    });
  } finally {
    for (const o of owned) o.destroy();
  }
}

/**
 * Greedy iterations on the shared GPU, or the TypeScript reference after
 * `warnFallback("coreset")` when no adapter exists. Same contract as
 * {@link greedyCoresetReference}.
 */
export async function greedyCoreset(
  codes: Int16Array,
  n: number,
  d: number,
  t: number,
  init: Int32Array,
  opts: CoresetGpuOptions = {},
): Promise<CoresetSelection> {
  const gpu = await tryGetGpu();
  if (!gpu) {
    warnFallback("coreset");
    return greedyCoresetReference(codes, n, d, t, init, opts.onProgress);
  }
  return await greedyCoresetGpu(gpu, codes, n, d, t, init, opts);
}

// ---------------------------------------------------------------------------------------------
// Implementation choice

/**
 * Implementation of the greedy iterations: `"webgpu"` ({@link greedyCoresetGpu}, or the reference
 * after `warnFallback` when no adapter exists), `"cpu"` (`greedyCoresetCpu` in `coreset_cpu.ts`:
 * WebAssembly SIMD with exact pruning) or `"reference"` ({@link greedyCoresetReference}). All
 * three give the identical selection.
 */
export type CoresetImpl = "webgpu" | "cpu" | "reference";

const CORESET_IMPLS: readonly string[] = ["webgpu", "cpu", "reference", "auto"];

/**
 * Resolve a coreset implementation request: `requested`, else the `SNARM_CORESET` environment
 * variable (`webgpu|cpu|reference|auto`), else `"auto"`. `"auto"` is `"webgpu"` on a real GPU and
 * `"cpu"` when the adapter is a CPU (`gpu.info.isCpu`: lavapipe, SwiftShader) or absent.
 * @throws {RangeError} for an unknown name (naming it and where it came from).
 */
export async function resolveCoresetImpl(
  requested?: CoresetImpl | "auto",
): Promise<CoresetImpl> {
  const v = requested ?? envChoice("SNARM_CORESET", CORESET_IMPLS) ?? "auto";
  if (!CORESET_IMPLS.includes(v)) {
    throw new RangeError(
      `coreset: unknown implementation "${v}"; use webgpu, cpu, reference or auto`,
    );
  }
  if (v !== "auto") return v as CoresetImpl;
  const gpu = await tryGetGpu();
  return gpu && !gpu.info.isCpu ? "webgpu" : "cpu";
}

// ---------------------------------------------------------------------------------------------
// The whole sampler

/** Options of {@link approximateGreedyCoreset}. */
export interface ApproximateCoresetOptions extends CoresetGpuOptions {
  /** Seed of the projection weights and starting points (default 0). */
  seed?: number;
  /** Projection dimension (default 128, PatchCore's `dimension_to_project_features_to`). */
  projDim?: number;
  /** Number of random starting points (default 10, PatchCore's `number_of_starting_points`). */
  numStarts?: number;
  /** Use the TypeScript reference even when an adapter exists. */
  reference?: boolean;
  /**
   * Implementation of the greedy iterations (see {@link CoresetImpl}); overrides `reference`.
   * Default: `reference` ? `"reference"` : `"webgpu"` (with the reference as the no-adapter
   * fallback). `buildBank` passes {@link resolveCoresetImpl}'s choice.
   */
  impl?: CoresetImpl;
  /** Called during the projection with (done, total) rows. */
  onProjectProgress?: (done: number, total: number) => void;
}

/**
 * PatchCore `ApproximateGreedyCoresetSampler` on `(n, c)` row-major f32 `features`: seeded
 * projection to `projDim` (skipped when c = projDim), `numStarts` seeded starting points, then
 * `size` greedy iterations (see the module doc). Random draws, in order, from
 * `createRng(seed)`: the `(projDim, c)` weights (only when projecting), then the starting points.
 * @returns the selected row indices (distinct, in selection order) and their anchor values.
 * @throws {RangeError} when size > n or the sizes are inconsistent.
 */
export async function approximateGreedyCoreset(
  features: Float32Array,
  n: number,
  c: number,
  size: number,
  opts: ApproximateCoresetOptions = {},
): Promise<CoresetSelection & { scale: number }> {
  const projDim = opts.projDim ?? 128;
  const rng = createRng(opts.seed ?? 0);
  if (features.length < n * c) {
    throw new RangeError(`coreset: features must be (${n}, ${c}), got ${features.length} values`);
  }
  if (size > n) throw new RangeError(`coreset: cannot select ${size} of ${n} points`);
  let pts = features;
  let d = c;
  if (c !== projDim) {
    pts = projectFeatures(
      features,
      n,
      c,
      projectionMatrix(c, projDim, rng),
      projDim,
      opts.onProjectProgress,
    );
    d = projDim;
  }
  const q = quantizeCoresetPoints(pts.subarray(0, n * d), d);
  const starts = sampleWithoutReplacement(n, Math.min(opts.numStarts ?? 10, n), rng);
  const init = coresetInitDistances(q.codes, n, d, starts);
  const impl = opts.impl ?? (opts.reference ? "reference" : "webgpu");
  const sel = impl === "reference"
    ? greedyCoresetReference(q.codes, n, d, size, init, opts.onProgress)
    : impl === "cpu"
    ? greedyCoresetCpu(q.codes, n, d, size, init, { onProgress: opts.onProgress })
    : await greedyCoreset(q.codes, n, d, size, init, opts);
  return { ...sel, scale: q.scale };
}

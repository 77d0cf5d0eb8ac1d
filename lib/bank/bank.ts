/**
 * The SNARM memory bank (snarm-method.md §2): build it from training patch features (seeded random
 * cap, then PatchCore greedy coreset), save/load it as safetensors with its provenance, and refuse
 * a bank made with another backbone, taps or feature dimension.
 *
 * File format (`saveBank`/`loadBank`): safetensors with tensors `features` F32 `(T, C)`,
 * `image_index` I32 `(T)`, `position` I32 `(T)`, and `__metadata__` holding one string per
 * {@link BankMeta} field (under the field's name; strings as is, everything else JSON-encoded)
 * plus `format` = `"snarm-bank/1"`.
 *
 * Scope (`--unify` in the official code): a unified bank is built from the training images of all
 * categories, a per-category bank from one category's; which features are passed decides it, and
 * {@link bankScopes} lists the banks to build for either choice.
 * @module
 */
import type { FeatureGrid } from "../types.ts";
import {
  parseSafeTensors,
  readSafeTensors,
  requireTensor,
  type SafeTensors,
  SafeTensorsError,
  writeSafeTensors,
} from "../io/safetensors.ts";
import {
  approximateGreedyCoreset,
  type CoresetImpl,
  createRng,
  resolveCoresetImpl,
} from "./coreset.ts";

/**
 * Default bank size T on a CPU adapter: 10,000 entries. The official bank holds T = 10^5
 * (`--k-ratio 100000`, from a 10^6-patch random cap; §2). Bank search costs ∝ T per query patch
 * (2401 patches × T × 512 MACs per image: 12.3 GFLOP at T = 10^4, ~0.25 s per image on lavapipe at
 * ~50 GFLOP/s, 10× that at 10^5), and the coreset costs ∝ cap × T; 10^4 keeps both practical on
 * 2 CPU cores while still covering ~5% of a 200k-patch cap.
 */
export const DEFAULT_BANK_SIZE = 10_000;
/**
 * Default random cap on a CPU adapter: 200,000 candidate patches (≈ 83 images × 2401) before the
 * coreset. The official cap is 10^6 (§2). The greedy coreset costs ∝ cap × T: measured on lavapipe
 * (2 shared cores) 213 s for 200,000 × T = 10,000 at 128 projected dims (21 ms per iteration; the
 * TypeScript reference: 48 ms per iteration), so the official cap would take ≈ 5× longer.
 */
export const DEFAULT_BANK_CAP = 200_000;
/** Official values (§2): T = 10^5 from a random cap of 10^6 patches. */
export const OFFICIAL_BANK_SIZE = 100_000;
/** Official random cap (§2). */
export const OFFICIAL_BANK_CAP = 1_000_000;

/** Layer taps of the backbone (e.g. `[[1,2,3,4],[5,6,7,8]]`, two groups of blocks); any JSON. */
export type BankTaps = ReadonlyArray<number | string | ReadonlyArray<number | string>>;

/** Provenance of a bank, stored in the file's `__metadata__`. */
export interface BankMeta {
  /** Backbone name, e.g. `"dinov2-vitb14-reg4"`. */
  backbone: string;
  /** Layer taps / groups the features were fused from. */
  taps: BankTaps;
  /** Network input size in pixels (e.g. 392 or [392, 392]) = the centre-crop side. */
  inputSize: number | readonly number[];
  /**
   * Side of the square resize before the centre crop (px; spec §11). Absent in older files:
   * the official ratio round(inputSize·448/392).
   */
  resize?: number;
  /** Feature grid [h, w] of every source image (49×49 in the paper, §1). */
  grid: [number, number];
  /** Feature dimension C (512 in the paper). */
  dim: number;
  /** Number of bank entries. */
  T: number;
  /** Seed of the random cap and the coreset. */
  seed: number;
  /** True for one bank shared by all categories (official `--unify`). */
  unified: boolean;
  /** Categories whose training images built the bank. */
  categories: string[];
  /** Id of every source image; `imageIndex` indexes this list. */
  sourceImageIds: string[];
  /** ISO-8601 creation time; only when the builder was given one (files carry no clock). */
  createdAt?: string;
  /** Random cap applied before the coreset. */
  cap: number;
  /** Coreset projection dimension. */
  projDim: number;
  /** Patches seen before the cap. */
  numPatches: number;
  /** Patches left after the cap (coreset candidates). */
  numCandidates: number;
  /** Sampler that reduced the candidates to T (`"approx-greedy-coreset"` or `"all"`). */
  sampler: string;
}

/** A memory bank: T patch features with their source image and grid position. */
export interface Bank {
  /** `(T, C)` row-major f32 features (coreset selection order). */
  features: Float32Array;
  /** `(T)` index into `meta.sourceImageIds` of the image each entry came from. */
  imageIndex: Int32Array;
  /** `(T)` patch index y·w + x within that image's `meta.grid`. */
  position: Int32Array;
  meta: BankMeta;
}

/** Raised for an invalid bank (file or object), a mismatch with the backbone, or a write failure. */
export class BankError extends Error {
  override name = "BankError";
}

/** Progress of {@link buildBank}; `total` is 0 when unknown (streamed images without sourceIds). */
export interface BankProgress {
  stage: "cap" | "project" | "coreset";
  done: number;
  total: number;
}

/** Anything {@link buildBank} and {@link randomCap} accept: arrays, generators, async iterators. */
export type FeatureSource = Iterable<FeatureGrid> | AsyncIterable<FeatureGrid>;

// ---------------------------------------------------------------------------------------------
// Random cap

/** The candidates left by {@link randomCap}, in increasing (image, position) order. */
export interface CappedPatches {
  /** `(N, C)` row-major f32. */
  features: Float32Array;
  /** `(N)` source image index (images counted over the whole stream, from 0). */
  imageIndex: Int32Array;
  /** `(N)` patch index within the image grid. */
  position: Int32Array;
  /** Number of images seen. */
  numImages: number;
  /** Number of patches seen (M). */
  numPatches: number;
  grid: [number, number];
  dim: number;
}

/**
 * Seeded uniform random subset of `cap` patches without replacement (official: 10^6, §2 step 2),
 * by reservoir sampling (Algorithm R) over the patch stream: patch g (0-based, in stream order) is
 * kept outright while g < cap, else it replaces slot j = `rng.nextInt(g + 1)` when j < cap, with
 * `rng = createRng(seed)`. The result depends only on the seed and the patch order, not on how the
 * images are batched into grids; all patches are kept (in order) when M ≤ cap. Memory: cap·C f32.
 * @param features channels-last `(n, h, w, C)` grids, all with the same h, w, C.
 * @throws {BankError} on an empty stream, a grid whose data length is wrong, or grids of
 * different h, w or C (naming the grid).
 */
export async function randomCap(
  features: FeatureSource,
  cap: number,
  seed: number,
  onImages?: (images: number) => void,
): Promise<CappedPatches> {
  if (!Number.isInteger(cap) || cap < 1) {
    throw new BankError(`cap must be a positive integer, got ${cap}`);
  }
  const rng = createRng(seed);
  let h = -1, w = -1, c = -1, hw = 0;
  let rows = 0, capacity = 0;
  let feats = new Float32Array(0);
  let gidx = new Float64Array(0);
  let g = 0, images = 0, gridNo = 0;
  const grow = (need: number) => {
    if (need <= capacity) return;
    const nc = Math.min(cap, Math.max(need, capacity * 2, 4096));
    const f = new Float32Array(nc * c);
    f.set(feats);
    const gi = new Float64Array(nc);
    gi.set(gidx);
    feats = f;
    gidx = gi;
    capacity = nc;
  };
  for await (const grid of features as AsyncIterable<FeatureGrid>) {
    if (h < 0) {
      ({ h, w, c } = grid);
      hw = h * w;
      if (!(hw > 0 && c > 0)) {
        throw new BankError(`feature grid 0 has an empty shape h=${h} w=${w} C=${c}`);
      }
    } else if (grid.h !== h || grid.w !== w || grid.c !== c) {
      throw new BankError(
        `feature grid ${gridNo} has shape (h=${grid.h}, w=${grid.w}, C=${grid.c}), expected (h=${h}, w=${w}, C=${c}) like grid 0`,
      );
    }
    if (grid.data.length !== grid.n * hw * c) {
      throw new BankError(
        `feature grid ${gridNo}: data has ${grid.data.length} values, expected n·h·w·C = ${
          grid.n * hw * c
        }`,
      );
    }
    const total = grid.n * hw;
    for (let r = 0; r < total; r++, g++) {
      let slot: number;
      if (g < cap) {
        slot = rows++;
        grow(rows);
      } else {
        slot = rng.nextInt(g + 1);
        if (slot >= cap) continue;
      }
      feats.set(grid.data.subarray(r * c, r * c + c), slot * c);
      gidx[slot] = images * hw + r;
    }
    images += grid.n;
    gridNo++;
    onImages?.(images);
  }
  if (h < 0 || g === 0) throw new BankError("no training features: the feature stream was empty");
  const order = Array.from({ length: rows }, (_, i) => i).sort((a, b) => gidx[a] - gidx[b]);
  const out = new Float32Array(rows * c);
  const imageIndex = new Int32Array(rows);
  const position = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    const s = order[i];
    out.set(feats.subarray(s * c, s * c + c), i * c);
    imageIndex[i] = Math.floor(gidx[s] / hw);
    position[i] = gidx[s] % hw;
  }
  return {
    features: out,
    imageIndex,
    position,
    numImages: images,
    numPatches: g,
    grid: [h, w],
    dim: c,
  };
}

// ---------------------------------------------------------------------------------------------
// Build

/** Options of {@link buildBank}. */
export interface BuildBankOptions {
  /** Bank size T (default {@link DEFAULT_BANK_SIZE}); all candidates are kept when T ≥ their number. */
  size?: number;
  /** Random cap before the coreset (default {@link DEFAULT_BANK_CAP}; official 10^6). */
  cap?: number;
  /** Seed (default 0): the cap uses `createRng(seed)`, the coreset `seed ^ 0x9e3779b9`. */
  seed?: number;
  /** Coreset projection dimension (default 128). */
  projDim?: number;
  /** Coreset starting points (default 10). */
  numStarts?: number;
  /** Id of every source image, in stream order (default "0", "1", ...). */
  sourceIds?: string[];
  backbone: string;
  taps: BankTaps;
  inputSize: number | readonly number[];
  /** Resize side before the centre crop (recorded in the metadata). */
  resize?: number;
  /** One bank for all categories (default false). */
  unified?: boolean;
  categories?: string[];
  /** Creation time to record in the metadata (default: none, so the bytes are reproducible). */
  createdAt?: string;
  /** Run the coreset with the TypeScript reference instead of the GPU. */
  reference?: boolean;
  /**
   * Coreset implementation (identical selection with each): default `SNARM_CORESET` or `"auto"`
   * = WGSL on a real GPU, the CPU kernel (`coreset_cpu.ts`) on a CPU adapter or none (see
   * `resolveCoresetImpl`). `reference: true` wins.
   */
  coreset?: CoresetImpl | "auto";
  onProgress?: (p: BankProgress) => void;
}

/**
 * Build a memory bank (§2): seeded random cap of the training patches ({@link randomCap}), then
 * PatchCore's approximate greedy coreset (`coreset.ts`) down to `size` entries, in selection
 * order. Unified vs per-category is decided by which images are passed (see {@link bankScopes}).
 * @param features channels-last `(n, h, w, C)` f32 grids of the training images, in order.
 * @throws {BankError} on an empty or inconsistent stream, or when `sourceIds` does not have one id
 * per image.
 */
export async function buildBank(features: FeatureSource, opts: BuildBankOptions): Promise<Bank> {
  const size = opts.size ?? DEFAULT_BANK_SIZE;
  const cap = opts.cap ?? DEFAULT_BANK_CAP;
  const seed = (opts.seed ?? 0) >>> 0;
  const projDim = opts.projDim ?? 128;
  if (!Number.isInteger(size) || size < 1) {
    throw new BankError(`bank size must be a positive integer, got ${size}`);
  }
  const totalImages = opts.sourceIds?.length ?? 0;
  const capped = await randomCap(
    features,
    cap,
    seed,
    (done) => opts.onProgress?.({ stage: "cap", done, total: totalImages }),
  );
  const sourceImageIds = opts.sourceIds
    ? [...opts.sourceIds]
    : Array.from({ length: capped.numImages }, (_, i) => String(i));
  if (sourceImageIds.length !== capped.numImages) {
    throw new BankError(
      `sourceIds has ${sourceImageIds.length} ids but the features hold ${capped.numImages} images`,
    );
  }
  const n = capped.imageIndex.length;
  const c = capped.dim;
  let sel: Int32Array;
  let sampler = "all";
  if (size >= n) {
    sel = Int32Array.from({ length: n }, (_, i) => i);
  } else {
    sampler = "approx-greedy-coreset";
    const r = await approximateGreedyCoreset(capped.features, n, c, size, {
      seed: (seed ^ 0x9e3779b9) >>> 0,
      projDim,
      numStarts: opts.numStarts,
      impl: opts.reference ? "reference" : await resolveCoresetImpl(opts.coreset),
      onProjectProgress: (done, total) => opts.onProgress?.({ stage: "project", done, total }),
      onProgress: (done, total) => opts.onProgress?.({ stage: "coreset", done, total }),
    });
    sel = r.indices;
  }
  const t = sel.length;
  const bankFeatures = new Float32Array(t * c);
  const imageIndex = new Int32Array(t);
  const position = new Int32Array(t);
  for (let i = 0; i < t; i++) {
    const s = sel[i];
    bankFeatures.set(capped.features.subarray(s * c, s * c + c), i * c);
    imageIndex[i] = capped.imageIndex[s];
    position[i] = capped.position[s];
  }
  return {
    features: bankFeatures,
    imageIndex,
    position,
    meta: {
      backbone: opts.backbone,
      taps: opts.taps,
      inputSize: opts.inputSize,
      ...(opts.resize !== undefined ? { resize: opts.resize } : {}),
      grid: capped.grid,
      dim: c,
      T: t,
      seed,
      unified: opts.unified ?? false,
      categories: opts.categories ?? [],
      sourceImageIds,
      ...(opts.createdAt !== undefined ? { createdAt: opts.createdAt } : {}),
      cap,
      projDim,
      numPatches: capped.numPatches,
      numCandidates: n,
      sampler,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Scope

/** One bank to build: its name and the categories whose training images go into it. */
export interface BankScope {
  /** `"unified"` or the category name. */
  name: string;
  categories: string[];
  unified: boolean;
}

/**
 * The banks to build for `categories`: one unified bank from all of them (official `--unify`,
 * the README configuration, §2 "Scope"), or one bank per category.
 */
export function bankScopes(categories: readonly string[], unified: boolean): BankScope[] {
  if (unified) return [{ name: "unified", categories: [...categories], unified: true }];
  return categories.map((cat) => ({ name: cat, categories: [cat], unified: false }));
}

// ---------------------------------------------------------------------------------------------
// Save / load

const FORMAT = "snarm-bank/1";
const STRING_KEYS = new Set(["backbone", "createdAt", "sampler"]);
const META_KEYS: Array<keyof BankMeta> = [
  "backbone",
  "taps",
  "inputSize",
  "grid",
  "dim",
  "T",
  "seed",
  "unified",
  "categories",
  "sourceImageIds",
  "cap",
  "projDim",
  "numPatches",
  "numCandidates",
  "sampler",
];

function checkBank(bank: Bank, what: string): void {
  const { T, dim, grid, sourceImageIds } = bank.meta;
  if (bank.features.length !== T * dim) {
    throw new BankError(
      `${what}: features has ${bank.features.length} values, expected T·dim = ${T}·${dim}`,
    );
  }
  if (bank.imageIndex.length !== T) {
    throw new BankError(
      `${what}: image_index has ${bank.imageIndex.length} entries, expected T = ${T}`,
    );
  }
  if (bank.position.length !== T) {
    throw new BankError(`${what}: position has ${bank.position.length} entries, expected T = ${T}`);
  }
  const hw = grid[0] * grid[1];
  for (let i = 0; i < T; i++) {
    if (!(bank.imageIndex[i] >= 0 && bank.imageIndex[i] < sourceImageIds.length)) {
      throw new BankError(
        `${what}: image_index[${i}] = ${
          bank.imageIndex[i]
        } is outside [0, ${sourceImageIds.length})`,
      );
    }
    if (!(bank.position[i] >= 0 && bank.position[i] < hw)) {
      throw new BankError(`${what}: position[${i}] = ${bank.position[i]} is outside [0, ${hw})`);
    }
  }
}

/**
 * Write `bank` to `path` as safetensors, atomically (temp file + rename in the same folder: an
 * existing file is replaced only by a complete one, and no temp file is left on failure).
 * @throws {BankError} naming the path when the bank is inconsistent or the write fails.
 */
export async function saveBank(path: string, bank: Bank): Promise<void> {
  checkBank(bank, `bank ${path}`);
  const metadata: Record<string, string> = { format: FORMAT };
  for (const k of META_KEYS) {
    const v = bank.meta[k];
    metadata[k] = STRING_KEYS.has(k) ? String(v) : JSON.stringify(v);
  }
  if (bank.meta.resize !== undefined) metadata.resize = JSON.stringify(bank.meta.resize);
  // Written only when the caller set it: no clock in the file, so the same inputs and seed give
  // the same bytes.
  if (bank.meta.createdAt !== undefined) metadata.createdAt = bank.meta.createdAt;
  const { T, dim } = bank.meta;
  try {
    await writeSafeTensors(
      path,
      {
        features: { dtype: "F32", shape: [T, dim], data: bank.features },
        image_index: { dtype: "I32", shape: [T], data: bank.imageIndex },
        position: { dtype: "I32", shape: [T], data: bank.position },
      },
      metadata,
      { fault: "bank-write" },
    );
  } catch (e) {
    throw new BankError(`cannot write bank ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** What the current run expects of a bank (checked by {@link loadBank}). */
export interface BankExpectation {
  backbone: string;
  taps: BankTaps;
  dim: number;
  /** Backbone input size; checked when given (patch features change with it). */
  inputSize?: number | readonly number[];
  /** Resize side before the crop; checked when given together with `inputSize`. */
  resize?: number;
}

function parseMeta(st: SafeTensors, path: string): BankMeta {
  const md = st.metadata;
  if (md.format !== FORMAT) {
    throw new BankError(
      `bank ${path}: not a snarm bank (metadata "format" is ${
        JSON.stringify(md.format)
      }, expected "${FORMAT}")`,
    );
  }
  const out: Record<string, unknown> = {};
  for (const k of META_KEYS) {
    const raw = md[k];
    if (typeof raw !== "string") {
      throw new BankError(`bank ${path}: metadata key "${k}" is missing`);
    }
    if (STRING_KEYS.has(k)) out[k] = raw;
    else {
      try {
        out[k] = JSON.parse(raw);
      } catch {
        throw new BankError(
          `bank ${path}: metadata key "${k}" is not valid JSON: ${raw.slice(0, 80)}`,
        );
      }
    }
  }
  if (md.createdAt !== undefined) out.createdAt = md.createdAt;
  if (md.resize !== undefined) {
    const r = Number(md.resize);
    if (!Number.isInteger(r) || r <= 0) {
      throw new BankError(
        `bank ${path}: metadata key "resize" = ${md.resize.slice(0, 80)} is not a positive integer`,
      );
    }
    out.resize = r;
  }
  const m = out as unknown as BankMeta;
  const isInt = (x: unknown) => Number.isInteger(x) && (x as number) >= 0;
  const bad = (k: string, want: string) =>
    new BankError(`bank ${path}: metadata key "${k}" = ${md[k].slice(0, 80)} is not ${want}`);
  for (const k of ["dim", "T", "seed", "cap", "projDim", "numPatches", "numCandidates"] as const) {
    if (!isInt(m[k])) throw bad(k, "a non-negative integer");
  }
  if (!Array.isArray(m.grid) || m.grid.length !== 2 || !m.grid.every(isInt)) {
    throw bad("grid", "[h, w]");
  }
  if (!Array.isArray(m.taps)) throw bad("taps", "an array");
  if (typeof m.unified !== "boolean") throw bad("unified", "true or false");
  for (const k of ["categories", "sourceImageIds"] as const) {
    if (!Array.isArray(m[k]) || !m[k].every((x) => typeof x === "string")) {
      throw bad(k, "a list of strings");
    }
  }
  return m;
}

/**
 * Read and validate a bank written by {@link saveBank}. With `expect`, refuse a bank built with
 * another backbone, taps or dim, naming both.
 * @throws {BankError} naming the path: unreadable, truncated or corrupt file; missing tensor or
 * tensor of the wrong dtype/shape (named); missing or invalid metadata key (named); a non-finite
 * feature (row and column named); out-of-range image_index/position; mismatch with `expect`.
 */
export async function loadBank(path: string, expect?: BankExpectation): Promise<Bank> {
  let st: SafeTensors;
  try {
    st = await readSafeTensors(path);
  } catch (e) {
    throw new BankError(`cannot load bank ${path}: ${(e as Error).message}`, { cause: e });
  }
  return bankFromSafeTensors(st, path, expect);
}

/**
 * A bank from the bytes of a file written by {@link saveBank} (browsers, or any source of bytes);
 * `what` names it in errors. Same checks as {@link loadBank}.
 * @throws {BankError} as {@link loadBank}.
 */
export function bankFromBytes(bytes: Uint8Array, what: string, expect?: BankExpectation): Bank {
  let st: SafeTensors;
  try {
    st = parseSafeTensors(bytes, what);
  } catch (e) {
    throw new BankError(`cannot load bank ${what}: ${(e as Error).message}`, { cause: e });
  }
  return bankFromSafeTensors(st, what, expect);
}

function bankFromSafeTensors(st: SafeTensors, path: string, expect?: BankExpectation): Bank {
  const meta = parseMeta(st, path);
  let features: Float32Array, imageIndex: Int32Array, position: Int32Array;
  try {
    const what = `bank ${path}`;
    features = requireTensor(st, "features", "F32", [meta.T, meta.dim], what).data as Float32Array;
    imageIndex = requireTensor(st, "image_index", "I32", [meta.T], what).data as Int32Array;
    position = requireTensor(st, "position", "I32", [meta.T], what).data as Int32Array;
  } catch (e) {
    if (e instanceof SafeTensorsError) throw new BankError(e.message, { cause: e });
    throw e;
  }
  for (let i = 0; i < features.length; i++) {
    const v = features[i];
    if (!Number.isFinite(v)) {
      throw new BankError(
        `bank ${path}: tensor features has a non-finite value (${v}) at row ${
          Math.floor(i / meta.dim)
        }, column ${i % meta.dim}; expected finite f32 features (rebuild the bank)`,
      );
    }
  }
  const bank: Bank = { features, imageIndex, position, meta };
  checkBank(bank, `bank ${path}`);
  if (expect) {
    const same = meta.backbone === expect.backbone &&
      JSON.stringify(meta.taps) === JSON.stringify(expect.taps) && meta.dim === expect.dim;
    if (!same) {
      throw new BankError(
        `bank ${path} was built with backbone "${meta.backbone}" taps ${
          JSON.stringify(meta.taps)
        } dim ${meta.dim}, ` +
          `but the current backbone is "${expect.backbone}" taps ${
            JSON.stringify(expect.taps)
          } dim ${expect.dim}`,
      );
    }
    const norm = (v: number | readonly number[]) =>
      JSON.stringify(typeof v === "number" ? [v, v] : v);
    if (expect.inputSize !== undefined && norm(meta.inputSize) !== norm(expect.inputSize)) {
      throw new BankError(
        `bank ${path} was built at input size ${JSON.stringify(meta.inputSize)}, but the current ` +
          `input size is ${JSON.stringify(expect.inputSize)} (use the same \`imageSize\`)`,
      );
    }
    if (expect.resize !== undefined && typeof meta.inputSize === "number") {
      const built = meta.resize ?? Math.round((meta.inputSize * 448) / 392);
      if (built !== expect.resize) {
        throw new BankError(
          `bank ${path} was built with geometry resize ${built} → crop ${meta.inputSize}, but ` +
            `the current geometry is resize ${expect.resize} → crop ${
              JSON.stringify(expect.inputSize)
            } (use the same \`imageSize\` and \`resize\`; \`resize\` = \`imageSize\` is no crop)`,
        );
      }
    }
  }
  return bank;
}

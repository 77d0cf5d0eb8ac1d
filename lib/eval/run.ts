/**
 * The main job (`deno task eval`): dataset → backbone features → memory bank (built on the fly)
 * → exact top-k bank search on WebGPU → bank-only anomaly maps → the seven metrics per category.
 * @module
 */
import {
  type DatasetSplit,
  type ImageRecord,
  listCategories,
  loadSample,
  loadSplit,
  type Sample,
} from "../data/mod.ts";
import { DatasetError, type DatasetOptions } from "../data/dataset.ts";
import {
  type Backbone,
  type BackboneDescription,
  loadRunBackbone,
  type RunFeatureOptions,
} from "../backbone/mod.ts";
import { type Bank, type BankScope, bankScopes, loadBank, saveBank } from "../bank/bank.ts";
import { buildBankWithProgress } from "../bank/progress.ts";
import { type BankIndex, createBankIndex } from "../bank/search.ts";
import { type Head, loadHead } from "../model/mod.ts";
import { computeMetrics, type Metrics } from "../metrics/mod.ts";
import { METRIC_KEYS } from "../metrics/compute.ts";
import { tryGetGpu } from "../gpu/mod.ts";
import { hitFault } from "../util/fault.ts";
import { PRESETS } from "../backbone/presets.ts";
import { checkEvalMemory } from "./memory.ts";
import { runGeometry } from "../data/preprocess.ts";
import { noProgress, type Progress, startProgress } from "../util/progress.ts";
import { defaultCacheDir, findCachedFit, fitHead, type FitSettings } from "./fit.ts";
import { headBlend, type MapBlend } from "./blend.ts";
import { checkFeaturesFinite, scoreFeatures } from "./score.ts";
export { checkFeaturesFinite } from "./score.ts";
import { readSafeTensors } from "../io/safetensors.ts";
import { OptionError } from "../util/errors.ts";
import { headGeometry } from "../data/preprocess.ts";
export { headGeometry };

/** Options of {@link runEval}. Every field has the `deno task eval` default. */
export interface EvalOptions extends RunFeatureOptions {
  /** Dataset root in MVTec AD layout (or VisA 1cls CSV layout). */
  data: string;
  /**
   * `"bank"` (default): bank-only scoring, the inter-residual norm. `"snarm"`: the SNARM head
   * (`head` weights) on X = [r ‖ f] (spec §4–7).
   */
  method?: "bank" | "snarm";
  /**
   * SNARM head weights (official-format safetensors) for `method: "snarm"`. Without it the head
   * is fitted on the training images of the evaluated categories ({@link fit}).
   */
  head?: string;
  /**
   * With `method: "snarm"` and no `head` on a machine without a WebGPU adapter (where no head can
   * be fitted) and no cached fit: throw instead of scoring bank-only with a warning.
   */
  requireHead?: boolean;
  /**
   * Fit settings for `method: "snarm"` without `head` (lib/eval/fit.ts; one head per bank scope,
   * cached under `cacheDir`).
   */
  fit?: FitSettings;
  /** Cache root of fitted heads (default lib/eval/fit.ts `defaultCacheDir()`). */
  cacheDir?: string;
  /** Refit even when a cached fit exists. */
  refit?: boolean;
  /**
   * Apply a head's stored head/bank map blend (`snarm_blend`, lib/eval/blend.ts; default true).
   * false: the head's own map (the official SNARM output).
   */
  blend?: boolean;
  /** Dataset layout options (Folder spec, MVTec 3D-AD validation use; lib/data/dataset.ts). */
  dataset?: DatasetOptions;
  /**
   * Evaluate only the `index`-th of `count` disjoint parts of the test images (all categories
   * together, contiguous in category then file order, balanced by image count: global image j
   * belongs to part ⌊j·count/total⌋). Metrics are not computed (NaN): `deno task merge` computes
   * them from the parts ({@link shardOf}).
   */
  shard?: { index: number; count: number };
  /** Build (and save) the banks and fit the heads, then stop before scoring. */
  prepareOnly?: boolean;
  /** Categories to evaluate (default: all found under `data`). */
  categories?: string[];
  /** Bank size T (default 10 000; official 10^5, spec §2). */
  bankSize?: number;
  /** Random cap before the coreset (default 200 000; official 10^6). */
  bankCap?: number;
  /** Centre-crop size = backbone input size in px (default 392; resize = round(size·448/392)). */
  imageSize?: number;
  /**
   * Side of the square resize before the centre crop (default round(imageSize·448/392), the
   * official 448 → 392, spec §11). `resize = imageSize`: no crop, the whole image is used.
   */
  resize?: number;
  /** Seed of the random cap and the coreset (default 0). */
  seed?: number;
  /** One bank for all categories (official `--unify`, default) or one per category. */
  unified?: boolean;
  /** Neighbours k (default 3, official `--topk`). */
  topk?: number;
  /** Load the bank from this safetensors file instead of building it. */
  loadBankPath?: string;
  /**
   * Save each built bank here (safetensors, atomic). With several banks (per-category) the scope
   * name is inserted before the extension: `bank.safetensors` → `bank.<category>.safetensors`.
   */
  saveBankPath?: string;
  /** Print progress bars (default true). */
  progress?: boolean;
  /** Called with each category's maps after scoring (used by the CLI to write PNGs). */
  onCategory?: (c: CategoryResult) => Promise<void> | void;
}

/** Everything computed for one category. */
export interface CategoryResult {
  category: string;
  metrics: Metrics;
  /** Mask files per detected convention (`lib/data/preprocess.ts` MaskConvention). */
  maskConventions: Record<string, number>;
  /** Mask files of defect images that are empty after thresholding and geometry. */
  emptyMasks: string[];
  /** True when the category has ground-truth masks (pixel metrics defined). */
  hasMasks: boolean;
  /** Test image ids (`test/<type>/<stem>`) in map order. */
  ids: string[];
  /** Test image file paths in map order. */
  paths: string[];
  labels: Uint8Array;
  defectTypes: string[];
  imageScores: Float32Array;
  /** `(N, S, S)` smoothed anomaly maps, S = image size. */
  maps: Float32Array;
  /** `(N, S, S)` ground-truth masks (zeros where none). */
  masks: Uint8Array;
  /** `(N, S, S, 3)` preprocessed RGB crops (for overlays). */
  rgb: Uint8Array;
  size: number;
  seconds: { embedTest: number; search: number; maps: number };
}

/** The result of {@link runEval}. */
export interface EvalResult {
  config: Record<string, unknown>;
  categories: CategoryResult[];
  banks: Array<{ name: string; T: number; seconds: number; meta: Bank["meta"] }>;
  /** Per bank scope: the head used (fitted or given) and the fit's record. */
  heads: Array<
    {
      scope: string;
      path: string;
      fitted: boolean;
      cached: boolean;
      seconds: number;
      /**
       * The head/bank map blend used (lib/eval/blend.ts): the map at λ, the image score from the
       * λ_img blend; null: the head's map and score alone.
       */
      blend: MapBlend | null;
      fit: Record<string, unknown> | null;
    }
  >;
  adapter: string;
  seconds: number;
  /** For a sharded run: the part and every category's total number of test images. */
  shard?: { index: number; count: number; totals: Record<string, number> };
}

/** Build the dataset splits up front so a wrong root or an empty category fails before any work. */
function resolveSplits(opts: EvalOptions): DatasetSplit[] {
  const cats = opts.categories?.length
    ? [...new Set(opts.categories)]
    : listCategories(opts.data, opts.dataset);
  if (!cats.length) {
    throw new DatasetError(`${opts.data}: no category found (expected <category>/train/good)`);
  }
  return cats.map((c) => {
    const s = loadSplit(opts.data, c, opts.dataset);
    if (!s.train.length) throw new DatasetError(`${opts.data}/${c}/train/good: no training image`);
    if (!s.test.length) {
      throw new DatasetError(
        `${opts.data}/${c}/test: no test image; expected test/<type>/*.png|jpg (test/good and defect types)`,
      );
    }
    return s;
  });
}

/** Embed one sample, its features checked ({@link checkFeaturesFinite}). */
async function embedSample(bb: Backbone, s: Sample) {
  const side = Math.sqrt(s.image.length / 3);
  const f = await bb.embed(s.image, [1, 3, side, side]);
  checkFeaturesFinite(f, s.record.path);
  return f;
}

/** What the stages of one run share: its options, geometry, backbone and scoring method. */
interface RunContext {
  opts: EvalOptions;
  /** Crop side (px), the resize before it, the feature grid side. */
  size: number;
  resize: number;
  grid: number;
  geometry: { resize: number; crop: number };
  /** Bank neighbours of the inter-residual (spec §3), the cap/coreset seed. */
  k: number;
  seed: number;
  show: boolean;
  bb: Backbone;
  desc: BackboneDescription;
  method: "bank" | "snarm";
}

/**
 * Run the evaluation, stage by stage (spec §1–9): the data (the categories' splits; a shard's
 * part of their test images), the features (the backbone at the run's geometry), then per bank
 * scope (one unified bank, or one per category): the bank (loaded, fitted together with the head,
 * or built as a coreset of the training patches), the head (fitted on the scope's training
 * images, or given; none for bank-only), and the scoring of each category (bank search →
 * residuals → head → maps → metrics, lib/eval/score.ts).
 * @throws {DatasetError} / `ImageError` naming the path for a wrong root, an empty category, a
 *   corrupt image, a missing or mis-sized mask; `BankError` for an incompatible bank file.
 */
export async function runEval(opts: EvalOptions): Promise<EvalResult> {
  const t0 = performance.now();
  const { size, grid, geometry } = runGeometry(opts.imageSize, opts.resize);
  const unified = opts.unified ?? true;
  // ---- the data
  const allSplits = resolveSplits(opts);
  const shardTotals = Object.fromEntries(allSplits.map((s) => [s.category, s.test.length]));
  const splits = opts.shard ? shardSplits(allSplits, opts.shard) : allSplits;
  if (opts.dataset?.validationAsTrain && !allSplits.some((s) => s.layout === "mvtec3d")) {
    console.warn(
      "snarm: warning: `validationAsTrain` applies to MVTec 3D-AD data only; ignored for " +
        `this ${allSplits[0].layout} dataset`,
    );
  }
  // Before any work: refuse a run that cannot fit in memory, warn about a large one.
  const trainCounts = splits.map((s) => s.train.length);
  checkEvalMemory({
    trainImages: unified ? trainCounts.reduce((a, b) => a + b, 0) : Math.max(...trainCounts),
    testImagesMax: Math.max(...splits.map((s) => s.test.length)),
    imageSize: size,
    grid,
    featureDim: opts.featureDim ?? PRESETS[opts.backbone ?? "mobilenetv2"]?.targetDim ?? 512,
    bankSize: opts.bankSize ?? 10_000,
    bankCap: opts.bankCap ?? 200_000,
    fitImages: (opts.method ?? "bank") === "snarm" && !opts.head
      ? splits.reduce((a, s) => a + Math.min(s.train.length, 50), 0)
      : 0,
  });
  // ---- the features
  const gpu = await tryGetGpu();
  const bb = await loadRunBackbone(opts, size, grid);
  const method = opts.method ?? "bank";
  if (method !== "bank" && method !== "snarm") {
    throw new OptionError("method", `must be "bank" or "snarm", got "${method}"`);
  }
  const c: RunContext = {
    opts,
    size,
    resize: geometry.resize,
    grid,
    geometry,
    k: opts.topk ?? 3,
    seed: opts.seed ?? 0,
    show: opts.progress ?? true,
    bb,
    desc: bb.describe(),
    method,
  };
  const scopes = bankScopes(splits.map((s) => s.category), unified);
  if (method === "snarm" && !opts.head && !gpu) c.method = await methodWithoutAdapter(c, scopes);
  const config = runConfig(c, splits, unified);
  const results: CategoryResult[] = [];
  const banks: EvalResult["banks"] = [];
  const heads: EvalResult["heads"] = [];
  try {
    for (const scope of scopes) {
      const scopeSplits = splits.filter((s) => scope.categories.includes(s.category));
      const tb = performance.now();
      // ---- the bank and the head
      const loaded = opts.loadBankPath ? await loadScopeBank(c, scope) : null;
      const { head, bank: fitBank } = await scopeHead(c, scope, loaded, heads);
      const bank = fitBank ?? loaded ?? await buildScopeBank(c, scope, scopeSplits);
      if (opts.saveBankPath && !opts.loadBankPath) {
        await saveBank(scopePath(opts.saveBankPath, scope), bank);
      }
      banks.push({
        name: scope.name,
        T: bank.meta.T,
        seconds: (performance.now() - tb) / 1000,
        meta: bank.meta,
      });
      if (opts.prepareOnly) continue;
      // ---- scoring: bank search → residuals → head → maps → metrics, per category
      const index: BankIndex = await createBankIndex(gpu, bank.features, bank.meta.dim);
      try {
        for (const split of scopeSplits) {
          if (opts.shard && !split.test.length) continue; // none of this part's images
          const r = await scoreCategory(bb, index, split, geometry, c.k, c.show, head, !opts.shard);
          results.push(r);
          await opts.onCategory?.(r);
        }
      } finally {
        index.destroy();
      }
    }
  } finally {
    await bb.release();
  }
  // Record the bank sizes actually used (a loaded bank, or a cap below T, changes them).
  config.bankSize = banks.length === 1 ? banks[0].T : banks.map((b) => b.T);
  return {
    config,
    categories: results,
    banks,
    heads,
    adapter: gpu ? gpu.info.description : "none (CPU engines / TypeScript reference)",
    seconds: (performance.now() - t0) / 1000,
    ...(opts.shard ? { shard: { ...opts.shard, totals: shardTotals } } : {}),
  };
}

/** The run's settings as results.json records them (`config`). */
function runConfig(
  c: RunContext,
  splits: DatasetSplit[],
  unified: boolean,
): Record<string, unknown> {
  const { opts, desc, size, resize, grid, k, seed, method } = c;
  return {
    method,
    head: opts.head ?? null,
    data: opts.data,
    categories: splits.map((s) => s.category),
    backbone: desc.backbone,
    taps: desc.taps,
    featureDim: desc.featureDim,
    imageSize: size,
    resize,
    crop: size,
    grid,
    bankSize: opts.bankSize ?? 10_000,
    bankCap: opts.bankCap ?? 200_000,
    unified,
    topk: k,
    seed,
    sigma: 4,
    scoring: method === "bank"
      ? "inter-residual L2 norm → bilinear (align_corners) → Gaussian σ=4 → max of 16×16 avg pool, stride 2"
      : "SNARM head on [r ‖ f]: mean of sigmoid(bilinear(logits)) → Gaussian σ=4" +
        (opts.blend === false
          ? ""
          : " (blended with the bank map by the head's validation-chosen λ, if it has one)") +
        " → max of 16×16 avg pool, stride 2 (of the λ_img blend, if the head has one)",
    blend: method === "snarm" && opts.blend !== false,
    dataset: opts.dataset?.folder || opts.dataset?.validationAsTrain
      ? { layout: splits[0].layout, ...opts.dataset }
      : null,
    loadBank: opts.loadBankPath ?? null,
    fit: method === "snarm" && !opts.head ? opts.fit ?? {} : null,
  };
}

/** Load a head file and check it fits the features, geometry and categories. */
async function loadRunHead(
  c: RunContext,
  path: string,
  categories: string[],
  fitted: boolean,
): Promise<{ head: Head; blend: MapBlend | null }> {
  const { opts, desc, size, resize } = c;
  const h = await loadHead(path);
  if (h.config.in_chans !== 2 * desc.featureDim) {
    throw new Error(
      `head ${path} expects in_chans ${h.config.in_chans} = 2 × feature dim, but backbone ` +
        `"${desc.backbone}" gives ${desc.featureDim}-d features (in_chans ${2 * desc.featureDim})`,
    );
  }
  const meta = (await readSafeTensors(path)).metadata;
  const blend = opts.blend !== false ? headBlend(meta) : null;
  if (!fitted) {
    const geo = headGeometry(meta);
    if (geo && (geo.crop !== size || geo.resize !== resize)) {
      throw new Error(
        `head ${path} was fitted with geometry resize ${geo.resize} → crop ${geo.crop}, but ` +
          `this run uses resize ${resize} → crop ${size}; pass the same \`imageSize\` / \`resize\``,
      );
    }
    const fittedOn: string[] | null = meta.categories ? JSON.parse(meta.categories) : null;
    const foreign = fittedOn ? categories.filter((cat) => !fittedOn.includes(cat)) : categories;
    if (foreign.length) {
      console.warn(
        `snarm: warning: head ${path} was ${
          fittedOn ? `fitted on [${fittedOn}]` : "not fitted on recorded categories"
        }, not on [${foreign}]: it scores data it was not fitted to`,
      );
    }
  }
  return { head: h, blend };
}

/** A bank scope's bank from `loadBankPath`, checked against the backbone and geometry. */
async function loadScopeBank(c: RunContext, scope: BankScope, warn = true): Promise<Bank> {
  const { opts, desc, size, resize } = c;
  const path = scopePath(opts.loadBankPath!, scope);
  const loaded = await loadBank(path, {
    backbone: desc.backbone,
    taps: desc.taps,
    dim: desc.featureDim,
    inputSize: size,
    resize,
  });
  const foreign = scope.categories.filter((cat) => !loaded.meta.categories.includes(cat));
  if (warn && foreign.length) {
    console.warn(
      `snarm: bank ${path} was built from categories [${loaded.meta.categories}], not from ` +
        `[${foreign}]: scores use other categories' normal patches`,
    );
  }
  return loaded;
}

/** The fit of a bank scope's head ({@link fitHead}'s options): the run's settings, its categories. */
function scopeFit(c: RunContext, scope: BankScope, loaded: Bank | null) {
  const { opts, size, resize, seed, show, desc } = c;
  return {
    ...opts.fit,
    data: opts.data,
    categories: scope.categories,
    dataset: opts.dataset,
    backbone: opts.backbone,
    taps: opts.taps,
    inputName: opts.inputName,
    model: opts.model,
    backboneEngine: opts.backboneEngine,
    featureDim: opts.featureDim,
    imageSize: size,
    resize,
    bankSize: opts.bankSize,
    bankCap: opts.bankCap,
    seed,
    bank: loaded ?? undefined,
    cacheDir: opts.cacheDir,
    refit: opts.refit,
    progress: show,
    modelSha256: desc.modelSha256,
  };
}

/**
 * Without a WebGPU adapter a head cannot be fitted (training runs on WebGPU), but a cached fit
 * scores on the CPU engines: SNARM when every bank scope's fit is in the cache, else bank-only
 * scoring for the whole run with a warning (an Error with `opts.requireHead`).
 * @returns the method the run scores with.
 */
async function methodWithoutAdapter(
  c: RunContext,
  scopes: BankScope[],
): Promise<"bank" | "snarm"> {
  if (c.opts.refit) {
    throw new OptionError(
      "refit",
      "needs a WebGPU adapter (a fit trains on WebGPU) and none was found",
    );
  }
  const missing: string[] = [];
  for (const scope of scopes) {
    const loaded = c.opts.loadBankPath ? await loadScopeBank(c, scope, false) : null;
    if (!(await findCachedFit(scopeFit(c, scope, loaded)))) missing.push(...scope.categories);
  }
  if (!missing.length) return "snarm";
  const why = `fitting the SNARM head needs a WebGPU adapter and none was found, and the fit ` +
    `cache (${c.opts.cacheDir ?? defaultCacheDir()}) holds no fit of these settings for ` +
    `[${missing}] (on a machine without a GPU: apt-get install -y mesa-vulkan-drivers ` +
    `libvulkan1; or fit on a machine with an adapter and share the cache folder)`;
  if (c.opts.requireHead) {
    throw new OptionError("method", `"snarm" without a \`head\`: ${why}; or pass a \`head\``);
  }
  console.warn(`snarm: bank-only scoring: ${why}; pass a \`head\` for SNARM`);
  return "bank";
}

/**
 * The head of a bank scope: fitted on its categories' training images (with its own bank, which
 * then replaces a built one; reused from the fit cache), or the given `head`; none for bank-only.
 * Records it in `heads`.
 */
async function scopeHead(
  c: RunContext,
  scope: BankScope,
  loaded: Bank | null,
  heads: EvalResult["heads"],
): Promise<{ head: { head: Head; blend: MapBlend | null } | null; bank: Bank | null }> {
  const { opts, method, show } = c;
  let head: { head: Head; blend: MapBlend | null } | null = null;
  let bank: Bank | null = null;
  if (method === "snarm" && !opts.head) {
    const fit = await fitHead(scopeFit(c, scope, loaded));
    if (show) {
      console.log(
        fit.cached
          ? `snarm: using the cached fit ${fit.dir} (fitted on [${scope.categories}])`
          : `snarm: fitted the head in ${fit.seconds.toFixed(0)} s → ${fit.dir}`,
      );
    }
    bank = fit.bank;
    head = await loadRunHead(c, fit.headPath, scope.categories, true);
    heads.push({
      scope: scope.name,
      path: fit.headPath,
      fitted: true,
      cached: fit.cached,
      seconds: fit.seconds,
      blend: head.blend,
      fit: fit.record,
    });
  } else if (method === "snarm") {
    head = await loadRunHead(c, opts.head!, scope.categories, false);
    heads.push({
      scope: scope.name,
      path: opts.head!,
      fitted: false,
      cached: false,
      seconds: 0,
      blend: head.blend,
      fit: null,
    });
  }
  return { head, bank };
}

/** A bank scope's bank built from its training images: random cap, then the coreset (spec §2). */
async function buildScopeBank(
  c: RunContext,
  scope: BankScope,
  scopeSplits: DatasetSplit[],
): Promise<Bank> {
  const { opts, bb, desc, geometry, size, resize, seed, show } = c;
  const train = scopeSplits.flatMap((s) => s.train);
  const pe = show ? startProgress(`embed train (${scope.name})`, train.length) : noProgress;
  const bank = await buildBankWithProgress(embedRecords(bb, train, geometry, pe), {
    size: opts.bankSize,
    cap: opts.bankCap,
    seed,
    sourceIds: train.map((r) => `${r.category}/${r.id}`),
    backbone: desc.backbone,
    taps: desc.taps,
    inputSize: size,
    resize,
    unified: scope.unified,
    categories: scope.categories,
  }, { name: scope.name, show, before: pe });
  const asked = opts.bankSize ?? 10_000;
  if (bank.meta.T < asked) {
    console.warn(
      `snarm: \`bankSize\` ${asked} exceeds the ${bank.meta.numCandidates} patches of the ` +
        `training images (${scope.name}): the bank keeps all of them (T = ${bank.meta.T})`,
    );
  }
  return bank;
}

/**
 * Which part of `count` global test image `j` of `total` belongs to: ⌊j·count/total⌋ (contiguous,
 * balanced by image count: part sizes differ by at most one).
 */
export function shardOf(j: number, total: number, count: number): number {
  return Math.floor((j * count) / total);
}

/** The splits restricted to part `index` of `count` ({@link shardOf}, all categories together). */
export function shardSplits(
  splits: DatasetSplit[],
  shard: { index: number; count: number },
): DatasetSplit[] {
  const { index, count } = shard;
  if (
    !Number.isInteger(count) || count < 1 || !Number.isInteger(index) || index < 0 || index >= count
  ) {
    throw new OptionError("shard", `I/N needs 0 ≤ I < N, got ${index}/${count}`);
  }
  const total = splits.reduce((a, s) => a + s.test.length, 0);
  if (count > total) {
    throw new OptionError(
      "shard",
      `${index}/${count}: only ${total} test images to split into ${count} parts`,
    );
  }
  let j = 0;
  return splits.map((s) => ({
    ...s,
    test: s.test.filter(() => shardOf(j++, total, count) === index),
  }));
}

/**
 * The bank file of one scope: `path` itself for the unified bank; for per-category banks the
 * category goes before the extension, `bank.safetensors` → `bank.<category>.safetensors`.
 */
export function scopePath(path: string, scope: BankScope): string {
  return scope.unified ? path : path.replace(/(\.safetensors)?$/, `.${scope.name}$1`);
}

/** Load, preprocess and embed each record in turn (one image in memory at a time). */
async function* embedRecords(
  bb: Backbone,
  records: ImageRecord[],
  geometry: { resize: number; crop: number },
  progress: Progress,
) {
  for (const r of records) {
    const s = await loadSample(r, geometry);
    yield await embedSample(bb, s);
    progress.tick();
    await hitFault("bank-build");
  }
}

async function scoreCategory(
  bb: Backbone,
  index: BankIndex,
  split: DatasetSplit,
  geometry: { resize: number; crop: number },
  k: number,
  show: boolean,
  scorer: { head: Head; blend: MapBlend | null } | null,
  withMetrics = true,
): Promise<CategoryResult> {
  const size = geometry.crop;
  const n = split.test.length;
  const px = size * size;
  const maps = new Float32Array(n * px);
  const masks = new Uint8Array(n * px);
  const rgb = new Uint8Array(n * px * 3);
  const scores = new Float32Array(n);
  const labels = new Uint8Array(n);
  const seconds = { embedTest: 0, search: 0, maps: 0 };
  const maskConventions: Record<string, number> = {};
  const emptyMasks: string[] = [];
  const p = show ? startProgress(`score test (${split.category})`, n) : noProgress;
  for (let i = 0; i < n; i++) {
    const rec = split.test[i];
    const t = performance.now();
    const s = await loadSample(rec, geometry);
    const f = await embedSample(bb, s);
    seconds.embedTest += (performance.now() - t) / 1000;
    const { map, score, seconds: st } = await scoreFeatures(f, index, k, scorer, size);
    seconds.search += st.search;
    seconds.maps += st.maps;
    maps.set(map, i * px);
    if (s.mask) masks.set(s.mask, i * px);
    if (s.maskConvention) {
      maskConventions[s.maskConvention] = (maskConventions[s.maskConvention] ?? 0) + 1;
    }
    if (rec.label === 1 && s.mask && !s.mask.includes(1)) emptyMasks.push(rec.maskPath!);
    rgb.set(s.rgb, i * px * 3);
    scores[i] = score;
    labels[i] = rec.label;
    p.tick();
  }
  p.stop();
  const metrics = withMetrics
    ? computeMetrics({
      imageScores: scores,
      imageLabels: labels,
      ...(split.hasMasks
        ? { pixelScores: maps, pixelMasks: masks, shape: [n, size, size] as const }
        : {}),
    })
    // A part of a sharded run: metrics come from the merged parts (deno task merge).
    : Object.fromEntries(METRIC_KEYS.map((k) => [k, NaN])) as unknown as Metrics;
  const conv = Object.keys(maskConventions);
  if (conv.length > 1) {
    console.warn(
      `snarm: warning: ${split.category}: masks in mixed conventions ${
        conv.map((c) => `${c} × ${maskConventions[c]}`).join(", ")
      }; each is binarised by its own (0/255: official >= 127; 0/1 and label maps: nonzero)`,
    );
  }
  if (emptyMasks.length) {
    console.warn(
      `snarm: warning: ${split.category}: ${emptyMasks.length} defect image mask(s) empty after ` +
        `thresholding and geometry (the defect lies outside the crop, or the mask is blank; ` +
        `pixel metrics count these images as all-normal): ${emptyMasks.slice(0, 5).join(", ")}${
          emptyMasks.length > 5 ? ", …" : ""
        }`,
    );
  }
  if (!split.hasMasks && withMetrics) {
    console.warn(
      `snarm: ${
        split.layout === "folder"
          ? `${split.category}: no masks (\`maskDir\`) given`
          : `${split.root}/${split.category} has no ground_truth folder`
      }: evaluated at image level only, pixel metrics undefined`,
    );
  }
  return {
    category: split.category,
    metrics,
    hasMasks: split.hasMasks,
    ids: split.test.map((r) => r.id),
    paths: split.test.map((r) => r.path),
    labels,
    defectTypes: split.test.map((r) => r.defectType),
    imageScores: scores,
    maps,
    masks,
    rgb,
    size,
    seconds,
    maskConventions,
    emptyMasks,
  };
}

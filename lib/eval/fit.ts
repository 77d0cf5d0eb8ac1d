/**
 * Fit the SNARM head on the data at hand (the official unified protocol: one bank and one head
 * over the training images of every category that is then tested, snarm-method.md §2 "Scope", §8),
 * with a cache: a fitted head and its bank are stored under a key of everything that changes them
 * (the training files' names and contents, backbone model, geometry, bank and fit settings, the
 * starting head), so a re-run reuses them.
 *
 * Cache layout: `<cacheDir>/fit-<key>/` with `head.safetensors` (official format; its metadata
 * names the categories it was fitted on), `bank.safetensors`, `train.json` (settings, validation
 * curve, wall times), `loss.csv` and `key.json`. A folder is written under a temporary name and
 * renamed when complete, so an interrupted fit leaves no usable-looking entry.
 *
 * @example
 * ```ts ignore
 * // (not run by the doc tests: a first fit takes minutes; `deno task eval` runs it)
 * import { fitHead } from "./fit.ts";
 * const fit = await fitHead({ data: "data/hazelnut_toy", categories: ["hazelnut"] });
 * console.log(fit.headPath, fit.cached);
 * ```
 * @module
 */
import type { RunFeatureOptions } from "../backbone/mod.ts";
import { join } from "node:path";
import { sha256Hex } from "../util/hash.ts";
import type { Bank } from "../bank/bank.ts";
import { loadBank, saveBank } from "../bank/bank.ts";
import { type DatasetOptions, loadSplit } from "../data/dataset.ts";
import { loadHeadWeights, saveHeadWeights } from "../model/weights.ts";
import { Head } from "../model/head.ts";
import { readSafeTensors } from "../io/safetensors.ts";
import {
  acquireLock,
  commitFolder,
  discardStage,
  recoverOutput,
  stageFolder,
} from "../io/commit.ts";
import { chooseBlend } from "./blend.ts";
import { runTraining, TRAIN_PRESETS } from "../train/run.ts";
import {
  DEFAULT_TEXTURE_DIR,
  listTextureFiles,
  SYNTH_SOURCES,
  type SynthSource,
} from "../train/synth.ts";
import { DEFECT_KINDS } from "../train/defects.ts";

/** Bump when a change of the fitting code changes fitted heads (invalidates cached fits). */
const FIT_VERSION = 6;

/**
 * Default anomaly sources of a fit: the defect-shaped generators (lib/train/defects.ts). Chosen by
 * validation (mean of the 7 metrics on the fits' validation splits, README "Study"): on
 * hazelnut_toy (one common split, `scripts/compare_heads.ts`) 87.1 against 77.3 for all seven
 * sources and 76.5 for MemSeg's structure + texture; on grid 86.4 against 88.9 for all seven; mean
 * over the two 86.7 against 83.1. `paint` (opaque colour/ink marks, MVTec AD's `color` and `print`
 * defect types) joined the defect-shaped set later: the default is the whole set.
 */
export const FIT_SOURCES: readonly SynthSource[] = DEFECT_KINDS;

/** Fit settings (defaults sized for two CPU cores: minutes on the embedded data). */
export interface FitSettings {
  /** Head preset (default "cpu": d 16, depth 1, 4 rates × 4 scans). */
  preset?: "cpu" | "paper";
  /** Training steps (default 240: chosen on hazelnut_toy's validation split over 120, README "Study"). */
  steps?: number;
  /** Images per step (default the preset's). */
  batch?: number;
  /** Peak learning rate (default 2e-3). */
  lr?: number;
  /** Training images per category that get samples (default 40). */
  maxImages?: number;
  /** Synthetic anomalies per training image (default 2). */
  synthPerImage?: number;
  /** Anomaly sources (default {@link FIT_SOURCES}). */
  sources?: readonly SynthSource[];
  /** Texture folder of the texture source (default the shipped data/textures). */
  textureDir?: string;
  /** Fraction of each category's training images held out for validation (default 0.2). */
  valFraction?: number;
  /**
   * Anomaly sources of the validation samples (default {@link heldOutSources}: the sources the
   * head does not train on, so that validation measures how it does on defects of unseen kinds, as
   * real defects are).
   */
  valSources?: readonly SynthSource[];
  /** Validate every N steps (default steps / 6). */
  valEvery?: number;
  /** Head weights file to start from (fine-tuning); must have the preset's config. */
  init?: string;
}

/** Options of {@link fitHead}: the data and feature settings (as `runEval`) plus the fit. */
export interface FitOptions extends FitSettings, RunFeatureOptions {
  data: string;
  categories: string[];
  /** Dataset layout options (Folder spec, MVTec 3D-AD validation use; lib/data/dataset.ts). */
  dataset?: DatasetOptions;
  imageSize?: number;
  resize?: number;
  bankSize?: number;
  bankCap?: number;
  seed?: number;
  /** Use this bank (a loaded one) instead of building one from the training images. */
  bank?: Bank;
  /** Cache root (default `$SNARM_CACHE`, else `$XDG_CACHE_HOME/snarm`, else `~/.cache/snarm`). */
  cacheDir?: string;
  /** Refit even when a cached fit exists. */
  refit?: boolean;
  progress?: boolean;
}

/** Result of {@link fitHead}. */
export interface FitResult {
  /** The fitted head (official-format safetensors). */
  headPath: string;
  /** The bank the head was fitted with (the test set is scored against it). */
  bank: Bank;
  /** True when the fit came from the cache. */
  cached: boolean;
  /** The cache folder of this fit. */
  dir: string;
  /** Wall seconds of this call (cache hit: loading only). */
  seconds: number;
  /** The fit's train.json (settings, validation curve, wall times). */
  record: Record<string, unknown>;
}

/** Default cache root. */
export function defaultCacheDir(): string {
  const env = (k: string) => Deno.env.get(k);
  return env("SNARM_CACHE") ??
    (env("XDG_CACHE_HOME") ? join(env("XDG_CACHE_HOME")!, "snarm") : undefined) ??
    join(env("HOME") ?? ".", ".cache", "snarm");
}

/** SHA-256 over the names and contents of the image files of a folder (null: no folder). */
async function folderDigest(dir: string | null): Promise<string | null> {
  if (!dir) return null;
  const parts: string[] = [];
  for (const path of listTextureFiles(dir)) {
    parts.push(`${path.slice(dir.length)}:${await sha256Hex(await Deno.readFile(path))}`);
  }
  return await sha256Hex(parts.join("\n"));
}

/**
 * The validation sources of a fit that trains on `sources`: every {@link SYNTH_SOURCES} entry not in
 * it (all of them when none is left). With the default training sources (the defect-shaped
 * generators) these are MemSeg's `structure` and `texture` anomalies. Real defects are of kinds the
 * head never trained on; validating on trained kinds favours the head (README "Study": hazelnut_toy
 * validation ranked the head 15 points above the bank, its real test defects the other way).
 */
export function heldOutSources(sources: readonly SynthSource[]): SynthSource[] {
  const rest = SYNTH_SOURCES.filter((s) => !sources.includes(s));
  return rest.length ? rest : [...SYNTH_SOURCES];
}

/** Fit defaults after applying {@link FitSettings} (recorded in the key and in train.json). */
export function fitDefaults(s: FitSettings) {
  const preset = s.preset ?? "cpu";
  if (!(preset in TRAIN_PRESETS)) {
    throw new Error(`fit preset must be "cpu" or "paper", got "${preset}"`);
  }
  const steps = s.steps ?? 240;
  return {
    preset,
    steps,
    batch: s.batch ?? TRAIN_PRESETS[preset].batch,
    lr: s.lr ?? 2e-3,
    maxImages: s.maxImages ?? 40,
    synthPerImage: s.synthPerImage ?? 2,
    sources: s.sources ?? FIT_SOURCES,
    valSources: s.valSources ?? heldOutSources(s.sources ?? FIT_SOURCES),
    textureDir: s.textureDir ?? DEFAULT_TEXTURE_DIR,
    valFraction: s.valFraction ?? 0.2,
    valEvery: s.valEvery ?? Math.max(5, Math.floor(steps / 6)),
  };
}

/**
 * The cache key of a fit: SHA-256 over the training files (path, size, content hash) of the
 * categories, the backbone model, geometry, bank settings, fit settings and the starting head.
 */
export async function fitKey(
  o: FitOptions,
  modelSha: string,
): Promise<{ key: string; what: object }> {
  const files: Array<[string, number, string]> = [];
  for (const c of o.categories) {
    for (const r of loadSplit(o.data, c, o.dataset).train) {
      const bytes = await Deno.readFile(r.path);
      files.push([`${c}/${r.id}`, bytes.length, await sha256Hex(bytes)]);
    }
  }
  const size = o.imageSize ?? 392;
  const what = {
    v: FIT_VERSION,
    categories: o.categories,
    files: await sha256Hex(JSON.stringify(files)),
    backbone: o.backbone ?? "mobilenetv2",
    taps: o.taps ?? null,
    inputName: o.inputName ?? null,
    model: modelSha,
    featureDim: o.featureDim ?? null,
    imageSize: size,
    resize: o.resize ?? Math.round((size * 448) / 392),
    // a given bank replaces the built one: its size and cap settings change nothing
    bankSize: o.bank ? null : o.bankSize ?? 10_000,
    bankCap: o.bank ? null : o.bankCap ?? 200_000,
    bank: o.bank
      ? await sha256Hex(
        new Uint8Array(
          o.bank.features.buffer,
          o.bank.features.byteOffset,
          o.bank.features.byteLength,
        ),
      )
      : null,
    textures: await folderDigest(fitDefaults(o).textureDir),
    seed: o.seed ?? 0,
    fit: { ...fitDefaults(o), textureDir: undefined },
    init: o.init ? await sha256Hex(await Deno.readFile(o.init)) : null,
  };
  return { key: (await sha256Hex(JSON.stringify(what))).slice(0, 20), what };
}

/**
 * Finish or roll back what fits killed half-way (Ctrl-C, a crash) left in the cache root, for
 * every key (`fit-KEY.stage-PID`, `fit-KEY.old-PID` of processes no longer running;
 * lib/io/commit.ts `recoverOutput`), not only the key being fitted; a key whose lock a live
 * process holds is left to it.
 */
export async function recoverFitCache(root: string): Promise<void> {
  const keys = new Set<string>();
  for (const e of Deno.readDirSync(root)) {
    const m = /^(fit-[0-9a-f]+)\.(stage|old)-\d+$/.exec(e.name);
    if (m) keys.add(m[1]);
  }
  for (const k of keys) {
    // only a key no live process holds (a fit in progress keeps its own)
    const lock = await acquireLock(join(root, k), { what: `fit cache ${k}` }).catch(() => null);
    if (!lock) continue;
    try {
      await recoverOutput(join(root, k));
    } finally {
      lock.release();
    }
  }
}

/**
 * A given bank identical to the one a fit without it builds (e.g. the bank a --prepare-only run
 * saved from that fit) is the same fit: the cache folder of that fit, or null.
 */
async function sameBankFit(
  o: FitOptions & { modelSha256: string },
  root: string,
): Promise<{ dir: string; bank: Bank; record: Record<string, unknown> } | null> {
  const meta = o.bank!.meta;
  const tried = new Set<string>();
  // the fit that built this bank: at the bank's own size and cap, or at the run's settings
  for (const sizes of [{ bankSize: meta.T, bankCap: meta.cap }, {}]) {
    const plain = await fitKey({ ...o, ...sizes, bank: undefined }, o.modelSha256);
    if (tried.has(plain.key)) continue;
    tried.add(plain.key);
    const pdir = join(root, `fit-${plain.key}`);
    const fit = await readFit(pdir);
    if (!fit) continue;
    const a = fit.bank.features, b = o.bank!.features;
    if (a.length === b.length && a.every((v, i) => Object.is(v, b[i]))) return fit;
  }
  return null;
}

/**
 * The fit in cache folder `dir` when it is complete and readable (the head file, a bank that
 * loads, `train.json`), else null; with `warn`, an entry that exists but does not read is said.
 */
async function readFit(
  dir: string,
  warn = false,
): Promise<{ dir: string; bank: Bank; record: Record<string, unknown> } | null> {
  try {
    await Deno.stat(join(dir, "head.safetensors"));
    const record = JSON.parse(await Deno.readTextFile(join(dir, "train.json")));
    return { dir, bank: await loadBank(join(dir, "bank.safetensors")), record };
  } catch (e) {
    if (warn && !(e instanceof Deno.errors.NotFound)) {
      console.warn(`snarm fit: cached fit ${dir} unreadable (${(e as Error).message}); refitting`);
    }
    return null;
  }
}

/**
 * The cached fit {@link fitHead} loads for `o` without fitting: the fit that built a given bank
 * (see `sameBankFit`), else the complete entry of `o`'s key; null when it would have to fit.
 */
async function cachedFit(
  o: FitOptions & { modelSha256: string },
  root: string,
  key: string,
): Promise<{ dir: string; bank: Bank; record: Record<string, unknown> } | null> {
  if (o.refit) return null;
  const same = o.bank ? await sameBankFit(o, root) : null;
  if (same) return { ...same, bank: o.bank! };
  const hit = await readFit(join(root, `fit-${key}`));
  return hit && { ...hit, bank: o.bank ?? hit.bank };
}

/** The {@link FitResult} of a fit read from the cache. */
function cachedResult(
  fit: { dir: string; bank: Bank; record: Record<string, unknown> },
  t0: number,
): FitResult {
  return {
    headPath: join(fit.dir, "head.safetensors"),
    bank: fit.bank,
    cached: true,
    dir: fit.dir,
    seconds: (performance.now() - t0) / 1000,
    record: fit.record,
  };
}

/**
 * The cache folder {@link fitHead} would load the fit of `o` from, or null when it would have to
 * fit (train) it: lets a caller without a WebGPU adapter (training needs one) use a cached fit.
 */
export async function findCachedFit(
  o: FitOptions & { modelSha256: string },
): Promise<string | null> {
  const root = o.cacheDir ?? defaultCacheDir();
  return (await cachedFit(o, root, (await fitKey(o, o.modelSha256)).key))?.dir ?? null;
}

/**
 * Fit (or load from the cache) one SNARM head and its bank on the training images of
 * `categories` of `data`.
 * @throws {Error} without a WebGPU adapter (training needs one), on bad settings, or a starting
 *   head of another configuration; `DatasetError` naming the path for bad data.
 */
export async function fitHead(o: FitOptions & { modelSha256: string }): Promise<FitResult> {
  const t0 = performance.now();
  const { key, what } = await fitKey(o, o.modelSha256);
  const root = o.cacheDir ?? defaultCacheDir();
  const dir = join(root, `fit-${key}`);
  const headPath = join(dir, "head.safetensors");
  const show = o.progress ?? true;
  // A cached fit is read without the lock (entries appear by rename, whole): a read-only shared
  // cache serves as well as a private one.
  const hit = await cachedFit(o, root, key);
  if (hit) return cachedResult(hit, t0);
  // One process fills a cache entry at a time (a second one waits, then finds it filled);
  // a fit killed half-way is cleaned up or finished here (lib/io/commit.ts).
  await Deno.mkdir(root, { recursive: true });
  await recoverFitCache(root);
  const lock = await acquireLock(dir, { what: `fit cache ${dir}`, wait: true });
  try {
    await recoverOutput(dir);
    return await fitLocked(o, { t0, key, what, dir, headPath, show });
  } finally {
    lock.release();
  }
}

async function fitLocked(
  o: FitOptions & { modelSha256: string },
  c: {
    t0: number;
    key: string;
    what: unknown;
    dir: string;
    headPath: string;
    show: boolean;
  },
): Promise<FitResult> {
  const { t0, key, what, dir, headPath, show } = c;
  // filled by another process while this one waited for the lock?
  const hit = o.refit ? null : await readFit(dir, true);
  if (hit) return cachedResult({ ...hit, bank: o.bank ?? hit.bank }, t0);
  const f = fitDefaults(o);
  if (!o.valSources && f.valSources.length === SYNTH_SOURCES.length) {
    console.warn(
      "snarm fit: the head trains on every anomaly source, so none is held out: validation " +
        "uses all of them, kinds the head trained on included (it then favours the head); " +
        "leave some out of the training sources or name the validation sources",
    );
  }
  const stage = await stageFolder(dir);
  try {
    const init = o.init ? await loadHeadWeights(o.init) : undefined;
    if (show) {
      console.log(
        `snarm fit: fitting a SNARM head (${f.preset} preset, ${f.steps} steps) on ${o.data} ` +
          `[${o.categories}]; cached as ${dir}`,
      );
    }
    const r = await runTraining({
      data: [o.data],
      categories: o.categories,
      dataset: o.dataset,
      out: stage,
      preset: f.preset,
      steps: f.steps,
      batch: f.batch,
      lr: f.lr,
      seed: o.seed ?? 0,
      checkpointEvery: f.steps,
      maxImages: f.maxImages,
      synthPerImage: f.synthPerImage,
      sources: f.sources,
      valSources: f.valSources,
      textureDir: f.textureDir ?? undefined,
      valFraction: f.valFraction,
      valEvery: f.valEvery,
      init,
      backbone: o.backbone,
      taps: o.taps,
      inputName: o.inputName,
      model: o.model,
      backboneEngine: o.backboneEngine,
      featureDim: o.featureDim,
      imageSize: o.imageSize,
      resize: o.resize,
      bankSize: o.bankSize,
      bankCap: o.bankCap,
      bank: o.bank,
      keepBank: true,
      cacheDir: null,
      progress: show,
      headMetadata: { snarm_fit_key: key },
    });
    const bank = r.set.banks?.[0] ?? o.bank;
    if (!bank) throw new Error("snarm fit: the training run kept no bank");
    // λ of the head/bank map blend, chosen on the validation split (lib/eval/blend.ts).
    const choice = await chooseBlend(
      new Head(r.weights),
      r.set.val,
      r.set.C,
      r.set.h,
      r.set.w,
      r.set.imageSize,
    );
    const stagedHead = join(stage, "head.safetensors");
    const meta = (await readSafeTensors(stagedHead)).metadata;
    const { config: _c, ...extra } = meta;
    await saveHeadWeights(stagedHead, r.weights, {
      ...extra,
      snarm_blend: JSON.stringify(choice.blend),
    });
    const trainJson = JSON.parse(await Deno.readTextFile(join(stage, "train.json")));
    trainJson.blend = choice;
    await Deno.writeTextFile(join(stage, "train.json"), JSON.stringify(trainJson, null, 2) + "\n");
    if (show) {
      console.log(
        `snarm fit: validation, λ: worst margin over bank-only, image / pixel metrics: ${
          choice.table.map((t) =>
            `${t.lambda} ${(100 * t.imageMargin).toFixed(2)} / ${(100 * t.pixelMargin).toFixed(2)}`
          ).join(", ")
        } → λ_img = ${choice.blend.imageLambda}, λ = ${choice.blend.lambda} (dominance rule per group)`,
      );
    }
    await saveBank(join(stage, "bank.safetensors"), bank);
    await Deno.remove(join(stage, "checkpoint.safetensors")).catch(() => {});
    await Deno.writeTextFile(join(stage, "key.json"), JSON.stringify(what, null, 2) + "\n");
    await commitFolder(stage, dir, { replace: "all" });
    const record = JSON.parse(await Deno.readTextFile(join(dir, "train.json")));
    return {
      headPath,
      bank,
      cached: false,
      dir,
      seconds: (performance.now() - t0) / 1000,
      record,
    };
  } catch (e) {
    discardStage(stage);
    throw e;
  }
}

/**
 * Training samples of the SNARM head, computed once and cached (snarm-method.md §8 "Training
 * data", §3 leave-own-image-out residuals):
 *
 * for every dataset root (unified bank over its categories, as `deno task eval` builds it):
 * 1. embed every `train/good` image once and build the bank (seeded random cap + greedy coreset);
 * 2. for each selected training image: the clean image (target 0, official `train/ok`) and
 *    `synthPerImage` MemSeg-style synthetic anomalies of it (official `train/false_ng`, listed
 *    twice), each embedded once;
 * 3. the model input X = [r ‖ f] `(2C, h, w)` with r the inter-residual against the bank
 *    without the source image's own entries, and the grid target (area-averaged mask).
 *
 * X is kept as float16 (`Float16Array`, 2 bytes per value: a magnetic_tile sample at 392² with
 * 256-d features is 2.5 MB), optionally in a safetensors cache file per root keyed by every
 * option that changes the samples, so a resumed or repeated run skips the backbone and the search.
 * @module
 */
import {
  type Backbone,
  type BackboneDescription,
  loadRunBackbone,
  type RunFeatureOptions,
} from "../backbone/mod.ts";
import type { Bank } from "../bank/bank.ts";
import { buildBankWithProgress } from "../bank/progress.ts";
import { createBankIndex } from "../bank/bank_index.ts";
import type { BankIndex } from "../bank/search.ts";
import { interModelInput, trainingResidual } from "../residual/inter.ts";
import {
  DatasetError,
  type DatasetOptions,
  type DatasetSplit,
  type ImageRecord,
  listCategories,
  loadSplit,
} from "../data/dataset.ts";
import { normalizeImageNet } from "../data/preprocess.ts";
import { loadSample } from "../data/sample.ts";
import { tryGetGpu } from "../gpu/device.ts";
import { readSafeTensors, requireTensor, writeSafeTensors } from "../io/safetensors.ts";
import type { FeatureGrid } from "../types.ts";
import { noProgress, startProgress } from "../util/progress.ts";
import { gridTarget } from "./loss.ts";
import { SYNTH_SOURCES, synthesizeAnomaly, type SynthSource } from "./synth.ts";
import { mulberry32 } from "../ops/pointwise.ts";
import { OptionError } from "../util/errors.ts";
import { runGeometry } from "../data/preprocess.ts";

/** One training sample. */
export interface TrainSample {
  /** `root/category/id` and, for synthetic ones, `#synthN`. */
  id: string;
  synthetic: boolean;
  /** True for a validation sample (a held-out training image; never trained on). */
  val?: boolean;
  /** Anomaly source of a synthetic sample (lib/train/synth.ts `SynthSource`; not cached). */
  source?: SynthSource;
  /** `(2C, h, w)` channels-first float16 model input [r ‖ f]. */
  X: Float16Array;
  /** `(h·w)` grid target in [0, 1]. */
  target: Float32Array;
}

/** Options of {@link prepareTrainingSet}. */
export interface PrepareOptions extends RunFeatureOptions {
  /** Dataset roots in MVTec layout (`<root>/<category>/train/good`). */
  roots: string[];
  /**
   * Categories to use (default: every category of each root). With several roots a name is used
   * in every root that has it; a root without any of them is an error.
   */
  categories?: string[];
  /** Dataset layout options (Folder spec, MVTec 3D-AD validation use; lib/data/dataset.ts). */
  dataset?: DatasetOptions;
  /** Input size = centre-crop side in px (default 392; grid = size / 8). */
  imageSize?: number;
  /**
   * Side of the square resize before the centre crop (default round(imageSize·448/392), the
   * official 448 → 392, spec §11); `resize = imageSize` means no crop (whole image).
   */
  resize?: number;
  /** Bank size T and random cap (defaults as `deno task eval`: 10 000 and 200 000). */
  bankSize?: number;
  bankCap?: number;
  /** Top-k of the inter-residual (3). */
  topk?: number;
  /** Seed of the bank, the image subset and the synthetic anomalies (0). */
  seed?: number;
  /** Synthetic anomalies per training image (2, official `false_ng` ×2). */
  synthPerImage?: number;
  /** Synthetic anomalies per validation image (default 4: more anomalies, steadier scores). */
  valSynthPerImage?: number;
  /** At most this many training images per category get samples (default: all). */
  maxImages?: number;
  /** Optional DTD-style texture folder for the texture anomaly source. */
  textureDir?: string;
  /**
   * Anomaly sources drawn from (uniformly) for each synthetic sample (default: MemSeg's
   * structure / texture 50/50, lib/train/synth.ts).
   */
  sources?: readonly SynthSource[];
  /**
   * Fraction of each category's training images held out for validation (default 0): their
   * clean and synthetic samples go to {@link TrainingSet.val}, never to `samples`.
   */
  valFraction?: number;
  /**
   * Anomaly sources of the validation images' synthetic samples (default: every source, so that
   * validation scores of runs with different training `sources` are comparable).
   */
  valSources?: readonly SynthSource[];
  /** At most this many validation images per category (default 10). */
  maxValImages?: number;
  /** Keep the bank of each root in {@link TrainingSet.banks} (eval fits reuse it). */
  keepBank?: boolean;
  /** Use this bank (built from the same training images, e.g. a loaded one); one root only. */
  bank?: Bank;
  /** Cache folder (one safetensors file per root and option set); null = no cache. */
  cacheDir?: string | null;
  /** Show progress bars (default true). */
  progress?: boolean;
  /** Samples per cache file (default 200, ≈ 0.5 GB at 392²; bounds the memory of a cache write). */
  cacheShard?: number;
}

/** The prepared set. */
export interface TrainingSet {
  samples: TrainSample[];
  /** Validation samples (held-out training images, clean + synthetic; empty without a split). */
  val: TrainSample[];
  /** The bank of each root (with `keepBank`; built or read from nothing else). */
  banks?: Bank[];
  /** Resize side before the centre crop (px). */
  resize: number;
  /** Feature channels C (X has 2C). */
  C: number;
  h: number;
  w: number;
  imageSize: number;
  backbone: string;
  taps: string[][];
  /** Per root: categories, training images, selected images, bank size, seconds. */
  roots: Array<
    {
      root: string;
      categories: string[];
      images: number;
      selected: number;
      T: number;
      seconds: number;
      cached: boolean;
    }
  >;
}

function join(a: string, b: string): string {
  return a.endsWith("/") ? a + b : `${a}/${b}`;
}

function hashString(s: string): string {
  let h1 = 0x811c9dc5, h2 = 0x01000193;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c, 0x5bd1e995) >>> 0;
  }
  return h1.toString(16).padStart(8, "0") + h2.toString(16).padStart(8, "0");
}

/** Evenly spread deterministic subset of `n` indices out of `total` (seeded shuffle, then sorted). */
function pickSubset(total: number, n: number, seed: number): number[] {
  const idx = Array.from({ length: total }, (_, i) => i);
  if (n >= total) return idx;
  const rnd = mulberry32(seed >>> 0);
  for (let i = total - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx.slice(0, n).sort((a, b) => a - b);
}

/**
 * The training and validation images of a root: per category (sizes `counts`, concatenated in
 * that order) a seeded shuffle; the first round(n·valFraction) images (at least 1 when the fraction
 * is > 0 and n ≥ 2) are validation images, then at most `maxImages` of the rest are training
 * images. Returns global indices, each list sorted.
 */
export function splitImages(
  counts: readonly number[],
  maxImages: number | undefined,
  valFraction: number,
  seed: number,
  maxVal = Infinity,
): { selected: number[]; val: number[] } {
  const selected: number[] = [], val: number[] = [];
  let offset = 0;
  for (const n of counts) {
    const order = pickSubset(n, n, seed + offset);
    if (valFraction > 0) {
      const rnd = mulberry32((seed + offset) >>> 0);
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
    }
    const nVal = valFraction > 0 && n >= 2
      ? Math.min(n - 1, maxVal, Math.max(1, Math.round(n * valFraction)))
      : 0;
    const rest = valFraction > 0 ? order.slice(nVal) : order;
    const m = maxImages ? Math.min(rest.length, maxImages) : rest.length;
    const train = valFraction > 0 ? rest.slice(0, m) : pickSubset(n, m, seed + offset);
    for (const i of order.slice(0, nVal)) val.push(offset + i);
    for (const i of train) selected.push(offset + i);
    offset += n;
  }
  return { selected: selected.sort((a, b) => a - b), val: val.sort((a, b) => a - b) };
}

async function embedRgb(bb: Backbone, rgb: Uint8Array, size: number): Promise<FeatureGrid> {
  return await bb.embed(normalizeImageNet(rgb, size, size), [1, 3, size, size]);
}

/** The categories and splits of every root, checked (a wrong path fails before any work). */
function planRoots(
  opts: PrepareOptions,
): Array<{ root: string; cats: string[]; splits: DatasetSplit[] }> {
  return opts.roots.map((root) => {
    let cats: string[];
    try {
      cats = listCategories(root, opts.dataset);
    } catch (e) {
      const msg = (e as Error).message;
      throw new DatasetError(msg.includes(root) ? msg : `${root}: ${msg}`);
    }
    if (!cats.length) {
      throw new DatasetError(
        `${root}: no category with training images (expected <root>/<category>/train/good/*.png)`,
      );
    }
    if (opts.categories?.length) {
      const want = new Set(opts.categories);
      cats = cats.filter((c) => want.has(c));
      if (!cats.length) {
        throw new DatasetError(
          `${root}: none of the categories [${opts.categories}] (found: ${
            listCategories(root, opts.dataset)
          })`,
        );
      }
    }
    const splits = cats.map((c) => {
      const s = loadSplit(root, c, opts.dataset);
      if (!s.train.length) {
        throw new DatasetError(`${root}/${c}/train/good: no training image`);
      }
      return s;
    });
    return { root, cats, splits };
  });
}

/**
 * A root's bank: the given one (checked to come from the same training images, in order: the
 * leave-own-image-out residuals need it), or built from the embedded training images.
 */
async function rootBank(
  opts: PrepareOptions,
  plan: { root: string; cats: string[] },
  train: ImageRecord[],
  grids: Iterable<FeatureGrid>,
  c: {
    desc: BackboneDescription;
    size: number;
    resize: number;
    seed: number;
    name: string;
    show: boolean;
  },
): Promise<Bank> {
  const { desc, size, resize, seed, name, show } = c;
  if (opts.bank) {
    const ids = train.map((r) => `${r.category}/${r.id}`);
    if (JSON.stringify(opts.bank.meta.sourceImageIds) !== JSON.stringify(ids)) {
      throw new Error(
        `the given bank was built from other training images than ${plan.root} ` +
          `[${plan.cats}] (${opts.bank.meta.sourceImageIds.length} vs ${ids.length} images); ` +
          "leave-own-image-out residuals need the same images in the same order",
      );
    }
  }
  const bank = opts.bank ?? await buildBankWithProgress(grids, {
    size: opts.bankSize,
    cap: opts.bankCap,
    seed,
    sourceIds: train.map((r) => `${r.category}/${r.id}`),
    backbone: desc.backbone,
    taps: desc.taps,
    inputSize: size,
    resize,
    unified: true,
    categories: plan.cats,
  }, { name, show });
  return bank;
}

/**
 * The samples of training image `i` of a root (spec §8): its clean sample (target 0) and
 * `nSynth` synthetic anomalies (seeded by (seed, i, j); validation images draw from the
 * validation sources), each as X = [r ‖ f] float16 with the leave-own-image-out inter-residual.
 */
async function imageSamples(
  opts: PrepareOptions,
  root: string,
  r: ImageRecord,
  i: number,
  v: boolean,
  nSynth: number,
  f: FeatureGrid,
  c: {
    bb: Backbone;
    index: BankIndex;
    geometry: { resize: number; crop: number };
    size: number;
    seed: number;
    k: number;
    tick: () => void;
  },
): Promise<TrainSample[]> {
  const { bb, index, geometry, size, seed, k, tick } = c;
  const L = f.h * f.w, grid = f.h;
  const samples: TrainSample[] = [];
  const clean = await trainingResidual(f, index, i, k);
  samples.push({
    id: `${root}/${r.category}/${r.id}`,
    synthetic: false,
    val: v,
    X: new Float16Array(interModelInput(clean.residual, f)),
    target: new Float32Array(L),
  });
  tick();
  if (nSynth > 0) {
    const img = await loadSample(r, geometry);
    for (let j = 0; j < nSynth; j++) {
      const syn = await synthesizeAnomaly(img.rgb, size, size, {
        seed: (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca6b) ^ j) >>> 0,
        textureDir: opts.textureDir,
        ...(v
          ? { sources: opts.valSources ?? SYNTH_SOURCES }
          : opts.sources
          ? { sources: opts.sources }
          : {}),
      });
      const fs = await embedRgb(bb, syn.rgb, size);
      const res = await trainingResidual(fs, index, i, k);
      samples.push({
        id: `${root}/${r.category}/${r.id}#synth${j}`,
        synthetic: true,
        val: v,
        source: syn.source,
        X: new Float16Array(interModelInput(res.residual, fs)),
        target: Float32Array.from(gridTarget(syn.mask, 1, size, size, grid, grid)),
      });
      tick();
    }
  }
  return samples;
}

/**
 * Prepare (or load from the cache) the training samples of every root.
 * @throws {DatasetError} naming the root when it has no category with `train/good` images.
 * @throws {Error} when a cache file does not match the requested options.
 */
export async function prepareTrainingSet(opts: PrepareOptions): Promise<TrainingSet> {
  const { size, grid, geometry } = runGeometry(opts.imageSize, opts.resize);
  if (!opts.roots.length) throw new OptionError("roots", "must name at least one dataset root");
  if (opts.bank && opts.roots.length !== 1) {
    throw new Error("prepareTrainingSet: a given bank needs exactly one root");
  }
  const L = grid * grid, resize = geometry.resize;
  const valFraction = opts.valFraction ?? 0;
  if (!(valFraction >= 0 && valFraction < 1)) {
    throw new OptionError("valFraction", `must be in [0, 1), got ${opts.valFraction}`);
  }
  const seed = opts.seed ?? 0, synthPer = opts.synthPerImage ?? 2, k = opts.topk ?? 3;
  const valSynth = opts.valSynthPerImage ?? 4;
  const show = opts.progress ?? true;
  // Resolve every root first so a wrong path fails before any work.
  const plans = planRoots(opts);
  const bb = await loadRunBackbone(opts, size, grid);
  const desc = bb.describe();
  const C = desc.featureDim;
  const gpu = await tryGetGpu();
  const out: TrainingSet = {
    samples: [],
    val: [],
    ...(opts.keepBank ? { banks: [] } : {}),
    resize,
    C,
    h: grid,
    w: grid,
    imageSize: size,
    backbone: desc.backbone,
    taps: desc.taps,
    roots: [],
  };
  try {
    for (const plan of plans) {
      const t0 = performance.now();
      const train: ImageRecord[] = plan.splits.flatMap((s) => s.train);
      const key = {
        v: 1,
        root: plan.root,
        cats: plan.cats,
        images: train.map((r) => r.path),
        backbone: desc.backbone,
        model: desc.modelSha256,
        taps: desc.taps,
        C,
        size,
        ...(resize !== Math.round((size * 448) / 392) ? { resize } : {}),
        bankSize: opts.bankSize ?? 10_000,
        bankCap: opts.bankCap ?? 200_000,
        k,
        seed,
        synthPer,
        maxImages: opts.maxImages ?? null,
        textureDir: opts.textureDir ?? null,
        ...(opts.sources ? { sources: opts.sources } : {}),
        ...(valFraction
          ? {
            valFraction,
            valSources: opts.valSources ?? null,
            maxVal: opts.maxValImages ?? 10,
            valSynth,
          }
          : {}),
      };
      const name = plan.root.replace(/\/+$/, "").split("/").pop() || "root";
      const cachePath = opts.cacheDir
        ? join(opts.cacheDir, `${name}-${hashString(JSON.stringify(key))}.safetensors`)
        : null;
      if (cachePath && !opts.keepBank && !opts.bank) {
        const cached = await loadCache(cachePath, JSON.stringify(key), 2 * C * L, L);
        if (cached) {
          out.samples.push(...cached.samples.filter((s) => !s.val));
          out.val.push(...cached.samples.filter((s) => s.val));
          out.roots.push({
            root: plan.root,
            categories: plan.cats,
            images: train.length,
            selected: cached.selected,
            T: cached.T,
            seconds: (performance.now() - t0) / 1000,
            cached: true,
          });
          if (show) console.log(`train: ${cached.samples.length} cached samples from ${cachePath}`);
          continue;
        }
      }
      // 1. Embed every training image once (with a given bank: only the images that get
      // samples); build the bank from them.
      const split = splitImages(
        plan.splits.map((s) => s.train.length),
        opts.maxImages,
        valFraction,
        seed,
        opts.maxValImages ?? 10,
      );
      const needed = opts.bank ? new Set([...split.selected, ...split.val]) : null;
      const feats: Float32Array[] = new Array(train.length);
      const pe = show
        ? startProgress(`embed train (${name})`, needed ? needed.size : train.length)
        : noProgress;
      for (let i = 0; i < train.length; i++) {
        if (needed && !needed.has(i)) continue;
        const s = await loadSample(train[i], geometry);
        feats[i] = (await embedRgb(bb, s.rgb, size)).data;
        pe.tick();
      }
      pe.stop();
      const grids = function* () {
        for (const f of feats) {
          yield { n: 1, h: grid, w: grid, c: C, data: f } as FeatureGrid;
        }
      };
      const bank = await rootBank(opts, plan, train, grids(), {
        desc,
        size,
        resize,
        seed,
        name,
        show,
      });
      out.banks?.push(bank);
      const index = await createBankIndex(gpu, bank.features, C, bank.imageIndex);
      // 2–3. Samples of the selected images (and of the held-out validation images).
      const { selected, val } = split;
      const isVal = new Set(val);
      const chosen = [...selected, ...val].sort((a, b) => a - b);
      const samples: TrainSample[] = [];
      const ps = show
        ? startProgress(
          `training samples (${name})`,
          selected.length * (1 + synthPer) + val.length * (1 + valSynth),
        )
        : noProgress;
      try {
        for (const i of chosen) {
          const v = isVal.has(i);
          const f: FeatureGrid = { n: 1, h: grid, w: grid, c: C, data: feats[i] };
          const nSynth = v ? valSynth : synthPer;
          samples.push(
            ...await imageSamples(opts, plan.root, train[i], i, v, nSynth, f, {
              bb,
              index,
              geometry,
              size,
              seed,
              k,
              tick: () => ps.tick(),
            }),
          );
        }
      } finally {
        ps.stop();
        index.destroy();
      }
      feats.length = 0; // the bank and samples are built: free the features before the cache write
      if (cachePath) {
        await saveCache(
          cachePath,
          JSON.stringify(key),
          samples,
          selected.length,
          bank.meta.T,
          opts.cacheShard ?? SHARD,
        );
      }
      out.samples.push(...samples.filter((s) => !s.val));
      out.val.push(...samples.filter((s) => s.val));
      out.roots.push({
        root: plan.root,
        categories: plan.cats,
        images: train.length,
        selected: selected.length,
        T: bank.meta.T,
        seconds: (performance.now() - t0) / 1000,
        cached: false,
      });
    }
  } finally {
    await bb.release();
  }
  return out;
}

/** Samples per cache shard (≈ 0.5 GB at 392² and 256-d features), so writing and reading a cache
 * never holds more than one shard's bytes twice. */
const SHARD = 200;

function shardPath(path: string, k: number): string {
  return k === 0 ? path : path.replace(/\.safetensors$/, `.${k}.safetensors`);
}

async function saveCache(
  path: string,
  key: string,
  samples: TrainSample[],
  selected: number,
  T: number,
  shard = SHARD,
): Promise<void> {
  await Deno.mkdir(path.replace(/\/[^/]*$/, "") || ".", { recursive: true });
  const shards = Math.max(1, Math.ceil(samples.length / shard));
  // Shards 1.. first, shard 0 (which names the count) last: a cut-short write leaves no shard 0.
  for (let k = shards - 1; k >= 0; k--) {
    const part = samples.slice(k * shard, (k + 1) * shard);
    const n = part.length, xLen = part[0]?.X.length ?? 0, L = part[0]?.target.length ?? 0;
    const X = new Uint16Array(n * xLen), target = new Float32Array(n * L);
    part.forEach((s, i) => {
      X.set(new Uint16Array(s.X.buffer, s.X.byteOffset, s.X.length), i * xLen);
      target.set(s.target, i * L);
    });
    await writeSafeTensors(
      shardPath(path, k),
      new Map([
        ["X", { dtype: "F16" as const, shape: [n, xLen], data: X }],
        ["target", { dtype: "F32" as const, shape: [n, L], data: target }],
      ]),
      {
        key,
        shard: `${k}/${shards}`,
        ids: JSON.stringify(part.map((s) => s.id)),
        synthetic: JSON.stringify(part.map((s) => (s.synthetic ? 1 : 0))),
        val: JSON.stringify(part.map((s) => (s.val ? 1 : 0))),
        selected: String(selected),
        T: String(T),
      },
    );
  }
}

async function loadCache(
  path: string,
  key: string,
  xLen: number,
  L: number,
): Promise<{ samples: TrainSample[]; selected: number; T: number } | null> {
  try {
    await Deno.stat(path);
  } catch {
    return null;
  }
  const samples: TrainSample[] = [];
  let shards = 1, selected = 0, T = 0;
  for (let k = 0; k < shards; k++) {
    const file = shardPath(path, k);
    let st;
    try {
      st = await readSafeTensors(file);
    } catch (e) {
      console.warn(
        `train: ignoring unreadable cache ${file} (${(e as Error).message}); rebuilding`,
      );
      return null;
    }
    const meta = st.metadata;
    if (meta.key !== key) {
      throw new Error(`${file}: training cache was made with other options; delete it`);
    }
    const [idx, count] = (meta.shard ?? "0/1").split("/").map(Number);
    if (idx !== k) throw new Error(`${file}: cache shard ${meta.shard}, expected shard ${k}`);
    shards = count;
    selected = Number(meta.selected);
    T = Number(meta.T);
    const ids = JSON.parse(meta.ids) as string[];
    const syn = JSON.parse(meta.synthetic) as number[];
    const val = meta.val ? JSON.parse(meta.val) as number[] : [];
    const n = ids.length;
    const X = requireTensor(st, "X", "F16", [n, xLen], file).data as Uint16Array;
    const target = requireTensor(st, "target", "F32", [n, L], file).data as Float32Array;
    ids.forEach((id, i) =>
      samples.push({
        id,
        synthetic: syn[i] === 1,
        val: val[i] === 1,
        X: new Float16Array(X.slice(i * xLen, (i + 1) * xLen).buffer),
        target: target.slice(i * L, (i + 1) * L),
      })
    );
  }
  return { samples, selected, T };
}

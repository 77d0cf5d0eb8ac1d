/**
 * `deno task eval`: SNARM evaluation on real images. By default one bank and one SNARM head are
 * fitted on the training images of the evaluated categories (lib/eval/fit.ts, cached; the head's
 * map blended with the bank map by a weight chosen on a validation split, lib/eval/blend.ts);
 * `--head FILE` uses a given head, `--method bank` scores with the bank alone. Prints the metrics
 * table and writes `results.csv`, `results.json` and anomaly-map PNGs (heat map over the image)
 * to `--out`. Everything is written to a staging folder first and moved into `--out` only when
 * the run succeeds, so a failed run leaves nothing half-written there.
 *
 * Options: `deno task eval --help`.
 * @module
 */
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { parseTaps } from "../lib/backbone/presets.ts";
import { dirname, join, resolve } from "node:path";
import {
  acquireLock,
  commitFolder,
  commitTarget,
  discardStage,
  recoverOutput,
  stageFolder,
} from "../lib/io/commit.ts";
import { hitFault } from "../lib/util/fault.ts";
import { sha256Hex } from "../lib/util/hash.ts";
import type { DatasetOptions } from "../lib/data/dataset.ts";
import {
  type CategoryRecord,
  type ImageRow,
  imagesCsv,
  resultsBase,
  TIMING_KEYS,
  writeRawMaps,
  writeResults,
} from "../lib/eval/results.ts";
import { readShardManifest, SHARD_FORMAT, type ShardManifest } from "../lib/eval/shard.ts";
import { MAX_IMAGE_SIZE } from "../lib/eval/memory.ts";
import { type CategoryResult, type EvalResult, runEval, scopePath } from "../lib/eval/run.ts";
import { encodeHeatmapOverlay } from "../lib/io/heatmap.ts";
import { tryGetGpu } from "../lib/gpu/mod.ts";
import { writeReport } from "../lib/viz/report.ts";
import type { FitSettings } from "../lib/eval/fit.ts";
import { parseSynthSources } from "../lib/train/synth.ts";
import { cliMessage, flagWarnings } from "../lib/util/errors.ts";
import { resolveHeadEngine } from "../lib/model/head.ts";

/** Library option names whose eval flag is not their kebab-case (the fit's settings). */
const EVAL_FLAGS: Record<string, string> = {
  roots: "--data",
  steps: "--fit-steps",
  lr: "--fit-lr",
  preset: "--fit-preset",
  maxImages: "--fit-images",
  sources: "--synth",
  valSources: "--val-synth",
  loadBankPath: "--load-bank",
  saveBankPath: "--save-bank",
  inputSize: "--image-size",
};

/** The command line (node:util parseArgs). */
const OPTIONS = {
  data: { type: "string" },
  method: { type: "string" },
  head: { type: "string" },
  category: { type: "string", multiple: true },
  "normal-dir": { type: "string" },
  "abnormal-dir": { type: "string", multiple: true },
  "mask-dir": { type: "string" },
  "split-ratio": { type: "string" },
  "validation-as-train": { type: "boolean", default: false },
  backbone: { type: "string", default: "mobilenetv2" },
  model: { type: "string" },
  "backbone-engine": { type: "string" },
  "bank-size": { type: "string" },
  "feature-dim": { type: "string" },
  taps: { type: "string" },
  "input-name": { type: "string" },
  "bank-cap": { type: "string" },
  "image-size": { type: "string" },
  resize: { type: "string" },
  "no-crop": { type: "boolean", default: false },
  "fit-steps": { type: "string" },
  "fit-lr": { type: "string" },
  "fit-preset": { type: "string" },
  "fit-images": { type: "string" },
  synth: { type: "string" },
  "val-synth": { type: "string" },
  "texture-dir": { type: "string" },
  "init-head": { type: "string" },
  "cache-dir": { type: "string" },
  refit: { type: "boolean", default: false },
  "no-blend": { type: "boolean", default: false },
  "per-category-bank": { type: "boolean", default: false },
  "save-bank": { type: "string" },
  "load-bank": { type: "string" },
  out: { type: "string", default: "results" },
  seed: { type: "string" },
  "no-png": { type: "boolean", default: false },
  "save-maps": { type: "boolean", default: false },
  shard: { type: "string" },
  "prepare-only": { type: "boolean", default: false },
  report: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

const DEFAULT_DATA = fileURLToPath(new URL("../data/hazelnut_toy", import.meta.url));
/** The shipped SNARM head (a starting point for fits: `--init-head shipped`). */
const SHIPPED_HEAD = fileURLToPath(new URL("../data/snarm_head.safetensors", import.meta.url));

/**
 * The scoring method: `--method bank` → bank-only; `--head FILE` → that head (a warning when it
 * was fitted on other categories); otherwise SNARM with a head fitted on the data at hand.
 */
function chooseMethod(
  v: { method?: string; head?: string },
): { method: "bank" | "snarm"; head?: string } {
  if (v.method !== undefined && v.method !== "bank" && v.method !== "snarm") {
    throw new Error(`--method must be "bank" or "snarm", got "${v.method}"`);
  }
  if (v.method === "bank") {
    if (v.head !== undefined) console.error("snarm eval: --method bank ignores --head");
    return { method: "bank" };
  }
  return { method: "snarm", head: v.head === undefined ? undefined : userPath(v.head) };
}

const HELP = `deno task eval [options]

SNARM evaluation: backbone patch features → memory bank (coreset, built on the fly) → exact
top-3 bank search → inter-residual → anomaly maps (SNARM, default: a head fitted on the data's
training images, its map blended with the bank map by a validation-chosen λ; --method bank: the
residual norm) → Gaussian σ=4 → image score → the 7 metrics. On a CPU adapter (lavapipe) or
without one, backbone, search, coreset and the head's forward run on CPU engines (ONNX Runtime,
WebAssembly; SNARM_HEAD=webgpu|reference picks the head's); fitting trains on WebGPU (without an
adapter the default scores with a cached fit of the same settings, else bank-only, said so;
--method snarm then fails). Relative paths are resolved from the folder
you run the task in. SNARM_NO_GPU=1 hides the adapter (CPU engines, else TypeScript references).

  --data DIR            dataset root (default: embedded data/hazelnut_toy). Layouts, detected:
                        MVTec AD (<cat>/train/good, test/<type>, ground_truth/<type>), MVTec
                        3D-AD RGB (<cat>/train/good/rgb, test/<type>/{rgb,gt}), VisA
                        (split_csv/1cls.csv), Folder (good/ + anomalous folders [+ mask/])
  --normal-dir DIR      Folder dataset given explicitly: the normal images (split into train
                        and test by --split-ratio, seeded by --seed)
  --abnormal-dir DIR    ... anomalous images (repeatable; the folder name is the defect type)
  --mask-dir DIR        ... masks, <stem>_mask.* or <stem>.* (flat or one sub-folder per type)
  --split-ratio F       fraction of the normal images held out for testing (default 0.2)
  --validation-as-train MVTec 3D-AD: also train on validation/good/rgb
  --method snarm|bank   SNARM (default) or bank-only scoring
  --head W.safetensors  use this SNARM head instead of fitting one (warns when it was fitted on
                        other categories), e.g. results/train/head.safetensors from deno task train

 Fitting (SNARM without --head: one bank + one head fitted on the training images of the
 evaluated categories, the official unified protocol; cached, a re-run reuses the fit):
  --fit-steps N         training steps (default 240)        --fit-lr X   peak lr (default 2e-3)
  --fit-preset cpu|paper head size (default cpu)            --fit-images N  images/category (40)
  --synth LIST          anomaly sources, comma-separated: structure,texture,scratch,blob,edge,
                        smear,stain,paint (default: scratch,blob,edge,smear,stain,paint)
  --val-synth LIST      anomaly sources of the validation samples (default: those not in --synth,
                        i.e. structure,texture: validation on kinds the head never trained on)
  --texture-dir DIR     texture images of the texture source (default data/textures)
  --init-head FILE|shipped  start the fit from this head (fine-tuning; shipped = data/snarm_head)
  --cache-dir DIR       fit cache (default $SNARM_CACHE or ~/.cache/snarm)
  --refit               fit again even when a cached fit exists
  --no-blend            score with the head's map alone (the official SNARM output), not blended
                        with the bank map by the weight λ chosen on the validation split
  --category NAME       evaluate only this category (repeatable; default: all)
  --backbone NAME       mobilenetv2 (embedded, default) | mobilenetv2-wide (same model, expanded
                        activations, 512-d) | dinov2-vitb14-reg4 (needs --model)
  --model FILE.onnx     ONNX model for the backbone preset
  --backbone-engine E   auto (default: ONNX Runtime's native CPU engine, else wasm) | native | wasm
  --taps "A,B;C,D"      tap tensor names of --model, in groups (";" between groups, "," within):
                        e.g. your DINOv2 export's block outputs; deno task backbone --model
                        FILE lists the candidates with their shapes
  --input-name NAME     the model's image input (default: its first graph input)
  --feature-dim D       patch feature dimension (Aggregator width; default the preset's: 256, wide 512)
  --bank-size T         bank size after the coreset (default 10000; official 100000)
  --bank-cap N          random cap of training patches before the coreset (default 200000)
  --image-size S        centre-crop / backbone input size, multiple of 8 in [32, 4096] (default
                        392); a run whose memory estimate exceeds the machine's is refused
  --resize R            resize side before the centre crop (default round(S·448/392) = 448)
  --no-crop             resize straight to S (no crop: for data whose defects reach the border)
  --per-category-bank   one bank per category instead of one unified bank
  --save-bank FILE      also save the bank(s) as safetensors (atomic)
  --load-bank FILE      use this bank instead of building one
  --out DIR             output folder (default results/)
  --seed N              seed of the random cap and coreset (default 0)
  --shard I/N           evaluate the I-th of N disjoint parts of the test images (all categories,
                        balanced by image count) and write its scores and raw maps (shard.json,
                        raw_maps/, images.csv) for deno task merge; a finished shard is skipped
  --prepare-only        build (and --save-bank) the banks and fit the heads, score nothing: the
                        shared inputs of sharded runs (--load-bank, the fit cache)
  --no-png              skip the anomaly-map PNGs
  --save-maps           also write the raw f32 anomaly maps, masks, scores and labels per category
                        to --out/raw_maps/<category>.safetensors (maps (N, S, S); ids, paths in
                        the metadata). images.csv always lists every test image's score
  --report              also write report/: report.html (interactive plots, metrics table,
                        per-image overlays), plotly.min.js, figures/*.png (PNGs need Chromium)
  -h, --help            this text
`;

function intOpt(
  v: string | undefined,
  name: string,
  def: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new Error(
      min > 1
        ? `--${name} expects an integer in [${min}, ${max}], got "${v}"`
        : `--${name} expects ${min > 0 ? "a positive" : "a non-negative"} integer, got "${v}"`,
    );
  }
  if (n > max) throw new Error(`--${name} expects an integer in [${min}, ${max}], got "${v}"`);
  return n;
}

/** `deno task` runs in the project root; resolve user paths against the caller's folder. */
const CALLER_CWD = Deno.env.get("INIT_CWD") ?? Deno.cwd();
function userPath(p: string): string {
  return resolve(CALLER_CWD, p);
}

/** The parsed command line (node:util parseArgs over {@link OPTIONS}). */
function parseCommandLine() {
  return parseArgs({ args: Deno.args, options: OPTIONS, allowPositionals: false }).values;
}
type EvalValues = ReturnType<typeof parseCommandLine>;

/**
 * A run's settings from the command line: paths resolved against the caller's folder, every
 * number and combination checked before any work (errors name the flag), the flags the chosen
 * method ignores reported.
 */
function runSettings(values: EvalValues) {
  const out = commitTarget(userPath(values.out!));
  let data = values.data === undefined ? DEFAULT_DATA : userPath(values.data);
  const dataset = datasetOptions(values);
  const shard = parseShard(values.shard);
  if (dataset.folder && values.data === undefined) data = dirname(dataset.folder.normalDir);
  const saveBank = values["save-bank"] === undefined ? undefined : userPath(values["save-bank"]);
  const loadBank = values["load-bank"] === undefined ? undefined : userPath(values["load-bank"]);
  // Parse every number before any work, so a bad value fails at once with the flag's name.
  const numbers = {
    featureDim: values["feature-dim"] === undefined
      ? undefined
      : intOpt(values["feature-dim"], "feature-dim", 0, 1),
    bankSize: intOpt(values["bank-size"], "bank-size", 10_000, 1),
    bankCap: intOpt(values["bank-cap"], "bank-cap", 200_000, 1),
    imageSize: intOpt(values["image-size"], "image-size", 392, 32, MAX_IMAGE_SIZE),
    seed: intOpt(values.seed, "seed", 0),
  };
  if (values["no-crop"] && values.resize !== undefined) {
    throw new Error("--no-crop and --resize exclude each other (--no-crop = --resize S)");
  }
  const resize = values["no-crop"]
    ? numbers.imageSize
    : values.resize === undefined
    ? undefined
    : Number(values.resize);
  if (resize !== undefined && (!Number.isInteger(resize) || resize < numbers.imageSize)) {
    throw new Error(
      `--resize must be an integer ≥ --image-size ${numbers.imageSize}, got "${values.resize}"`,
    );
  }
  const fitLr = values["fit-lr"] === undefined ? undefined : Number(values["fit-lr"]);
  if (fitLr !== undefined && !(fitLr > 0 && Number.isFinite(fitLr))) {
    throw new Error(`--fit-lr expects a positive number, got "${values["fit-lr"]}"`);
  }
  if (values["fit-preset"] !== undefined && !["cpu", "paper"].includes(values["fit-preset"])) {
    throw new Error(`--fit-preset must be "cpu" or "paper", got "${values["fit-preset"]}"`);
  }
  const initHead = values["init-head"] === undefined
    ? undefined
    : values["init-head"] === "shipped"
    ? SHIPPED_HEAD
    : userPath(values["init-head"]);
  const fit: FitSettings = {
    ...(values["fit-steps"] !== undefined
      ? { steps: intOpt(values["fit-steps"], "fit-steps", 0, 1) }
      : {}),
    ...(fitLr !== undefined ? { lr: fitLr } : {}),
    ...(values["fit-preset"] ? { preset: values["fit-preset"] as "cpu" | "paper" } : {}),
    ...(values["fit-images"] !== undefined
      ? { maxImages: intOpt(values["fit-images"], "fit-images", 0, 1) }
      : {}),
    ...(values.synth !== undefined ? { sources: parseSynthSources(values.synth) } : {}),
    ...(values["val-synth"] !== undefined
      ? { valSources: parseSynthSources(values["val-synth"], "valSources") }
      : {}),
    ...(values["texture-dir"] !== undefined ? { textureDir: userPath(values["texture-dir"]) } : {}),
    ...(initHead ? { init: initHead } : {}),
  };
  if (values.backbone === "dinov2-vitb14-reg4" && !values.model) {
    throw new Error("--backbone dinov2-vitb14-reg4 needs --model <your DINOv2 ONNX export>");
  }
  try {
    if (!Deno.statSync(out).isDirectory) throw new Error(`--out ${out} exists and is not a folder`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (saveBank) {
    const inside = saveBank.startsWith(out + "/") ? saveBank.slice(out.length + 1) : null;
    if (inside && OUT_ENTRIES.includes(inside.split("/")[0])) {
      throw new Error(
        `--save-bank ${saveBank} lies in ${inside.split("/")[0]}, which this run replaces in ` +
          `--out; save the bank elsewhere (e.g. ${out}/bank.safetensors)`,
      );
    }
    try {
      if (!Deno.statSync(dirname(saveBank)).isDirectory) throw new Error("not a folder");
    } catch {
      throw new Error(`--save-bank ${saveBank}: its folder ${dirname(saveBank)} does not exist`);
    }
  }
  if (loadBank) {
    const ignored = ["bank-size", "bank-cap", "save-bank"].filter((k) =>
      values[k as keyof typeof values] !== undefined
    );
    if (ignored.length) {
      console.error(
        `snarm eval: --load-bank given, ignoring ${ignored.map((k) => `--${k}`).join(", ")}`,
      );
    }
  }
  const engine = values["backbone-engine"];
  if (engine !== undefined && !["auto", "native", "wasm"].includes(engine)) {
    throw new Error(`--backbone-engine must be auto, native or wasm, got "${engine}"`);
  }
  const chosen = chooseMethod(values);
  if (chosen.head || chosen.method === "bank") {
    const ignored = [
      "fit-steps",
      "fit-lr",
      "fit-preset",
      "fit-images",
      "synth",
      "val-synth",
      "texture-dir",
      "init-head",
      "cache-dir",
    ].filter((k) => values[k as keyof typeof values] !== undefined);
    if (values.refit) ignored.push("refit");
    if (ignored.length) {
      console.error(
        `snarm eval: ${chosen.head ? "--head given" : "--method bank"}, ignoring ${
          ignored.map((k) => `--${k}`).join(", ")
        }`,
      );
    }
  }
  return { out, data, dataset, shard, saveBank, loadBank, numbers, resize, fit, engine, chosen };
}
type RunSettings = ReturnType<typeof runSettings>;

/**
 * The adapter, and the run's first line. Without an adapter no head can be fitted: the run uses a
 * cached fit, else scores bank-only (an error when `--method snarm` was asked for explicitly;
 * lib/eval/run.ts decides once it knows the fit's cache key).
 */
async function announce(values: EvalValues, { data, chosen }: RunSettings): Promise<void> {
  const gpu = await tryGetGpu();
  const fitted = !gpu
    ? "SNARM with a cached fit (no WebGPU adapter to fit a head" +
      (values.method === "snarm" ? ")" : ": bank-only scoring when none is cached)")
    : "SNARM, head fitted on the data's training images";
  console.error(
    `snarm eval: data ${data}; ${
      chosen.method === "bank"
        ? "bank-only scoring"
        : chosen.head
        ? `SNARM head ${chosen.head}`
        : fitted
    }; adapter: ${gpu ? gpu.info.description : "none (CPU engines / TypeScript reference)"}${
      chosen.method === "bank" ? "" : `; head engine: ${await resolveHeadEngine()}`
    }`,
  );
}

/** The request of a run (see {@link requestDigest}): its settings and its input files' contents. */
function runRequest(values: EvalValues, r: RunSettings): Promise<string> {
  const { data, dataset, chosen, loadBank, numbers, resize, fit, shard } = r;
  return requestDigest({
    data,
    dataset,
    categories: values.category ?? null,
    method: chosen.method,
    head: chosen.head ?? null,
    loadBank: loadBank ?? null,
    model: values.model ?? null,
    backbone: values.backbone ?? null,
    taps: parseTaps(values.taps) ?? null,
    inputName: values["input-name"] ?? null,
    numbers,
    resize: resize ?? null,
    fit: chosen.method === "snarm" && !chosen.head ? fit : null,
    blend: !values["no-blend"],
    unified: !values["per-category-bank"],
    shardCount: shard?.count ?? null,
  }, [loadBank, chosen.head]);
}

/** Whether `out` holds the complete outputs of this shard of the same request. */
async function shardComplete(
  out: string,
  shard: { index: number; count: number },
  request: string,
): Promise<boolean> {
  const done = await readShardManifest(out).catch(() => null);
  return !!(done && done.request === request && done.shard.index === shard.index &&
    done.shard.count === shard.count &&
    done.categories.every((c) => {
      try {
        return Deno.statSync(join(out, "raw_maps", `${c.category}.safetensors`)).isFile;
      } catch {
        return false;
      }
    }));
}

/** One category's per-image outputs in the stage folder: image rows, raw maps, PNG overlays. */
async function categoryOutputs(
  c: CategoryResult,
  staging: string,
  imageRows: ImageRow[],
  opts: { rawMaps: boolean; pngs: boolean },
): Promise<void> {
  for (let i = 0; i < c.ids.length; i++) {
    imageRows.push({
      category: c.category,
      id: c.ids[i],
      path: c.paths[i],
      label: c.labels[i],
      defect_type: c.defectTypes[i],
      score: c.imageScores[i],
    });
  }
  if (opts.rawMaps) {
    // Raw anomaly maps (f32, the exact values the metrics use); a shard's part of them.
    await Deno.mkdir(join(staging, "raw_maps"), { recursive: true });
    await writeRawMaps(join(staging, "raw_maps", `${c.category}.safetensors`), {
      maps: c.maps,
      masks: c.masks,
      scores: c.imageScores,
      labels: c.labels,
      ids: c.ids,
      paths: c.paths,
      defectTypes: c.defectTypes,
      size: c.size,
    });
  }
  if (!opts.pngs) return;
  let lo = Infinity, hi = -Infinity;
  for (const v of c.maps) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const dir = join(staging, "maps", c.category);
  await Deno.mkdir(dir, { recursive: true });
  const px = c.size * c.size;
  const used = new Set<string>();
  for (let i = 0; i < c.ids.length; i++) {
    const png = encodeHeatmapOverlay(
      c.rgb.subarray(i * px * 3, (i + 1) * px * 3),
      c.maps.subarray(i * px, (i + 1) * px),
      { vmin: lo, vmax: hi, alpha: 0.5, width: c.size, height: c.size },
    );
    // <type>_<name>.png; `scratch/deep_01` and `scratch_deep/01` would share one: the later gets ~2
    const base = c.ids[i].replace(/^test\//, "").replaceAll("/", "_");
    let name = `${base}.png`;
    for (let k = 2; used.has(name); k++) name = `${base}~${k}.png`;
    used.add(name);
    await Deno.writeFile(join(dir, name), png);
  }
}

/**
 * The run's summary outputs in the stage folder: results (or a shard's manifest and scores),
 * run.json (wall times, cache hits), the HTML report.
 */
async function runOutputs(
  values: EvalValues,
  result: EvalResult,
  staging: string,
  imageRows: ImageRow[],
  request: string,
): Promise<void> {
  const shard = result.shard;
  const base = resultsBase(result);
  const records: CategoryRecord[] = result.categories.map((c) => ({
    category: c.category,
    metrics: c.metrics,
    n_test: c.ids.length,
    n_defect: c.labels.reduce((a, b) => a + b, 0),
    has_masks: c.hasMasks,
    mask_conventions: c.maskConventions,
    empty_masks: c.emptyMasks,
  }));
  if (values["prepare-only"]) {
    // Nothing scored: the banks (--save-bank) and fitted heads (the fit cache) are the output.
  } else if (result.shard) {
    // A part of a sharded run: its images' scores and raw maps, and what merge checks.
    await Deno.writeTextFile(join(staging, "images.csv"), imagesCsv(imageRows));
    const manifest: ShardManifest = {
      format: SHARD_FORMAT,
      request,
      shard: { index: result.shard.index, count: result.shard.count },
      totals: result.shard.totals,
      base,
      categories: records.map(({ metrics: _m, ...r }) => r),
    };
    await Deno.writeTextFile(
      join(staging, "shard.json"),
      JSON.stringify(manifest, null, 2) + "\n",
    );
  } else {
    console.log(await writeResults(staging, base, records, imageRows));
  }
  // run.json: wall times and cache hits (they differ between runs; results.json does not).
  const run = {
    seconds: Number(result.seconds.toFixed(2)),
    banks: result.banks.map((b) => ({ name: b.name, seconds: Number(b.seconds.toFixed(2)) })),
    heads: result.heads.map((h) => ({
      scope: h.scope,
      cached: h.cached,
      seconds: Number(h.seconds.toFixed(2)),
      ...Object.fromEntries(
        Object.entries(h.fit ?? {}).filter(([k]) => TIMING_KEYS.has(k) && k !== "seconds"),
      ),
    })),
    categories: Object.fromEntries(result.categories.map((c) => [c.category, c.seconds])),
  };
  await Deno.writeTextFile(join(staging, "run.json"), JSON.stringify(run, null, 2) + "\n");
  if (values.report && !shard && !values["prepare-only"]) {
    const rep = await writeReport(join(staging, "report"), result, { png: !values["no-png"] });
    console.error(`snarm eval: report/report.html, ${rep.pngs.length} PNGs`);
  }
}

/** The closing line: what the run did and wrote. */
function doneMessage(
  values: EvalValues,
  r: RunSettings,
  result: EvalResult,
  imageRows: ImageRow[],
  pngs: boolean,
): string {
  const { out, saveBank, chosen, shard } = r;
  return values["prepare-only"]
    ? `prepared ${result.banks.length} bank(s)${
      saveBank
        ? ` (saved to ${
          result.banks.map((b) =>
            scopePath(saveBank, {
              name: b.name,
              categories: [],
              unified: b.name === "unified",
            })
          ).join(", ")
        })`
        : chosen.method === "snarm" && !chosen.head
        ? " (in the fit cache with its head)"
        : " — not kept: pass --save-bank FILE to keep it"
    }`
    : result.shard
    ? `shard ${shard!.index}/${
      shard!.count
    }: ${imageRows.length} test images; wrote ${out}/shard.json, raw_maps/`
    : `${result.categories.length} ${
      result.categories.length === 1 ? "category" : "categories"
    }; wrote ${out}/results.csv, results.json, images.csv${pngs ? ", maps/" : ""}`;
}

async function main() {
  flagWarnings(EVAL_FLAGS, Object.keys(OPTIONS));
  const values = parseCommandLine();
  if (values.help) {
    console.log(HELP);
    return;
  }
  const settings = runSettings(values);
  const { out, data, dataset, shard, saveBank, loadBank, numbers, resize, fit, engine, chosen } =
    settings;
  await announce(values, settings);

  // One run per --out (lock beside it); finish or roll back what a killed run left; build every
  // output in a stage folder beside --out and swap it in only when complete (lib/io/commit.ts).
  const lock = await acquireLock(out, { what: `--out ${out}` });
  await recoverOutput(out);
  // A shard whose --out already holds its complete outputs for the same request is skipped.
  let request = await runRequest(values, settings);
  if (shard && await shardComplete(out, shard, request)) {
    console.error(
      `snarm eval: shard ${shard.index}/${shard.count} is already complete in ${out}; skipping`,
    );
    lock.release();
    return;
  }
  const staging = await stageFolder(out);
  const onSigint = () => {
    discardStage(staging); // a stage whose commit began is left for the next run to finish
    lock.release();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSigint);
  Deno.addSignalListener("SIGTERM", onSigint);
  const imageRows: ImageRow[] = [];
  const pngs = !values["no-png"] && !shard && !values["prepare-only"];
  const rawMaps = !!values["save-maps"] || !!shard;
  try {
    const result = await runEval({
      data,
      method: chosen.method,
      head: chosen.head,
      requireHead: values.method === "snarm",
      categories: values.category,
      dataset,
      backbone: values.backbone,
      taps: parseTaps(values.taps),
      inputName: values["input-name"],
      model: values.model,
      backboneEngine: engine as "native" | "wasm" | "auto" | undefined,
      ...numbers,
      resize,
      fit,
      cacheDir: values["cache-dir"] === undefined ? undefined : userPath(values["cache-dir"]),
      refit: values.refit,
      blend: !values["no-blend"],
      unified: !values["per-category-bank"],
      loadBankPath: loadBank,
      saveBankPath: saveBank,
      shard,
      prepareOnly: values["prepare-only"],
      onCategory: (c) => categoryOutputs(c, staging, imageRows, { rawMaps, pngs }),
    });
    if (result.config.method !== chosen.method) {
      // no adapter and no cached fit: the run scored bank-only (lib/eval/run.ts said why)
      chosen.method = result.config.method as "bank" | "snarm";
      request = await runRequest(values, settings);
    }
    await runOutputs(values, result, staging, imageRows, request);
    // Commit: this tool's outputs in --out (results, maps, report, shard files) are replaced by
    // the staged ones; anything else in --out is kept.
    await hitFault("before-commit");
    await commitFolder(staging, out, { replace: OUT_ENTRIES });
    const what = doneMessage(values, settings, result, imageRows, pngs);
    console.error(`snarm eval: ${what} in ${result.seconds.toFixed(1)} s`);
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
    Deno.removeSignalListener("SIGTERM", onSigint);
    discardStage(staging);
    lock.release();
  }
}

/** What `deno task eval` may put in --out (replaced together on commit). */
const OUT_ENTRIES = [
  "results.json",
  "results.csv",
  "run.json",
  "images.csv",
  "maps",
  "raw_maps",
  "report",
  "shard.json",
];

/** `--shard I/N` → {index, count}; undefined when not given. */
function parseShard(v: string | undefined): { index: number; count: number } | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(v.trim());
  const index = m ? Number(m[1]) : NaN, count = m ? Number(m[2]) : NaN;
  if (!m || !(count >= 1) || !(index < count)) {
    throw new Error(`--shard expects I/N with 0 ≤ I < N (e.g. 0/4), got "${v}"`);
  }
  return { index, count };
}

/**
 * The request of a run: everything that determines its outputs, parsed and resolved (defaults
 * filled in, paths absolute; output-only flags such as --no-png left out), except --out and the
 * shard index. The parts of one sharded run have the same request (merge checks it, naming the
 * settings that differ), and a finished part re-run with the same request is skipped.
 */
async function requestDigest(
  settings: Record<string, unknown>,
  files: Array<string | undefined>,
): Promise<string> {
  // The contents of the bank and head files, not only their paths: a bank rebuilt in place
  // between two parts makes them another request.
  const contents: Record<string, string> = {};
  for (const f of files) {
    // (A per-category --load-bank names a pattern, bank.safetensors → bank.<category>.safetensors:
    // no file of that name to hash.)
    let bytes: Uint8Array;
    try {
      if (!f) continue;
      bytes = await Deno.readFile(f);
    } catch {
      continue;
    }
    contents[f] = await sha256Hex(bytes);
  }
  return JSON.stringify({ ...settings, contents });
}

/** Dataset options from the layout flags (a Folder dataset given explicitly, MVTec 3D-AD). */
function datasetOptions(values: {
  "normal-dir"?: string;
  "abnormal-dir"?: string[];
  "mask-dir"?: string;
  "split-ratio"?: string;
  "validation-as-train"?: boolean;
  seed?: string;
}): DatasetOptions {
  const opts: DatasetOptions = { validationAsTrain: values["validation-as-train"] ?? false };
  const folderFlags = ["abnormal-dir", "mask-dir", "split-ratio"] as const;
  if (values["normal-dir"] === undefined) {
    const stray = folderFlags.filter((f) => values[f] !== undefined);
    if (stray.length) throw new Error(`--${stray[0]} needs --normal-dir (a Folder dataset)`);
    return opts;
  }
  if (!values["abnormal-dir"]?.length) {
    throw new Error("--normal-dir needs at least one --abnormal-dir (the anomalous images)");
  }
  const ratio = values["split-ratio"] === undefined ? 0.2 : Number(values["split-ratio"]);
  if (!(ratio > 0 && ratio < 1)) {
    throw new Error(`--split-ratio must be in (0, 1), got "${values["split-ratio"]}"`);
  }
  opts.folder = {
    normalDir: userPath(values["normal-dir"]),
    abnormalDirs: values["abnormal-dir"].map(userPath),
    maskDir: values["mask-dir"] === undefined ? null : userPath(values["mask-dir"]),
    splitRatio: ratio,
    seed: values.seed === undefined ? 0 : Number(values.seed),
  };
  return opts;
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`snarm eval: error: ${cliMessage(e, EVAL_FLAGS, Object.keys(OPTIONS))}`);
    Deno.exit(1);
  }
}

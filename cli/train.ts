/**
 * `deno task train`: train the SNARM head on WebGPU (lib/train/run.ts) from one or more dataset
 * roots in MVTec AD layout (unified multi-class), writing `--out`/head.safetensors (official
 * parameter names; `deno task eval --method snarm --head …` and the default eval use it),
 * checkpoint.safetensors (weights + AdamW state + step + RNG state, atomic, every
 * `--checkpoint-every` steps), loss.csv and train.json.
 * @module
 */
import { parseArgs } from "node:util";
import { parseTaps } from "../lib/backbone/presets.ts";
import { resolve } from "node:path";
import { runTraining, TRAIN_PRESETS } from "../lib/train/run.ts";
import { DEFAULT_TEXTURE_DIR, parseSynthSources } from "../lib/train/synth.ts";
import { loadHeadWeights } from "../lib/model/weights.ts";
import { acquireLock } from "../lib/io/commit.ts";
import { cliMessage, flagWarnings } from "../lib/util/errors.ts";

const HELP = `deno task train --data DIR [--data DIR …] [options]

Train the SNARM head (residual navigator + self-navigated Mamba + multi-view decoder) on WebGPU.
Per dataset root: embed train/good once, build the bank (as deno task eval does), then per
training image the clean sample and --synth-per-image MemSeg-style synthetic anomalies, each with
its leave-own-image-out inter-residual; cached (float16) under --out/cache. Each step: residual
fusion with the current unary predictor, forward + focal loss + backward + AdamW (warm-up cosine).

  --data DIR             dataset root (repeatable; all categories, one model for all)
  --out DIR              output folder (default results/train)
  --preset cpu|paper     head size: cpu = d 16, depth 1 (default); paper = official d 128, depth 2
  --steps N              training steps (default 1000)
  --batch N              images per step (default: cpu 4, paper 2)
  --lr X                 peak learning rate (default 1e-3)
  --warmup N             linear warm-up steps (default 5% of --steps)
  --seed N               seed of bank, samples, weights and batches (default 0)
  --resume               continue from --out/checkpoint.safetensors (same settings required)
  --checkpoint-every N   checkpoint period in steps (default 100)
  --dropout P            dropout before each branch's LayerNorm (default 0.1, official)
  --max-images N         at most N training images per category get samples (default all)
  --synth-per-image N    synthetic anomalies per training image (default 2)
  --texture-dir DIR      textures of the texture anomaly source (default data/textures, 57
                         photographic textures; "none" = no texture source)
  --synth LIST           anomaly sources, comma-separated, drawn uniformly per sample:
                         structure,texture (MemSeg, default), scratch, blob, edge, smear, stain, paint
  --val-fraction F       hold out this fraction of each category's training images (at most 10)
                         for validation; the written head is the best validated one (default 0)
  --val-every N          validate every N steps (default max(10, steps/10))
  --patience N           stop after N validations without improvement (default: never)
  --init-head FILE       start from this head (fine-tuning; same preset and feature dim)
  --backbone NAME        mobilenetv2 (default) | dinov2-vitb14-reg4 (needs --model)
  --model FILE.onnx      ONNX model for the backbone preset
  --taps "A,B;C,D"       tap tensor names of --model, in groups (";" between groups, "," within):
                         e.g. your DINOv2 export's block outputs; deno task backbone --model
                         FILE lists the candidates with their shapes
  --input-name NAME      the model's image input (default: its first graph input)
  --feature-dim D        patch feature dimension (default the preset's, 256)
  --image-size S         input size = centre-crop side, multiple of 8 (default 392)
  --resize R             resize side before the centre crop (default round(S·448/392))
  --no-crop              resize straight to S (no crop)
  --bank-size T          bank size (default 10000)   --bank-cap N   random cap (default 200000)
  --cache-dir DIR        where to cache the prepared samples (default --out/cache)
  --no-cache             do not cache the prepared samples
  -h, --help             this text
`;

const CALLER_CWD = Deno.env.get("INIT_CWD") ?? Deno.cwd();
const userPath = (p: string) => resolve(CALLER_CWD, p);

function num(v: string | undefined, name: string, int = true): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || (int && !Number.isInteger(n))) {
    throw new Error(`--${name} expects ${int ? "an integer" : "a number"}, got "${v}"`);
  }
  return n;
}

/** The command line (node:util parseArgs). */
const OPTIONS = {
  data: { type: "string", multiple: true },
  out: { type: "string", default: "results/train" },
  preset: { type: "string", default: "cpu" },
  steps: { type: "string" },
  batch: { type: "string" },
  lr: { type: "string" },
  warmup: { type: "string" },
  seed: { type: "string" },
  resume: { type: "boolean", default: false },
  "checkpoint-every": { type: "string" },
  dropout: { type: "string" },
  "max-images": { type: "string" },
  "synth-per-image": { type: "string" },
  "texture-dir": { type: "string" },
  synth: { type: "string" },
  "val-fraction": { type: "string" },
  "val-every": { type: "string" },
  patience: { type: "string" },
  "init-head": { type: "string" },
  resize: { type: "string" },
  "no-crop": { type: "boolean", default: false },
  backbone: { type: "string" },
  model: { type: "string" },
  "feature-dim": { type: "string" },
  taps: { type: "string" },
  "input-name": { type: "string" },
  "image-size": { type: "string" },
  "bank-size": { type: "string" },
  "bank-cap": { type: "string" },
  "no-cache": { type: "boolean", default: false },
  "cache-dir": { type: "string" },
  help: { type: "boolean", short: "h", default: false },
} as const;

/** Library option names whose train flag is not their kebab-case. */
const TRAIN_FLAGS: Record<string, string> = {
  roots: "--data",
  sources: "--synth",
  inputSize: "--image-size",
};

async function main(): Promise<void> {
  flagWarnings(TRAIN_FLAGS, Object.keys(OPTIONS));
  const { values } = parseArgs({
    args: Deno.args,
    options: OPTIONS,
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  if (!values.data?.length) throw new Error("--data DIR is required (repeat it for several roots)");
  if (!(values.preset in TRAIN_PRESETS)) {
    throw new Error(`--preset must be "cpu" or "paper", got "${values.preset}"`);
  }
  const out = userPath(values.out!);
  if (values["no-crop"] && values.resize !== undefined) {
    throw new Error("--no-crop and --resize exclude each other (--no-crop = --resize S)");
  }
  const sources = values.synth === undefined ? undefined : parseSynthSources(values.synth);
  const valFraction = num(values["val-fraction"], "val-fraction", false);
  const init = values["init-head"]
    ? await loadHeadWeights(userPath(values["init-head"]))
    : undefined;
  // One run per --out: a second refuses at once, naming this process (lib/io/commit.ts).
  const lock = await acquireLock(out, { what: `--out ${out}` });
  const r = await runTraining({
    data: values.data.map(userPath),
    out,
    preset: values.preset as "cpu" | "paper",
    steps: num(values.steps, "steps"),
    batch: num(values.batch, "batch"),
    lr: num(values.lr, "lr", false),
    warmup: num(values.warmup, "warmup"),
    seed: num(values.seed, "seed"),
    resume: values.resume,
    checkpointEvery: num(values["checkpoint-every"], "checkpoint-every"),
    dropout: num(values.dropout, "dropout", false),
    maxImages: num(values["max-images"], "max-images"),
    synthPerImage: num(values["synth-per-image"], "synth-per-image"),
    textureDir: values["texture-dir"] === "none"
      ? undefined
      : values["texture-dir"]
      ? userPath(values["texture-dir"])
      : DEFAULT_TEXTURE_DIR,
    sources,
    valFraction,
    valEvery: num(values["val-every"], "val-every"),
    patience: num(values.patience, "patience"),
    init,
    resize: values["no-crop"]
      ? (num(values["image-size"], "image-size") ?? 392)
      : num(values.resize, "resize"),
    backbone: values.backbone,
    taps: parseTaps(values.taps),
    inputName: values["input-name"],
    model: values.model ? userPath(values.model) : undefined,
    featureDim: num(values["feature-dim"], "feature-dim"),
    imageSize: num(values["image-size"], "image-size"),
    bankSize: num(values["bank-size"], "bank-size"),
    bankCap: num(values["bank-cap"], "bank-cap"),
    cacheDir: values["no-cache"]
      ? null
      : values["cache-dir"] === undefined
      ? undefined
      : userPath(values["cache-dir"]),
  }).finally(() => lock.release());
  const n = Math.max(1, Math.floor(r.losses.length / 10));
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  const first = r.losses.length ? mean(r.losses.slice(0, n)) : undefined;
  const last = r.losses.length ? mean(r.losses.slice(-n)) : undefined;
  console.log(
    `trained ${r.stepsThisRun} steps (now at ${r.step}) on ${r.samples} samples, ` +
      `${r.config.embed_dim}-d, ${r.config.scale_list.length} branches × ${r.config.scan} scans; ` +
      `prep ${r.prepSeconds.toFixed(0)} s, training ${r.trainSeconds.toFixed(0)} s on ${r.adapter}`,
  );
  if (first !== undefined) {
    console.log(
      `loss (mean of the first / last ${n} step${n > 1 ? "s" : ""} of this run): ` +
        `${first.toFixed(4)} → ${last!.toFixed(4)}`,
    );
  }
  console.log(`wrote ${r.lossCsv}, ${r.checkpointPath}${r.headWritten ? `, ${r.headPath}` : ""}`);
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`error: ${cliMessage(e, TRAIN_FLAGS, Object.keys(OPTIONS))}`);
    Deno.exit(1);
  }
}

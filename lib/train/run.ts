/**
 * The SNARM head training loop behind `deno task train` (snarm-method.md §8; our loss, see
 * lib/train/loss.ts): cached training samples ({@link prepareTrainingSet}), per step the residual
 * fusion with the current unary predictor (the self-reference top-K depends on it, spec §5), one
 * {@link GpuHeadTrainer} step (forward + loss + backward + AdamW on WebGPU), warm-up + cosine
 * learning rate, atomic checkpoints with optimizer and RNG state, a loss CSV, and the final head
 * weights in the official format (loadable by `loadHead`, used by `deno task eval`).
 * @module
 */
import type { RunFeatureOptions } from "../backbone/mod.ts";
import { type Gpu, tryGetGpu } from "../gpu/device.ts";
import type { HeadConfig } from "../model/config.ts";
import { fuseResiduals } from "../residual/fuse.ts";
import { loadHeadWeights, saveHeadWeights } from "../model/weights.ts";
import type { DatasetOptions } from "../data/dataset.ts";
import { writeFileAtomic } from "../io/safetensors.ts";
import { noProgress, startProgress } from "../util/progress.ts";
import { warmCosineLr } from "./adamw.ts";
import { type Checkpoint, loadCheckpoint, saveCheckpoint, settingsMismatch } from "./checkpoint.ts";
import { GpuHeadTrainer, type StepLoss } from "./gpu/head_train.ts";
import { initHeadWeights } from "./init.ts";
import { mulberry32 } from "../ops/pointwise.ts";
import { prepareTrainingSet, type TrainingSet } from "./samples.ts";
import type { SynthSource } from "./synth.ts";
import type { HeadWeights } from "../model/weights.ts";
import type { Bank } from "../bank/bank.ts";
import { validateBank, validateHead, type Validation } from "./validate.ts";
import type { Metrics } from "../metrics/compute.ts";
import { OptionError } from "../util/errors.ts";

/** Head sizes of a training preset (the rest of the config is official: §6). */
export interface TrainPreset {
  embed_dim: number;
  depth: number;
  scan: number;
  scale_list: number[];
  /** Default images per step. */
  batch: number;
}

/**
 * Presets: `paper` = the official head (d 128, atrous rates 3/6/12/24, 4 scans, depth 2);
 * `cpu` = a smaller head that trains in reasonable time on two CPU cores under lavapipe
 * (d 16, one block, the same four rates and scans).
 */
export const TRAIN_PRESETS: Record<"paper" | "cpu", TrainPreset> = {
  paper: { embed_dim: 128, depth: 2, scan: 4, scale_list: [3, 6, 12, 24], batch: 2 },
  cpu: { embed_dim: 16, depth: 1, scan: 4, scale_list: [3, 6, 12, 24], batch: 4 },
};

/** Options of {@link runTraining}. */
export interface TrainOptions extends RunFeatureOptions {
  /** Dataset roots (unified multi-class training over all their categories). */
  data: string[];
  /** Output folder: checkpoint.safetensors, loss.csv, head.safetensors, train.json. */
  out: string;
  preset?: "cpu" | "paper";
  steps?: number;
  /** Images per step (default: the preset's). */
  batch?: number;
  /** Peak learning rate (1e-3, README experiment name). */
  lr?: number;
  /** Warm-up steps (default 5% of the steps). */
  warmup?: number;
  seed?: number;
  /** Resume from `<out>/checkpoint.safetensors`. */
  resume?: boolean;
  /** Checkpoint every N steps (default 100, as the official "checkpoint every 100 iterations"). */
  checkpointEvery?: number;
  /** Stop after this many steps of this invocation (tests of resume); default: run to `steps`. */
  stopAfter?: number;
  /** Dropout before the branch LayerNorm (official 0.1). */
  dropout?: number;
  // Sample preparation (lib/train/samples.ts).
  imageSize?: number;
  /** Resize side before the centre crop (default round(imageSize·448/392); = imageSize: no crop). */
  resize?: number;
  /** Categories to train on (default: all of each root). */
  categories?: string[];
  /** Dataset layout options (Folder spec, MVTec 3D-AD validation use; lib/data/dataset.ts). */
  dataset?: DatasetOptions;
  bankSize?: number;
  bankCap?: number;
  synthPerImage?: number;
  maxImages?: number;
  textureDir?: string;
  /** Synthetic anomaly sources (default: structure / texture, lib/train/synth.ts). */
  sources?: readonly SynthSource[];
  /**
   * Fraction of each category's training images held out for validation (default 0: no
   * validation). With a split the head is validated every `valEvery` steps and the final head is
   * the best validated one (early stopping; `patience` validations without improvement end the run).
   */
  valFraction?: number;
  /**
   * Anomaly sources of the validation images' synthetic samples (default: every source;
   * lib/train/samples.ts `valSources`).
   */
  valSources?: readonly SynthSource[];
  /** Validate every N steps (default max(10, steps / 10)). */
  valEvery?: number;
  /** Stop after this many validations without a better score (default: never stop early). */
  patience?: number;
  /** Start from these weights (fine-tuning) instead of a fresh initialisation. */
  init?: HeadWeights;
  /** Keep the built bank in the result's `set.banks` (eval fits score the test set with it). */
  keepBank?: boolean;
  /** Use this bank instead of building one (one root only). */
  bank?: Bank;
  /** Extra `__metadata__` entries of the written head (e.g. what it was fitted on). */
  headMetadata?: Record<string, string>;
  /** Cache folder of the prepared samples (default `<out>/cache`; null = none). */
  cacheDir?: string | null;
  progress?: boolean;
  /** A prepared set (skips preparation; tests). */
  trainingSet?: TrainingSet;
}

/** Result of {@link runTraining}. */
export interface TrainResult {
  headPath: string;
  /** Whether the final head was written (the run reached `steps`). */
  headWritten: boolean;
  checkpointPath: string;
  lossCsv: string;
  /** Steps completed in total and in this invocation. */
  step: number;
  stepsThisRun: number;
  /** Loss of each step of this invocation. */
  losses: number[];
  config: HeadConfig;
  samples: number;
  prepSeconds: number;
  trainSeconds: number;
  adapter: string;
  /** Validation passes (empty without a validation split). */
  validation: Validation[];
  /** Bank-only scoring of the validation samples (null without a validation split). */
  bankValidation: Metrics | null;
  /** Step of the written head (the best validation, or the last step). */
  bestStep: number;
  /** The written (best) head weights. */
  weights: HeadWeights;
  /** The prepared set (its banks when asked for). */
  set: TrainingSet;
}

function hash2(a: number, b: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35);
  h ^= h >>> 15;
  return Math.imul(h, 0x27d4eb2f) >>> 0;
}

/** Batch indices of step `s`: B uniform draws (with replacement) seeded by (seed, s). */
export function stepBatch(seed: number, s: number, B: number, n: number): number[] {
  const rnd = mulberry32(hash2(seed, s));
  return Array.from({ length: B }, () => Math.floor(rnd() * n));
}

/**
 * Step `s` of a run (spec §8): the seeded batch of cached samples (`stepBatch`), the residual
 * fusion with the head's current unary predictor, the warm-up + cosine learning rate, and the
 * trainer's step; `buf` holds the batch's X `(B, 2C, h, w)`, target `(B, h·w)` and unary weights.
 */
async function trainStep(
  trainer: GpuHeadTrainer,
  set: TrainingSet,
  config: HeadConfig,
  t: ReturnType<typeof trainSettings>,
  s: number,
  buf: { X: Float32Array; target: Float32Array; unaryW: Float32Array },
): Promise<{ l: StepLoss; rate: number }> {
  const { B, seed, lr, steps, warmup } = t;
  const { X, target, unaryW } = buf;
  const L = set.h * set.w, xLen = 2 * set.C * L;
  const idx = stepBatch(seed, s, B, set.samples.length);
  idx.forEach((i, b) => {
    X.set(set.samples[i].X, b * xLen);
    target.set(set.samples[i].target, b * L);
  });
  const u = await trainer.unary();
  unaryW.set(u.weight);
  const fu = await fuseResiduals(X, B, set.h, set.w, unaryW, u.bias, {
    ratio: config.self_ratio,
    method: config.residual_method,
    // WGSL, as fits have always used (FIT_VERSION): "native" would move the unary and waypoint
    // maps by f32 rounding, so near-ties among the references, so the fitted heads' bytes.
    engine: "webgpu",
  });
  const rate = warmCosineLr(s, {
    baseLr: lr,
    finalLr: lr * 0.01,
    totalSteps: steps,
    warmupSteps: warmup,
    warmupStartLr: 0,
  });
  const l = await trainer.step({
    Z: fu.Z,
    refMask: fu.refMask,
    target,
    lr: rate,
    dropoutSeed: hash2(seed ^ 0x5bd1e995, s),
  });
  return { l, rate };
}

/** `Deno.statSync(p)`, or null when `p` does not exist. */
function exists(p: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(p);
  } catch {
    return null;
  }
}

/** The run's training settings from the options (defaults filled in), each checked. */
function trainSettings(o: TrainOptions) {
  const presetName = o.preset ?? "cpu";
  const preset = TRAIN_PRESETS[presetName];
  if (!preset) throw new OptionError("preset", `must be "cpu" or "paper", got "${o.preset}"`);
  const steps = o.steps ?? 1000, B = o.batch ?? preset.batch, lr = o.lr ?? 1e-3;
  const seed = o.seed ?? 0, every = o.checkpointEvery ?? 100;
  const warmup = o.warmup ?? Math.floor(steps * 0.05);
  for (const [k, v] of Object.entries({ steps, batch: B, checkpointEvery: every })) {
    if (!Number.isInteger(v) || v < 1) {
      throw new OptionError(k, `must be a positive integer, got ${v}`);
    }
  }
  if (!(lr > 0 && Number.isFinite(lr))) {
    throw new OptionError("lr", `must be finite and > 0, got ${lr}`);
  }
  const dropout = o.dropout ?? 0.1;
  if (!(dropout >= 0 && dropout < 1)) {
    throw new OptionError("dropout", `must be in [0, 1), got ${dropout}`);
  }
  if (!Number.isInteger(seed) || seed < 0) {
    throw new OptionError("seed", `must be a non-negative integer, got ${seed}`);
  }
  if (o.maxImages !== undefined && (!Number.isInteger(o.maxImages) || o.maxImages < 1)) {
    throw new OptionError("maxImages", `must be a positive integer, got ${o.maxImages}`);
  }
  if (
    o.synthPerImage !== undefined && (!Number.isInteger(o.synthPerImage) || o.synthPerImage < 0)
  ) {
    throw new OptionError(
      "synthPerImage",
      `must be a non-negative integer, got ${o.synthPerImage}`,
    );
  }
  if (o.synthPerImage === 0) {
    console.warn("train: `synthPerImage` is 0: every target is 0 (no anomalies to learn from)");
  }
  for (const [k, v] of Object.entries({ bankSize: o.bankSize, bankCap: o.bankCap })) {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) {
      throw new OptionError(k, `must be a positive integer, got ${v}`);
    }
  }
  if (!Number.isInteger(warmup) || warmup < 0 || warmup > steps) {
    throw new OptionError("warmup", `must be an integer in [0, steps], got ${warmup}`);
  }
  if (o.patience !== undefined) {
    if (!Number.isInteger(o.patience) || o.patience < 1) {
      throw new OptionError("patience", `must be a positive integer, got ${o.patience}`);
    }
    if (!o.valFraction) {
      throw new OptionError(
        "patience",
        "needs a validation split to stop on (`valFraction` > 0)",
      );
    }
  }
  return { presetName, preset, steps, B, lr, seed, every, warmup, dropout };
}

/**
 * The checkpoint a `resume` continues, checked against the settings before the long sample
 * preparation; null for a fresh run, which must not overwrite another run's folder.
 */
async function resumeCheckpoint(
  o: TrainOptions,
  t: ReturnType<typeof trainSettings>,
  ckptPath: string,
): Promise<Checkpoint | null> {
  const { presetName, steps, B, lr, warmup, seed, dropout } = t;
  let resumed: Checkpoint | null = null;
  if (o.resume) {
    if (!exists(ckptPath)) {
      throw new OptionError("resume", `names no checkpoint: ${ckptPath} is missing`);
    }
    resumed = await loadCheckpoint(ckptPath);
    const { samples: _s, ...saved } = resumed.settings;
    const diff = settingsMismatch(saved, {
      preset: presetName,
      steps,
      batch: B,
      lr,
      warmup,
      seed,
      dropout,
    }).filter((l) => /^(preset|steps|batch|lr|warmup|seed|dropout):/.test(l));
    if (diff.length) {
      throw new OptionError(
        "resume",
        `${ckptPath} is a checkpoint of another configuration:\n  ${diff.join("\n  ")}`,
      );
    }
    if (resumed.step > steps) {
      throw new OptionError(
        "resume",
        `${ckptPath} is at step ${resumed.step}, beyond steps = ${steps}`,
      );
    }
  } else if (exists(ckptPath)) {
    throw new OptionError(
      "out",
      `${o.out} already holds a training run (checkpoint.safetensors): pass \`resume\` to ` +
        "continue it, or choose another `out` (or delete that folder)",
    );
  }
  return resumed;
}

/** The head configuration of a training set and preset (official keys, spec §6). */
function trainHeadConfig(
  set: TrainingSet,
  preset: (typeof TRAIN_PRESETS)[keyof typeof TRAIN_PRESETS],
): HeadConfig {
  return {
    image_size: [3, set.imageSize, set.imageSize],
    stride: set.imageSize / set.h,
    in_chans: 2 * set.C,
    embed_dim: preset.embed_dim,
    depth: preset.depth,
    scan: preset.scan,
    self_ratio: 0.75,
    scale_list: preset.scale_list,
    residual_method: "concat_abs_square",
    d_state: 4,
    d_conv: 4,
    expand: 2,
  };
}

/**
 * Train a SNARM head.
 * @throws {Error} without a WebGPU adapter, on bad options, on a dataset without `train/good`,
 *   or when `--resume` finds a checkpoint of another configuration.
 */
export async function runTraining(o: TrainOptions): Promise<TrainResult> {
  const t = trainSettings(o);
  const { presetName, preset, steps, B, lr, seed, every, warmup, dropout } = t;
  const gpu: Gpu | null = await tryGetGpu();
  if (!gpu) {
    throw new Error(
      "training needs a WebGPU adapter (none found); on a machine without a GPU install Mesa " +
        "lavapipe: apt-get install -y mesa-vulkan-drivers libvulkan1",
    );
  }
  const show = o.progress ?? true;
  const ckptPath = `${o.out}/checkpoint.safetensors`;
  const csvPath = `${o.out}/loss.csv`;
  const headPath = `${o.out}/head.safetensors`;
  const outStat = exists(o.out);
  if (outStat && !outStat.isDirectory) {
    throw new OptionError("out", `${o.out} exists and is not a folder`);
  }
  // Check the resume (or its absence) before the long sample preparation.
  const resumed = await resumeCheckpoint(o, t, ckptPath);
  const t0 = performance.now();
  const set = o.trainingSet ?? await prepareTrainingSet({
    roots: o.data,
    backbone: o.backbone,
    taps: o.taps,
    inputName: o.inputName,
    model: o.model,
    featureDim: o.featureDim,
    imageSize: o.imageSize,
    backboneEngine: o.backboneEngine,
    resize: o.resize,
    categories: o.categories,
    dataset: o.dataset,
    bankSize: o.bankSize,
    bankCap: o.bankCap,
    seed,
    synthPerImage: o.synthPerImage,
    maxImages: o.maxImages,
    textureDir: o.textureDir,
    sources: o.sources,
    valFraction: o.valFraction,
    valSources: o.valSources,
    keepBank: o.keepBank,
    bank: o.bank,
    cacheDir: o.cacheDir === undefined ? `${o.out}/cache` : o.cacheDir,
    progress: show,
  });
  const prepSeconds = (performance.now() - t0) / 1000;
  await Deno.mkdir(o.out, { recursive: true });
  if (!set.samples.length) throw new Error("training set is empty");
  const config = trainHeadConfig(set, preset);
  const settings = {
    preset: presetName,
    config,
    steps,
    batch: B,
    lr,
    warmup,
    seed,
    dropout,
    data: set.roots.map((r) => r.root),
    samples: set.samples.length,
    backbone: set.backbone,
    taps: set.taps,
    featureDim: set.C,
    imageSize: set.imageSize,
    resize: set.resize,
    ...(o.sources ? { sources: o.sources } : {}),
    ...(o.valFraction ? { valFraction: o.valFraction } : {}),
    ...(o.valSources ? { valSources: o.valSources } : {}),
  };
  let weights = o.init ?? initHeadWeights(config, seed);
  if (o.init) {
    const want = JSON.stringify(config), got = JSON.stringify(o.init.config);
    if (want !== got) {
      throw new Error(
        `the head to fine-tune has config ${got}, but this training needs ${want} ` +
          "(same preset, feature dim and image size)",
      );
    }
  }
  let start = 0;
  if (resumed) {
    const diff = settingsMismatch(resumed.settings, settings);
    if (diff.length) {
      throw new OptionError(
        "resume",
        `${ckptPath} is a checkpoint of another configuration:\n  ${diff.join("\n  ")}`,
      );
    }
    weights = resumed.weights;
    start = resumed.step;
    const prev = await Deno.readTextFile(`${o.out}/train.json`).then(JSON.parse, () => null);
    if (prev?.stoppedEarlyAt === start) {
      throw new OptionError(
        "resume",
        `${ckptPath} stopped early at step ${start} (\`patience\` validations without ` +
          `improvement); nothing to do (the best validated head is ${headPath})`,
      );
    }
    if (start === steps) {
      throw new OptionError(
        "resume",
        `${ckptPath} is already at step ${steps} of ${steps}; nothing to do ` +
          `(the finished head is ${headPath})`,
      );
    }
  }
  const trainer = await GpuHeadTrainer.create(gpu, weights, {
    B,
    h: set.h,
    w: set.w,
    dropout,
  });
  if (resumed) trainer.setOptimizerState(resumed.optim);
  // Loss CSV: keep the rows up to the resumed step.
  let csv = "step,lr,loss,head_loss,unary_loss,seconds\n";
  let secondsBefore = 0; // training seconds of the resumed run's earlier invocations
  if (resumed) {
    try {
      const old = (await Deno.readTextFile(csvPath)).trim().split("\n").slice(1);
      for (const line of old) {
        if (Number(line.split(",")[0]) > start) continue;
        csv += line + "\n";
        secondsBefore = Number(line.split(",")[5]) || secondsBefore;
      }
    } catch { /* no CSV yet */ }
  }
  await writeFileAtomic(csvPath, csv);
  const csvFile = await Deno.open(csvPath, { append: true });
  const L = set.h * set.w, xLen = 2 * set.C * L;
  const X = new Float32Array(B * xLen), target = new Float32Array(B * L);
  const unaryW = new Float32Array(set.C);
  const end = o.stopAfter !== undefined ? Math.min(steps, start + o.stopAfter) : steps;
  const bar = show ? startProgress("train", end - start) : noProgress;
  const losses: number[] = [];
  const validation: Validation[] = [];
  const bankValidation = set.val.length ? validateBank(set.val, set.C, set.h, set.w) : null;
  const valEvery = o.valEvery ?? Math.max(10, Math.floor(steps / 10));
  let best: { step: number; score: number; weights: HeadWeights } | null = null;
  let sinceBest = 0;
  let valSeconds = 0;
  const validate = async (step: number) => {
    const tv = performance.now();
    const w = await trainer.weights();
    const v = await validateHead(w, set.val, set.h, set.w, step);
    validation.push(v);
    if (!best || v.score > best.score) {
      best = { step, score: v.score, weights: w };
      sinceBest = 0;
    } else sinceBest++;
    valSeconds += (performance.now() - tv) / 1000;
    return v;
  };
  // The validation state travels with the checkpoint (validation.json, and best.safetensors, the
  // best validated weights so far), so that a resumed run chooses the same head as an
  // uninterrupted one; both files go once the head is written.
  const valPath = `${o.out}/validation.json`, bestPath = `${o.out}/best.safetensors`;
  let savedBest: number | null = null;
  if (resumed && set.val.length) {
    const saved = await Deno.readTextFile(valPath).then(JSON.parse, () => null);
    if (saved?.step === start) {
      const nan = (m: Record<string, number | null>) =>
        Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v ?? NaN])) as unknown as Metrics;
      for (const v of saved.validation) {
        validation.push({ step: v.step, score: v.score ?? NaN, snarm: nan(v.snarm) });
      }
      sinceBest = saved.sinceBest;
      if (saved.best) {
        best = { ...saved.best, weights: await loadHeadWeights(bestPath) };
        savedBest = saved.best.step;
      }
    } else {
      console.warn(
        `train: no validation state saved with the checkpoint at step ${start} (${valPath}): ` +
          "the head is chosen among the validations from here on",
      );
    }
  }
  if (set.val.length && start === 0) {
    if (o.init) await validate(0);
  }
  const tTrain = performance.now();
  const checkpoint = async (step: number) => {
    if (set.val.length) {
      const b = best as { step: number; score: number; weights: HeadWeights } | null;
      if (b && b.step !== savedBest) {
        await saveHeadWeights(bestPath, b.weights);
        savedBest = b.step;
      }
      await writeFileAtomic(
        valPath,
        JSON.stringify({
          step,
          sinceBest,
          best: b ? { step: b.step, score: b.score } : null,
          validation,
        }) + "\n",
      );
    }
    await saveCheckpoint(ckptPath, {
      weights: await trainer.weights(),
      step,
      optim: await trainer.optimizerState(),
      settings,
      rng: { seed, step },
    });
  };
  let stoppedAt: number | null = null;
  try {
    for (let s = start; s < end; s++) {
      const { l, rate } = await trainStep(trainer, set, config, t, s, { X, target, unaryW });
      if (!Number.isFinite(l.loss)) {
        throw new Error(`training diverged at step ${s + 1}: loss ${l.loss}`);
      }
      losses.push(l.loss);
      await csvFile.write(
        new TextEncoder().encode(
          `${s + 1},${rate.toExponential(4)},${l.loss.toFixed(6)},${l.headLoss.toFixed(6)},${
            l.unaryLoss.toFixed(6)
          },${(secondsBefore + (performance.now() - tTrain) / 1000).toFixed(1)}\n`,
        ),
      );
      let note = `loss ${l.loss.toFixed(4)}`;
      if (set.val.length && ((s + 1) % valEvery === 0 || s + 1 === steps)) {
        const v = await validate(s + 1);
        note += ` val ${(100 * v.score).toFixed(2)}`;
      }
      bar.tick(1, note);
      if ((s + 1) % every === 0 || s + 1 === end) await checkpoint(s + 1);
      if (o.patience !== undefined && sinceBest >= o.patience) {
        if (show) {
          console.log(`train: early stop at step ${s + 1} (best validation: step ${best!.step})`);
        }
        await checkpoint(s + 1);
        stoppedAt = s + 1;
        break;
      }
    }
  } finally {
    bar.stop();
    csvFile.close();
  }
  const trainSeconds = (performance.now() - tTrain) / 1000;
  const last = await trainer.weights();
  trainer.destroy();
  const chosen = best as { step: number; weights: HeadWeights } | null;
  const final = chosen ? chosen.weights : last;
  const finished = end === steps || stoppedAt !== null;
  const bestStep = chosen ? chosen.step : (stoppedAt ?? end);
  const valJson = validation.map((v) => ({ step: v.step, score: v.score, ...v.snarm }));
  if (finished) {
    await saveHeadWeights(headPath, final, {
      // No timings here: the same inputs and seed give the same head bytes (they are in train.json).
      snarm_train: JSON.stringify({ ...settings, bestStep }),
      backbone: set.backbone,
      feature_dim: String(set.C),
      image_size: String(set.imageSize),
      resize: String(set.resize),
      categories: JSON.stringify([...new Set(set.roots.flatMap((r) => r.categories))]),
      ...o.headMetadata,
    });
    for (const p of [bestPath, valPath]) await Deno.remove(p).catch(() => {});
  }
  await writeFileAtomic(
    `${o.out}/train.json`,
    JSON.stringify(
      {
        settings,
        step: stoppedAt ?? end,
        roots: set.roots,
        prepSeconds,
        trainSeconds,
        adapter: gpu.info.description,
        finalLoss: losses.at(-1) ?? null,
        bestStep,
        valSeconds,
        stoppedEarlyAt: stoppedAt,
        validation: valJson,
        bankValidation,
        valSamples: set.val.length,
      },
      null,
      2,
    ) + "\n",
  );
  return {
    headPath,
    headWritten: finished,
    checkpointPath: ckptPath,
    lossCsv: csvPath,
    step: stoppedAt ?? end,
    stepsThisRun: (stoppedAt ?? end) - start,
    losses,
    config,
    samples: set.samples.length,
    prepSeconds,
    trainSeconds,
    adapter: gpu.info.description,
    validation,
    bankValidation,
    bestStep,
    weights: final,
    set,
  };
}

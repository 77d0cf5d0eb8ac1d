/**
 * Training checkpoints: one safetensors file, written atomically (temp file + rename), holding
 * the head weights under their official names (loadable by `loadHead`), the AdamW moments
 * `optim.m` / `optim.v` (flat f32 in lib/train/backward_ref.ts `headParameters` order), and in
 * `__metadata__`: the head config, `train` = the run's settings (which a resume must match), the
 * step, the AdamW step count and the RNG state (every random draw of step s is seeded by
 * (seed, s), so seed + step are the whole state).
 * @module
 */
import { readSafeTensors, requireTensor, type Tensor } from "../io/safetensors.ts";
import { writeSafeTensors } from "../io/safetensors.ts";
import { configFromMetadata, configToMetadata } from "../model/config.ts";
import {
  type HeadWeights,
  headWeightsFromSafeTensors,
  headWeightsToTensors,
} from "../model/weights.ts";

/** Settings of a run that a resume must match (JSON-serialisable). */
export type TrainSettings = Record<string, unknown>;

/** A checkpoint in memory. */
export interface Checkpoint {
  weights: HeadWeights;
  /** Steps completed. */
  step: number;
  /** AdamW moments and step count. */
  optim: { t: number; m: Float32Array; v: Float32Array };
  settings: TrainSettings;
  /** RNG state: the run seed (draws of step s use (seed, s)). */
  rng: { seed: number; step: number };
}

/** Write `c` to `path` atomically. */
export async function saveCheckpoint(path: string, c: Checkpoint): Promise<void> {
  const tensors: Map<string, Tensor> = headWeightsToTensors(c.weights);
  tensors.set("optim.m", { dtype: "F32", shape: [c.optim.m.length], data: c.optim.m });
  tensors.set("optim.v", { dtype: "F32", shape: [c.optim.v.length], data: c.optim.v });
  await writeSafeTensors(path, tensors, {
    config: configToMetadata(c.weights.config),
    format: "snarm-train-checkpoint-v1",
    step: String(c.step),
    adam_t: String(c.optim.t),
    rng: JSON.stringify(c.rng),
    train: JSON.stringify(c.settings),
  });
}

/**
 * Read a checkpoint written by {@link saveCheckpoint}.
 * @throws {Error} naming the file when it is not a training checkpoint or a tensor is missing.
 */
export async function loadCheckpoint(path: string): Promise<Checkpoint> {
  const st = await readSafeTensors(path);
  if (st.metadata.format !== "snarm-train-checkpoint-v1") {
    throw new Error(
      `${path}: not a snarm training checkpoint (no __metadata__.format = snarm-train-checkpoint-v1)`,
    );
  }
  const cfg = configFromMetadata(st.metadata, path);
  const m = requireTensor(st, "optim.m", "F32", undefined, path).data as Float32Array;
  const v = requireTensor(st, "optim.v", "F32", undefined, path).data as Float32Array;
  st.tensors.delete("optim.m");
  st.tensors.delete("optim.v");
  const weights = headWeightsFromSafeTensors(st, cfg, path);
  const int = (key: string) => {
    const n = Number(st.metadata[key]);
    if (!Number.isInteger(n) || n < 0) {
      throw new Error(
        `${path}: __metadata__.${key} = ${JSON.stringify(st.metadata[key])} is not a step count`,
      );
    }
    return n;
  };
  const json = (key: string) => {
    try {
      return JSON.parse(st.metadata[key]);
    } catch {
      throw new Error(`${path}: __metadata__.${key} is not valid JSON`);
    }
  };
  const step = int("step"), t = int("adam_t");
  const settings = json("train") as TrainSettings, rng = json("rng");
  if (typeof settings !== "object" || settings === null) {
    throw new Error(`${path}: __metadata__.train is not an object`);
  }
  if (typeof settings.steps === "number" && step > settings.steps) {
    throw new Error(`${path}: step ${step} is beyond the run's ${settings.steps} steps`);
  }
  if (t !== step) throw new Error(`${path}: AdamW step ${t} differs from the step ${step}`);
  if (rng?.step !== step || typeof rng?.seed !== "number") {
    throw new Error(`${path}: __metadata__.rng ${st.metadata.rng} does not match step ${step}`);
  }
  if (m.length !== v.length) throw new Error(`${path}: optim.m and optim.v differ in length`);
  return { weights, step, optim: { t, m, v }, settings, rng };
}

/**
 * The keys whose values differ between a checkpoint's settings and the requested ones.
 * @returns `key: checkpoint value ≠ requested value` lines (empty = compatible).
 */
export function settingsMismatch(saved: TrainSettings, wanted: TrainSettings): string[] {
  const keys = new Set([...Object.keys(saved), ...Object.keys(wanted)]);
  const out: string[] = [];
  for (const k of keys) {
    const a = JSON.stringify(saved[k]), b = JSON.stringify(wanted[k]);
    if (a !== b) out.push(`${k}: checkpoint ${a} ≠ requested ${b}`);
  }
  return out;
}

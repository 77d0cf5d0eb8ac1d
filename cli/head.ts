/**
 * `deno task head` — run the SNARM head (spec §5–7) on a model input X and write the official
 * output tensors.
 *
 *   deno run -A cli/head.ts --weights W.safetensors --input IO.safetensors --out OUT.safetensors
 *
 * Input: `X` F32 (B, in_chans, h, w) = [inter-residual r ‖ patch features f], channels-first.
 * Output (fixture names and layouts): `unary` (B, 1, h, w), `ref_mask` (B, h·w) 1 = reference,
 * `head_logits` (nHeads, B, 1, h, w), `pixel_map` (B, 1, H, W), `pixel_map_smoothed_per_image`
 * (B, H, W), `image_score_per_image` (B); all F32. Written atomically.
 * Configuration: the weights' `__metadata__.config`, overridden by flags.
 * @module
 */
import { parseArgs } from "node:util";
import { dirname, resolve } from "node:path";
import {
  readSafeTensors,
  requireTensor,
  type Tensor,
  writeSafeTensors,
} from "../lib/io/safetensors.ts";
import { configFromMetadata, type HeadConfig, parseHeadConfig } from "../lib/model/config.ts";
import { Head } from "../lib/model/head.ts";
import { headWeightsFromSafeTensors } from "../lib/model/weights.ts";

const USAGE =
  `usage: deno task head --weights W.safetensors --input IO.safetensors --out OUT.safetensors
  [--out-size H,W] [--reference]
  configuration overrides (default: the weights' __metadata__.config):
  [--image-size C,H,W] [--stride N] [--in-chans N] [--embed-dim N] [--depth N] [--scan N]
  [--self-ratio X] [--scale-list a,b,…] [--residual-method M] [--d-state N] [--d-conv N] [--expand N]`;

const CONFIG_FLAGS: Record<string, string> = {
  "image-size": "image_size",
  "stride": "stride",
  "in-chans": "in_chans",
  "embed-dim": "embed_dim",
  "depth": "depth",
  "scan": "scan",
  "self-ratio": "self_ratio",
  "scale-list": "scale_list",
  "residual-method": "residual_method",
  "d-state": "d_state",
  "d-conv": "d_conv",
  "expand": "expand",
};

function numList(s: string, flag: string): number[] {
  const v = s.split(",").map((x) => Number(x.trim()));
  if (v.some((x) => !Number.isFinite(x))) {
    throw new Error(`--${flag}: expected comma-separated numbers, got "${s}"`);
  }
  return v;
}

/** Resolve the configuration: metadata config (if any) with flag overrides. */
export function resolveConfig(
  meta: Record<string, string>,
  flags: Record<string, string | undefined>,
): HeadConfig {
  let raw: Record<string, unknown> = {};
  if (meta.config) raw = { ...configFromMetadata(meta, "weights") };
  for (const [flag, key] of Object.entries(CONFIG_FLAGS)) {
    const v = flags[flag];
    if (v === undefined) continue;
    if (key === "image_size" || key === "scale_list") raw[key] = numList(v, flag);
    else if (key === "residual_method") raw[key] = v;
    else {
      const n = Number(v);
      if (!Number.isFinite(n)) throw new Error(`--${flag}: expected a number, got "${v}"`);
      raw[key] = n;
    }
  }
  return parseHeadConfig(raw);
}

/** Run the CLI with `argv` (without the program name). */
export async function main(argv: string[]): Promise<void> {
  const options = {
    weights: { type: "string" },
    input: { type: "string" },
    out: { type: "string" },
    "out-size": { type: "string" },
    reference: { type: "boolean" },
    help: { type: "boolean", short: "h" },
    ...Object.fromEntries(Object.keys(CONFIG_FLAGS).map((k) => [k, { type: "string" }])),
  } as const;
  const { values } = parseArgs({ args: argv, options, allowPositionals: false });
  const v = values as Record<string, string | boolean | undefined>;
  if (v.help) {
    console.log(USAGE);
    return;
  }
  for (const k of ["weights", "input", "out"]) {
    if (typeof v[k] !== "string") throw new Error(`missing --${k}\n${USAGE}`);
  }
  const outDir = dirname(resolve(v.out as string));
  if (!statDir(outDir).isDirectory) throw new Error(`--out: ${outDir} is not a folder`);
  const wst = await readSafeTensors(v.weights as string);
  let cfg: ReturnType<typeof resolveConfig>;
  try {
    cfg = resolveConfig(wst.metadata, v as Record<string, string | undefined>);
  } catch (e) {
    throw new Error(
      `${v.weights}: ${
        (e as Error).message
      } (no usable __metadata__.config; pass the config flags, see --help)`,
    );
  }
  const head = new Head(headWeightsFromSafeTensors(wst, cfg, v.weights as string));
  const io = await readSafeTensors(v.input as string);
  const xt = requireTensor(io, "X", "F32", [-1, -1, -1, -1], v.input as string);
  const [B, C, h, w] = xt.shape;
  if (C !== cfg.in_chans) {
    throw new Error(
      `${v.input}: tensor X has ${C} channels, the head expects in_chans = ${cfg.in_chans}`,
    );
  }
  let outSize: [number, number] | undefined;
  if (typeof v["out-size"] === "string") {
    const s = numList(v["out-size"], "out-size");
    if (s.length !== 2 || s.some((x) => !Number.isInteger(x) || x <= 0)) {
      throw new Error(`--out-size: expected H,W`);
    }
    outSize = [s[0], s[1]];
  }
  const t0 = performance.now();
  const r = await head.forward(xt.data as Float32Array, B, h, w, {
    outSize,
    reference: !!v.reference,
  });
  const ms = performance.now() - t0;
  const L = h * w, nH = head.dims.nHeads;
  const f32 = (shape: number[], data: Float32Array): Tensor => ({ dtype: "F32", shape, data });
  const tensors: Record<string, Tensor> = {
    unary: f32([B, 1, h, w], r.unary),
    ref_mask: f32([B, L], Float32Array.from(r.refMask)),
    head_logits: f32([nH, B, 1, h, w], r.headLogits),
    pixel_map: f32([B, 1, r.H, r.W], r.pixelMap),
    pixel_map_smoothed_per_image: f32([B, r.H, r.W], r.smoothed),
    image_score_per_image: f32([B], r.imageScores),
  };
  await writeSafeTensors(v.out as string, tensors, {
    config: JSON.stringify(cfg),
    producer: "snarm cli/head.ts",
  });
  console.log(
    `head: ${B} image(s), grid ${h}×${w}, ${nH} heads, maps ${r.H}×${r.W}, ${ms.toFixed(0)} ms; ` +
      `image scores ${[...r.imageScores].map((s) => s.toFixed(4)).join(", ")} → ${v.out}`,
  );
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    console.error(`head: ${(e as Error).message}`);
    Deno.exit(1);
  }
}

function statDir(path: string): Deno.FileInfo {
  try {
    return Deno.statSync(path);
  } catch {
    throw new Error(`--out: folder ${path} does not exist`);
  }
}

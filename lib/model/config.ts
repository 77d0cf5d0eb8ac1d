/**
 * Configuration of the SNARM head (spec §5–6): the official keys of the fixtures'
 * `__metadata__.config` JSON, validated, plus the derived sizes every stage uses.
 * @module
 */

/** Official configuration keys (as stored in `__metadata__.config` of an official weights file). */
export interface HeadConfig {
  /** `[channels, H, W]` of the network input image; `H, W` is the default output map size. */
  image_size: [number, number, number];
  /** Grid stride: the working grid is `H / stride × W / stride` (49×49 for 392 and 8). */
  stride: number;
  /** Channels of the model input X = [r ‖ f] (1024 in the paper = 2·512). */
  in_chans: number;
  /** Token width d of each branch (128 in the paper). */
  embed_dim: number;
  /** Self-Navigated Mamba blocks per branch (2). */
  depth: number;
  /** Scan orders per branch (4: row-major, column-major, and both reversed). */
  scan: number;
  /** Fraction of positions kept as self-references (0.75). */
  self_ratio: number;
  /** Atrous rate of each branch's decoder heads, one branch per rate ([3, 6, 12, 24]). */
  scale_list: number[];
  /** Residual encoding P (`concat_abs_square`). */
  residual_method: "abs" | "square" | "concat_abs_square";
  /** Mamba state size N (mamba_ssm default 16; SNARM hard-codes 4). */
  d_state: number;
  /** Mamba causal conv1d kernel size (4). */
  d_conv: number;
  /** Mamba expansion factor (2). */
  expand: number;
}

/** Sizes derived from a {@link HeadConfig} (spec §6 "Mamba mixer settings"). */
export interface HeadDims {
  /** Residual/feature channels C = in_chans / 2; also the encoded width Cp. */
  C: number;
  /** Token width d. */
  d: number;
  /** Mamba inner width = expand · d. */
  dInner: number;
  /** Δ rank = ceil(d / 16). */
  dtRank: number;
  /** Mamba state size N. */
  dState: number;
  /** Causal conv1d kernel size. */
  dConv: number;
  /** Branches = scale_list.length. */
  nBranch: number;
  /** Scans per branch. */
  nScan: number;
  /** Blocks per branch. */
  depth: number;
  /** Heads = nBranch · nScan; head index = branch·nScan + scan. */
  nHeads: number;
  /** Grid height/width implied by image_size / stride. */
  h: number;
  w: number;
  /** Default output map size (image_size[1], image_size[2]). */
  H: number;
  W: number;
}

/** Mamba defaults SNARM uses (spec §6: d_state 4, d_conv 4, expand 2). */
export const MAMBA_DEFAULTS = { d_state: 4, d_conv: 4, expand: 2 } as const;

const METHODS = ["abs", "square", "concat_abs_square"] as const;

function posInt(v: unknown, key: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    throw new Error(`head config: ${key} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * Validate a configuration object with the official keys; `d_state`, `d_conv` and `expand` default
 * to 4, 4, 2. Extra keys (`seed`, `batch`, `low_res`, …) are ignored.
 * @throws {Error} naming the key when one is missing or invalid.
 */
export function parseHeadConfig(raw: Record<string, unknown>): HeadConfig {
  const need = [
    "image_size",
    "stride",
    "in_chans",
    "embed_dim",
    "depth",
    "scan",
    "self_ratio",
    "scale_list",
    "residual_method",
  ];
  for (const k of need) {
    if (!(k in raw)) throw new Error(`head config: missing key ${k}`);
  }
  const is = raw.image_size;
  if (!Array.isArray(is) || is.length !== 3) {
    throw new Error(`head config: image_size must be [channels, H, W], got ${JSON.stringify(is)}`);
  }
  is.forEach((v, i) => posInt(v, `image_size[${i}]`));
  const sl = raw.scale_list;
  if (!Array.isArray(sl) || sl.length === 0) {
    throw new Error(`head config: scale_list must be a non-empty list, got ${JSON.stringify(sl)}`);
  }
  sl.forEach((v, i) => posInt(v, `scale_list[${i}]`));
  const ratio = raw.self_ratio;
  if (typeof ratio !== "number" || !(ratio > 0 && ratio <= 1)) {
    throw new Error(`head config: self_ratio must be in (0, 1], got ${JSON.stringify(ratio)}`);
  }
  const method = raw.residual_method;
  if (typeof method !== "string" || !(METHODS as readonly string[]).includes(method)) {
    throw new Error(
      `head config: residual_method must be one of ${METHODS.join(", ")}, got ${
        JSON.stringify(method)
      }`,
    );
  }
  const cfg: HeadConfig = {
    image_size: [is[0], is[1], is[2]] as [number, number, number],
    stride: posInt(raw.stride, "stride"),
    in_chans: posInt(raw.in_chans, "in_chans"),
    embed_dim: posInt(raw.embed_dim, "embed_dim"),
    depth: posInt(raw.depth, "depth"),
    scan: posInt(raw.scan, "scan"),
    self_ratio: ratio,
    scale_list: sl.slice() as number[],
    residual_method: method as HeadConfig["residual_method"],
    d_state: posInt(raw.d_state ?? MAMBA_DEFAULTS.d_state, "d_state"),
    d_conv: posInt(raw.d_conv ?? MAMBA_DEFAULTS.d_conv, "d_conv"),
    expand: posInt(raw.expand ?? MAMBA_DEFAULTS.expand, "expand"),
  };
  if (cfg.in_chans % 2 !== 0) {
    throw new Error(`head config: in_chans must be even (X = [r ‖ f]), got ${cfg.in_chans}`);
  }
  if (cfg.scan !== 1 && cfg.scan !== 4) {
    throw new Error(
      `head config: scan must be 1 (row-major only) or 4 (row, column, reversed row, reversed column) as in the official code, got ${cfg.scan}`,
    );
  }
  return cfg;
}

/** Parse the `config` entry of a safetensors `__metadata__`. @throws {Error} when absent or invalid. */
export function configFromMetadata(meta: Record<string, string>, what = "weights"): HeadConfig {
  const s = meta.config;
  if (!s) {
    throw new Error(
      `${what}: __metadata__ has no "config" entry; pass the configuration explicitly`,
    );
  }
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(s);
  } catch (e) {
    throw new Error(`${what}: __metadata__.config is not JSON (${(e as Error).message})`);
  }
  return parseHeadConfig(raw);
}

/** Derived sizes of a configuration (spec §6). */
export function headDims(cfg: HeadConfig): HeadDims {
  const d = cfg.embed_dim;
  return {
    C: cfg.in_chans / 2,
    d,
    dInner: cfg.expand * d,
    dtRank: Math.ceil(d / 16),
    dState: cfg.d_state,
    dConv: cfg.d_conv,
    nBranch: cfg.scale_list.length,
    nScan: cfg.scan,
    depth: cfg.depth,
    nHeads: cfg.scale_list.length * cfg.scan,
    h: Math.floor(cfg.image_size[1] / cfg.stride),
    w: Math.floor(cfg.image_size[2] / cfg.stride),
    H: cfg.image_size[1],
    W: cfg.image_size[2],
  };
}

/** The configuration as the JSON string stored in `__metadata__.config`. */
export function configToMetadata(cfg: HeadConfig): string {
  return JSON.stringify(cfg);
}

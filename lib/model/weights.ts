/**
 * SNARM head weights with the official parameter names (`model.vit.state_dict()` of
 * `SelfNavigatedResidualMambaDecoder`, no `vit.` prefix; spec §5–6), loaded from and saved to
 * safetensors. Every name, shape and dtype is validated; errors name the tensor.
 * @module
 */
import {
  readSafeTensors,
  type SafeTensors,
  SafeTensorsError,
  type Tensor,
  writeSafeTensors,
} from "../io/safetensors.ts";
import {
  configFromMetadata,
  configToMetadata,
  type HeadConfig,
  type HeadDims,
  headDims,
} from "./config.ts";

/** One Mamba v1 mixer (`mamba_list.i.k.mixer.*`), all row-major f32 as in PyTorch. */
export interface MixerWeights {
  /** `in_proj.weight` (2·dInner, d), no bias. */
  inProj: Float32Array;
  /** `conv1d.weight` (dInner, 1, dConv) stored as (dInner, dConv). */
  conv1dW: Float32Array;
  /** `conv1d.bias` (dInner). */
  conv1dB: Float32Array;
  /** `x_proj.weight` (dtRank + 2·dState, dInner), no bias. */
  xProj: Float32Array;
  /** `dt_proj.weight` (dInner, dtRank). */
  dtProjW: Float32Array;
  /** `dt_proj.bias` (dInner). */
  dtProjB: Float32Array;
  /** `A_log` (dInner, dState); A = −exp(A_log). */
  aLog: Float32Array;
  /** `D` (dInner) skip. */
  D: Float32Array;
  /** `out_proj.weight` (d, dInner), no bias. */
  outProj: Float32Array;
}

/** One Self-Navigated Mamba block (`mamba_list.i.k.*`). */
export interface BlockWeights {
  /** `norm.weight` (d): RMSNorm (eps 1e-5, no bias) of the fused add + norm. */
  normW: Float32Array;
  /** `conv.weight` (d, d, 3, 3): 3×3 conv, padding 1, on the scan-ordered grid. */
  convW: Float32Array;
  /** `conv.bias` (d). */
  convB: Float32Array;
  mixer: MixerWeights;
}

/** One branch (one atrous rate): patch embedding, blocks, final LayerNorm. */
export interface BranchWeights {
  /** `conv_list.i.weight` (d, in_chans, 1, 1) stored as (d, in_chans). */
  embedW: Float32Array;
  /** `conv_list.i.bias` (d). */
  embedB: Float32Array;
  blocks: BlockWeights[];
  /** `norm_list.i.weight` / `.bias` (d): LayerNorm eps 1e-5. */
  lnW: Float32Array;
  lnB: Float32Array;
}

/** One decoder head (`head_list.j`, j = branch·scan + s). */
export interface DecoderWeights {
  /** `0.conv.weight` (d, d, 3, 3), no bias; dilation = padding = scale_list[branch]. */
  convW: Float32Array;
  /** `0.norm.{weight,bias,running_mean,running_var}` (d): BatchNorm2d eval, eps 1e-5. */
  bnW: Float32Array;
  bnB: Float32Array;
  bnMean: Float32Array;
  bnVar: Float32Array;
  /** `1.weight` (1, d, 1, 1) stored as (d). */
  outW: Float32Array;
  /** `1.bias` (1). */
  outB: Float32Array;
}

/** All weights of the head plus its configuration. */
export interface HeadWeights {
  config: HeadConfig;
  dims: HeadDims;
  /** `simple_predictor.weight` (1, C, 1, 1) stored as (C): unary 1×1 conv on P(r). */
  unaryW: Float32Array;
  /** `simple_predictor.bias` (1). */
  unaryB: Float32Array;
  branches: BranchWeights[];
  heads: DecoderWeights[];
}

/** One expected entry: name, shape; dtype is F32 except `num_batches_tracked` (I64, shape []). */
export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: "F32" | "I64";
}

/** Every tensor an official checkpoint of this configuration holds, in state_dict order. */
export function weightSpecs(cfg: HeadConfig): WeightSpec[] {
  const D = headDims(cfg);
  const { d, dInner: di, dtRank: R, dState: n, dConv: kc } = D;
  const f = (name: string, shape: number[]): WeightSpec => ({ name, shape, dtype: "F32" });
  const out: WeightSpec[] = [
    f("simple_predictor.weight", [1, D.C, 1, 1]),
    f("simple_predictor.bias", [1]),
  ];
  for (let i = 0; i < D.nBranch; i++) {
    out.push(f(`conv_list.${i}.weight`, [d, cfg.in_chans, 1, 1]), f(`conv_list.${i}.bias`, [d]));
  }
  for (let i = 0; i < D.nBranch; i++) {
    for (let k = 0; k < D.depth; k++) {
      const p = `mamba_list.${i}.${k}.`;
      out.push(
        f(p + "mixer.A_log", [di, n]),
        f(p + "mixer.D", [di]),
        f(p + "mixer.in_proj.weight", [2 * di, d]),
        f(p + "mixer.conv1d.weight", [di, 1, kc]),
        f(p + "mixer.conv1d.bias", [di]),
        f(p + "mixer.x_proj.weight", [R + 2 * n, di]),
        f(p + "mixer.dt_proj.weight", [di, R]),
        f(p + "mixer.dt_proj.bias", [di]),
        f(p + "mixer.out_proj.weight", [d, di]),
        f(p + "norm.weight", [d]),
        f(p + "conv.weight", [d, d, 3, 3]),
        f(p + "conv.bias", [d]),
      );
    }
  }
  for (let i = 0; i < D.nBranch; i++) {
    out.push(f(`norm_list.${i}.weight`, [d]), f(`norm_list.${i}.bias`, [d]));
  }
  for (let j = 0; j < D.nHeads; j++) {
    const p = `head_list.${j}.`;
    out.push(
      f(p + "0.conv.weight", [d, d, 3, 3]),
      f(p + "0.norm.weight", [d]),
      f(p + "0.norm.bias", [d]),
      f(p + "0.norm.running_mean", [d]),
      f(p + "0.norm.running_var", [d]),
      { name: p + "0.norm.num_batches_tracked", shape: [], dtype: "I64" },
      f(p + "1.weight", [1, d, 1, 1]),
      f(p + "1.bias", [1]),
    );
  }
  return out;
}

/**
 * Build {@link HeadWeights} from parsed safetensors, checking every official name, shape and dtype.
 * `num_batches_tracked` (unused in eval) may be absent. Unknown tensor names are rejected, as
 * PyTorch's strict `load_state_dict` does.
 * @param cfg configuration; default: `__metadata__.config` of the file.
 * @throws {SafeTensorsError} naming the missing, unexpected or mis-shaped tensor.
 */
export function headWeightsFromSafeTensors(
  st: SafeTensors,
  cfg?: HeadConfig,
  what = "weights",
): HeadWeights {
  const config = cfg ?? configFromMetadata(st.metadata, what);
  const specs = weightSpecs(config);
  const known = new Set(specs.map((s) => s.name));
  const extra = [...st.tensors.keys()].filter((k) => !known.has(k));
  if (extra.length) {
    throw new SafeTensorsError(
      `${what}: unexpected tensor${extra.length > 1 ? "s" : ""} ${extra.slice(0, 5).join(", ")}${
        extra.length > 5 ? ", …" : ""
      } (not a parameter of the configured head; wrong config or a "vit." prefix?)`,
    );
  }
  const get = new Map<string, Float32Array>();
  for (const s of specs) {
    const t = st.tensors.get(s.name);
    if (!t) {
      if (s.dtype === "I64") continue;
      throw new SafeTensorsError(`${what}: missing tensor ${s.name} (expected F32 [${s.shape}])`);
    }
    if (t.dtype !== s.dtype) {
      throw new SafeTensorsError(
        `${what}: tensor ${s.name} has dtype ${t.dtype}, expected ${s.dtype}`,
      );
    }
    if (t.shape.length !== s.shape.length || t.shape.some((v, i) => v !== s.shape[i])) {
      throw new SafeTensorsError(
        `${what}: tensor ${s.name} has shape [${t.shape}], expected [${s.shape}]`,
      );
    }
    if (s.dtype === "F32") {
      const a = t.data as Float32Array;
      for (let i = 0; i < a.length; i++) {
        if (!Number.isFinite(a[i])) {
          throw new SafeTensorsError(
            `${what}: tensor ${s.name} holds a non-finite value at index ${i}`,
          );
        }
      }
      get.set(s.name, a);
    }
  }
  const g = (n: string) => get.get(n)!;
  const dims = headDims(config);
  const branches: BranchWeights[] = [];
  for (let i = 0; i < dims.nBranch; i++) {
    const blocks: BlockWeights[] = [];
    for (let k = 0; k < dims.depth; k++) {
      const p = `mamba_list.${i}.${k}.`;
      blocks.push({
        normW: g(p + "norm.weight"),
        convW: g(p + "conv.weight"),
        convB: g(p + "conv.bias"),
        mixer: {
          inProj: g(p + "mixer.in_proj.weight"),
          conv1dW: g(p + "mixer.conv1d.weight"),
          conv1dB: g(p + "mixer.conv1d.bias"),
          xProj: g(p + "mixer.x_proj.weight"),
          dtProjW: g(p + "mixer.dt_proj.weight"),
          dtProjB: g(p + "mixer.dt_proj.bias"),
          aLog: g(p + "mixer.A_log"),
          D: g(p + "mixer.D"),
          outProj: g(p + "mixer.out_proj.weight"),
        },
      });
    }
    branches.push({
      embedW: g(`conv_list.${i}.weight`),
      embedB: g(`conv_list.${i}.bias`),
      blocks,
      lnW: g(`norm_list.${i}.weight`),
      lnB: g(`norm_list.${i}.bias`),
    });
  }
  const heads: DecoderWeights[] = [];
  for (let j = 0; j < dims.nHeads; j++) {
    const p = `head_list.${j}.`;
    heads.push({
      convW: g(p + "0.conv.weight"),
      bnW: g(p + "0.norm.weight"),
      bnB: g(p + "0.norm.bias"),
      bnMean: g(p + "0.norm.running_mean"),
      bnVar: g(p + "0.norm.running_var"),
      outW: g(p + "1.weight"),
      outB: g(p + "1.bias"),
    });
  }
  return {
    config,
    dims,
    unaryW: g("simple_predictor.weight"),
    unaryB: g("simple_predictor.bias"),
    branches,
    heads,
  };
}

/**
 * Read a weights file (official names; configuration from `__metadata__.config` unless given).
 * @throws {SafeTensorsError} naming the file and tensor on any mismatch.
 */
export async function loadHeadWeights(path: string | URL, cfg?: HeadConfig): Promise<HeadWeights> {
  const st = await readSafeTensors(path);
  return headWeightsFromSafeTensors(st, cfg, String(path));
}

/** All tensors of `w` under their official names (num_batches_tracked = 0, I64 []). */
export function headWeightsToTensors(w: HeadWeights): Map<string, Tensor> {
  const map = new Map<string, Float32Array>();
  map.set("simple_predictor.weight", w.unaryW);
  map.set("simple_predictor.bias", w.unaryB);
  w.branches.forEach((b, i) => {
    map.set(`conv_list.${i}.weight`, b.embedW);
    map.set(`conv_list.${i}.bias`, b.embedB);
    map.set(`norm_list.${i}.weight`, b.lnW);
    map.set(`norm_list.${i}.bias`, b.lnB);
    b.blocks.forEach((k, j) => {
      const p = `mamba_list.${i}.${j}.`;
      map.set(p + "norm.weight", k.normW);
      map.set(p + "conv.weight", k.convW);
      map.set(p + "conv.bias", k.convB);
      const m = k.mixer;
      map.set(p + "mixer.A_log", m.aLog);
      map.set(p + "mixer.D", m.D);
      map.set(p + "mixer.in_proj.weight", m.inProj);
      map.set(p + "mixer.conv1d.weight", m.conv1dW);
      map.set(p + "mixer.conv1d.bias", m.conv1dB);
      map.set(p + "mixer.x_proj.weight", m.xProj);
      map.set(p + "mixer.dt_proj.weight", m.dtProjW);
      map.set(p + "mixer.dt_proj.bias", m.dtProjB);
      map.set(p + "mixer.out_proj.weight", m.outProj);
    });
  });
  w.heads.forEach((h, j) => {
    const p = `head_list.${j}.`;
    map.set(p + "0.conv.weight", h.convW);
    map.set(p + "0.norm.weight", h.bnW);
    map.set(p + "0.norm.bias", h.bnB);
    map.set(p + "0.norm.running_mean", h.bnMean);
    map.set(p + "0.norm.running_var", h.bnVar);
    map.set(p + "1.weight", h.outW);
    map.set(p + "1.bias", h.outB);
  });
  const out = new Map<string, Tensor>();
  // Same order as the fixtures' writer: (-itemsize, name) → I64 first, then F32 by name; this also
  // keeps every data offset a multiple of the element size.
  const specs = weightSpecs(w.config).slice().sort((a, b) => {
    const sa = a.dtype === "I64" ? 8 : 4, sb = b.dtype === "I64" ? 8 : 4;
    return sa !== sb ? sb - sa : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
  for (const s of specs) {
    if (s.dtype === "I64") {
      out.set(s.name, { dtype: "I64", shape: [], data: new BigInt64Array(1) });
    } else {
      const data = map.get(s.name);
      if (!data) throw new SafeTensorsError(`head weights: no data for ${s.name}`);
      out.set(s.name, { dtype: "F32", shape: s.shape, data });
    }
  }
  return out;
}

/** Save `w` atomically in the official format, with the configuration in `__metadata__.config`. */
export async function saveHeadWeights(
  path: string,
  w: HeadWeights,
  extraMetadata: Record<string, string> = {},
): Promise<void> {
  await writeSafeTensors(path, headWeightsToTensors(w), {
    ...extraMetadata,
    config: configToMetadata(w.config),
  });
}

/**
 * The SNARM head (spec §5–7): residual fusion (lib/residual) → self-navigated multi-head Mamba
 * (WebGPU, {@link GpuHead}; TypeScript reference {@link headForwardRef} without an adapter) →
 * anomaly maps and image scores.
 * @module
 */
import { tryGetGpu, warnFallback } from "../gpu/device.ts";
import { fuseResiduals, type FusionOut } from "../residual/mod.ts";
import { loadOrtNative, nativePreferred } from "../backbone/session.ts";
import { NativeHead } from "./native_head.ts";
import type { HeadConfig, HeadDims } from "./config.ts";
import { GpuHead, gpuHeadUnsupported } from "./gpu_head.ts";
import { type HeadMaps, headMaps } from "../maps/head.ts";
import { gaussianFilter, imageScore } from "../maps/mod.ts";
import { type Capture, headForwardRef } from "./reference.ts";
import { navigationIndex } from "./scan_order.ts";
import {
  type HeadWeights,
  headWeightsFromSafeTensors,
  loadHeadWeights,
  saveHeadWeights,
} from "./weights.ts";
import { parseSafeTensors } from "../io/safetensors.ts";
import { envChoice } from "../util/env.ts";

/** Options of {@link Head.forward}. */
export interface HeadForwardOptions {
  /** Output map size `[H, W]`; default the configuration's image size (392×392 in the paper). */
  outSize?: [number, number];
  /** Collect branch-0 intermediates under the fixtures' names (E_b0, mixer_b0_d0_in, …). */
  capture?: Capture;
  /** Run the TypeScript reference even when an adapter exists (same as `engine: "reference"`). */
  reference?: boolean;
  /** Where the head runs (default `"auto"`, see {@link resolveHeadEngine}). */
  engine?: HeadEngine;
}

/**
 * Where the head's forward runs: `"webgpu"` (the WGSL kernels, lib/model/gpu_head.ts),
 * `"native"` (ONNX Runtime's native CPU engine, lib/model/native_head.ts, with the native
 * nearest-reference search of lib/residual/native.ts), `"reference"` (plain TypeScript), or
 * `"auto"`: native when the WebGPU adapter is a CPU (lavapipe, SwiftShader) or absent and
 * onnxruntime-node loads, else webgpu when there is an adapter, else the reference.
 * `SNARM_HEAD=native|webgpu|reference` overrides `"auto"`.
 */
export type HeadEngine = "auto" | "native" | "webgpu" | "reference";

const HEAD_ENGINES = ["native", "webgpu", "reference"] as const;

/**
 * Resolve a {@link HeadEngine} request. Capturing intermediates needs webgpu or the reference
 * (`"auto"` then never picks native).
 * @throws {Error} on an unknown `SNARM_HEAD`, `"native"` when onnxruntime-node does not load or
 *   with a capture, `"webgpu"` without an adapter.
 */
export async function resolveHeadEngine(
  engine: HeadEngine = "auto",
  capture = false,
): Promise<"native" | "webgpu" | "reference"> {
  const e = engine === "auto" ? envChoice("SNARM_HEAD", HEAD_ENGINES) ?? "auto" : engine;
  if (e === "native") {
    if (capture) {
      throw new Error("head engine native: capturing intermediates needs webgpu or reference");
    }
    const ort = await loadOrtNative();
    if (ort instanceof Error) {
      throw new Error(`head engine native: onnxruntime-node: ${ort.message}`);
    }
    return "native";
  }
  if (e === "reference") return "reference";
  const gpu = await tryGetGpu();
  if (e === "webgpu") {
    if (!gpu) throw new Error("head engine webgpu: no WebGPU adapter here");
    return "webgpu";
  }
  if (!capture && (await nativePreferred(gpu))) return "native";
  return gpu ? "webgpu" : "reference";
}

/** Everything the head produces for B images (layouts row-major f32 unless noted). */
export interface HeadResult {
  /** `(B, h, w)` unary prediction u (the navigator's selector output). */
  unary: Float32Array;
  /** `(B, h, w)` waypoint map u + mean P(r). */
  waypoint: Float32Array;
  /** `(B, h·w)` navigation mask, 1 = self-reference. */
  refMask: Uint8Array;
  /** `(nHeads, B, 1, h, w)` decoder logits; head index = branch·nScan + scan. */
  headLogits: Float32Array;
  /** `(B, H, W)` mean over heads of sigmoid(bilinear(logits)). */
  pixelMap: Float32Array;
  /** `(B, H, W)` pixel map after the per-image Gaussian (σ = 4). */
  smoothed: Float32Array;
  /** `(B)` image scores: max of the 16×16/2 average pool of `smoothed`. */
  imageScores: Float32Array;
  H: number;
  W: number;
}

/** Throw if X holds NaN/±Inf, naming the first bad element as (image, channel, y, x). */
export function checkFiniteInput(
  X: Float32Array,
  C: number,
  h: number,
  w: number,
  name = "X",
): void {
  for (let i = 0; i < X.length; i++) {
    const v = X[i];
    if (v - v !== 0) {
      const L = h * w, p = i % L;
      throw new Error(
        `${name}: non-finite value ${v} at image ${Math.floor(i / (C * L))}, channel ${
          Math.floor(i / L) % C
        }, y ${Math.floor(p / w)}, x ${p % w}`,
      );
    }
  }
}

/** A loaded head: weights plus compiled GPU programs (created on first use per grid). */
export class Head {
  private gpuHeads = new Map<string, Promise<GpuHead>>();
  private nativeHead: Promise<NativeHead> | null = null;

  constructor(readonly weights: HeadWeights) {}

  get config(): HeadConfig {
    return this.weights.config;
  }

  get dims(): HeadDims {
    return this.weights.dims;
  }

  /**
   * Check a model input X `(B, in_chans, h, w)`.
   * @throws {Error} naming X: wrong size/channel count, non-square grid, NaN/Inf.
   */
  checkInput(X: Float32Array, B: number, h: number, w: number): void {
    const Cin = this.config.in_chans;
    for (const [k, v] of Object.entries({ B, h, w })) {
      if (!Number.isInteger(v) || v <= 0) {
        throw new Error(`X: ${k} must be a positive integer, got ${v}`);
      }
    }
    if (X.length !== B * Cin * h * w) {
      const c = X.length / (B * h * w);
      throw new Error(
        Number.isInteger(c)
          ? `X: ${c} channels, the head expects in_chans = ${Cin} (shape (B, in_chans, h, w) = (${B}, ${Cin}, ${h}, ${w}))`
          : `X: ${X.length} values do not form (B, in_chans, h, w) = (${B}, ${Cin}, ${h}, ${w})`,
      );
    }
    if (h !== w) {
      throw new Error(
        `X: grid ${h}×${w} is not square; the scan-ordered 3×3 conv (spec §6) needs h = w`,
      );
    }
    checkFiniteInput(X, Cin, h, w, "X");
  }

  /**
   * The Mamba head from the hybrid residual (spec §6): logits of every decoder head.
   * @param Z `(B, in_chans, h, w)` channels-first [R ‖ S_enc].
   * @param refMask `(B, h·w)` 1 = reference; every image needs the same number of zeros.
   * @returns `(nHeads, B, h·w)` logits.
   * @throws {Error} on mismatched sizes or masks; {@link GpuError} on a WebGPU failure.
   */
  async logits(
    Z: Float32Array,
    refMask: Uint8Array,
    B: number,
    h: number,
    w: number,
    opts: { capture?: Capture; reference?: boolean; engine?: HeadEngine } = {},
  ): Promise<Float32Array> {
    return (await this.run(Z, refMask, B, h, w, opts)).logits;
  }

  /** The head compiled for the native engine (created once). */
  native(): Promise<NativeHead> {
    if (!this.nativeHead) {
      this.nativeHead = NativeHead.create(this.weights);
      this.nativeHead.catch(() => (this.nativeHead = null));
    }
    return this.nativeHead;
  }

  /** Logits and, on the GPU path with `outSize`, the GPU-computed pixel and smoothed maps. */
  private async run(
    Z: Float32Array,
    refMask: Uint8Array,
    B: number,
    h: number,
    w: number,
    opts: {
      capture?: Capture;
      reference?: boolean;
      engine?: HeadEngine;
      outSize?: [number, number];
    },
  ): Promise<
    { logits: Float32Array; maps: { pixelMap: Float32Array; smoothed: Float32Array } | null }
  > {
    const Cin = this.config.in_chans;
    if (Z.length !== B * Cin * h * w) {
      throw new Error(
        `Z: ${Z.length} values, expected (B, in_chans, h, w) = (${B}, ${Cin}, ${h}, ${w})`,
      );
    }
    if (h !== w) throw new Error(`Z: grid ${h}×${w} is not square`);
    const { Ls } = navigationIndex(refMask, B, h, w, this.dims.nScan);
    const engine = opts.reference
      ? "reference"
      : await resolveHeadEngine(opts.engine, !!opts.capture);
    if (engine === "native") {
      const out = opts.outSize ?? null;
      const r = await (await this.native()).run(Z, refMask, B, h, w, out);
      if (!out || !r.pixelMap) return { logits: r.logits, maps: null };
      // The pixel map came from the graph; the Gaussian (σ = 4) per image here (lib/maps).
      const [H, W] = out, smoothed = new Float32Array(B * H * W);
      for (let b = 0; b < B; b++) {
        smoothed.set(
          gaussianFilter(r.pixelMap.subarray(b * H * W, (b + 1) * H * W), H, W, 4),
          b * H * W,
        );
      }
      return { logits: r.logits, maps: { pixelMap: r.pixelMap, smoothed } };
    }
    const gpu = engine === "reference" ? null : await tryGetGpu();
    const why = gpuHeadUnsupported(this.dims, Cin, h, w);
    if (!gpu || why) {
      // A chosen reference (option or SNARM_HEAD; "auto" picks it only without an adapter) is no
      // fallback: no warning then.
      const chosen = engine === "reference" && (opts.reference || (await tryGetGpu()) !== null);
      if (!chosen) warnFallback(why ? `the Mamba head (${why})` : "the Mamba head");
      return {
        logits: headForwardRef(this.weights, Z, refMask, B, h, w, { capture: opts.capture }),
        maps: null,
      };
    }
    const out = opts.outSize;
    const key = `${h}x${w}:${Ls}:${opts.capture ? "cap" : ""}:${out ? out.join("x") : ""}`;
    let p = this.gpuHeads.get(key);
    if (!p) {
      p = GpuHead.create(gpu, this.weights, h, w, Ls, !!opts.capture, out ?? null);
      this.gpuHeads.set(key, p);
      p.catch(() => this.gpuHeads.delete(key));
    }
    return await (await p).run(Z, refMask, B, opts.capture);
  }

  /** The recorded GPU program of a grid (for profiling in benchmarks); null without an adapter. */
  async gpuProgram(
    h: number,
    w: number,
    Ls: number,
    outSize?: [number, number],
  ): Promise<GpuHead | null> {
    const p = this.gpuHeads.get(`${h}x${w}:${Ls}::${outSize ? outSize.join("x") : ""}`);
    return p ? await p : null;
  }

  /**
   * The Mamba head and the maps from the hybrid residual (spec §6–7).
   * @param Z `(B, in_chans, h, w)` channels-first [R ‖ S_enc]; @param refMask `(B, h·w)`.
   * @returns logits `(nHeads, B, h·w)`, pixel/smoothed maps `(B, H, W)`, image scores `(B)`.
   */
  async fromZ(
    Z: Float32Array,
    refMask: Uint8Array,
    B: number,
    h: number,
    w: number,
    opts: HeadForwardOptions = {},
  ): Promise<{ headLogits: Float32Array; H: number; W: number } & HeadMaps> {
    const [H, W] = opts.outSize ?? [this.dims.H, this.dims.W];
    const { logits, maps: gm } = await this.run(Z, refMask, B, h, w, { ...opts, outSize: [H, W] });
    if (!gm) {
      return { headLogits: logits, H, W, ...headMaps(logits, this.dims.nHeads, B, h, w, H, W) };
    }
    // pixel map and Gaussian ran on the GPU; the image score (a summed-area table) on the CPU
    const imageScores = new Float32Array(B);
    for (let b = 0; b < B; b++) {
      imageScores[b] = imageScore(gm.smoothed.subarray(b * H * W, (b + 1) * H * W), H, W);
    }
    return { headLogits: logits, H, W, ...gm, imageScores };
  }

  /**
   * Full head forward: residual fusion (spec §4–5), the Mamba head (§6) and maps (§7).
   * @param X `(B, in_chans, h, w)` channels-first: channels [0, C) = inter-residual r, [C, 2C) =
   *   patch features f.
   * @throws {Error} naming X on a wrong channel count, non-square grid or NaN.
   */
  async forward(
    X: Float32Array,
    B: number,
    h: number,
    w: number,
    opts: HeadForwardOptions = {},
  ): Promise<HeadResult> {
    this.checkInput(X, B, h, w);
    const engine = opts.reference
      ? "reference"
      : await resolveHeadEngine(opts.engine, !!opts.capture);
    const fu = await this.fuse(X, B, h, w, engine);
    const r = await this.fromZ(fu.Z, fu.refMask, B, h, w, { ...opts, engine });
    return { unary: fu.unary, waypoint: fu.waypoint, refMask: fu.refMask, ...r };
  }

  /**
   * The residual fusion stage with this head's navigator (spec §4–5): P(r), unary and waypoint
   * maps, self-references, intra-residual and Z, all of {@link FusionOut}.
   * @param X `(B, in_chans, h, w)` [r ‖ f]; @param engine as {@link HeadForwardOptions.engine}.
   */
  async fuse(
    X: Float32Array,
    B: number,
    h: number,
    w: number,
    engine: HeadEngine = "auto",
  ): Promise<FusionOut> {
    const e = await resolveHeadEngine(engine);
    return await fuseResiduals(X, B, h, w, this.weights.unaryW, this.weights.unaryB[0], {
      ratio: this.config.self_ratio,
      method: this.config.residual_method,
      // the head's webgpu and reference engines keep the fusion they always had: WGSL where an
      // adapter exists, else the reference (with a warning)
      engine: e === "native" ? "native" : "webgpu",
    });
  }

  /** Save the weights (official names, config in `__metadata__`), atomically. */
  save(path: string): Promise<void> {
    return saveHeadWeights(path, this.weights);
  }
}

/**
 * A head from the bytes of an official-format safetensors file (browsers, or any source of
 * bytes); `what` names it in errors.
 * @throws {SafeTensorsError} naming the tensor on any missing/mis-shaped/unexpected tensor.
 */
export function headFromBytes(bytes: Uint8Array, what = "head"): Head {
  return new Head(headWeightsFromSafeTensors(parseSafeTensors(bytes, what), undefined, what));
}

/**
 * Load a head from an official-format safetensors file.
 * @param cfg configuration; default `__metadata__.config` of the file.
 * @throws {SafeTensorsError} naming the tensor on any missing/mis-shaped/unexpected tensor.
 */
export async function loadHead(path: string | URL, cfg?: HeadConfig): Promise<Head> {
  return new Head(await loadHeadWeights(path, cfg));
}

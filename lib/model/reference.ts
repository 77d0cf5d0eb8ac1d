/**
 * Reference of the Self-Navigated Mamba head (spec §6) in plain TypeScript: ONE float64 forward,
 * {@link headForward64}, built from the op references of lib/ops (each op's forward next to its
 * backward), operation by operation as the official PyTorch forward (SNARM b65542f
 * `model/mamba_util.py`, mamba_ssm v1.1.1 slow path). The inference reference
 * {@link headForwardRef} is its eval-mode logits rounded to f32 (the fallback when neither WebGPU
 * nor the native engine is there, and what the head's kernels are tested against); the training
 * reference (lib/train/backward_ref.ts) differentiates the same forward in training mode.
 *
 * Layouts (row-major): Z `(B, 2C, h, w)` channels-first (the model input); token tensors
 * channels-last `(rows, d)`: a branch's embedding `(B, L, d)` in row-major position order, its
 * sequences `(nScan·B, L, d)` in scan order (sequence index s·B + b), branch features
 * `(nScan, B, L, d)` back in row-major order, logits `(nHeads, B, L)`.
 * @module
 */
import { navigationIndex, scanPermutations } from "./scan_order.ts";
import type { DecoderWeights, HeadWeights } from "./weights.ts";
import { conv1x1Forward, conv3x3Forward, linearForward } from "../ops/dense.ts";
import { type MixerCache, mixerForward } from "../ops/mamba.ts";
import { fromScanOrder, gatherTokens, scatterTokens, toScanOrder } from "../ops/navigation.ts";
import {
  addRmsNormForward,
  type AddRmsNormOut,
  batchNormForward,
  type BatchNormOut,
  batchNormRunningUpdate,
  EPS,
  layerNormForward,
  type LayerNormOut,
} from "../ops/norm.ts";
import { dropoutMask, sigmoid } from "../ops/pointwise.ts";

/** Epsilon of RMSNorm, LayerNorm and BatchNorm (all 1e-5 in the official modules). */
export const NORM_EPS: number = EPS;

const f32 = (a: ArrayLike<number>) => Float32Array.from(a);

/**
 * y = x · Wᵀ (+ bias): x `(rows, K)`, W `(N, K)` (PyTorch Linear layout) → `(rows, N)`, f32
 * (lib/ops/dense.ts `linearForward`, f64 accumulation, rounded once).
 */
export function linearRef(
  x: Float32Array,
  rows: number,
  K: number,
  W: Float32Array,
  N: number,
  bias?: Float32Array | null,
): Float32Array {
  return f32(linearForward(x, rows, K, W, N, bias));
}

/**
 * 3×3 convolution with dilation r and padding r ("same"), on N channels-last grids
 * `(N, h, w, Ci)` with PyTorch weights `(Co, Ci, 3, 3)` and optional bias → `(N, h, w, Co)` f32
 * (lib/ops/dense.ts `conv3x3Forward`, rounded once). The block conv is r = 1 on the scan-ordered
 * grid; the decoder conv is r = scale_list[branch].
 */
export function conv3x3Ref(
  x: Float32Array,
  N: number,
  h: number,
  w: number,
  Ci: number,
  W: Float32Array,
  Co: number,
  bias: Float32Array | null,
  r: number,
): Float32Array {
  return f32(conv3x3Forward(x, N, h, w, Ci, W, Co, bias, r));
}

/** `(B, L, d)` channels-last → `(B, d, L)` channels-first (the fixtures' layout of E), f32. */
function channelsFirst(E: ArrayLike<number>, B: number, L: number, d: number): Float32Array {
  const out = new Float32Array(E.length);
  for (let b = 0; b < B; b++) {
    for (let p = 0; p < L; p++) {
      for (let k = 0; k < d; k++) out[(b * d + k) * L + p] = E[(b * L + p) * d + k];
    }
  }
  return out;
}

/**
 * One decoder head (spec §6 step 5), f64: dilated 3×3 conv (no bias, dilation = padding = rate)
 * → BatchNorm2d (training: batch statistics; eval: running statistics) → ReLU → 1×1 conv to one
 * logit. `feat` `(B, L, d)` row-major positions → logits `(B, L)`, with the saved BatchNorm and
 * ReLU outputs.
 */
export function decoderForward(
  feat: ArrayLike<number>,
  B: number,
  h: number,
  w: number,
  hw: DecoderWeights,
  d: number,
  rate: number,
  training: boolean,
): { bn: BatchNormOut; act: Float64Array; logits: Float64Array } {
  const L = h * w;
  const c = conv3x3Forward(feat, B, h, w, d, hw.convW, d, null, rate);
  const bn = batchNormForward(
    c,
    B * L,
    d,
    hw.bnW,
    hw.bnB,
    training ? null : { mean: hw.bnMean, var: hw.bnVar },
  );
  const act = new Float64Array(bn.y.length);
  for (let i = 0; i < act.length; i++) act[i] = bn.y[i] > 0 ? bn.y[i] : 0;
  return { bn, act, logits: linearForward(act, B * L, d, hw.outW, 1, hw.outB) };
}

/** {@link decoderForward} in eval mode, f32 logits `(B, L)`. */
export function decoderHeadRef(
  feat: Float32Array,
  B: number,
  h: number,
  w: number,
  hw: DecoderWeights,
  d: number,
  rate: number,
): Float32Array {
  return f32(decoderForward(feat, B, h, w, hw, d, rate, false).logits);
}

/** Optional capture of branch-0 intermediates under the fixtures' tensor names. */
export type Capture = Map<string, Float32Array>;

/** Options of {@link headForward64}. */
export interface HeadForward64Options {
  /**
   * BatchNorm2d mode of the decoder heads: "train" (default; batch statistics over the B·h·w
   * positions of each head, running statistics updated) or "eval" (running statistics: the
   * inference forward).
   */
  batchNorm?: "train" | "eval";
  /** BatchNorm momentum of the running-stat update (PyTorch default 0.1). */
  bnMomentum?: number;
  /**
   * Inverted dropout on h before the final LayerNorm (official p = 0.1 in training; spec §6
   * step 3): mask drawn from `seed` (+ branch index), not PyTorch's RNG stream. Default: none.
   */
  dropout?: { p: number; seed: number } | null;
  /**
   * Collect branch-0 intermediates (f32) under the fixtures' names: E_b0 `(B, d, h, w)`,
   * scan_b0_d0_y, mixer_b0_dk_in/out, block_b0_dk_out_h, branch_features_b0.
   */
  capture?: Capture;
  /**
   * Keep the activations the backward needs in the result's `branches` and `decoders` (default
   * true); false leaves them empty so each block's arrays are freed as the forward moves on (the
   * inference reference: ~3× less peak memory).
   */
  saveActivations?: boolean;
}

/** Saved activations of one Mamba block (for the backward). */
export interface BlockCache {
  norm: AddRmsNormOut;
  hadStream: boolean;
  /** `(N, L, d)` RMSNorm output (conv input). */
  hn: Float64Array;
  mixer: MixerCache;
}

/** Saved activations of one branch. */
export interface BranchCache {
  blocks: BlockCache[];
  /** Final LayerNorm of dropout(h) + stream, `(N, L, d)`. */
  ln: LayerNormOut;
  /** `(N, L, d)` dropout multipliers, null without dropout. */
  drop: Float64Array | null;
}

/** Saved activations of one decoder head. */
export interface DecoderCache {
  /** `(B, L, d)` branch features of this head's scan (conv input). */
  feat: Float64Array;
  bn: BatchNormOut;
  /** `(B·L, d)` ReLU output. */
  act: Float64Array;
}

/** The float64 forward of the whole head with every saved activation ({@link headForward64}). */
export interface HeadForward64 {
  logits: Float64Array;
  unary: Float64Array;
  branches: BranchCache[];
  decoders: DecoderCache[];
  runningStats: Map<string, Float64Array>;
  gather: Int32Array;
  Ls: number;
  perms: Int32Array[];
}

/**
 * The whole head forward (spec §6, and the unary predictor u = sigmoid(conv1×1(R)) on
 * R = Z[:, :C], spec §5 step 2) in float64 with every activation the backward needs: per branch
 * the patch embedding, scan orders, Mamba blocks (fused add + RMSNorm, 3×3 conv, gather of the
 * navigated tokens, mixer, write-back) and final LayerNorm; then the decoder heads.
 * @param Z `(B, in_chans, h, w)` channels-first hybrid residual [R ‖ S_enc].
 * @param refMask `(B, h·w)` row-major navigation mask, 1 = reference.
 * @returns logits `(nHeads, B, h·w)` (head index = branch·nScan + scan), unary `(B, h·w)`, the
 *   updated running statistics (training mode) and the saved activations.
 */
export function headForward64(
  weights: HeadWeights,
  Z: ArrayLike<number>,
  refMask: Uint8Array,
  B: number,
  h: number,
  w: number,
  opts: HeadForward64Options = {},
): HeadForward64 {
  const dims = weights.dims;
  const { d, nScan, C } = dims;
  const Cin = weights.config.in_chans, L = h * w, N = nScan * B;
  const training = (opts.batchNorm ?? "train") === "train";
  const save = opts.saveActivations ?? true;
  const perms = scanPermutations(h, w, nScan);
  const { gather, Ls } = navigationIndex(refMask, B, h, w, nScan);
  const logits = new Float64Array(dims.nHeads * B * L);
  const branches: BranchCache[] = [];
  const decoders: DecoderCache[] = [];
  const runningStats = new Map<string, Float64Array>();
  weights.branches.forEach((bw, bi) => {
    const E = conv1x1Forward(Z, B, Cin, L, bw.embedW, d, bw.embedB);
    const cap = bi === 0 ? opts.capture : undefined;
    if (cap) cap.set("E_b0", channelsFirst(E, B, L, d));
    let hcur = toScanOrder(E, B, L, d, perms);
    let stream: Float64Array | null = null;
    const blocks: BlockCache[] = [];
    for (const [k, blk] of bw.blocks.entries()) {
      const norm = addRmsNormForward(hcur, stream, N * L, d, blk.normW);
      const hc = conv3x3Forward(norm.y, N, h, w, d, blk.convW, d, blk.convB, 1);
      const xin = gatherTokens(hc, N, L, d, gather, Ls);
      const mix = mixerForward(xin, N, Ls, blk.mixer, dims);
      if (save) blocks.push({ norm, hadStream: stream !== null, hn: norm.y, mixer: mix.cache });
      stream = norm.stream;
      hcur = scatterTokens(hc, mix.out, N, L, d, gather, Ls);
      if (cap) {
        if (k === 0) cap.set(`scan_b${bi}_d0_y`, f32(mix.cache.y));
        cap.set(`mixer_b${bi}_d${k}_in`, f32(xin));
        cap.set(`mixer_b${bi}_d${k}_out`, f32(mix.out));
        cap.set(`block_b${bi}_d${k}_out_h`, f32(hcur));
      }
    }
    const drop = opts.dropout && opts.dropout.p > 0
      ? dropoutMask(N * L * d, opts.dropout.p, opts.dropout.seed + bi)
      : null;
    const sum = new Float64Array(N * L * d);
    const st = stream as Float64Array | null;
    for (let i = 0; i < sum.length; i++) {
      sum[i] = (drop ? hcur[i] * drop[i] : hcur[i]) + (st ? st[i] : 0);
    }
    const ln = layerNormForward(sum, N * L, d, bw.lnW, bw.lnB);
    if (save) branches.push({ blocks, ln, drop });
    const feats = fromScanOrder(ln.y, B, L, d, perms);
    if (cap) cap.set(`branch_features_b${bi}`, f32(feats));
    for (let s = 0; s < nScan; s++) {
      const j = bi * nScan + s;
      const hw = weights.heads[j];
      const feat = feats.slice(s * B * L * d, (s + 1) * B * L * d);
      const scale = weights.config.scale_list[bi];
      const { bn, act, logits: lg } = decoderForward(feat, B, h, w, hw, d, scale, training);
      if (training) {
        const up = batchNormRunningUpdate(hw.bnMean, hw.bnVar, bn, opts.bnMomentum ?? 0.1);
        runningStats.set(`head_list.${j}.0.norm.running_mean`, up.mean);
        runningStats.set(`head_list.${j}.0.norm.running_var`, up.var);
      }
      logits.set(lg, j * B * L);
      if (save) decoders.push({ feat, bn, act });
    }
  });
  // Unary predictor on R = Z[:, :C] (spec §5 step 2).
  const unary = new Float64Array(B * L);
  for (let b = 0; b < B; b++) {
    for (let p = 0; p < L; p++) {
      let a = weights.unaryB[0];
      for (let c = 0; c < C; c++) a += weights.unaryW[c] * Z[(b * Cin + c) * L + p];
      unary[b * L + p] = sigmoid(a);
    }
  }
  return { logits, unary, branches, decoders, runningStats, gather, Ls, perms };
}

/**
 * Reference forward of the Mamba head from the hybrid residual (spec §6): {@link headForward64}
 * in eval mode, logits rounded to f32.
 * @param Z `(B, in_chans, h, w)` channels-first hybrid residual [R ‖ S_enc].
 * @param refMask `(B, h·w)` row-major navigation mask, 1 = reference.
 * @returns head logits `(nHeads, B, h·w)`, head index = branch·nScan + scan.
 * @throws {Error} on a non-square grid or mismatched sizes.
 */
export function headForwardRef(
  weights: HeadWeights,
  Z: Float32Array,
  refMask: Uint8Array,
  B: number,
  h: number,
  w: number,
  opts: { capture?: Capture } = {},
): Float32Array {
  const Cin = weights.config.in_chans;
  if (h !== w) throw new Error(`grid must be square for the scan-ordered 3×3 conv, got ${h}×${w}`);
  if (Z.length !== B * Cin * h * w) {
    throw new Error(
      `Z: ${Z.length} values, expected (B, in_chans, h, w) = (${B}, ${Cin}, ${h}, ${w})`,
    );
  }
  const f = headForward64(weights, Z, refMask, B, h, w, {
    batchNorm: "eval",
    capture: opts.capture,
    saveActivations: false,
  });
  return f32(f.logits);
}

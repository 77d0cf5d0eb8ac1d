/**
 * Whole-head training forward + reverse-mode backward of the SNARM head in plain TypeScript
 * (float64), the reference the GPU training kernels will be checked against.
 *
 * Forward = lib/model/reference.ts `headForward64` (spec §6; `headForwardRef` is its eval mode) in training mode: BatchNorm2d of the
 * decoder heads on batch statistics with PyTorch's running-stat update (momentum 0.1), optional
 * inverted dropout before the branch's final LayerNorm (official Dropout(p = 0.1), spec §6 step 3),
 * plus the unary predictor u = sigmoid(conv1×1(R)) on R = Z[:, :C] (spec §5 step 2). The loss is
 * lib/train/loss.ts `snarmLoss`. The self-reference top-K selection is not differentiable: the
 * navigation mask `refMask` is an input and passes no gradient (spec §5), so u learns only from
 * its own loss term.
 * @module
 */
import type { HeadDims } from "../model/config.ts";
import type { HeadWeights, MixerWeights } from "../model/weights.ts";
import { conv1x1Backward, conv3x3Backward, linearBackward } from "../ops/dense.ts";
import { mixerBackward, type MixerGrads } from "../ops/mamba.ts";
import {
  fromScanOrderBackward,
  scatterTokensBackward,
  toScanOrderBackward,
} from "../ops/navigation.ts";
import { addRmsNormBackward, batchNormBackward, layerNormBackward } from "../ops/norm.ts";
import {
  type HeadForward64,
  headForward64,
  type HeadForward64Options,
} from "../model/reference.ts";
import { type SnarmLoss, snarmLoss, type SnarmLossOptions } from "./loss.ts";

/** Options of the training forward/backward: those of the forward, and the loss weights. */
export interface HeadTrainOptions extends Omit<HeadForward64Options, "capture"> {
  /** Loss weights (α 0.25, γ 2, unary weight 0.5). */
  loss?: SnarmLossOptions;
}

/** Forward result of {@link headLossRef}. */
export interface HeadLossResult {
  /** Total loss = headLoss + unaryWeight · unaryLoss ({@link snarmLoss}). */
  loss: number;
  headLoss: number;
  unaryLoss: number;
  /** `(nHeads, B, h·w)` decoder logits. */
  logits: Float64Array;
  /** `(B, h·w)` unary map u. */
  unary: Float64Array;
  /**
   * Updated BatchNorm running statistics after this training step, under their official names
   * `head_list.j.0.norm.running_mean` / `.running_var` `(d)`; empty in eval mode.
   */
  runningStats: Map<string, Float64Array>;
}

/** Result of {@link headForwardBackwardRef}. */
export interface HeadGradResult extends HeadLossResult {
  /**
   * d loss / d θ for every trainable parameter of the official weight set (names and flat layouts
   * of lib/model/weights.ts `weightSpecs`, i.e. every F32 tensor except the BatchNorm running
   * statistics).
   */
  grads: Map<string, Float64Array>;
}

function checkInputs(
  weights: HeadWeights,
  Z: ArrayLike<number>,
  B: number,
  h: number,
  w: number,
  target: ArrayLike<number> | null,
): void {
  const Cin = weights.config.in_chans, L = h * w;
  for (const [k, v] of Object.entries({ B, h, w })) {
    if (!Number.isInteger(v) || v <= 0) {
      throw new Error(`Z: ${k} must be a positive integer, got ${v}`);
    }
  }
  if (h !== w) {
    throw new Error(`Z: grid ${h}×${w} is not square; the scan-ordered 3×3 conv needs h = w`);
  }
  if (Z.length !== B * Cin * L) {
    throw new Error(
      `Z: ${Z.length} values, expected (B, in_chans, h, w) = (${B}, ${Cin}, ${h}, ${w})`,
    );
  }
  if (target && target.length !== B * L) {
    throw new Error(`target: ${target.length} values, expected (B, h·w) = (${B}, ${L})`);
  }
}

function lossResult(f: HeadForward64, l: SnarmLoss): HeadLossResult {
  return {
    loss: l.loss,
    headLoss: l.headLoss,
    unaryLoss: l.unaryLoss,
    logits: f.logits,
    unary: f.unary,
    runningStats: f.runningStats,
  };
}

/**
 * Training forward and loss of the head (no gradients); what {@link headForwardBackwardRef}
 * differentiates. Arguments as there.
 */
export function headLossRef(
  weights: HeadWeights,
  Z: ArrayLike<number>,
  refMask: Uint8Array,
  B: number,
  h: number,
  w: number,
  target: ArrayLike<number>,
  opts: HeadTrainOptions = {},
): HeadLossResult {
  checkInputs(weights, Z, B, h, w, target);
  const f = headForward64(weights, Z, refMask, B, h, w, opts);
  return lossResult(f, snarmLoss(f.logits, f.unary, target, weights.dims.nHeads, opts.loss));
}

/**
 * Training forward of the head only (no loss): logits `(nHeads, B, h·w)` and unary map `(B, h·w)`,
 * f64. With `{ batchNorm: "eval" }` this equals lib/model `headForwardRef` (up to f32 rounding).
 */
export function headTrainForwardRef(
  weights: HeadWeights,
  Z: ArrayLike<number>,
  refMask: Uint8Array,
  B: number,
  h: number,
  w: number,
  opts: HeadTrainOptions = {},
): { logits: Float64Array; unary: Float64Array; runningStats: Map<string, Float64Array> } {
  checkInputs(weights, Z, B, h, w, null);
  const f = headForward64(weights, Z, refMask, B, h, w, opts);
  return { logits: f.logits, unary: f.unary, runningStats: f.runningStats };
}

function mixerGradsInto(
  out: Map<string, Float64Array>,
  prefix: string,
  g: MixerGrads,
): void {
  const names: Array<[string, keyof MixerWeights]> = [
    ["A_log", "aLog"],
    ["D", "D"],
    ["in_proj.weight", "inProj"],
    ["conv1d.weight", "conv1dW"],
    ["conv1d.bias", "conv1dB"],
    ["x_proj.weight", "xProj"],
    ["dt_proj.weight", "dtProjW"],
    ["dt_proj.bias", "dtProjB"],
    ["out_proj.weight", "outProj"],
  ];
  for (const [n, k] of names) out.set(prefix + "mixer." + n, g[k]);
}

/**
 * Loss and reverse-mode gradients of the whole head for one batch (spec §5–6, loss
 * lib/train/loss.ts).
 * @param weights head weights (official parameters; BatchNorm running statistics are read, not
 *   modified; the updated ones are returned in `runningStats`).
 * @param Z `(B, in_chans, h, w)` channels-first hybrid residual [R ‖ S_enc] (R = P(r), spec §5).
 * @param refMask `(B, h·w)` row-major navigation mask, 1 = self-reference (the top-K output; no
 *   gradient flows through it). Every image needs the same number of zeros.
 * @param target `(B, h·w)` grid target in [0, 1] (lib/train/loss.ts `gridTarget`).
 * @returns loss terms, logits, u, updated running statistics and the gradient of every trainable
 *   parameter under its official name (see {@link HeadGradResult}).
 * @throws {Error} on mismatched sizes, a non-square grid, a bad mask or a target outside [0, 1].
 */
export function headForwardBackwardRef(
  weights: HeadWeights,
  Z: ArrayLike<number>,
  refMask: Uint8Array,
  B: number,
  h: number,
  w: number,
  target: ArrayLike<number>,
  opts: HeadTrainOptions = {},
): HeadGradResult {
  checkInputs(weights, Z, B, h, w, target);
  const dims: HeadDims = weights.dims;
  const { d, nScan, C } = dims;
  const Cin = weights.config.in_chans, L = h * w, N = nScan * B;
  const f = headForward64(weights, Z, refMask, B, h, w, opts);
  const l = snarmLoss(f.logits, f.unary, target, dims.nHeads, opts.loss);
  const grads = new Map<string, Float64Array>();
  const { gather, Ls, perms } = f;

  // Unary predictor: da = dL/du · u(1 − u).
  const dUw = new Float64Array(C), dUb = new Float64Array(1);
  for (let b = 0; b < B; b++) {
    for (let p = 0; p < L; p++) {
      const u = f.unary[b * L + p];
      const da = l.dUnary[b * L + p] * u * (1 - u);
      dUb[0] += da;
      for (let c = 0; c < C; c++) dUw[c] += da * Z[(b * Cin + c) * L + p];
    }
  }
  grads.set("simple_predictor.weight", dUw);
  grads.set("simple_predictor.bias", dUb);

  weights.branches.forEach((bw, bi) => {
    const bc = f.branches[bi];
    // Decoder heads of this branch → d(branch features) (nScan, B, L, d).
    const dFeat = new Float64Array(nScan * B * L * d);
    for (let s = 0; s < nScan; s++) {
      const j = bi * nScan + s;
      const hw = weights.heads[j], dc = f.decoders[j];
      const dLog = l.dLogits.subarray(j * B * L, (j + 1) * B * L);
      const out = linearBackward(dc.act, B * L, d, hw.outW, 1, dLog, true);
      const dBn = out.dx;
      for (let i = 0; i < dBn.length; i++) if (!(dc.bn.y[i] > 0)) dBn[i] = 0;
      const bn = batchNormBackward(dc.bn, d, hw.bnW, dBn);
      const cv = conv3x3Backward(
        dc.feat,
        B,
        h,
        w,
        d,
        hw.convW,
        d,
        bn.dx,
        false,
        weights.config.scale_list[bi],
      );
      dFeat.set(cv.dx, s * B * L * d);
      const p = `head_list.${j}.`;
      grads.set(p + "0.conv.weight", cv.dW);
      grads.set(p + "0.norm.weight", bn.dGamma);
      grads.set(p + "0.norm.bias", bn.dBeta);
      grads.set(p + "1.weight", out.dW);
      grads.set(p + "1.bias", out.db!);
    }
    // Final LayerNorm(dropout(h) + stream).
    const dLn = fromScanOrderBackward(dFeat, B, L, d, perms);
    const ln = layerNormBackward(bc.ln, N * L, d, bw.lnW, dLn);
    grads.set(`norm_list.${bi}.weight`, ln.dWeight);
    grads.set(`norm_list.${bi}.bias`, ln.dBias);
    let dStream: Float64Array | null = ln.dx;
    let dH: Float64Array = Float64Array.from(ln.dx);
    if (bc.drop) { for (let i = 0; i < dH.length; i++) dH[i] *= bc.drop[i]; }
    for (let k = bw.blocks.length - 1; k >= 0; k--) {
      const blk = bw.blocks[k], cache = bc.blocks[k];
      // h_out = scatter(conv(hn), mixer(gather(conv(hn)))).
      const sc = scatterTokensBackward(dH, N, L, d, gather, Ls);
      const mx = mixerBackward(cache.mixer, blk.mixer, dims, sc.dVals);
      const dHc = sc.dBase;
      for (let q = 0; q < N; q++) {
        for (let jj = 0; jj < Ls; jj++) {
          const dst = (q * L + gather[q * Ls + jj]) * d, src = (q * Ls + jj) * d;
          for (let c = 0; c < d; c++) dHc[dst + c] += mx.dx[src + c];
        }
      }
      const cv = conv3x3Backward(cache.hn, N, h, w, d, blk.convW, d, dHc, true, 1);
      const nb = addRmsNormBackward(
        cache.norm,
        cache.hadStream,
        N * L,
        d,
        blk.normW,
        cv.dx,
        dStream,
      );
      const p = `mamba_list.${bi}.${k}.`;
      grads.set(p + "norm.weight", nb.dWeight);
      grads.set(p + "conv.weight", cv.dW);
      grads.set(p + "conv.bias", cv.db!);
      mixerGradsInto(grads, p, mx.grads);
      dH = nb.dh; // gradient w.r.t. this block's input h (previous block's output, or the sequence)
      dStream = nb.dStreamIn; // gradient w.r.t. the incoming stream (null for the first block)
    }
    const dE = toScanOrderBackward(dH, B, L, d, perms);
    const em = conv1x1Backward(Z, B, Cin, L, bw.embedW, d, dE, true);
    grads.set(`conv_list.${bi}.weight`, em.dW);
    grads.set(`conv_list.${bi}.bias`, em.db!);
  });
  return { ...lossResult(f, l), grads };
}

/**
 * Trainable parameters of the head under their official names (state_dict order of
 * lib/model/weights.ts `weightSpecs`, without the BatchNorm running statistics and
 * num_batches_tracked). The arrays are the weights' own (an optimizer updates them in place).
 */
export function headParameters(weights: HeadWeights): Map<string, Float32Array> {
  const m = new Map<string, Float32Array>();
  m.set("simple_predictor.weight", weights.unaryW);
  m.set("simple_predictor.bias", weights.unaryB);
  weights.branches.forEach((b, i) => {
    m.set(`conv_list.${i}.weight`, b.embedW);
    m.set(`conv_list.${i}.bias`, b.embedB);
  });
  weights.branches.forEach((b, i) => {
    b.blocks.forEach((k, j) => {
      const p = `mamba_list.${i}.${j}.`;
      const x = k.mixer;
      m.set(p + "mixer.A_log", x.aLog);
      m.set(p + "mixer.D", x.D);
      m.set(p + "mixer.in_proj.weight", x.inProj);
      m.set(p + "mixer.conv1d.weight", x.conv1dW);
      m.set(p + "mixer.conv1d.bias", x.conv1dB);
      m.set(p + "mixer.x_proj.weight", x.xProj);
      m.set(p + "mixer.dt_proj.weight", x.dtProjW);
      m.set(p + "mixer.dt_proj.bias", x.dtProjB);
      m.set(p + "mixer.out_proj.weight", x.outProj);
      m.set(p + "norm.weight", k.normW);
      m.set(p + "conv.weight", k.convW);
      m.set(p + "conv.bias", k.convB);
    });
  });
  weights.branches.forEach((b, i) => {
    m.set(`norm_list.${i}.weight`, b.lnW);
    m.set(`norm_list.${i}.bias`, b.lnB);
  });
  weights.heads.forEach((hd, j) => {
    const p = `head_list.${j}.`;
    m.set(p + "0.conv.weight", hd.convW);
    m.set(p + "0.norm.weight", hd.bnW);
    m.set(p + "0.norm.bias", hd.bnB);
    m.set(p + "1.weight", hd.outW);
    m.set(p + "1.bias", hd.outB);
  });
  return m;
}

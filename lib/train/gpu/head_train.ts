/**
 * One training step of the SNARM head on WebGPU: forward with saved activations, the SNARM loss,
 * the backward of every op and AdamW, recorded once as a {@link KernelSequence} and replayed per
 * step (spec §5–6 forward; loss lib/train/loss.ts; optimizer lib/train/adamw.ts). The float64
 * TypeScript reference of the same step is lib/train/backward_ref.ts `headForwardBackwardRef`
 * followed by lib/train/adamw.ts `AdamW.step`.
 *
 * Layouts on the device: token tensors channels-last `(rows, width)` f32; images b·L + p
 * (L = h·w, row-major p); scan-ordered sequences q = s·B + b of L tokens; the suspicious tokens of
 * sequence q are rows q·Ls + j. All trainable parameters live in one flat buffer in the order of
 * lib/train/backward_ref.ts `headParameters` (their gradients, AdamW moments and weight-decay
 * flags in buffers of the same layout); BatchNorm running statistics in a second buffer, updated
 * in place by each training forward (momentum 0.1, PyTorch semantics).
 * @module
 */
import type { Gpu } from "../../gpu/device.ts";
import { type HeadConfig, type HeadDims, headDims } from "../../model/config.ts";
import { invertPermutation, navigationIndex, scanPermutations } from "../../model/scan_order.ts";
import type { HeadWeights } from "../../model/weights.ts";
import { headParameters } from "../backward_ref.ts";
import { referenceCount } from "../../residual/validate.ts";
import { isNoWeightDecay } from "../adamw.ts";
import { dropoutMask } from "../../ops/pointwise.ts";
import { KernelSequence, type Ref, type Tensor } from "./graph.ts";
import { recordGemm } from "./gemm.ts";
import { recordColSum, recordConv3x3Backward, recordConv3x3Forward } from "./conv.ts";
import { recordGatherRows, recordScatterRows } from "./rows.ts";
import {
  recordAddRmsNormBackward,
  recordAddRmsNormForward,
  recordBatchNormBackward,
  recordBatchNormForward,
  recordLayerNormBackward,
  recordLayerNormForward,
} from "./norm.ts";
import {
  recordGateBackward,
  recordGateForward,
  recordMul,
  recordPointwise,
  recordPointwiseBackward,
} from "./pointwise.ts";
import { recordSnarmLoss } from "./loss.ts";
import { type AdamWRecord, recordAdamW } from "./adamw.ts";
import {
  recordCausalConv1dBackward,
  recordCausalConv1dForward,
  recordSelectiveScanBackward,
  recordSelectiveScanForward,
  scanBackwardScratch,
} from "./mamba_ops.ts";
import { recordAxpy } from "./axpy.ts";

/** Options of {@link GpuHeadTrainer.create}. */
export interface GpuTrainOptions {
  /** Images per step. */
  B: number;
  /** Grid height/width (h = w: the scan-ordered 3×3 convs need a square grid). */
  h: number;
  w: number;
  /** Inverted-dropout probability before each branch's final LayerNorm (official 0.1). */
  dropout?: number;
  /** BatchNorm running-stat momentum (0.1). */
  bnMomentum?: number;
  /** Loss: focal α (0.25), γ (2), unary weight (0.5). */
  alpha?: number;
  gamma?: number;
  unaryWeight?: number;
  /** AdamW (β₁, β₂) (0.9, 0.999), ε (1e-8), weight decay (0.01; none for biases, norms, A_log, D). */
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

/** Inputs of one step. */
export interface StepInput {
  /** `(B, in_chans, h, w)` channels-first hybrid residual Z = [R ‖ S_enc] (spec §5). */
  Z: Float32Array;
  /** `(B, h·w)` navigation mask (1 = self-reference), same count of zeros per image. */
  refMask: Uint8Array;
  /** `(B, h·w)` grid target in [0, 1] (lib/train/loss.ts `gridTarget`). */
  target: Float32Array;
  /** Learning rate of this step. */
  lr: number;
  /** Seed of this step's dropout masks (ignored without dropout). */
  dropoutSeed?: number;
}

/** Loss terms of one step (computed before the update). */
export interface StepLoss {
  loss: number;
  headLoss: number;
  unaryLoss: number;
}

interface BlockAct {
  streamOut: Tensor;
  rstd: Tensor;
  yN: Tensor;
  xin: Tensor;
  xz: Tensor;
  xc: Tensor;
  xs: Tensor;
  dbl: Tensor;
  dtp: Tensor;
  delta: Tensor;
  ys: Tensor;
  states: Tensor;
  g: Tensor;
}

interface BranchAct {
  blocks: BlockAct[];
  sum: Tensor;
  lnMean: Tensor;
  lnRstd: Tensor;
  ln: Tensor;
  feats: Tensor;
  drop: Tensor | null;
  heads: Array<{ c: Tensor; bnY: Tensor; act: Tensor; mean: Tensor; rstd: Tensor }>;
}

const r = (t: Tensor, off = 0): Ref => ({ t, off });

/** Scratch tensors shared by the recording stages of {@link GpuHeadTrainer} (names as in the code). */
type StepScratch = ReturnType<typeof createScratch>;

/** The step's shared scratch (sizes as in {@link StepRec}). */
function createScratch(
  seq: KernelSequence,
  z: Record<
    "RB" | "RN" | "NLs" | "N" | "Ls" | "d" | "dI" | "S" | "XD" | "nScan" | "nHeads",
    number
  >,
) {
  const { RB, RN, NLs, N, Ls, d, dI, S, XD, nScan, nHeads } = z;
  const colN = Math.max(RN * 9 * d, 1);
  return {
    E: seq.tensor(RB * d, "E"),
    col: seq.tensor(colN, "im2col"),
    dcol: seq.tensor(colN, "dcol"),
    normScratch: seq.tensor(RN * d, "norm scratch"),
    mo: seq.tensor(NLs * d, "mixer out"),
    logits: seq.tensor(nHeads * RB, "logits"),
    ua: seq.tensor(RB, "unary pre"),
    u: seq.tensor(RB, "unary"),
    dLogits: seq.tensor(nHeads * RB, "dLogits"),
    dUnary: seq.tensor(RB, "dUnary"),
    dUa: seq.tensor(RB, "dUnaryPre"),
    dE: seq.tensor(RB * d, "dE"),
    dFeat: seq.tensor(nScan * RB * d, "dFeat"),
    dLn: seq.tensor(RN * d, "dLn"),
    dSum: seq.tensor(RN * d, "dSum"),
    dHd: seq.tensor(RN * d, "dH·drop"),
    dStreamA: seq.tensor(RN * d, "dStream.a"),
    dStreamB: seq.tensor(RN * d, "dStream.b"),
    dHc: seq.tensor(RN * d, "dHc"),
    dYn: seq.tensor(RN * d, "dYn"),
    dAct: seq.tensor(RB * d, "dAct"),
    dBn: seq.tensor(RB * d, "dBn"),
    dC: seq.tensor(RB * d, "dC"),
    dVals: seq.tensor(NLs * d, "dMixerOut"),
    dG: seq.tensor(NLs * dI, "dGate"),
    dYs: seq.tensor(NLs * dI, "dScanOut"),
    dXZ: seq.tensor(NLs * 2 * dI, "dXZ"),
    dU: seq.tensor(NLs * dI, "dU"),
    dDelta: seq.tensor(NLs * dI, "dDelta"),
    dDtp: seq.tensor(NLs * dI, "dDtPre"),
    dDbl: seq.tensor(NLs * XD, "dXProjOut"),
    dXc: seq.tensor(NLs * dI, "dXc"),
    dXin: seq.tensor(NLs * d, "dXin"),
    scanScratch: seq.tensor(Math.max(1, scanBackwardScratch(N, Ls, dI, S)), "scan scratch"),
  };
}

/**
 * What every recording stage of {@link GpuHeadTrainer} shares: the sequence, the sizes (module
 * doc: RB = B·L image rows, N = nScan·B sequences, RN = N·L, NLs = N·Ls navigated rows, XD = the
 * x_proj width), parameter and gradient slices by name, the fixed scan-order indices, the scratch.
 */
interface StepRec {
  seq: KernelSequence;
  dims: HeadDims;
  cfg: HeadConfig;
  o: Required<GpuTrainOptions>;
  B: number;
  h: number;
  w: number;
  L: number;
  Ls: number;
  Cin: number;
  RB: number;
  N: number;
  RN: number;
  NLs: number;
  XD: number;
  p: (name: string) => Ref;
  g: (name: string) => Ref;
  /** Weight-decay flags of the flat parameters. */
  decay: Tensor;
  idxToT: Tensor;
  idxToST: Tensor;
  idxFromT: Tensor;
  s: StepScratch;
}

/**
 * The head's training step on a device. Create with {@link GpuHeadTrainer.create}; call
 * {@link GpuHeadTrainer.step} per batch; read weights back with {@link GpuHeadTrainer.weights}.
 */
export class GpuHeadTrainer {
  /** Parameter name → [offset, length] in the flat parameter buffer. */
  readonly offsets = new Map<string, [number, number]>();
  /** Steps taken by AdamW. */
  t = 0;
  private seq!: KernelSequence;
  private adam!: AdamWRecord;
  private P!: Tensor;
  private G!: Tensor;
  private M!: Tensor;
  private V!: Tensor;
  private stats!: Tensor;
  private Zt!: Tensor;
  private target!: Tensor;
  private gIdx!: Tensor;
  private terms!: Tensor;
  private dropT: Array<Tensor | null> = [];
  private nParams = 0;
  private readonly L: number;
  private readonly Ls: number;

  private constructor(
    readonly gpu: Gpu,
    private readonly base: HeadWeights,
    readonly o: Required<GpuTrainOptions>,
  ) {
    this.L = o.h * o.w;
    this.Ls = this.L - referenceCount(this.L, base.config.self_ratio);
  }

  /**
   * Upload `weights` and record the whole step.
   * @throws {Error} on a non-square grid, B < 1, or a configuration the kernels cannot run.
   */
  static async create(
    gpu: Gpu,
    weights: HeadWeights,
    opts: GpuTrainOptions,
  ): Promise<GpuHeadTrainer> {
    const o: Required<GpuTrainOptions> = {
      dropout: 0.1,
      bnMomentum: 0.1,
      alpha: 0.25,
      gamma: 2,
      unaryWeight: 0.5,
      betas: [0.9, 0.999],
      eps: 1e-8,
      weightDecay: 0.01,
      ...opts,
    };
    if (!Number.isInteger(o.B) || o.B < 1) throw new Error(`trainer: B must be ≥ 1, got ${o.B}`);
    if (o.h !== o.w) throw new Error(`trainer: grid ${o.h}×${o.w} is not square`);
    if (!(o.dropout >= 0 && o.dropout < 1)) {
      throw new Error(`trainer: dropout must be in [0, 1), got ${o.dropout}`);
    }
    const tr = new GpuHeadTrainer(gpu, weights, o);
    await tr.record();
    return tr;
  }

  /**
   * Record the whole step, top-down: flat parameters and inputs, the forward of each branch with
   * its saved activations and the unary predictor, the SNARM loss, the backward in reverse, AdamW.
   */
  private async record(): Promise<void> {
    const c = this.recordSetUp();
    const { seq, dims, o } = c;
    // ---- forward ----
    const acts: BranchAct[] = [];
    for (let bi = 0; bi < dims.nBranch; bi++) acts.push(await this.branchForward(c, bi));
    await this.unaryForward(c);
    // ---- loss ----
    await this.lossRecord(c);
    // ---- backward ----
    await this.unaryBackward(c);
    for (let bi = 0; bi < dims.nBranch; bi++) await this.branchBackward(c, bi, acts[bi]);
    // ---- optimizer ----
    this.adam = await recordAdamW(seq, {
      params: this.P,
      grads: this.G,
      m: this.M,
      v: this.V,
      decay: c.decay,
      n: this.nParams,
      betas: o.betas,
      eps: o.eps,
      weightDecay: o.weightDecay,
    });
  }

  /**
   * The step's buffers: flat parameters, gradients, AdamW moments and decay flags, BatchNorm
   * running statistics, the inputs, the fixed scan-order indices and the scratch every stage shares.
   */
  private recordSetUp(): StepRec {
    const { gpu, base: W, o } = this;
    const cfg = W.config, dims = headDims(cfg);
    const { d, dInner: dI, dtRank: R, dState: S, nScan, nHeads } = dims;
    const { B, h, w } = o;
    const L = this.L, Ls = this.Ls, Cin = cfg.in_chans;
    const RB = B * L, N = nScan * B, RN = N * L, NLs = N * Ls, XD = R + 2 * S;
    const seq = this.seq = new KernelSequence(gpu, "snarm training step");

    // Flat parameters, gradients, moments, decay flags.
    const params = headParameters(W);
    let n = 0;
    for (const [name, a] of params) {
      this.offsets.set(name, [n, a.length]);
      n += a.length;
    }
    this.nParams = n;
    const flat = new Float32Array(n), decay = new Float32Array(n);
    for (const [name, a] of params) {
      const [off] = this.offsets.get(name)!;
      flat.set(a, off);
      if (!isNoWeightDecay(name)) decay.fill(1, off, off + a.length);
    }
    this.P = seq.tensor(flat, "params");
    this.G = seq.tensor(n, "grads");
    this.M = seq.tensor(n, "adam.m");
    this.V = seq.tensor(n, "adam.v");
    const decayT = seq.tensor(decay, "adam.decay");
    const statsData = new Float32Array(nHeads * 2 * d);
    W.heads.forEach((hd, j) => {
      statsData.set(hd.bnMean, j * 2 * d);
      statsData.set(hd.bnVar, j * 2 * d + d);
    });
    this.stats = seq.tensor(statsData, "bn.running");
    const p = (name: string): Ref => ({ t: this.P, off: this.offsets.get(name)![0] });
    const g = (name: string): Ref => ({ t: this.G, off: this.offsets.get(name)![0] });

    // Inputs.
    this.Zt = seq.tensor(RB * Cin, "Z (channels-last)");
    this.target = seq.tensor(RB, "target");
    this.gIdx = seq.tensor(NLs, "navigation gather index");
    // Fixed scan-order indices.
    const perms = scanPermutations(h, w, nScan);
    const invs = perms.map(invertPermutation);
    const idxTo = new Int32Array(RN), idxToS = new Int32Array(RN), idxFrom = new Int32Array(RN);
    for (let s = 0; s < nScan; s++) {
      for (let b = 0; b < B; b++) {
        for (let l = 0; l < L; l++) {
          const row = (s * B + b) * L + l;
          idxTo[row] = b * L + perms[s][l];
          idxToS[row] = s * RB + b * L + perms[s][l];
          idxFrom[s * RB + b * L + l] = (s * B + b) * L + invs[s][l];
        }
      }
    }
    const idxToT = seq.tensor(idxTo, "idx.toScan");
    const idxToST = seq.tensor(idxToS, "idx.toScanStacked");
    const idxFromT = seq.tensor(idxFrom, "idx.fromScan");

    // Shared scratch.
    this.terms = seq.tensor((nHeads + 1) * RB, "loss terms");
    const scratch = createScratch(seq, { RB, RN, NLs, N, Ls, d, dI, S, XD, nScan, nHeads });
    return {
      seq,
      dims,
      cfg,
      o,
      B,
      h,
      w,
      L,
      Ls,
      Cin,
      RB,
      N,
      RN,
      NLs,
      XD,
      p,
      g,
      decay: decayT,
      idxToT,
      idxToST,
      idxFromT,
      s: scratch,
    };
  }

  /**
   * Forward of branch `bi` (spec §6): patch embedding, the scan orders, `depth` blocks (add +
   * RMSNorm, 3×3 conv, the navigated tokens through the Mamba mixer and back), dropout, LayerNorm,
   * the un-permuted features and the nScan decoder heads' logits; returns what the backward needs.
   */
  private async branchForward(c: StepRec, bi: number): Promise<BranchAct> {
    const { seq, dims, o, h, w, Cin, RB, N, RN, NLs, XD, p } = c;
    const { d, dInner: dI, dState: S, nScan } = dims;
    const { E, col, mo } = c.s;
    const Zt = this.Zt, idxToT = c.idxToT, idxFromT = c.idxFromT;
    const pre = (k: number) => `mamba_list.${bi}.${k}.`;
    await recordGemm(seq, {
      M: RB,
      N: d,
      K: Cin,
      A: r(Zt),
      lda: Cin,
      B: p(`conv_list.${bi}.weight`),
      ldb: Cin,
      transB: true,
      C: r(E),
      ldc: d,
      bias: p(`conv_list.${bi}.bias`),
    });
    let H = seq.tensor(RN * d, `b${bi}.H0`);
    await recordGatherRows(seq, {
      src: r(E),
      srcLd: d,
      idx: r(idxToT),
      rows: RN,
      width: d,
      dst: r(H),
      dstLd: d,
    });
    const blocks: BlockAct[] = [];
    let stream: Tensor | null = null;
    for (let k = 0; k < dims.depth; k++) {
      const a: BlockAct = {
        streamOut: seq.tensor(RN * d, `b${bi}.${k}.stream`),
        rstd: seq.tensor(RN, `b${bi}.${k}.rstd`),
        yN: seq.tensor(RN * d, `b${bi}.${k}.rms`),
        xin: seq.tensor(NLs * d, `b${bi}.${k}.xin`),
        xz: seq.tensor(NLs * 2 * dI, `b${bi}.${k}.xz`),
        xc: seq.tensor(NLs * dI, `b${bi}.${k}.xc`),
        xs: seq.tensor(NLs * dI, `b${bi}.${k}.xs`),
        dbl: seq.tensor(NLs * XD, `b${bi}.${k}.dbl`),
        dtp: seq.tensor(NLs * dI, `b${bi}.${k}.dtp`),
        delta: seq.tensor(NLs * dI, `b${bi}.${k}.delta`),
        ys: seq.tensor(NLs * dI, `b${bi}.${k}.ys`),
        states: seq.tensor(NLs * dI * S, `b${bi}.${k}.states`),
        g: seq.tensor(NLs * dI, `b${bi}.${k}.g`),
      };
      await recordAddRmsNormForward(seq, {
        h: r(H),
        streamIn: stream ? r(stream) : null,
        rows: RN,
        d,
        weight: p(pre(k) + "norm.weight"),
        streamOut: r(a.streamOut),
        y: r(a.yN),
        rstd: r(a.rstd),
      });
      const Hn = seq.tensor(RN * d, `b${bi}.H${k + 1}`);
      await recordConv3x3Forward(seq, {
        X: r(a.yN),
        n: N,
        h,
        w,
        Cin: d,
        Cout: d,
        dil: 1,
        W: p(pre(k) + "conv.weight"),
        bias: p(pre(k) + "conv.bias"),
        Y: r(Hn),
        col,
      });
      await recordGatherRows(seq, {
        src: r(Hn),
        srcLd: d,
        idx: r(this.gIdx),
        rows: NLs,
        width: d,
        dst: r(a.xin),
        dstLd: d,
      });
      await this.mixerForward(c, a, pre(k) + "mixer.", mo);
      await recordScatterRows(seq, {
        src: r(mo),
        srcLd: d,
        idx: r(this.gIdx),
        rows: NLs,
        width: d,
        dst: r(Hn),
        dstLd: d,
      });
      blocks.push(a);
      stream = a.streamOut;
      H = Hn;
    }
    const drop = o.dropout > 0 ? seq.tensor(RN * d, `b${bi}.dropout`) : null;
    this.dropT.push(drop);
    const sum = seq.tensor(RN * d, `b${bi}.lnIn`);
    await recordAxpy(seq, {
      x: r(H),
      m: drop ? r(drop) : null,
      y: r(stream!),
      out: r(sum),
      n: RN * d,
    });
    const ln = seq.tensor(RN * d, `b${bi}.ln`);
    const lnMean = seq.tensor(RN, `b${bi}.lnMean`), lnRstd = seq.tensor(RN, `b${bi}.lnRstd`);
    await recordLayerNormForward(seq, {
      x: r(sum),
      rows: RN,
      d,
      weight: p(`norm_list.${bi}.weight`),
      bias: p(`norm_list.${bi}.bias`),
      y: r(ln),
      mean: r(lnMean),
      rstd: r(lnRstd),
    });
    const feats = seq.tensor(nScan * RB * d, `b${bi}.feats`);
    await recordGatherRows(seq, {
      src: r(ln),
      srcLd: d,
      idx: r(idxFromT),
      rows: nScan * RB,
      width: d,
      dst: r(feats),
      dstLd: d,
    });
    const heads: BranchAct["heads"] = [];
    for (let s = 0; s < nScan; s++) heads.push(await this.decoderHeadForward(c, bi, s, feats));
    return { blocks, sum, lnMean, lnRstd, ln, feats, drop, heads };
  }

  /**
   * Decoder head j = bi·nScan + s of branch bi (spec §6 step 5): dilated 3×3 conv (rate
   * `scale_list[bi]`) on scan order s's un-permuted features, BatchNorm (batch statistics, running
   * statistics updated), ReLU, 1×1 conv to the head's logits.
   */
  private async decoderHeadForward(
    c: StepRec,
    bi: number,
    s: number,
    feats: Tensor,
  ): Promise<BranchAct["heads"][0]> {
    const { seq, dims, cfg, o, B, h, w, RB, p } = c;
    const { d, nScan } = dims;
    const { col, logits } = c.s;
    const j = bi * nScan + s, hp = `head_list.${j}.`;
    const hd = {
      c: seq.tensor(RB * d, `h${j}.conv`),
      bnY: seq.tensor(RB * d, `h${j}.bn`),
      act: seq.tensor(RB * d, `h${j}.act`),
      mean: seq.tensor(d, `h${j}.mean`),
      rstd: seq.tensor(d, `h${j}.rstd`),
    };
    await recordConv3x3Forward(seq, {
      X: r(feats, s * RB * d),
      n: B,
      h,
      w,
      Cin: d,
      Cout: d,
      dil: cfg.scale_list[bi],
      W: p(hp + "0.conv.weight"),
      Y: r(hd.c),
      col,
    });
    await recordBatchNormForward(seq, {
      x: r(hd.c),
      rows: RB,
      C: d,
      gamma: p(hp + "0.norm.weight"),
      beta: p(hp + "0.norm.bias"),
      y: r(hd.bnY),
      mean: r(hd.mean),
      rstd: r(hd.rstd),
      runningMean: r(this.stats, j * 2 * d),
      runningVar: r(this.stats, j * 2 * d + d),
      momentum: o.bnMomentum,
    });
    await recordPointwise(seq, {
      op: "relu",
      x: r(hd.bnY),
      ldx: d,
      y: r(hd.act),
      ldy: d,
      rows: RB,
      cols: d,
    });
    await recordGemm(seq, {
      M: RB,
      N: 1,
      K: d,
      A: r(hd.act),
      lda: d,
      B: p(hp + "1.weight"),
      ldb: d,
      transB: true,
      C: r(logits, j * RB),
      ldc: 1,
      bias: p(hp + "1.bias"),
    });
    return hd;
  }

  /**
   * Backward of {@link decoderHeadForward} for head j = bi·nScan + s: from its dLogits into its
   * parameters' gradients and into scan order s's slice of dFeat.
   */
  private async decoderHeadBackward(
    c: StepRec,
    bi: number,
    s: number,
    a: BranchAct,
  ): Promise<void> {
    const { seq, dims, cfg, B, h, w, RB, p, g } = c;
    const { d, nScan } = dims;
    const { col, dcol, dLogits, dFeat, dAct, dBn, dC } = c.s;
    const j = bi * nScan + s, hp = `head_list.${j}.`, hd = a.heads[s];
    await recordGemm(seq, {
      M: RB,
      N: d,
      K: 1,
      A: r(dLogits, j * RB),
      lda: 1,
      B: p(hp + "1.weight"),
      ldb: d,
      C: r(dAct),
      ldc: d,
    });
    await recordGemm(seq, {
      M: 1,
      N: d,
      K: RB,
      A: r(dLogits, j * RB),
      lda: 1,
      transA: true,
      B: r(hd.act),
      ldb: d,
      C: g(hp + "1.weight"),
      ldc: d,
    });
    await recordColSum(seq, {
      A: r(dLogits, j * RB),
      rows: RB,
      cols: 1,
      lda: 1,
      out: g(hp + "1.bias"),
    });
    await recordPointwiseBackward(seq, {
      op: "relu",
      x: r(hd.bnY),
      ldx: d,
      dy: r(dAct),
      ldy: d,
      dx: r(dBn),
      lddx: d,
      rows: RB,
      cols: d,
    });
    await recordBatchNormBackward(seq, {
      x: r(hd.c),
      mean: r(hd.mean),
      rstd: r(hd.rstd),
      rows: RB,
      C: d,
      gamma: p(hp + "0.norm.weight"),
      dy: r(dBn),
      dx: r(dC),
      dGamma: g(hp + "0.norm.weight"),
      dBeta: g(hp + "0.norm.bias"),
    });
    await recordConv3x3Backward(seq, {
      X: r(a.feats, s * RB * d),
      n: B,
      h,
      w,
      Cin: d,
      Cout: d,
      dil: cfg.scale_list[bi],
      W: p(hp + "0.conv.weight"),
      dY: r(dC),
      dX: r(dFeat, s * RB * d),
      dW: g(hp + "0.conv.weight"),
      col,
      dcol,
    });
  }

  /** The unary predictor on R = Z[:, :C] (spec §5 step 2): u = sigmoid(conv1×1(R)). */
  private async unaryForward(c: StepRec): Promise<void> {
    const { seq, dims, Cin, RB, p } = c;
    const { C } = dims;
    const { ua, u } = c.s;
    const Zt = this.Zt;
    await recordGemm(seq, {
      M: RB,
      N: 1,
      K: C,
      A: r(Zt),
      lda: Cin,
      B: p("simple_predictor.weight"),
      ldb: C,
      transB: true,
      C: r(ua),
      ldc: 1,
      bias: p("simple_predictor.bias"),
    });
    await recordPointwise(seq, {
      op: "sigmoid",
      x: r(ua),
      ldx: 1,
      y: r(u),
      ldy: 1,
      rows: RB,
      cols: 1,
    });
  }

  /** The SNARM loss (lib/train/loss.ts) and its gradients dLogits, dUnary. */
  private async lossRecord(c: StepRec): Promise<void> {
    const { seq, dims, o, RB } = c;
    const { nHeads } = dims;
    const { logits, u, dLogits, dUnary } = c.s;
    await recordSnarmLoss(seq, {
      logits: r(logits),
      nHeads,
      n: RB,
      unary: r(u),
      target: r(this.target),
      alpha: o.alpha,
      gamma: o.gamma,
      unaryWeight: o.unaryWeight,
      dLogits: r(dLogits),
      dUnary: r(dUnary),
      terms: r(this.terms),
    });
  }

  /** Backward of {@link unaryForward} into the unary predictor's gradients. */
  private async unaryBackward(c: StepRec): Promise<void> {
    const { seq, dims, Cin, RB, g } = c;
    const { C } = dims;
    const { u, dUnary, dUa } = c.s;
    const Zt = this.Zt;
    await recordPointwiseBackward(seq, {
      op: "sigmoid",
      x: r(u),
      ldx: 1,
      dy: r(dUnary),
      ldy: 1,
      dx: r(dUa),
      lddx: 1,
      rows: RB,
      cols: 1,
    });
    await recordGemm(seq, {
      M: 1,
      N: C,
      K: RB,
      A: r(dUa),
      lda: 1,
      transA: true,
      B: r(Zt),
      ldb: Cin,
      C: g("simple_predictor.weight"),
      ldc: C,
    });
    await recordColSum(seq, {
      A: r(dUa),
      rows: RB,
      cols: 1,
      lda: 1,
      out: g("simple_predictor.bias"),
    });
  }

  /**
   * Backward of {@link branchForward} for branch `bi` from its heads' dLogits: decoder heads,
   * LayerNorm, dropout, the blocks in reverse (mixer, write-back, conv, add + RMSNorm), the scan
   * orders and the patch embedding, into the branch's parameter gradients.
   */
  private async branchBackward(c: StepRec, bi: number, a: BranchAct): Promise<void> {
    const { seq, dims, h, w, Cin, RB, N, RN, NLs, p, g } = c;
    const { d, nScan } = dims;
    const { col, dcol, normScratch, dE, dFeat, dLn, dSum, dHd, dStreamA, dStreamB } = c.s;
    const { dHc, dYn, dVals, dXin } = c.s;
    const Zt = this.Zt, idxToST = c.idxToST, idxFromT = c.idxFromT;
    for (let s = 0; s < nScan; s++) await this.decoderHeadBackward(c, bi, s, a);
    await recordGatherRows(seq, {
      src: r(dFeat),
      srcLd: d,
      idx: r(idxToST),
      rows: RN,
      width: d,
      dst: r(dLn),
      dstLd: d,
    });
    await recordLayerNormBackward(seq, {
      x: r(a.sum),
      mean: r(a.lnMean),
      rstd: r(a.lnRstd),
      rows: RN,
      d,
      weight: p(`norm_list.${bi}.weight`),
      dy: r(dLn),
      dx: r(dSum),
      dWeight: g(`norm_list.${bi}.weight`),
      dBias: g(`norm_list.${bi}.bias`),
      scratch: normScratch,
    });
    let dH = dSum;
    if (a.drop) {
      await recordMul(seq, { x: r(dSum), m: r(a.drop), out: r(dHd), n: RN * d });
      dH = dHd;
    }
    let dStreamOut: Tensor = dSum;
    for (let k = dims.depth - 1; k >= 0; k--) {
      const blk = a.blocks[k], pre = `mamba_list.${bi}.${k}.`;
      await recordGatherRows(seq, {
        src: r(dH),
        srcLd: d,
        idx: r(this.gIdx),
        rows: NLs,
        width: d,
        dst: r(dVals),
        dstLd: d,
      });
      await this.mixerBackward(c, blk, pre + "mixer.", dVals, dXin);
      seq.copy(dH, 0, dHc, 0, RN * d);
      await recordScatterRows(seq, {
        src: r(dXin),
        srcLd: d,
        idx: r(this.gIdx),
        rows: NLs,
        width: d,
        dst: r(dHc),
        dstLd: d,
      });
      await recordConv3x3Backward(seq, {
        X: r(blk.yN),
        n: N,
        h,
        w,
        Cin: d,
        Cout: d,
        dil: 1,
        W: p(pre + "conv.weight"),
        dY: r(dHc),
        dX: r(dYn),
        dW: g(pre + "conv.weight"),
        dBias: g(pre + "conv.bias"),
        col,
        dcol,
      });
      const out = dStreamOut === dStreamA ? dStreamB : dStreamA;
      await recordAddRmsNormBackward(seq, {
        streamOut: r(blk.streamOut),
        rstd: r(blk.rstd),
        rows: RN,
        d,
        weight: p(pre + "norm.weight"),
        dy: r(dYn),
        dStreamOut: r(dStreamOut),
        dStream: r(out),
        dWeight: g(pre + "norm.weight"),
        scratch: normScratch,
      });
      dH = out;
      dStreamOut = out;
    }
    // dE = Σ_s un-permuted dH0.
    for (let s = 0; s < nScan; s++) {
      await recordGatherRows(seq, {
        src: r(dH),
        srcLd: d,
        idx: r(idxFromT, s * RB),
        rows: RB,
        width: d,
        dst: r(dE),
        dstLd: d,
        accumulate: s > 0,
      });
    }
    await recordGemm(seq, {
      M: d,
      N: Cin,
      K: RB,
      A: r(dE),
      lda: d,
      transA: true,
      B: r(Zt),
      ldb: Cin,
      C: g(`conv_list.${bi}.weight`),
      ldc: Cin,
    });
    await recordColSum(seq, {
      A: r(dE),
      rows: RB,
      cols: d,
      lda: d,
      out: g(`conv_list.${bi}.bias`),
    });
  }

  private async mixerForward(c: StepRec, a: BlockAct, pre: string, mo: Tensor): Promise<void> {
    const seq = this.seq;
    const p = (name: string): Ref => ({ t: this.P, off: this.offsets.get(pre + name)![0] });
    const { NLs, N, Ls, XD } = c;
    const { d, dInner: dI, dtRank: R, dState: S, dConv: K } = c.dims;
    await recordGemm(seq, {
      M: NLs,
      N: 2 * dI,
      K: d,
      A: r(a.xin),
      lda: d,
      B: p("in_proj.weight"),
      ldb: d,
      transB: true,
      C: r(a.xz),
      ldc: 2 * dI,
    });
    await recordCausalConv1dForward(seq, {
      x: r(a.xz),
      ldx: 2 * dI,
      nSeq: N,
      Ls,
      C: dI,
      K,
      w: p("conv1d.weight"),
      b: p("conv1d.bias"),
      y: r(a.xc),
      ldy: dI,
    });
    await recordPointwise(seq, {
      op: "silu",
      x: r(a.xc),
      ldx: dI,
      y: r(a.xs),
      ldy: dI,
      rows: NLs,
      cols: dI,
    });
    await recordGemm(seq, {
      M: NLs,
      N: XD,
      K: dI,
      A: r(a.xs),
      lda: dI,
      B: p("x_proj.weight"),
      ldb: dI,
      transB: true,
      C: r(a.dbl),
      ldc: XD,
    });
    await recordGemm(seq, {
      M: NLs,
      N: dI,
      K: R,
      A: r(a.dbl),
      lda: XD,
      B: p("dt_proj.weight"),
      ldb: R,
      transB: true,
      C: r(a.dtp),
      ldc: dI,
      bias: p("dt_proj.bias"),
    });
    await recordPointwise(seq, {
      op: "softplus",
      x: r(a.dtp),
      ldx: dI,
      y: r(a.delta),
      ldy: dI,
      rows: NLs,
      cols: dI,
    });
    await recordSelectiveScanForward(seq, {
      u: r(a.xs),
      ldu: dI,
      delta: r(a.delta),
      lddelta: dI,
      aLog: p("A_log"),
      Bm: r(a.dbl, R),
      ldB: XD,
      Cm: r(a.dbl, R + S),
      ldC: XD,
      D: p("D"),
      nSeq: N,
      Ls,
      dI,
      S,
      y: r(a.ys),
      ldy: dI,
      states: a.states,
    });
    await recordGateForward(seq, {
      y: r(a.ys),
      ldy: dI,
      z: r(a.xz, dI),
      ldz: 2 * dI,
      out: r(a.g),
      ldo: dI,
      rows: NLs,
      cols: dI,
    });
    await recordGemm(seq, {
      M: NLs,
      N: d,
      K: dI,
      A: r(a.g),
      lda: dI,
      B: p("out_proj.weight"),
      ldb: dI,
      transB: true,
      C: r(mo),
      ldc: d,
    });
  }

  private async mixerBackward(
    c: StepRec,
    a: BlockAct,
    pre: string,
    dMo: Tensor,
    dXin: Tensor,
  ): Promise<void> {
    const seq = this.seq;
    const p = (name: string): Ref => ({ t: this.P, off: this.offsets.get(pre + name)![0] });
    const g = (name: string): Ref => ({ t: this.G, off: this.offsets.get(pre + name)![0] });
    const { NLs, N, Ls, XD, s } = c;
    const { d, dInner: dI, dtRank: R, dState: S, dConv: K } = c.dims;
    // out_proj
    await recordGemm(seq, {
      M: NLs,
      N: dI,
      K: d,
      A: r(dMo),
      lda: d,
      B: p("out_proj.weight"),
      ldb: dI,
      C: r(s.dG),
      ldc: dI,
    });
    await recordGemm(seq, {
      M: d,
      N: dI,
      K: NLs,
      A: r(dMo),
      lda: d,
      transA: true,
      B: r(a.g),
      ldb: dI,
      C: g("out_proj.weight"),
      ldc: dI,
    });
    // gate
    await recordGateBackward(seq, {
      y: r(a.ys),
      ldy: dI,
      z: r(a.xz, dI),
      ldz: 2 * dI,
      dOut: r(s.dG),
      ldo: dI,
      dy: r(s.dYs),
      lddy: dI,
      dz: r(s.dXZ, dI),
      lddz: 2 * dI,
      rows: NLs,
      cols: dI,
    });
    // selective scan
    await recordSelectiveScanBackward(seq, {
      u: r(a.xs),
      ldu: dI,
      delta: r(a.delta),
      lddelta: dI,
      aLog: p("A_log"),
      Bm: r(a.dbl, R),
      ldB: XD,
      Cm: r(a.dbl, R + S),
      ldC: XD,
      D: p("D"),
      nSeq: N,
      Ls,
      dI,
      S,
      states: a.states,
      dy: r(s.dYs),
      lddy: dI,
      du: r(s.dU),
      lddu: dI,
      dDelta: r(s.dDelta),
      lddDelta: dI,
      dALog: g("A_log"),
      dBm: r(s.dDbl, R),
      lddB: XD,
      dCm: r(s.dDbl, R + S),
      lddC: XD,
      dD: g("D"),
      scratch: s.scanScratch,
    });
    // Δ = softplus(dt_proj(dt_raw))
    await recordPointwiseBackward(seq, {
      op: "softplus",
      x: r(a.dtp),
      ldx: dI,
      dy: r(s.dDelta),
      ldy: dI,
      dx: r(s.dDtp),
      lddx: dI,
      rows: NLs,
      cols: dI,
    });
    await recordGemm(seq, {
      M: dI,
      N: R,
      K: NLs,
      A: r(s.dDtp),
      lda: dI,
      transA: true,
      B: r(a.dbl),
      ldb: XD,
      C: g("dt_proj.weight"),
      ldc: R,
    });
    await recordColSum(seq, { A: r(s.dDtp), rows: NLs, cols: dI, lda: dI, out: g("dt_proj.bias") });
    await recordGemm(seq, {
      M: NLs,
      N: R,
      K: dI,
      A: r(s.dDtp),
      lda: dI,
      B: p("dt_proj.weight"),
      ldb: R,
      C: r(s.dDbl),
      ldc: XD,
    });
    // x_proj: dXs = du + dDbl · x_proj
    await recordGemm(seq, {
      M: NLs,
      N: dI,
      K: XD,
      A: r(s.dDbl),
      lda: XD,
      B: p("x_proj.weight"),
      ldb: dI,
      C: r(s.dU),
      ldc: dI,
      accumulate: true,
    });
    await recordGemm(seq, {
      M: XD,
      N: dI,
      K: NLs,
      A: r(s.dDbl),
      lda: XD,
      transA: true,
      B: r(a.xs),
      ldb: dI,
      C: g("x_proj.weight"),
      ldc: dI,
    });
    // SiLU, causal conv1d
    await recordPointwiseBackward(seq, {
      op: "silu",
      x: r(a.xc),
      ldx: dI,
      dy: r(s.dU),
      ldy: dI,
      dx: r(s.dXc),
      lddx: dI,
      rows: NLs,
      cols: dI,
    });
    await recordCausalConv1dBackward(seq, {
      x: r(a.xz),
      ldx: 2 * dI,
      nSeq: N,
      Ls,
      C: dI,
      K,
      w: p("conv1d.weight"),
      dy: r(s.dXc),
      lddy: dI,
      dx: r(s.dXZ),
      lddx: 2 * dI,
      dW: g("conv1d.weight"),
      dB: g("conv1d.bias"),
    });
    // in_proj
    await recordGemm(seq, {
      M: NLs,
      N: d,
      K: 2 * dI,
      A: r(s.dXZ),
      lda: 2 * dI,
      B: p("in_proj.weight"),
      ldb: d,
      C: r(dXin),
      ldc: d,
    });
    await recordGemm(seq, {
      M: 2 * dI,
      N: d,
      K: NLs,
      A: r(s.dXZ),
      lda: 2 * dI,
      transA: true,
      B: r(a.xin),
      ldb: d,
      C: g("in_proj.weight"),
      ldc: d,
    });
  }

  /**
   * One training step: upload the batch, run forward + loss + backward + AdamW, return the loss
   * of the batch (before the update).
   * @throws {Error} naming `Z`, `refMask` or `target` on a size mismatch or a mask whose count of
   *   suspicious positions differs from the recorded Ls.
   */
  async step(inp: StepInput): Promise<StepLoss> {
    this.upload(inp);
    this.t++;
    this.adam.setStep(this.t, inp.lr);
    await this.seq.run();
    return await this.lossTerms();
  }

  private upload(inp: StepInput): void {
    const { B, h, w } = this.o, L = this.L, Cin = this.base.config.in_chans;
    const nScan = this.base.dims.nScan;
    if (inp.Z.length !== B * Cin * L) {
      throw new Error(
        `Z: ${inp.Z.length} values, expected (B, in_chans, h, w) = (${B}, ${Cin}, ${h}, ${w})`,
      );
    }
    if (inp.target.length !== B * L) {
      throw new Error(`target: ${inp.target.length} values, expected (B, h·w) = (${B}, ${L})`);
    }
    const nav = navigationIndex(inp.refMask, B, h, w, nScan);
    if (nav.Ls !== this.Ls) {
      throw new Error(
        `refMask: ${nav.Ls} suspicious positions per image, the step was recorded for ${this.Ls}`,
      );
    }
    const zt = new Float32Array(B * L * Cin);
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < Cin; c++) {
        const src = (b * Cin + c) * L;
        for (let q = 0; q < L; q++) zt[(b * L + q) * Cin + c] = inp.Z[src + q];
      }
    }
    this.seq.upload(this.Zt, zt);
    this.seq.upload(this.target, inp.target);
    const N = nScan * B, Ls = this.Ls;
    const gi = new Int32Array(N * Ls);
    for (let q = 0; q < N; q++) {
      for (let j = 0; j < Ls; j++) gi[q * Ls + j] = q * L + nav.gather[q * Ls + j];
    }
    this.seq.upload(this.gIdx, gi);
    for (let bi = 0; bi < this.dropT.length; bi++) {
      const t = this.dropT[bi];
      if (!t) continue;
      const m = dropoutMask(t.length, this.o.dropout, (inp.dropoutSeed ?? 0) * 64 + bi);
      this.seq.upload(t, Float32Array.from(m));
    }
  }

  private async lossTerms(): Promise<StepLoss> {
    const terms = await this.seq.read(this.terms);
    const nh = this.base.dims.nHeads * this.o.B * this.L;
    let head = 0, un = 0;
    for (let i = 0; i < nh; i++) head += terms[i];
    for (let i = nh; i < terms.length; i++) un += terms[i];
    return { loss: head + un, headLoss: head, unaryLoss: un / this.o.unaryWeight };
  }

  /** Current parameters (and BatchNorm running statistics) as {@link HeadWeights}. */
  async weights(): Promise<HeadWeights> {
    const flat = await this.seq.read(this.P, 0, this.nParams);
    const stats = await this.seq.read(this.stats);
    const w = structuredClone(this.base);
    const params = headParameters(w);
    for (const [name, a] of params) {
      const [off, len] = this.offsets.get(name)!;
      a.set(flat.subarray(off, off + len));
    }
    const d = w.dims.d;
    w.heads.forEach((hd, j) => {
      hd.bnMean.set(stats.subarray(j * 2 * d, j * 2 * d + d));
      hd.bnVar.set(stats.subarray(j * 2 * d + d, j * 2 * d + 2 * d));
    });
    return w;
  }

  /** Gradients of the last step by parameter name (for tests against the TS reference). */
  async grads(): Promise<Map<string, Float32Array>> {
    const flat = await this.seq.read(this.G, 0, this.nParams);
    const out = new Map<string, Float32Array>();
    for (const [name, [off, len]] of this.offsets) out.set(name, flat.slice(off, off + len));
    return out;
  }

  /** Unary predictor weight `(C)` and bias (what the residual fusion needs each step). */
  async unary(): Promise<{ weight: Float32Array; bias: number }> {
    // headParameters order puts simple_predictor.bias right after the weight: one readback.
    const [ow, n] = this.offsets.get("simple_predictor.weight")!;
    const [ob] = this.offsets.get("simple_predictor.bias")!;
    if (ob !== ow + n) throw new Error("trainer: unary bias does not follow its weight");
    const both = await this.seq.read(this.P, ow, n + 1);
    return { weight: both.subarray(0, n), bias: both[n] };
  }

  /** AdamW state (flat, parameter layout) for checkpoints. */
  async optimizerState(): Promise<{ t: number; m: Float32Array; v: Float32Array }> {
    return {
      t: this.t,
      m: await this.seq.read(this.M, 0, this.nParams),
      v: await this.seq.read(this.V, 0, this.nParams),
    };
  }

  /**
   * Restore AdamW state saved by {@link optimizerState}.
   * @throws {Error} when the moment vectors do not have the parameter count.
   */
  setOptimizerState(s: { t: number; m: Float32Array; v: Float32Array }): void {
    if (s.m.length !== this.nParams || s.v.length !== this.nParams) {
      throw new Error(
        `optimizer state: ${s.m.length}/${s.v.length} moments, the head has ${this.nParams} parameters`,
      );
    }
    this.seq.upload(this.M, s.m);
    this.seq.upload(this.V, s.v);
    this.t = s.t;
  }

  /**
   * Per-kernel wall time of one step on the last uploaded batch (each command submitted alone;
   * see {@link KernelSequence.profile}). Runs the optimizer too, so it changes the weights.
   */
  async profile(): Promise<Array<{ label: string; ms: number; count: number }>> {
    return await this.seq.profile();
  }

  /** Number of trainable parameters. */
  get parameterCount(): number {
    return this.nParams;
  }

  /** Free the device buffers. */
  destroy(): void {
    this.seq.destroy();
  }
}

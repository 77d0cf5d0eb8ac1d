/**
 * The SNARM training loss on the GPU (lib/train/loss.ts snarmLoss exactly; spec §8 "Loss", our
 * documented choice): loss = mean over the nHeads·n cells of the sigmoid focal loss of the decoder
 * logits + unaryWeight · mean focal loss (probability form) of the unary map, with gradients.
 * Shader: `wgsl/train/loss.wgsl`.
 * @module
 */
import type { KernelSequence, Ref } from "./graph.ts";
import { f32bits } from "./graph.ts";
import { checkSize } from "./check.ts";
import { elementGrid, recordTrainKernel } from "./pointwise.ts";

/**
 * Record the SNARM loss and its gradients (formulas: lib/train/loss.ts focalLossLogits,
 * focalLossProb, snarmLoss; α = 0.25, γ = 2, unaryWeight = 0.5 by default).
 * Shapes: logits `(nHeads, n)` (head-major, n = B·h·w cells); unary `(n)` probabilities u ∈ [0, 1];
 * target `(n)` in [0, 1] (not checked on the GPU: validate on the host, e.g. gridTarget).
 * Outputs (written): dLogits `(nHeads, n)` = d loss / d logits; dUnary `(n)` = d loss / d u;
 * terms `((nHeads + 1)·n)`: row j < nHeads the head cells' FL/(nHeads·n), row nHeads the unary
 * cells' unaryWeight·FL_p/n — their plain sum is the total loss (sum them on the host in float64
 * or with a column/row reduction).
 * @throws {Error} on a size or range error, or α > 1, γ < 0.
 */
export async function recordSnarmLoss(
  seq: KernelSequence,
  a: {
    logits: Ref;
    nHeads: number;
    n: number;
    unary: Ref;
    target: Ref;
    alpha?: number;
    gamma?: number;
    unaryWeight?: number;
    dLogits: Ref;
    dUnary: Ref;
    terms: Ref;
  },
): Promise<void> {
  checkSize("snarm loss nHeads", a.nHeads, 1);
  checkSize("snarm loss n", a.n, 1);
  const alpha = a.alpha ?? 0.25, gamma = a.gamma ?? 2, wU = a.unaryWeight ?? 0.5;
  if (!(alpha <= 1) || !(gamma >= 0) || !Number.isFinite(wU)) {
    throw new Error(
      `snarm loss: need alpha ≤ 1, gamma ≥ 0 and a finite unaryWeight, got ${alpha}, ${gamma}, ${wU}`,
    );
  }
  const hn = a.nHeads * a.n;
  await recordTrainKernel(seq, {
    shader: "train/loss.wgsl",
    entry: "main",
    label: "snarm loss",
    operands: [
      { key: "L", ref: a.logits, extent: hn, what: "snarm loss logits (nHeads, n)" },
      { key: "UN", ref: a.unary, extent: a.n, what: "snarm loss unary (n)" },
      { key: "T", ref: a.target, extent: a.n, what: "snarm loss target (n)" },
      { key: "DL", ref: a.dLogits, extent: hn, what: "snarm loss dLogits (nHeads, n)" },
      { key: "DU", ref: a.dUnary, extent: a.n, what: "snarm loss dUnary (n)" },
      { key: "TERMS", ref: a.terms, extent: hn + a.n, what: "snarm loss terms ((nHeads+1)·n)" },
    ],
    params: [
      a.nHeads,
      a.n,
      a.logits.off ?? 0,
      a.unary.off ?? 0,
      a.target.off ?? 0,
      a.dLogits.off ?? 0,
      a.dUnary.off ?? 0,
      a.terms.off ?? 0,
      f32bits(alpha),
      f32bits(gamma),
      f32bits(1 / hn),
      f32bits(wU / a.n),
    ],
    workgroups: elementGrid(hn + a.n),
  });
}

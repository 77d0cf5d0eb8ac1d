/**
 * AdamW on the GPU over one flat f32 parameter buffer (lib/train/adamw.ts AdamW.step semantics =
 * torch.optim.AdamW, amsgrad off; spec §8 "Training setup"), with f32 moments m, v and a per-element
 * weight-decay flag. Shader: `wgsl/train/adamw.wgsl`.
 * @module
 */
import type { KernelSequence, Tensor } from "./graph.ts";
import { f32bits } from "./graph.ts";
import { checkSize } from "./check.ts";
import { elementGrid, PARAM_WORDS, recordTrainKernel } from "./pointwise.ts";

/** A recorded AdamW step whose step number and learning rate are set before each run. */
export interface AdamWRecord {
  /**
   * Write the uniform of step `t` (1-based: bias corrections 1 − βᵗ) at learning rate `lr`
   * (e.g. lib/train/adamw.ts warmCosineLr). Call before every run (recorded with t = 1, lr = 0).
   * @throws {Error} on t not an integer ≥ 1 or lr not finite ≥ 0.
   */
  setStep(t: number, lr: number): void;
}

/**
 * Record one AdamW step over the first `n` elements of the flat buffers (all f32, updated in
 * place): θ ← θ·(1 − lr·wd·decay); m ← β₁m + (1 − β₁)g; v ← β₂v + (1 − β₂)g²;
 * θ ← θ − lr/(1 − β₁ᵗ) · m/(√v/√(1 − β₂ᵗ) + eps). `decay` holds 1 (weight decay) or 0 (the
 * no-decay set, lib/train/adamw.ts isNoWeightDecay) per element. Defaults β = (0.9, 0.999),
 * eps 1e-8, weightDecay 0.01. m, v must start at zero. Gradients are not checked for finiteness.
 * @throws {Error} on a tensor shorter than n, the same tensor passed twice, or bad hyper-parameters.
 */
export async function recordAdamW(
  seq: KernelSequence,
  a: {
    params: Tensor;
    grads: Tensor;
    m: Tensor;
    v: Tensor;
    decay: Tensor;
    n: number;
    betas?: [number, number];
    eps?: number;
    weightDecay?: number;
  },
): Promise<AdamWRecord> {
  checkSize("AdamW n", a.n, 0);
  const [b1, b2] = a.betas ?? [0.9, 0.999];
  const eps = a.eps ?? 1e-8, wd = a.weightDecay ?? 0.01;
  for (const b of [b1, b2]) {
    if (!(b >= 0 && b < 1)) throw new Error(`AdamW: betas must be in [0, 1), got ${b}`);
  }
  if (!(eps > 0)) throw new Error(`AdamW: eps must be > 0, got ${eps}`);
  if (!(wd >= 0)) throw new Error(`AdamW: weight decay must be ≥ 0, got ${wd}`);
  const ts = [a.params, a.grads, a.m, a.v, a.decay];
  if (new Set(ts).size !== ts.length) {
    throw new Error("AdamW: params, grads, m, v and decay must be five distinct tensors");
  }
  const words = (t: number, lr: number) => {
    const bc1 = 1 - b1 ** t, bc2 = 1 - b2 ** t;
    return [
      a.n,
      f32bits(lr * wd),
      f32bits(b1),
      f32bits(b2),
      f32bits(eps),
      f32bits(lr / bc1),
      f32bits(Math.sqrt(bc2)),
    ];
  };
  const params = words(1, 0);
  const d = await recordTrainKernel(seq, {
    shader: "train/adamw.wgsl",
    entry: "main",
    label: "adamw",
    operands: [
      { key: "PARAM", ref: { t: a.params }, extent: a.n, what: "AdamW params" },
      { key: "G", ref: { t: a.grads }, extent: a.n, what: "AdamW grads" },
      { key: "M", ref: { t: a.m }, extent: a.n, what: "AdamW m" },
      { key: "V", ref: { t: a.v }, extent: a.n, what: "AdamW v" },
      { key: "DECAY", ref: { t: a.decay }, extent: a.n, what: "AdamW decay flags" },
    ],
    params,
    workgroups: elementGrid(a.n),
  });
  return {
    setStep(t: number, lr: number): void {
      if (!Number.isInteger(t) || t < 1) {
        throw new Error(`AdamW: step must be an integer ≥ 1, got ${t}`);
      }
      if (!(lr >= 0 && Number.isFinite(lr))) {
        throw new Error(`AdamW: lr must be finite ≥ 0, got ${lr}`);
      }
      const w = new Array<number>(PARAM_WORDS).fill(0);
      words(t, lr).forEach((v, i) => w[i] = v);
      d.setParams(w);
    },
  };
}

/**
 * Training loss of the SNARM head (our documented choice; the official loss is unknown, spec §8
 * "Loss" and §13 item 1), with its gradients:
 *
 *   loss = mean_j FL(logits_j, t) + 0.5 · FL_p(u, t)
 *
 * - FL is the sigmoid focal loss of Lin et al. (RetinaNet; torchvision `sigmoid_focal_loss`) with
 *   α = 0.25, γ = 2, averaged over the B·h·w grid cells of each of the 16 decoder heads' logits
 *   (spec §6 step 5), then over the heads. Focal loss down-weights the many easy background cells,
 *   which matters here because synthetic defects cover a few percent of the grid (strong class
 *   imbalance); α = 0.25 and the 0.5 weight of the unary term follow the README experiment-name
 *   hint "alpha0.25_0.5" (spec §8), our reading of it.
 * - FL_p is the same focal loss in probability form (`F.binary_cross_entropy` on a probability,
 *   log clamped at −100 as PyTorch) on the unary map u = sigmoid(conv1×1(P(r))) (spec §5 step 2):
 *   the model returns u after its sigmoid, and the top-K selection passes no gradient, so u is
 *   trained only by this term (spec §5 "Gradient to the unary predictor").
 * - The target t is the binary anomaly mask resampled to the h×w grid by the **area average** of
 *   each patch's pixel footprint ({@link gridTarget}), a soft target in [0, 1]: it is the fraction
 *   of the patch that is defective, so defects smaller than a patch (8×8 px for 392 → 49) are not
 *   inflated to whole positive patches as max-pooling would (which teaches the head to dilate
 *   defects and hurts pixel AP / PRO at the 392×392 evaluation), and the focal-loss formula is
 *   well defined for soft targets (p_t = p·t + (1 − p)(1 − t), α_t = α·t + (1 − α)(1 − t)).
 * @module
 */
import { sigmoid } from "../ops/pointwise.ts";

/** Focal-loss parameters. */
export interface FocalOptions {
  /** Weight of positives α (negatives get 1 − α); negative = no α weighting (torchvision). 0.25. */
  alpha?: number;
  /** Focusing exponent γ ≥ 0 (2). */
  gamma?: number;
}

/** A mean loss and its gradient w.r.t. the input. */
export interface LossGrad {
  /** Mean over all elements. */
  loss: number;
  /** d loss / d input, same layout as the input. */
  grad: Float64Array;
}

function check(n: number, target: ArrayLike<number>, what: string): void {
  if (target.length !== n) {
    throw new Error(`${what}: target has ${target.length} values, input ${n}`);
  }
  for (let i = 0; i < n; i++) {
    const t = target[i];
    if (!(t >= 0 && t <= 1)) throw new Error(`${what}: target[${i}] = ${t} is not in [0, 1]`);
  }
}

function params(o: FocalOptions): { alpha: number; gamma: number } {
  const alpha = o.alpha ?? 0.25, gamma = o.gamma ?? 2;
  if (!(alpha <= 1) || !(gamma >= 0)) {
    throw new Error(`focal loss: need alpha ≤ 1 and gamma ≥ 0, got alpha ${alpha}, gamma ${gamma}`);
  }
  return { alpha, gamma };
}

/**
 * Combine a cross-entropy value `ce` and its derivative `dce` (w.r.t. the input) with the focal
 * modulation: value α_t·ce·q^γ, q = 1 − p_t, where dq = d q / d input.
 */
function focal(
  ce: number,
  dce: number,
  q: number,
  dq: number,
  t: number,
  alpha: number,
  gamma: number,
): [number, number] {
  const at = alpha >= 0 ? alpha * t + (1 - alpha) * (1 - t) : 1;
  const mod = gamma === 0 ? 1 : q ** gamma;
  const dmod = gamma === 0 || q <= 0 ? 0 : gamma * q ** (gamma - 1) * dq;
  return [at * ce * mod, at * (dce * mod + ce * dmod)];
}

/**
 * Sigmoid focal loss on logits x against targets t ∈ [0, 1] (torchvision `sigmoid_focal_loss`,
 * reduction "mean"): ce = BCE-with-logits(x, t), p = sigmoid(x), p_t = p·t + (1 − p)(1 − t),
 * FL = α_t·ce·(1 − p_t)^γ.
 * @throws {Error} on a length mismatch, a target outside [0, 1] or bad α/γ.
 */
export function focalLossLogits(
  logits: ArrayLike<number>,
  target: ArrayLike<number>,
  opts: FocalOptions = {},
): LossGrad {
  const n = logits.length;
  check(n, target, "focal loss (logits)");
  const { alpha, gamma } = params(opts);
  const grad = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = logits[i], t = target[i];
    const p = sigmoid(x);
    const ce = Math.max(x, 0) - x * t + Math.log1p(Math.exp(-Math.abs(x)));
    const q = 1 - (p * t + (1 - p) * (1 - t));
    const [v, g] = focal(ce, p - t, q, -(2 * t - 1) * p * (1 - p), t, alpha, gamma);
    sum += v;
    grad[i] = g / n;
  }
  return { loss: sum / n, grad };
}

/**
 * The same focal loss on probabilities p ∈ [0, 1] (PyTorch `F.binary_cross_entropy`: logs clamped
 * at −100, backward (p − t)/max(p(1 − p), 1e-12)). Used for the unary map u, a sigmoid output.
 * @returns the mean loss and d loss / d p.
 * @throws {Error} on a length mismatch, p or t outside [0, 1], or bad α/γ.
 */
export function focalLossProb(
  prob: ArrayLike<number>,
  target: ArrayLike<number>,
  opts: FocalOptions = {},
): LossGrad {
  const n = prob.length;
  check(n, target, "focal loss (probabilities)");
  const { alpha, gamma } = params(opts);
  const grad = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const p = prob[i], t = target[i];
    if (!(p >= 0 && p <= 1)) {
      throw new Error(`focal loss (probabilities): p[${i}] = ${p} not in [0, 1]`);
    }
    const ce = -(t * Math.max(Math.log(p), -100) + (1 - t) * Math.max(Math.log1p(-p), -100));
    const dce = (p - t) / Math.max(p * (1 - p), 1e-12);
    const q = 1 - (p * t + (1 - p) * (1 - t));
    const [v, g] = focal(ce, dce, q, -(2 * t - 1), t, alpha, gamma);
    sum += v;
    grad[i] = g / n;
  }
  return { loss: sum / n, grad };
}

/** Options of {@link snarmLoss}. */
export interface SnarmLossOptions extends FocalOptions {
  /** Weight of the unary focal term (0.5). */
  unaryWeight?: number;
}

/** The SNARM training loss and its gradients. */
export interface SnarmLoss {
  /** headLoss + unaryWeight · unaryLoss. */
  loss: number;
  /** Mean over heads of each head's mean focal loss. */
  headLoss: number;
  /** Mean focal loss of the unary map (probability form). */
  unaryLoss: number;
  /** `(nHeads, B, L)` d loss / d logits. */
  dLogits: Float64Array;
  /** `(B, L)` d loss / d u (the probability, not its logit). */
  dUnary: Float64Array;
}

/**
 * SNARM loss (module doc): mean_j FL(logits_j, t) + unaryWeight · FL_p(u, t).
 * @param logits `(nHeads, B, L)` decoder logits (head index = branch·nScan + scan).
 * @param unary `(B, L)` unary map u ∈ [0, 1].
 * @param target `(B, L)` grid target in [0, 1] ({@link gridTarget}).
 * @throws {Error} on mismatched sizes or values out of range.
 */
export function snarmLoss(
  logits: ArrayLike<number>,
  unary: ArrayLike<number>,
  target: ArrayLike<number>,
  nHeads: number,
  opts: SnarmLossOptions = {},
): SnarmLoss {
  const n = target.length;
  if (logits.length !== nHeads * n) {
    throw new Error(
      `snarm loss: logits have ${logits.length} values, expected nHeads·B·L = ${nHeads}·${n}`,
    );
  }
  const wU = opts.unaryWeight ?? 0.5;
  const tRep = new Float64Array(nHeads * n);
  for (let j = 0; j < nHeads; j++) for (let i = 0; i < n; i++) tRep[j * n + i] = target[i];
  // mean over all nHeads·B·L cells = mean over heads of the per-head means (equal sizes).
  const hl = focalLossLogits(logits, tRep, opts);
  const ul = focalLossProb(unary, target, opts);
  for (let i = 0; i < ul.grad.length; i++) ul.grad[i] *= wU;
  return {
    loss: hl.loss + wU * ul.loss,
    headLoss: hl.loss,
    unaryLoss: ul.loss,
    dLogits: hl.grad,
    dUnary: ul.grad,
  };
}

/**
 * Resample a pixel mask to the h×w grid by the area average over each cell's pixel footprint
 * (cv2 INTER_AREA semantics, fractional pixel overlaps included when H/h is not an integer):
 * cell (y, x) covers rows [y·H/h, (y+1)·H/h) and columns [x·W/w, (x+1)·W/w).
 * @param mask `(B, H, W)` row-major, values in [0, 1] (1 = anomalous pixel).
 * @returns `(B, h·w)` soft targets in [0, 1] (fraction of the cell that is anomalous).
 * @throws {Error} on a size mismatch, a mask value outside [0, 1] or a grid larger than the mask.
 */
export function gridTarget(
  mask: ArrayLike<number>,
  B: number,
  H: number,
  W: number,
  h: number,
  w: number,
): Float64Array {
  if (mask.length !== B * H * W) {
    throw new Error(
      `grid target: mask has ${mask.length} values, expected (B, H, W) = (${B}, ${H}, ${W})`,
    );
  }
  if (h > H || w > W) {
    throw new Error(`grid target: grid ${h}×${w} is larger than the mask ${H}×${W}`);
  }
  for (let i = 0; i < mask.length; i++) {
    const v = mask[i];
    if (!(v >= 0 && v <= 1)) {
      throw new Error(
        `grid target: mask value ${v} at index ${i} is not in [0, 1] (binarise 0/255 masks first)`,
      );
    }
  }
  const spans = (n: number, N: number) => {
    const out: Array<Array<[number, number]>> = [];
    const s = N / n;
    for (let i = 0; i < n; i++) {
      const a = i * s, b = (i + 1) * s;
      const row: Array<[number, number]> = [];
      for (let P = Math.floor(a); P < Math.min(Math.ceil(b), N); P++) {
        const ov = Math.min(b, P + 1) - Math.max(a, P);
        if (ov > 0) row.push([P, ov / s]);
      }
      out.push(row);
    }
    return out;
  };
  const sy = spans(h, H), sx = spans(w, W);
  const out = new Float64Array(B * h * w);
  for (let b = 0; b < B; b++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let acc = 0;
        for (const [Y, wy] of sy[y]) {
          for (const [X, wx] of sx[x]) acc += wy * wx * mask[(b * H + Y) * W + X];
        }
        out[(b * h + y) * w + x] = Math.min(1, Math.max(0, acc));
      }
    }
  }
  return out;
}

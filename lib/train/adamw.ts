/**
 * AdamW optimiser with PyTorch `torch.optim.AdamW` semantics (amsgrad off) and the warm-up +
 * cosine learning-rate schedule of the official code base (spec §8 "Training setup":
 * `AdamW(model.vit.parameters(), lr, weight_decay=…)`, `util/schedule.py` WarmCosineScheduler from
 * Dinomaly).
 *
 * One step t (1-based) for a parameter θ with gradient g:
 *   θ ← θ − lr·wd·θ                     (decoupled weight decay; skipped for the no-decay set)
 *   m ← β₁·m + (1 − β₁)·g,  v ← β₂·v + (1 − β₂)·g²
 *   θ ← θ − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + eps)
 * Defaults β = (0.9, 0.999), eps = 1e-8, weight decay 0.01 (PyTorch's; the official value is
 * unknown). State m, v is float64; parameters are updated in place (f32 arrays round once per step).
 * @module
 */

/**
 * The no-weight-decay set (our choice, following mamba_ssm's `_no_weight_decay` marks on A_log and
 * D and the usual practice for norms and biases): `mixer.A_log`, `mixer.D`, every norm
 * weight/bias (`…norm.weight`, `norm_list.*`, `head_list.j.0.norm.*`) and every `.bias`.
 */
export function isNoWeightDecay(name: string): boolean {
  return name.endsWith(".bias") || /(^|\.)A_log$/.test(name) || /(^|\.)D$/.test(name) ||
    /(^|\.)norm(_list)?\./.test(name);
}

/** Options of {@link AdamW}. */
export interface AdamWOptions {
  /** Base learning rate (used when {@link AdamW.step} gets none). */
  lr: number;
  /** (β₁, β₂), default (0.9, 0.999). */
  betas?: [number, number];
  /** Denominator epsilon, default 1e-8. */
  eps?: number;
  /** Decoupled weight decay coefficient, default 0.01. */
  weightDecay?: number;
  /** Parameters exempt from weight decay; default {@link isNoWeightDecay}. */
  noDecay?: (name: string) => boolean;
}

/** AdamW over named parameters (e.g. lib/train/backward_ref.ts `headParameters`). */
export class AdamW {
  /** Steps taken (PyTorch's per-parameter `step`, shared here). */
  t = 0;
  /** First and second moment per parameter, float64. */
  readonly state = new Map<string, { m: Float64Array; v: Float64Array }>();
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;
  private readonly wd: number;
  private readonly noDecay: (name: string) => boolean;

  /**
   * @param params name → parameter array, updated in place by {@link step}.
   * @throws {Error} on a non-positive lr/eps, betas outside [0, 1) or a negative weight decay.
   */
  constructor(
    readonly params: Map<string, Float32Array | Float64Array>,
    readonly opts: AdamWOptions,
  ) {
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.wd = opts.weightDecay ?? 0.01;
    this.noDecay = opts.noDecay ?? isNoWeightDecay;
    if (!(opts.lr >= 0)) throw new Error(`AdamW: lr must be ≥ 0, got ${opts.lr}`);
    if (!(this.eps > 0)) throw new Error(`AdamW: eps must be > 0, got ${this.eps}`);
    for (const b of [this.beta1, this.beta2]) {
      if (!(b >= 0 && b < 1)) throw new Error(`AdamW: betas must be in [0, 1), got ${b}`);
    }
    if (!(this.wd >= 0)) throw new Error(`AdamW: weight decay must be ≥ 0, got ${this.wd}`);
    for (const [name, p] of params) {
      this.state.set(name, { m: new Float64Array(p.length), v: new Float64Array(p.length) });
    }
  }

  /** Whether `name` gets weight decay. */
  decays(name: string): boolean {
    return !this.noDecay(name);
  }

  /**
   * One optimiser step. Parameters without an entry in `grads` are left untouched (PyTorch skips
   * parameters whose grad is None), but still count the shared step.
   * @param grads name → gradient (same length as the parameter).
   * @param lr learning rate of this step (e.g. {@link warmCosineLr}); default `opts.lr`.
   * @throws {Error} on an unknown name, a length mismatch or a non-finite gradient.
   */
  step(grads: Map<string, ArrayLike<number>>, lr = this.opts.lr): void {
    for (const [name, g] of grads) {
      const p = this.params.get(name);
      if (!p) throw new Error(`AdamW: gradient for unknown parameter ${name}`);
      if (g.length !== p.length) {
        throw new Error(`AdamW: gradient of ${name} has ${g.length} values, parameter ${p.length}`);
      }
      for (let i = 0; i < g.length; i++) {
        if (!Number.isFinite(g[i])) {
          throw new Error(`AdamW: non-finite gradient ${g[i]} in ${name} at index ${i}`);
        }
      }
    }
    this.t++;
    const { beta1: b1, beta2: b2, eps } = this;
    const bc1 = 1 - b1 ** this.t, bc2 = 1 - b2 ** this.t;
    const stepSize = lr / bc1, sqrtBc2 = Math.sqrt(bc2);
    for (const [name, g] of grads) {
      const p = this.params.get(name)!;
      const { m, v } = this.state.get(name)!;
      const decay = this.noDecay(name) ? 1 : 1 - lr * this.wd;
      for (let i = 0; i < p.length; i++) {
        const th = p[i] * decay;
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        p[i] = th - stepSize * m[i] / (Math.sqrt(v[i]) / sqrtBc2 + eps);
      }
    }
  }
}

/** Options of {@link warmCosineLr} (names of the official WarmCosineScheduler). */
export interface WarmCosineOptions {
  /** Peak learning rate reached at the end of the warm-up (1e-3 in the README experiment). */
  baseLr: number;
  /** Learning rate at the end of the schedule and after it. */
  finalLr: number;
  /** Total steps (40,000 in the README experiment). */
  totalSteps: number;
  /** Linear warm-up steps (0 = none). */
  warmupSteps?: number;
  /** Learning rate of step 0 of the warm-up (0). */
  warmupStartLr?: number;
}

/**
 * Learning rate of step `step` (0-based, the value the optimiser uses for its (step+1)-th update)
 * under the Dinomaly/SNARM WarmCosineScheduler: warm-up `linspace(warmupStartLr, baseLr,
 * warmupSteps)` (both ends included), then `finalLr + ½(baseLr − finalLr)(1 + cos(π·i/n))` for
 * i = 0 … n − 1, n = totalSteps − warmupSteps; `finalLr` from step totalSteps on.
 * @throws {Error} on a negative step or warmupSteps > totalSteps.
 */
export function warmCosineLr(step: number, o: WarmCosineOptions): number {
  const warm = o.warmupSteps ?? 0, start = o.warmupStartLr ?? 0;
  if (!Number.isInteger(step) || step < 0) {
    throw new Error(`lr schedule: step must be an integer ≥ 0, got ${step}`);
  }
  if (!(warm >= 0 && warm <= o.totalSteps)) {
    throw new Error(
      `lr schedule: warmupSteps ${warm} must be in [0, totalSteps = ${o.totalSteps}]`,
    );
  }
  if (step >= o.totalSteps) return o.finalLr;
  if (step < warm) return warm === 1 ? start : start + (o.baseLr - start) * step / (warm - 1);
  const n = o.totalSteps - warm, i = step - warm;
  return o.finalLr + 0.5 * (o.baseLr - o.finalLr) * (1 + Math.cos(Math.PI * i / n));
}

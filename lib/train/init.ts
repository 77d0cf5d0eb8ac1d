/**
 * Initial weights of a SNARM head for training (spec §6 "Mamba mixer settings"; PyTorch and
 * mamba_ssm v1.1.1 default initialisers), deterministic per seed.
 *
 * - Conv2d / Linear weights and biases: PyTorch's default `kaiming_uniform_(a = √5)`, i.e.
 *   U(−1/√fan_in, 1/√fan_in) for weights and biases (fan_in = in_channels · kernel area).
 * - Mamba mixer: in_proj / x_proj / out_proj as Linear; depthwise conv1d fan_in = d_conv;
 *   dt_proj weight U(±dt_rank^−½); dt_proj bias = softplus⁻¹(dt), dt log-uniform in
 *   [1e-3, 0.1] floored at 1e-4; A_log = log(1 … d_state) per channel; D = 1.
 * - RMSNorm / LayerNorm / BatchNorm weights 1, biases 0; running mean 0, running var 1.
 * - Our choice (not in the official code, whose training is unreleased): the decoder heads'
 *   final bias starts at −log((1 − π)/π) with prior π = 0.01 (RetinaNet's focal-loss
 *   initialisation), so the 16 heads start by predicting "normal" everywhere and the focal loss
 *   does not begin with a flood of false positives; the unary bias likewise.
 * @module
 */
import { type HeadConfig, headDims } from "../model/config.ts";
import type { HeadWeights } from "../model/weights.ts";
import { mulberry32 } from "../ops/pointwise.ts";

/** Prior probability π of the focal-loss bias initialisation. */
export const PRIOR_PROB = 0.01;

/**
 * Fresh head weights for `cfg`.
 * @param seed RNG seed (mulberry32); the same seed gives bit-identical weights.
 * @throws {Error} from {@link headDims} on an invalid configuration.
 */
export function initHeadWeights(cfg: HeadConfig, seed = 0): HeadWeights {
  const dims = headDims(cfg);
  const rnd = mulberry32(seed >>> 0);
  const uni = (n: number, bound: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = (rnd() * 2 - 1) * bound;
    return a;
  };
  const fill = (n: number, v: number) => new Float32Array(n).fill(v);
  const { d, dInner: di, dtRank: R, dState: S, dConv: K, C } = dims;
  const priorBias = -Math.log((1 - PRIOR_PROB) / PRIOR_PROB);
  const branches = cfg.scale_list.map(() => {
    const fanE = cfg.in_chans;
    return {
      embedW: uni(d * fanE, 1 / Math.sqrt(fanE)),
      embedB: uni(d, 1 / Math.sqrt(fanE)),
      blocks: Array.from({ length: dims.depth }, () => {
        const dtB = new Float32Array(di);
        for (let c = 0; c < di; c++) {
          const dt = Math.max(
            Math.exp(rnd() * (Math.log(0.1) - Math.log(1e-3)) + Math.log(1e-3)),
            1e-4,
          );
          dtB[c] = dt + Math.log(-Math.expm1(-dt)); // softplus⁻¹(dt)
        }
        const aLog = new Float32Array(di * S);
        for (let c = 0; c < di; c++) {
          for (let s = 0; s < S; s++) aLog[c * S + s] = Math.log(s + 1);
        }
        return {
          normW: fill(d, 1),
          convW: uni(d * d * 9, 1 / Math.sqrt(9 * d)),
          convB: uni(d, 1 / Math.sqrt(9 * d)),
          mixer: {
            inProj: uni(2 * di * d, 1 / Math.sqrt(d)),
            conv1dW: uni(di * K, 1 / Math.sqrt(K)),
            conv1dB: uni(di, 1 / Math.sqrt(K)),
            xProj: uni((R + 2 * S) * di, 1 / Math.sqrt(di)),
            dtProjW: uni(di * R, 1 / Math.sqrt(R)),
            dtProjB: dtB,
            aLog,
            D: fill(di, 1),
            outProj: uni(d * di, 1 / Math.sqrt(di)),
          },
        };
      }),
      lnW: fill(d, 1),
      lnB: fill(d, 0),
    };
  });
  const heads = Array.from({ length: dims.nHeads }, () => ({
    convW: uni(d * d * 9, 1 / Math.sqrt(9 * d)),
    bnW: fill(d, 1),
    bnB: fill(d, 0),
    bnMean: fill(d, 0),
    bnVar: fill(d, 1),
    outW: uni(d, 1 / Math.sqrt(d)),
    outB: fill(1, priorBias),
  }));
  return {
    config: cfg,
    dims,
    unaryW: uni(C, 1 / Math.sqrt(C)),
    unaryB: fill(1, priorBias),
    branches,
    heads,
  };
}

/**
 * Element-wise activations of the SNARM head and their derivatives (spec §6), float64:
 * sigmoid (unary predictor, §5 step 2; pixel map, §6 "Outputs"), SiLU (Mamba conv1d output and
 * gate, §6 "Mamba v1" steps 2 and 6), softplus (Δ, step 3), ReLU (decoder head, §6 step 5), and
 * inverted dropout (§6 step 3, p = 0.1 before the final LayerNorm in training).
 * @module
 */

/** Logistic sigmoid 1 / (1 + e^−x), evaluated without overflow. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** SiLU x·sigmoid(x). */
export function silu(x: number): number {
  return x * sigmoid(x);
}

/** d SiLU / dx = s·(1 + x·(1 − s)), s = sigmoid(x). */
export function siluGrad(x: number): number {
  const s = sigmoid(x);
  return s * (1 + x * (1 - s));
}

/** torch `F.softplus` (beta 1, threshold 20): x for x > 20, else log(1 + e^x). */
export function softplus(x: number): number {
  return x > 20 ? x : Math.log1p(Math.exp(x));
}

/** Derivative of torch softplus: 1 above the threshold 20, else sigmoid(x). */
export function softplusGrad(x: number): number {
  return x > 20 ? 1 : sigmoid(x);
}

/** Apply `f` to every element → new Float64Array. */
export function mapVec(x: ArrayLike<number>, f: (v: number) => number): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f(x[i]);
  return out;
}

/** VJP of an element-wise op: dx_i = dy_i · f′(x_i). */
export function pointwiseBackward(
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
  fPrime: (v: number) => number,
): Float64Array {
  if (x.length !== dy.length) {
    throw new Error(`pointwise backward: x has ${x.length} values, dy ${dy.length}`);
  }
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = dy[i] * fPrime(x[i]);
  return out;
}

/** ReLU max(x, 0). */
export function relu(x: number): number {
  return x > 0 ? x : 0;
}

/** Derivative of ReLU (0 at x = 0, as PyTorch). */
export function reluGrad(x: number): number {
  return x > 0 ? 1 : 0;
}

/** Sigmoid of every element. */
export function sigmoidForward(x: ArrayLike<number>): Float64Array {
  return mapVec(x, sigmoid);
}

/** VJP of sigmoid from its output s: dx = dy · s(1 − s). */
export function sigmoidBackward(s: ArrayLike<number>, dy: ArrayLike<number>): Float64Array {
  return pointwiseBackward(s, dy, (v) => v * (1 - v));
}

export { mulberry32 } from "../util/rng.ts";
import { mulberry32 } from "../util/rng.ts";

/**
 * Inverted-dropout multipliers (PyTorch `nn.Dropout` semantics, not its RNG stream): each element
 * is 0 with probability p and 1/(1 − p) otherwise; y = x ⊙ mask, dx = dy ⊙ mask.
 * @throws {Error} when p is not in [0, 1).
 */
export function dropoutMask(n: number, p: number, seed: number): Float64Array {
  if (!(p >= 0 && p < 1)) throw new Error(`dropout: p must be in [0, 1), got ${p}`);
  const m = new Float64Array(n);
  const rnd = mulberry32(seed);
  const keep = 1 / (1 - p);
  for (let i = 0; i < n; i++) m[i] = rnd() < p ? 0 : keep;
  return m;
}

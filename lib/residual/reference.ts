/**
 * TypeScript reference of the whole residual fusion stage (spec §4–5), used to check the WGSL
 * kernels and as the fallback when no WebGPU adapter exists.
 * @module
 */
import { encodeImageInto } from "./encode.ts";
import { navigatorMaps, type ReferenceSelection, selectReferences } from "./navigator.ts";
import { featuresChannelsLast, nearestReferenceExact } from "./nearest.ts";
import type { FusionArgs, FusionOptions, FusionOut } from "./types.ts";
import { checkFusionInput, type FusionShape } from "./validate.ts";

const fr = Math.fround;

/**
 * Residual fusion, TypeScript reference (spec §4–5; official `SelfNavigatedMamba.forward` up to
 * the hybrid residual).
 *
 * 1. R = P(r); u = sigmoid(conv1×1(R)); waypoint = u + mean_c R.
 * 2. References: the K = round(ratio·L) positions with the smallest waypoint (ties → lower index).
 * 3. nn(p) = nearest reference of p by L2 on f (self excluded), float64 direct differences.
 * 4. s = f[nn] − f (f32), S_enc = P(s), Z = concat[R, S_enc].
 *
 * @param args {@link FusionArgs}: X `(B, 2C, h, w)` = [r ‖ f], B, h, w, the unary conv's weight
 *   and bias, the options (`ratio`, `method`; `engine` is ignored here).
 * @throws {Error} naming `X`, `unaryWeight`, `unaryBias`, `ratio` or `method` on bad input.
 */
export function fuseResidualsRef(...args: FusionArgs): FusionOut {
  const [X, , , , unaryWeight, unaryBias, opts] = args;
  const shape = checkFusionInput(...args);
  const front = fusionFront(X, shape, unaryWeight, unaryBias, opts);
  return fusionBack(X, front, nearestReferences(X, front), opts);
}

/**
 * `(B, L)` nearest reference of every position (spec §5 "Intra-residual"), float64 direct
 * differences ({@link nearestReferenceExact}).
 */
export function nearestReferences(X: Float32Array, front: FusionFront): Int32Array {
  const { B, C, L, K, sel } = front;
  const intraNn = new Int32Array(B * L);
  for (let b = 0; b < B; b++) {
    const f = featuresChannelsLast(X, b, C, L);
    const refs = sel.refSorted.subarray(b * K, (b + 1) * K);
    for (let p = 0; p < L; p++) intraNn[b * L + p] = nearestReferenceExact(f, C, p, refs);
  }
  return intraNn;
}

/** Result of {@link fusionFront}: sizes, P(r), the navigator maps and the reference selection. */
export interface FusionFront {
  B: number;
  C: number;
  L: number;
  K: number;
  Renc: Float32Array;
  unary: Float32Array;
  waypoint: Float32Array;
  sel: ReferenceSelection;
}

/**
 * The fusion up to the nearest-reference search (spec §4–5 steps 1–4): P(r), the unary and
 * waypoint maps, the self-reference top-K, on inputs checked by `checkFusionInput` (whose
 * `shape` it takes). Shared by {@link fuseResidualsRef} and the native engine.
 */
export function fusionFront(
  X: Float32Array,
  shape: FusionShape,
  unaryWeight: Float32Array,
  unaryBias: number,
  opts: FusionOptions,
): FusionFront {
  const { B, C, L, K } = shape;
  const Renc = new Float32Array(B * C * L);
  for (let b = 0; b < B; b++) {
    encodeImageInto(X, b * 2 * C * L, C, L, opts.method, Renc, b * C * L);
  }
  const { unary, waypoint } = navigatorMaps(Renc, B, C, L, unaryWeight, unaryBias);
  return { B, C, L, K, Renc, unary, waypoint, sel: selectReferences(waypoint, B, L, K) };
}

/**
 * The fusion after the nearest-reference search (spec §5 steps 5–6): the intra-residual
 * s = f[nn] − f, its encoding and Z = [P(r) ‖ P(s)].
 * @param intraNn `(B, L)` position of each position's nearest reference.
 */
export function fusionBack(
  X: Float32Array,
  front: FusionFront,
  intraNn: Int32Array,
  opts: FusionOptions,
): FusionOut {
  const { B, C, L, K, Renc, unary, waypoint, sel } = front;
  const intraResidual = new Float32Array(B * C * L);
  for (let b = 0; b < B; b++) {
    intraResidualInto(X, b, C, L, intraNn.subarray(b * L, (b + 1) * L), intraResidual);
  }
  const Senc = new Float32Array(B * C * L);
  for (let b = 0; b < B; b++) {
    encodeImageInto(intraResidual, b * C * L, C, L, opts.method, Senc, b * C * L);
  }
  return {
    unary,
    waypoint,
    refMask: sel.refMask,
    refIndices: sel.refIndices,
    intraNn,
    intraResidual,
    Renc,
    Senc,
    Z: concatChannels(Renc, Senc, B, C, L),
    Cp: C,
    K,
  };
}

/** s = f[nn] − f of image `b` (f32), written to `(B, C, L)` `out`. */
function intraResidualInto(
  X: Float32Array,
  b: number,
  C: number,
  L: number,
  nn: Int32Array,
  out: Float32Array,
): void {
  const base = (b * 2 * C + C) * L;
  for (let c = 0; c < C; c++) {
    const o = base + c * L;
    const d = (b * C + c) * L;
    for (let p = 0; p < L; p++) out[d + p] = fr(X[o + nn[p]] - X[o + p]);
  }
}

/** Concatenate two `(B, C, L)` tensors along channels into `(B, 2C, L)`. */
export function concatChannels(
  a: Float32Array,
  s: Float32Array,
  B: number,
  C: number,
  L: number,
): Float32Array {
  const Z = new Float32Array(B * 2 * C * L);
  for (let b = 0; b < B; b++) {
    Z.set(a.subarray(b * C * L, (b + 1) * C * L), b * 2 * C * L);
    Z.set(s.subarray(b * C * L, (b + 1) * C * L), (b * 2 + 1) * C * L);
  }
  return Z;
}

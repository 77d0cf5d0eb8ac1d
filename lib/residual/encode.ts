/**
 * TypeScript reference of the residual encoding P (spec §4; the self-reference selection is the
 * navigator's, lib/residual/navigator.ts). The arithmetic follows the official float32 torch ops: |x|, x·x, and the
 * pair average (a + b)/2 of `adaptive_avg_pool1d`, each rounded to f32, so P is bit-exact.
 * @module
 */
import type { ResidualMethod } from "./types.ts";
import { checkFinite, checkMethod } from "./validate.ts";

const fr = Math.fround;

/**
 * Encode one image: `src` holds C channels of L positions, channels-first, starting at `srcOff`;
 * P is written as C channels of L positions at `dstOff` of `dst`.
 */
export function encodeImageInto(
  src: Float32Array,
  srcOff: number,
  C: number,
  L: number,
  method: ResidualMethod,
  dst: Float32Array,
  dstOff: number,
): void {
  if (method === "abs" || method === "square") {
    const sq = method === "square";
    for (let i = 0; i < C * L; i++) {
      const x = src[srcOff + i];
      dst[dstOff + i] = sq ? fr(x * x) : Math.abs(x);
    }
    return;
  }
  // concat_abs_square: v = [|x| ‖ x²] (2C channels), P[j] = (v[2j] + v[2j+1]) / 2.
  for (let j = 0; j < C; j++) {
    const i0 = 2 * j, i1 = 2 * j + 1;
    const o = dstOff + j * L;
    const a0 = srcOff + (i0 < C ? i0 : i0 - C) * L, b0 = srcOff + (i1 < C ? i1 : i1 - C) * L;
    if (i1 < C) { // both |x|
      for (let p = 0; p < L; p++) {
        dst[o + p] = fr(fr(Math.abs(src[a0 + p]) + Math.abs(src[b0 + p])) * 0.5);
      }
    } else if (i0 >= C) { // both x²
      for (let p = 0; p < L; p++) {
        const a = src[a0 + p], b = src[b0 + p];
        dst[o + p] = fr(fr(fr(a * a) + fr(b * b)) * 0.5);
      }
    } else { // |x| ‖ x² (odd C)
      for (let p = 0; p < L; p++) {
        const b = src[b0 + p];
        dst[o + p] = fr(fr(Math.abs(src[a0 + p]) + fr(b * b)) * 0.5);
      }
    }
  }
}

/**
 * Residual encoding P(x) (spec §4, official `prepocess_residual`).
 * @param r `(B, C, h, w)` channels-first row-major f32 signed residual.
 * @returns `(B, C, h, w)` channels-first f32 P(r) (Cp = C for every method).
 * @throws {Error} naming `r` when its length is not B·C·h·w or it holds NaN/Inf, or on an
 *   unknown method.
 */
export function encodeResidual(
  r: Float32Array,
  B: number,
  C: number,
  h: number,
  w: number,
  method: ResidualMethod,
): Float32Array {
  checkMethod(method);
  for (const [v, n] of [[B, "B"], [C, "C"], [h, "h"], [w, "w"]] as const) {
    if (!Number.isInteger(v) || v <= 0) {
      throw new Error(`${n} must be a positive integer, got ${v}`);
    }
  }
  const L = h * w;
  if (r.length !== B * C * L) {
    throw new Error(
      `r has ${r.length} values, expected B·C·h·w = ${B}·${C}·${h}·${w} = ${B * C * L}`,
    );
  }
  checkFinite(r, "r", C, h, w);
  const out = new Float32Array(B * C * L);
  for (let b = 0; b < B; b++) encodeImageInto(r, b * C * L, C, L, method, out, b * C * L);
  return out;
}

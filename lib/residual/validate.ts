/**
 * Input checks of the residual fusion stage: every bad input is rejected with an Error naming the
 * tensor (`X`, `unaryWeight`, `unaryBias`, `r`) and what was expected.
 * @module
 */
import { type FusionArgs, RESIDUAL_METHODS, type ResidualMethod } from "./types.ts";

/** Shapes derived from a validated fusion input. */
export interface FusionShape {
  /** Batch size. */
  B: number;
  /** Residual/feature channels C (X has 2C). */
  C: number;
  h: number;
  w: number;
  /** Positions per image, h·w. */
  L: number;
  /** References per image, K = round(ratio·L) (Python rounding). */
  K: number;
}

/** Python 3 `round()` for a non-negative float: halves go to the even neighbour. */
export function pyRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Number of self-references K = round(L·ratio), exactly as the official
 * `sample_num = round(h*w*self_ratio)` (spec §5 step 4).
 * @throws {Error} when ratio is not in (0, 1] or K rounds to 0.
 */
export function referenceCount(L: number, ratio: number): number {
  if (!Number.isFinite(ratio) || ratio <= 0 || ratio > 1) {
    throw new Error(`ratio: self-reference ratio must be in (0, 1], got ${ratio}`);
  }
  const K = pyRound(L * ratio);
  if (K < 1) throw new Error(`ratio: round(${L}·${ratio}) = 0 references; raise the ratio`);
  return K;
}

function positiveInt(v: number, name: string): void {
  if (!Number.isInteger(v) || v <= 0) {
    throw new Error(`${name} must be a positive integer, got ${v}`);
  }
}

/** @throws {Error} when `method` is not a known residual encoding. */
export function checkMethod(method: string): asserts method is ResidualMethod {
  if (!RESIDUAL_METHODS.includes(method as ResidualMethod)) {
    throw new Error(
      `method: unknown residual encoding "${method}", expected one of ${
        RESIDUAL_METHODS.join(", ")
      }`,
    );
  }
}

/**
 * Throw if `t` holds NaN or ±Infinity, naming the tensor and the (b, channel, y, x) of the first
 * bad value for a channels-first `(B, C, h, w)` layout.
 */
export function checkFinite(
  t: Float32Array,
  name: string,
  C: number,
  h: number,
  w: number,
): void {
  for (let i = 0; i < t.length; i++) {
    const v = t[i];
    if (v - v !== 0) {
      const L = h * w;
      const b = Math.floor(i / (C * L));
      const c = Math.floor(i / L) % C;
      const p = i % L;
      throw new Error(
        `${name}: non-finite value ${v} at index ${i} (image ${b}, channel ${c}, y ${
          Math.floor(p / w)
        }, x ${p % w})`,
      );
    }
  }
}

/**
 * Validate the inputs of `fuseResiduals`/`fuseResidualsRef` ({@link FusionArgs}) and derive the
 * shapes.
 * @throws {Error} naming `X` (length not B·2C·h·w for an integer C ≥ 1, odd channel count,
 *   NaN/Inf), `unaryWeight` (length ≠ C, non-finite), `unaryBias`, `ratio` or `method`.
 */
export function checkFusionInput(...args: FusionArgs): FusionShape {
  const [X, B, h, w, unaryWeight, unaryBias, opts] = args;
  positiveInt(B, "B");
  positiveInt(h, "h");
  positiveInt(w, "w");
  if (!(X instanceof Float32Array)) throw new Error("X must be a Float32Array (B, 2C, h, w)");
  const L = h * w;
  if (X.length === 0 || X.length % (B * L) !== 0) {
    throw new Error(
      `X has ${X.length} values, not B·2C·h·w for B=${B}, h=${h}, w=${w} (a multiple of ${B * L})`,
    );
  }
  const channels = X.length / (B * L);
  if (channels % 2 !== 0) {
    throw new Error(
      `X has an odd channel count ${channels} (from ${X.length} values for B=${B}, h=${h}, w=${w}); expected 2C = [r | f]`,
    );
  }
  const C = channels / 2;
  if (!(unaryWeight instanceof Float32Array) || unaryWeight.length !== C) {
    throw new Error(
      `unaryWeight has ${unaryWeight?.length} values, expected Cp = ${C} (X has 2C = ${channels} channels)`,
    );
  }
  checkFinite(unaryWeight, "unaryWeight", C, 1, 1);
  if (typeof unaryBias !== "number" || !Number.isFinite(unaryBias)) {
    throw new Error(`unaryBias must be a finite number, got ${unaryBias}`);
  }
  checkMethod(opts.method);
  const K = referenceCount(L, opts.ratio);
  checkFinite(X, "X", channels, h, w);
  return { B, C, h, w, L, K };
}

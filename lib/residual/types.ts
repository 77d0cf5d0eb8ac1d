/**
 * Shared types of the residual fusion stage (spec §4–5): the residual encoding P, the navigator's
 * unary/waypoint maps, the self-reference selection and the intra-residual.
 * @module
 */

/**
 * Residual encoding P (spec §4; official `model/util.py` `prepocess_residual`):
 * - `"abs"`: P(x) = |x|, C channels;
 * - `"square"`: P(x) = x², C channels;
 * - `"concat_abs_square"`: concatenate |x| and x² (2C channels) and average adjacent channel
 *   pairs back to C (adaptive average pool over channels): P(x)[j] = (v[2j] + v[2j+1]) / 2 with
 *   v = [|x| ‖ x²]; for even C the first C/2 channels are pair-averaged |x| and the last C/2 are
 *   pair-averaged x². This is the README configuration.
 */
export type ResidualMethod = "abs" | "square" | "concat_abs_square";

/** All encodings, in the order of the WGSL `METHOD` override (0, 1, 2). */
export const RESIDUAL_METHODS: readonly ResidualMethod[] = ["abs", "square", "concat_abs_square"];

/** Options of {@link FusionOut}'s producers. */
export interface FusionOptions {
  /** Self-reference ratio (`--self-ratio`, 0.75 in the README): K = round(ratio·h·w), Python rounding. */
  ratio: number;
  /** Residual encoding P (`concat_abs_square` in the README). */
  method: ResidualMethod;
  /**
   * Where the stage runs (default `"auto"`): `"webgpu"` (WGSL kernels, lib/residual/gpu.ts; the
   * reference after a warning without an adapter), `"native"` (the nearest-reference search on
   * ONNX Runtime's CPU engine, lib/residual/native.ts), `"reference"` (TypeScript,
   * lib/residual/reference.ts). `"auto"` picks native when the adapter is a CPU or absent and
   * onnxruntime-node loads, else webgpu. native and reference give identical results; the unary
   * and waypoint maps of webgpu differ from theirs by f32 rounding of the sums, so its references
   * (hence nearest references) differ where waypoints tie within that rounding.
   */
  engine?: FusionEngine;
}

/**
 * The arguments of the fusion stage (`fuseResiduals`, `fuseResidualsRef`, `checkFusionInput`),
 * written once: X `(B, 2C, h, w)` channels-first row-major f32 (channels [0, C) = signed
 * inter-residual r, [C, 2C) = patch features f; official `torch.chunk(X, 2, 1)`), the batch size
 * and grid, the unary 1×1 conv's weight `(C)` and bias (`simple_predictor.weight` / `.bias`), the
 * options.
 */
export type FusionArgs = [
  X: Float32Array,
  B: number,
  h: number,
  w: number,
  unaryWeight: Float32Array,
  unaryBias: number,
  opts: FusionOptions,
];

/** Engines of the fusion stage ({@link FusionOptions.engine}). */
export type FusionEngine = "auto" | "webgpu" | "native" | "reference";

/**
 * Output of the residual fusion stage for B images on an h×w grid (L = h·w positions,
 * row-major position p = y·w + x). All f32 tensors are channels-first row-major.
 */
export interface FusionOut {
  /** `(B, h, w)` unary prediction u = sigmoid(conv1×1(P(r)) + bias) (spec §5 step 2). */
  unary: Float32Array;
  /** `(B, h, w)` waypoint w = u + mean over channels of P(r) (spec §5 step 3). */
  waypoint: Float32Array;
  /** `(B, L)` navigation mask: 1 = self-reference (one of the K smallest waypoints), 0 = suspicious. */
  refMask: Uint8Array;
  /** `(B, K)` reference positions in ascending waypoint order (ties → lower position index). */
  refIndices: Int32Array;
  /**
   * `(B, L)` row-major position of each position's nearest reference (L2 on the raw features f;
   * a reference never matches itself; ties → lower position index).
   */
  intraNn: Int32Array;
  /** `(B, C, h, w)` signed intra-residual s = f[nn] − f (spec §5 "Intra-residual"). */
  intraResidual: Float32Array;
  /** `(B, Cp, h, w)` R = P(r). */
  Renc: Float32Array;
  /** `(B, Cp, h, w)` S_enc = P(s). */
  Senc: Float32Array;
  /** `(B, 2·Cp, h, w)` hybrid residual Z = concat[Renc, Senc] along channels (spec §5 "Hybrid residual"). */
  Z: Float32Array;
  /** Encoded channel count Cp (= C for every method, C = half of X's channel count). */
  Cp: number;
  /** Number of references K per image. */
  K: number;
}

/**
 * The selective-scan recurrence and gate of the native CPU head (spec §6 "Mamba v1 (S6)
 * computation" steps 5–6), run on the host between the head's ONNX graphs
 * (lib/model/native_head.ts):
 *
 *   h_t,n,c = dA_t,n,c · h_{t−1},n,c + du_t,c · B_t,n   (h_0 = 0 at the start of each sequence)
 *   y_t,c   = (Σ_n C_t,n · h_t,n,c + D_c · u_t,c) · g_t,c   (g = SiLU(z))
 *
 * Two implementations: {@link scanRecurrence} + {@link gate} in plain TypeScript (the reference),
 * and {@link HostScanStage}, the WebAssembly SIMD kernel `wasm/head_scan.wat` (four channels per
 * f32x4; 1.75 vs 3.9 ms per mixer of the paper head, 4 × 600 tokens × 256 channels × 4 states, on
 * this project's 2-core machine), whose operands live in the
 * kernel's own memory so the graphs write them there directly (pre-allocated outputs) and read
 * the gated y from there. Both round every product and sum to f32 (the reference through typed
 * arrays): results agree to a few f32 ulps (tests/scan_wasm_test.ts).
 *
 * @example
 * ```ts
 * import { HostScanStage, scanRecurrence } from "./host_scan.ts";
 * const st = HostScanStage.create({ N: 1, Ls: 2, di: 4, ns: 1, nBranch: 1 });
 * if (st) {
 *   const op = st.operands[0];
 *   op.dA.fill(0.5), op.du.fill(1), op.B.fill(1), op.C.fill(1), op.u.fill(0), op.g.fill(1);
 *   const y = st.run(0, new Float32Array(4));
 *   // h_1 = 1, h_2 = 0.5·1 + 1 = 1.5
 *   if (y[0] !== 1 || y[4] !== 1.5) throw new Error("scan");
 *   const ref = scanRecurrence(op.dA, op.du, op.B, op.C, 1, 2, 4, 1);
 *   if (ref[4] !== 1.5) throw new Error("reference");
 * }
 * ```
 * @module
 */
import { HEAD_SCAN_WASM } from "./scan_wasm.ts";

/**
 * Selective-scan recurrence over the graph's operands, f32 (the reference of
 * {@link HostScanStage}, before the D skip and the gate):
 * h_t,n,c = dA_t,n,c · h_{t−1},n,c + du_t,c · B_t,n (h_0 = 0), y_t,c = Σ_n C_t,n · h_t,n,c.
 * @param dA `(N, Ls, ns, di)` = exp(Δ·A); @param du `(N, Ls, di)` = Δ·u; @param B, C `(N, Ls, ns)`.
 * @param out optional `(N, Ls, di)` buffer for y (overwritten).
 * @returns y `(N, Ls, di)`.
 */
export function scanRecurrence(
  dA: Float32Array,
  du: Float32Array,
  B: Float32Array,
  C: Float32Array,
  N: number,
  Ls: number,
  di: number,
  ns: number,
  out?: Float32Array,
): Float32Array {
  const y = out ? out.fill(0) : new Float32Array(N * Ls * di);
  const hs = new Float32Array(ns * di);
  for (let q = 0; q < N; q++) {
    hs.fill(0);
    for (let t = 0; t < Ls; t++) {
      const r = q * Ls + t, ab = r * ns * di, xb = r * di, cb = r * ns;
      for (let n = 0; n < ns; n++) {
        const bn = B[cb + n], cn = C[cb + n], o = n * di, ao = ab + o;
        for (let c = 0; c < di; c++) {
          const v = dA[ao + c] * hs[o + c] + du[xb + c] * bn;
          hs[o + c] = v;
          y[xb + c] += cn * v;
        }
      }
    }
  }
  return y;
}

/**
 * The mixer's gate in place (spec §6 step 6): y ← (y + D·u) · SiLU(z), all `(N, Ls, di)` with D
 * `(di)` and `siluZ` = SiLU(z) from the graph.
 */
export function gate(y: Float32Array, u: Float32Array, siluZ: Float32Array, D: Float32Array): void {
  const di = D.length;
  for (let o = 0; o < y.length; o += di) {
    for (let c = 0; c < di; c++) y[o + c] = (y[o + c] + D[c] * u[o + c]) * siluZ[o + c];
  }
}

/** Sizes of one stage's scans: N sequences of Ls tokens, di channels, ns states, per branch. */
export interface ScanShape {
  N: number;
  Ls: number;
  di: number;
  ns: number;
  nBranch: number;
}

/**
 * One branch's operands (views into the kernel's memory): dA `(N, Ls, ns, di)`, du, u, g and the
 * output y `(N, Ls, di)`, B and C `(N, Ls, ns)`.
 */
export interface ScanOperands {
  dA: Float32Array;
  du: Float32Array;
  B: Float32Array;
  C: Float32Array;
  u: Float32Array;
  g: Float32Array;
  y: Float32Array;
}

let compiled: WebAssembly.Module | null | undefined;

/** The compiled kernel, or null where this engine lacks WebAssembly SIMD. */
function scanModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    const bytes = Uint8Array.from(atob(HEAD_SCAN_WASM), (c) => c.charCodeAt(0));
    compiled = typeof WebAssembly === "object" && WebAssembly.validate(bytes)
      ? new WebAssembly.Module(bytes)
      : null;
  }
  return compiled;
}

/** Largest memory a stage takes (bytes): beyond it the caller keeps the TypeScript path. */
const MAX_BYTES = 2 ** 31;

/**
 * The scans of one stage of the native head (every branch of one block), on the WebAssembly SIMD
 * kernel: {@link operands} are the views the graph's outputs are written to, {@link run} scans and
 * gates branch i into its y.
 */
export class HostScanStage {
  private constructor(
    private readonly scan: (...a: number[]) => void,
    /** Per branch: the operand views. */
    readonly operands: ScanOperands[],
    private readonly Dv: Float32Array,
    private readonly hsPtr: number,
    readonly shape: ScanShape,
  ) {}

  /**
   * A stage for `shape`, or null where the kernel does not apply: no WebAssembly SIMD, di not a
   * multiple of 4, or operands beyond 2 GiB.
   * @throws {RangeError} on a size that is not a positive integer.
   */
  static create(shape: ScanShape): HostScanStage | null {
    const { N, Ls, di, ns, nBranch } = shape;
    for (const [k, v] of Object.entries(shape)) {
      if (!Number.isInteger(v) || v < 1) {
        throw new RangeError(`HostScanStage: ${k} = ${v} must be a positive integer`);
      }
    }
    const mod = scanModule();
    if (!mod || di % 4 !== 0) return null;
    // every array starts on a 16-byte boundary: lengths rounded up to 4 floats
    const al = (n: number) => Math.ceil(n / 4) * 4;
    const lengths: Record<keyof ScanOperands, number> = {
      dA: N * Ls * ns * di,
      du: N * Ls * di,
      B: N * Ls * ns,
      C: N * Ls * ns,
      u: N * Ls * di,
      g: N * Ls * di,
      y: N * Ls * di,
    };
    const perBranch = Object.values(lengths).reduce((a, n) => a + al(n), 0);
    const floats = nBranch * perBranch + al(di) + al(ns * di);
    if (floats * 4 > MAX_BYTES) return null;
    const memory = new WebAssembly.Memory({ initial: Math.ceil((floats * 4) / 65536) });
    const inst = new WebAssembly.Instance(mod, { env: { memory } });
    const buf = memory.buffer;
    let at = 0;
    const take = (n: number) => {
      const v = new Float32Array(buf, at * 4, n);
      at += al(n);
      return v;
    };
    const operands: ScanOperands[] = [];
    for (let i = 0; i < nBranch; i++) {
      const views = Object.entries(lengths).map(([k, n]) => [k, take(n)]);
      operands.push(Object.fromEntries(views) as Record<keyof ScanOperands, Float32Array>);
    }
    const Dv = take(di);
    const hsPtr = at * 4;
    return new HostScanStage(
      inst.exports.scan as (...a: number[]) => void,
      operands,
      Dv,
      hsPtr,
      shape,
    );
  }

  /**
   * Scan and gate branch `i` from its operands: y ← (scan + D·u) · g.
   * @param D `(di)` the mixer's skip weights. @returns the branch's y view `(N, Ls, di)`.
   * @throws {RangeError} on a wrong branch or D length.
   */
  run(i: number, D: Float32Array): Float32Array {
    const { N, Ls, di, ns } = this.shape;
    const op = this.operands[i];
    if (!op) throw new RangeError(`HostScanStage.run: branch ${i} of ${this.operands.length}`);
    if (D.length !== di) throw new RangeError(`HostScanStage.run: D has ${D.length}, want ${di}`);
    this.Dv.set(D);
    const p = (v: Float32Array) => v.byteOffset;
    this.scan(
      p(op.dA),
      p(op.du),
      p(op.B),
      p(op.C),
      p(op.u),
      p(op.g),
      p(this.Dv),
      p(op.y),
      this.hsPtr,
      N,
      Ls,
      di,
      ns,
    );
    return op.y;
  }
}

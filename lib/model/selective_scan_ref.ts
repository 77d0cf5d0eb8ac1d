/**
 * Selective scan (Mamba v1 S6, spec §6 step 5) — plain TypeScript reference of
 * `wgsl/head/selective_scan.wgsl`, equal to `mamba_ssm.ops.selective_scan_interface.selective_scan_ref`
 * with `delta_softplus=True`, a `D` skip and a `z` gate:
 *
 *   Δ_t,c = softplus(delta_t,c + delta_bias_c)            (torch softplus, threshold 20)
 *   h_t,c,n = exp(Δ_t,c · A_c,n) · h_{t−1},c,n + Δ_t,c · B_t,n · u_t,c,   h_0 = 0
 *   y_t,c = (Σ_n C_t,n · h_t,c,n + D_c · u_t,c) · SiLU(z_t,c)
 *
 * Tensors are addressed through strides so both the mamba_ssm layout `(nSeq, dInner, L)` and the
 * token-major layout `(nSeq, L, dInner)` of the head pipeline work without copies.
 * @module
 */

/** Strided view: element (seq, t, c) is at `off + seq·sSeq + t·sT + c·sC`. */
export interface Strided {
  off: number;
  sSeq: number;
  sT: number;
  sC: number;
}

/** Sizes of one selective-scan call. */
export interface ScanDims {
  /** Number of independent sequences. */
  nSeq: number;
  /** Sequence length. */
  L: number;
  /** Channels (d_inner). */
  dInner: number;
  /** State size N. */
  dState: number;
}

/** Addressing of every operand (channel index `c` is the state index n for B and C). */
export interface ScanLayout {
  u: Strided;
  delta: Strided;
  z: Strided;
  B: Strided;
  C: Strided;
  out: Strided;
}

/** The mamba_ssm layout: u/delta/z/out `(nSeq, dInner, L)`, B/C `(nSeq, dState, L)`. */
export function layoutNDL(dims: ScanDims): ScanLayout {
  const { L, dInner, dState } = dims;
  const x = { off: 0, sSeq: dInner * L, sT: 1, sC: L };
  const bc = { off: 0, sSeq: dState * L, sT: 1, sC: L };
  return { u: x, delta: x, z: x, out: x, B: bc, C: { ...bc } };
}

/** Token-major layout: u/delta/z/out `(nSeq, L, dInner)`, B/C `(nSeq, L, dState)`. */
export function layoutNLD(dims: ScanDims): ScanLayout {
  const { L, dInner, dState } = dims;
  const x = { off: 0, sSeq: L * dInner, sT: dInner, sC: 1 };
  const bc = { off: 0, sSeq: L * dState, sT: dState, sC: 1 };
  return { u: x, delta: x, z: x, out: x, B: bc, C: { ...bc } };
}

/** Operands; `A` is (dInner, dState) = −exp(A_log), `D` and `deltaBias` are (dInner). */
export interface ScanOperands {
  u: Float32Array;
  delta: Float32Array;
  z: Float32Array;
  B: Float32Array;
  C: Float32Array;
  A: Float32Array;
  D: Float32Array;
  deltaBias: Float32Array;
}

/** torch `F.softplus` (beta 1, threshold 20). */
export function softplus(x: number): number {
  return x > 20 ? x : Math.log1p(Math.exp(x));
}

/** Largest index + 1 touched by a strided view (for size checks). */
export function stridedExtent(s: Strided, nSeq: number, L: number, nC: number): number {
  return s.off + (nSeq - 1) * s.sSeq + (L - 1) * s.sT + (nC - 1) * s.sC + 1;
}

/**
 * Check that every operand is large enough for its view.
 * @throws {Error} naming the operand.
 */
export function checkScanOperands(
  ops: ScanOperands,
  dims: ScanDims,
  layout: ScanLayout,
  outLength?: number,
): void {
  const { nSeq, L, dInner, dState } = dims;
  for (const [k, v] of Object.entries(dims)) {
    if (!Number.isInteger(v) || v <= 0) {
      throw new Error(`selective scan: ${k} must be a positive integer, got ${v}`);
    }
  }
  const need: Array<[string, number, number]> = [
    ["u", ops.u.length, stridedExtent(layout.u, nSeq, L, dInner)],
    ["delta", ops.delta.length, stridedExtent(layout.delta, nSeq, L, dInner)],
    ["z", ops.z.length, stridedExtent(layout.z, nSeq, L, dInner)],
    ["B", ops.B.length, stridedExtent(layout.B, nSeq, L, dState)],
    ["C", ops.C.length, stridedExtent(layout.C, nSeq, L, dState)],
    ["A", ops.A.length, dInner * dState],
    ["D", ops.D.length, dInner],
    ["delta_bias", ops.deltaBias.length, dInner],
  ];
  if (outLength !== undefined) {
    need.push(["out", outLength, stridedExtent(layout.out, nSeq, L, dInner)]);
  }
  for (const [name, have, want] of need) {
    if (have < want) {
      throw new Error(
        `selective scan: operand ${name} has ${have} values, its layout needs ${want}`,
      );
    }
  }
}

/**
 * Reference selective scan (f64 arithmetic, f32 output).
 * @param out optional destination (same layout as `layout.out`); allocated when absent.
 * @returns `out`.
 * @throws {Error} when an operand is too small for its layout.
 */
export function selectiveScanRef(
  ops: ScanOperands,
  dims: ScanDims,
  layout: ScanLayout,
  out?: Float32Array,
): Float32Array {
  const { nSeq, L, dInner, dState } = dims;
  const dst = out ?? new Float32Array(stridedExtent(layout.out, nSeq, L, dInner));
  checkScanOperands(ops, dims, layout, dst.length);
  const h = new Float64Array(dState);
  const { u: lu, delta: ld, z: lz, B: lb, C: lc, out: lo } = layout;
  for (let s = 0; s < nSeq; s++) {
    for (let c = 0; c < dInner; c++) {
      h.fill(0);
      const dd = ops.D[c], db = ops.deltaBias[c];
      for (let t = 0; t < L; t++) {
        const u = ops.u[lu.off + s * lu.sSeq + t * lu.sT + c * lu.sC];
        const dl = softplus(ops.delta[ld.off + s * ld.sSeq + t * ld.sT + c * ld.sC] + db);
        let y = 0;
        for (let n = 0; n < dState; n++) {
          const bn = ops.B[lb.off + s * lb.sSeq + t * lb.sT + n * lb.sC];
          const cn = ops.C[lc.off + s * lc.sSeq + t * lc.sT + n * lc.sC];
          h[n] = Math.exp(dl * ops.A[c * dState + n]) * h[n] + dl * bn * u;
          y += cn * h[n];
        }
        y += dd * u;
        const z = ops.z[lz.off + s * lz.sSeq + t * lz.sT + c * lz.sC];
        dst[lo.off + s * lo.sSeq + t * lo.sT + c * lo.sC] = y * (z / (1 + Math.exp(-z)));
      }
    }
  }
  return dst;
}

/**
 * Row gather / scatter of token rows (spec §6 step 3c navigation: gather the navigated tokens,
 * scatter the mixer output back; their VJPs are the same two operations), with i32 row indices
 * where −1 means "no row". Rows are channels-last `(rows, width)` f32 with leading dimensions.
 * Kernel: `wgsl/train/rows.wgsl`. TypeScript references: {@link gatherRowsRef},
 * {@link scatterRowsRef} (lib/ops/navigation.ts gatherTokens / scatterTokens are the
 * same operations on whole sequences).
 * @module
 */
import type { KernelSequence, Ref } from "./graph.ts";
import { grid2d } from "./graph.ts";
import { checkRef } from "./check.ts";

/** Arguments of {@link recordGatherRows} and {@link recordScatterRows}. */
export interface RowsArgs {
  /** Source rows with leading dimension `srcLd`. */
  src: Ref;
  srcLd: number;
  /** `(rows)` i32 row indices (−1 = none), stored in a 32-bit tensor. */
  idx: Ref;
  rows: number;
  width: number;
  /** Destination rows with leading dimension `dstLd`. */
  dst: Ref;
  dstLd: number;
  /** Add to the destination instead of writing it. */
  accumulate?: boolean;
}

function validate(a: RowsArgs, what: string, srcRows: number | null, dstRows: number | null) {
  for (const k of ["rows", "width", "srcLd", "dstLd"] as const) {
    if (!Number.isInteger(a[k]) || a[k] < 0) throw new Error(`${what}: ${k} = ${a[k]} invalid`);
  }
  if (a.srcLd < a.width || a.dstLd < a.width) {
    throw new Error(`${what}: srcLd ${a.srcLd} / dstLd ${a.dstLd} must be ≥ width ${a.width}`);
  }
  checkRef(`${what}: idx`, a.idx, a.rows);
  const ext = (rows: number, ld: number) => rows === 0 ? 0 : (rows - 1) * ld + a.width;
  if (srcRows !== null) checkRef(`${what}: src`, a.src, ext(srcRows, a.srcLd));
  if (dstRows !== null) checkRef(`${what}: dst`, a.dst, ext(dstRows, a.dstLd));
  if (a.dst.t === a.src.t || a.dst.t === a.idx.t) {
    throw new Error(`${what}: dst (${a.dst.t.label}) must not be the src or idx tensor`);
  }
}

async function record(seq: KernelSequence, a: RowsArgs, entry: "gather" | "scatter") {
  const total = a.rows * a.width;
  if (total === 0) return;
  await seq.dispatch({
    shader: "train/rows.wgsl",
    entry,
    params: [
      a.rows,
      a.width,
      a.src.off ?? 0,
      a.srcLd,
      a.idx.off ?? 0,
      a.dst.off ?? 0,
      a.dstLd,
      a.accumulate ? 1 : 0,
    ],
    bindings: [a.src.t, a.idx.t, a.dst.t],
    workgroups: grid2d(Math.ceil(total / 64)),
    label: `${entry} rows ${a.rows}×${a.width}`,
  });
}

/**
 * Record dst[r·dstLd + c] (+)= idx[r] ≥ 0 ? src[idx[r]·srcLd + c] : 0, for r < rows, c < width.
 * Source indices are not range-checked on the GPU (out-of-range reads give 0 by WebGPU's
 * robustness rules); `dst` is checked for `rows` rows.
 * @throws {Error} on bad sizes or operands too short.
 */
export async function recordGatherRows(seq: KernelSequence, a: RowsArgs): Promise<void> {
  validate(a, "recordGatherRows", null, a.rows);
  await record(seq, a, "gather");
}

/**
 * Record dst[idx[r]·dstLd + c] (+)= src[r·srcLd + c] for r < rows with idx[r] ≥ 0, c < width.
 * Indices must be unique (no atomics); out-of-range destination rows are dropped by WebGPU's
 * robustness rules, not reported.
 * @throws {Error} on bad sizes or operands too short.
 */
export async function recordScatterRows(seq: KernelSequence, a: RowsArgs): Promise<void> {
  validate(a, "recordScatterRows", a.rows, null);
  await record(seq, a, "scatter");
}

/** Host operand of the references. */
interface HostArr {
  t: Float32Array | Float64Array;
  off?: number;
}

/** Host version of {@link RowsArgs}. */
export interface RowsRefArgs {
  src: HostArr;
  srcLd: number;
  idx: Int32Array;
  rows: number;
  width: number;
  dst: HostArr;
  dstLd: number;
  accumulate?: boolean;
}

/** TypeScript reference of {@link recordGatherRows} (idx from element 0 of `idx`). */
export function gatherRowsRef(a: RowsRefArgs): void {
  const so = a.src.off ?? 0, dO = a.dst.off ?? 0;
  for (let r = 0; r < a.rows; r++) {
    const i = a.idx[r];
    for (let c = 0; c < a.width; c++) {
      const v = i >= 0 ? a.src.t[so + i * a.srcLd + c] : 0;
      const o = dO + r * a.dstLd + c;
      a.dst.t[o] = a.accumulate ? a.dst.t[o] + v : v;
    }
  }
}

/** TypeScript reference of {@link recordScatterRows} (idx from element 0 of `idx`). */
export function scatterRowsRef(a: RowsRefArgs): void {
  const so = a.src.off ?? 0, dO = a.dst.off ?? 0;
  for (let r = 0; r < a.rows; r++) {
    const i = a.idx[r];
    if (i < 0) continue;
    for (let c = 0; c < a.width; c++) {
      const v = a.src.t[so + r * a.srcLd + c];
      const o = dO + i * a.dstLd + c;
      a.dst.t[o] = a.accumulate ? a.dst.t[o] + v : v;
    }
  }
}

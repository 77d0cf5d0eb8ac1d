/**
 * Operand checks of the training kernels' recorders (one place for every lib/train/gpu module):
 * operand ranges, sizes and strided extents, each error naming the operand.
 * @module
 */
import type { Ref } from "./graph.ts";

/**
 * Throw unless `ref` covers `extent` elements from its offset.
 * @throws {Error} naming the operand, its tensor and the needed range.
 */
export function checkRef(what: string, ref: Ref, extent: number): void {
  const off = ref.off ?? 0;
  if (!Number.isInteger(off) || off < 0) {
    throw new Error(`${what}: offset ${off} must be an integer ≥ 0`);
  }
  if (!Number.isInteger(extent) || extent < 0) {
    throw new Error(`${what}: extent ${extent} must be an integer ≥ 0`);
  }
  if (off + extent > ref.t.length) {
    throw new Error(
      `${what}: needs elements [${off}, ${off + extent}) of tensor "${ref.t.label}", ` +
        `which has ${ref.t.length}`,
    );
  }
}

/** Elements spanned by a `(rows, cols)` operand with leading dimension `ld`. */
export function stridedExtent(rows: number, cols: number, ld: number, what: string): number {
  for (const [k, v] of [["rows", rows], ["cols", cols], ["leading dimension", ld]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`${what}: ${k} ${v} must be an integer ≥ 0`);
  }
  if (ld < cols) throw new Error(`${what}: leading dimension ${ld} < cols ${cols}`);
  return rows === 0 || cols === 0 ? 0 : (rows - 1) * ld + cols;
}

/** Throw unless `v` is an integer ≥ `min` (a size argument). */
export function checkSize(what: string, v: number, min = 0): void {
  if (!Number.isInteger(v) || v < min || v >= 2 ** 31) {
    throw new Error(`${what} must be an integer in [${min}, 2^31), got ${v}`);
  }
}

/** @throws {Error} unless every value is a positive integer. */
export function checkDims(what: string, dims: Record<string, number>): void {
  for (const [k, v] of Object.entries(dims)) {
    if (!Number.isInteger(v) || v < 1) {
      throw new Error(`${what}: ${k} = ${v} must be a positive integer`);
    }
  }
}

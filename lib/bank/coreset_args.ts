/**
 * Argument checks and the code range shared by the greedy coreset implementations
 * (lib/bank/coreset.ts reference and WGSL, lib/bank/coreset_cpu.ts).
 * @module
 */

/**
 * Largest |code| for d dims such that a squared distance Σ (a − b)² ≤ d·(2·max)² fits in an i32:
 * floor(sqrt((2³¹ − 1)/d)/2), at most 32767 (2047 for d = 128, 1023 for d = 512).
 */
export function maxCode(d: number): number {
  return Math.min(32767, Math.floor(Math.sqrt(2147483647 / d) / 2));
}

/**
 * Check the arguments of a greedy coreset run.
 * @throws {RangeError} naming the bad argument: n or d not positive integers, codes not (n, d),
 *   a code outside ±maxCode(d), init not of length n, T outside [0, n].
 */
export function checkCoresetArgs(
  codes: Int16Array,
  n: number,
  d: number,
  t: number,
  init: Int32Array,
) {
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(d) || d < 1) {
    throw new RangeError(`coreset: n and d must be positive integers, got n=${n} d=${d}`);
  }
  if (codes.length !== n * d) {
    throw new RangeError(`coreset: codes must be (${n}, ${d}) = ${n * d} i16, got ${codes.length}`);
  }
  const mc = maxCode(d);
  for (let i = 0; i < codes.length; i++) {
    if (codes[i] > mc || codes[i] < -mc) {
      throw new RangeError(
        `coreset: code ${
          codes[i]
        } at flat index ${i} exceeds ±${mc} for d=${d} (use quantizeCoresetPoints)`,
      );
    }
  }
  if (init.length !== n) {
    throw new RangeError(`coreset: init must have ${n} values, got ${init.length}`);
  }
  if (!Number.isInteger(t) || t < 0 || t > n) {
    throw new RangeError(`coreset: T must be an integer in [0, ${n}], got ${t}`);
  }
}

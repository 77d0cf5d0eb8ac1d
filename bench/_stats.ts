/**
 * Statistics the benches share.
 * @module
 */

/** The median of `a` (for an even count, the upper of the two middle values). */
export function median(a: readonly number[]): number {
  return [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
}

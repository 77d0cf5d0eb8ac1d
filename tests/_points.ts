/**
 * Seeded point sets and coreset start distances shared by the coreset tests
 * (tests/bank_test.ts, tests/coreset_cpu_test.ts).
 * @module
 */
import {
  coresetInitDistances,
  createRng,
  quantizeCoresetPoints,
  type Rng,
  sampleWithoutReplacement,
} from "../lib/bank/coreset.ts";

/** n points uniform in [−1, 1)^d. */
export function uniformPoints(n: number, d: number, rng: Rng): Float32Array {
  const x = new Float32Array(n * d);
  for (let i = 0; i < x.length; i++) x[i] = rng.nextFloat() * 2 - 1;
  return x;
}

/** n points around `k` Gaussian-ish cluster centres (sum of uniforms), d dims. */
export function clusteredPoints(n: number, d: number, k: number, rng: Rng): Float32Array {
  const centres = uniformPoints(k, d, rng).map((v) => v * 10);
  const x = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const c = rng.nextInt(k);
    for (let j = 0; j < d; j++) {
      x[i * d + j] = centres[c * d + j] + (rng.nextFloat() + rng.nextFloat() - 1) * 0.8;
    }
  }
  return x;
}

/** Quantized coreset codes of `points` and their start distances from min(10, n) seeded starts. */
export function coresetSetup(
  points: Float32Array,
  n: number,
  d: number,
  seed: number,
): { codes: Int16Array; init: Int32Array } {
  const q = quantizeCoresetPoints(points, d);
  const starts = sampleWithoutReplacement(n, Math.min(10, n), createRng(seed));
  return { codes: q.codes, init: coresetInitDistances(q.codes, n, d, starts) };
}

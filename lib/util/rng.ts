/**
 * The toolkit's seeded pseudo-random generators, in one place: {@link createRng} (xoshiro128**,
 * the bank's coreset starts and projections, lib/bank/) and {@link mulberry32} (the training
 * samples, initial weights and dropout, lib/train/). Both are deterministic per seed on every
 * platform; each keeps its stream, as fitted banks and heads depend on it.
 * @module
 */

/** A seeded pseudo-random generator (xoshiro128**, state seeded by splitmix32). */
export interface Rng {
  /** Next uniform 32-bit unsigned integer. */
  nextU32(): number;
  /** Next uniform float in [0, 1) with 53 random bits. */
  nextFloat(): number;
  /** Next uniform integer in [0, n) (n ≤ 2^53). */
  nextInt(n: number): number;
}

/**
 * Create a deterministic {@link Rng} from a 32-bit seed (xoshiro128** by Blackman & Vigna, its
 * 128-bit state filled by splitmix32 from `seed`). Same seed → same stream on every platform.
 */
export function createRng(seed: number): Rng {
  let z = seed >>> 0;
  const splitmix = () => {
    z = (z + 0x9e3779b9) >>> 0;
    let x = z;
    x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
    x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
    return (x ^ (x >>> 16)) >>> 0;
  };
  let s0 = splitmix(), s1 = splitmix(), s2 = splitmix(), s3 = splitmix();
  if ((s0 | s1 | s2 | s3) === 0) s0 = 1;
  const nextU32 = () => {
    const r = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    s2 = (s2 ^ s0) >>> 0;
    s3 = (s3 ^ s1) >>> 0;
    s1 = (s1 ^ s2) >>> 0;
    s0 = (s0 ^ s3) >>> 0;
    s2 = (s2 ^ t) >>> 0;
    s3 = rotl(s3, 11);
    return r;
  };
  const nextFloat = () => ((nextU32() >>> 5) * 67108864 + (nextU32() >>> 6)) / 9007199254740992;
  return { nextU32, nextFloat, nextInt: (n: number) => Math.floor(nextFloat() * n) };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Mulberry32 PRNG in [0, 1) (deterministic, seedable). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

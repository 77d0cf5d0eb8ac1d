/**
 * Rank samples by score, highest first, with ties kept together — the one sort every exact
 * threshold metric (ROC, PR, F1max, PRO) is built on.
 *
 * Float32 scores (every pixel map in snarm) are sorted with an LSD radix sort on an
 * order-preserving 32-bit key (4 passes of 8 bits, passes whose byte is constant are skipped),
 * carrying a `Uint32Array` payload (the label / GT-region id of each sample) along. No JS objects
 * per sample, 16 bytes of working memory per sample (keys, payload and their scratch copies).
 * Scores that are not float32-exact fall back to a comparator sort of a `Uint32Array` index
 * permutation over float64 values.
 *
 * Ties: `-0` and `+0` are the same score; scores must not be NaN (±Infinity is allowed).
 * Source: the fixtures' rule "thresholds are the distinct score values; tied scores enter
 * together" (`shared/fixtures/metrics/README.md`, Definitions).
 * @module
 */

/** Samples in descending score order; consecutive samples with equal `groupKeys` are tied. */
export interface RankedSamples {
  /** Number of samples. */
  n: number;
  /**
   * Tie-group key per rank position (position 0 = highest score). Non-decreasing along the
   * ranking; two positions hold the same key iff their scores are equal.
   */
  groupKeys: Uint32Array;
  /** The payload of each sample, permuted into rank order. */
  payload: Uint32Array;
  /** The exact score at rank position `i` (a float32 value on the radix path). */
  scoreAt(i: number): number;
}

/** Options for {@link rankDescending}. */
export interface RankOptions {
  /** What the scores are, for error messages (default `"scores"`). */
  what?: string;
  /**
   * When true, `payload` is reordered in place and used as working memory (saves one copy of
   * N×4 bytes). Default false: the caller's payload is left untouched.
   */
  consumePayload?: boolean;
}

const SIGN = 0x80000000;

/**
 * The descending-order key of one float32 bit pattern: ascending keys = descending scores,
 * `-0` maps like `+0`; NaN patterns give -1.
 */
export function descendingKey(bits: number): number {
  let b = bits;
  if (b === SIGN) b = 0; // -0 ties with +0
  if ((b & 0x7fffffff) > 0x7f800000) return -1;
  return (b & SIGN) !== 0 ? b : 0x7fffffff - b;
}

/** {@link descendingKey} over an array. Throws on NaN. */
function descendingKeys(bits: Uint32Array, out: Uint32Array, what: string): void {
  const n = bits.length;
  for (let i = 0; i < n; i++) {
    const k = descendingKey(bits[i]);
    if (k < 0) throw new Error(`${what}: value at index ${i} is NaN (scores must be numbers)`);
    out[i] = k;
  }
}

/** Inverse of {@link descendingKey}: the float32 value of a key. */
export function keyToFloat(key: number): number {
  F32_BITS[0] = (key & SIGN) !== 0 ? key : 0x7fffffff - key;
  return F32_VIEW[0];
}
const F32_BITS = new Uint32Array(1);
const F32_VIEW = new Float32Array(F32_BITS.buffer);

/**
 * Stable LSD radix sort of `(keys, values)` pairs by ascending unsigned 32-bit key, 8 bits per
 * pass; passes where every key has the same byte are skipped. `keys` and `values` are used as
 * working memory; the sorted pairs are returned (they may be the input arrays or the scratch).
 */
export function radixSortPairs(
  keys: Uint32Array,
  values: Uint32Array,
): { keys: Uint32Array; values: Uint32Array } {
  const n = keys.length;
  if (values.length !== n) {
    throw new Error(`radixSortPairs: ${n} keys but ${values.length} values`);
  }
  if (n >= 2 ** 31) throw new Error(`radixSortPairs: ${n} samples exceed the 2^31 - 1 limit`);
  const hist = byteHistograms(keys);
  const passes: number[] = [];
  for (let pass = 0; pass < 4; pass++) {
    // skip a pass when one bucket holds every key (that byte is constant)
    let first = 0;
    while (first < 256 && hist[pass * 256 + first] === 0) first++;
    if (n > 0 && hist[pass * 256 + first] !== n) passes.push(pass);
  }
  if (passes.length === 0) return { keys, values };
  let srcK = keys, srcV = values;
  let dstK: Uint32Array = new Uint32Array(n), dstV: Uint32Array = new Uint32Array(n);
  // Touch the scratch pages in order first: first-touch page faults in scatter order cost several
  // times more (measured 4x on a VM).
  dstK.fill(0);
  dstV.fill(0);
  for (const pass of passes) {
    scatterPass(srcK, srcV, dstK, dstV, hist.subarray(pass * 256, pass * 256 + 256), pass * 8);
    const tk = srcK, tv = srcV;
    srcK = dstK;
    srcV = dstV;
    dstK = tk;
    dstV = tv;
  }
  return { keys: srcK, values: srcV };
}

/** Counts of each byte value of the keys, 4 × 256 (byte 0 = least significant). */
function byteHistograms(keys: Uint32Array): Int32Array {
  const hist = new Int32Array(4 * 256);
  const n = keys.length;
  for (let i = 0; i < n; i++) {
    const k = keys[i];
    hist[k & 255]++;
    hist[256 + ((k >>> 8) & 255)]++;
    hist[512 + ((k >>> 16) & 255)]++;
    hist[768 + (k >>> 24)]++;
  }
  return hist;
}

/** One stable counting-sort pass on the byte at `shift` (kept small so V8 optimises it alone). */
function scatterPass(
  srcK: Uint32Array,
  srcV: Uint32Array,
  dstK: Uint32Array,
  dstV: Uint32Array,
  hist: Int32Array,
  shift: number,
): void {
  const offset = new Int32Array(256);
  let run = 0;
  for (let b = 0; b < 256; b++) {
    offset[b] = run;
    run += hist[b];
  }
  const n = srcK.length;
  for (let i = 0; i < n; i++) {
    const k = srcK[i];
    const d = offset[(k >>> shift) & 255]++;
    dstK[d] = k;
    dstV[d] = srcV[i];
  }
}

/** True when every value is exactly representable as a float32 (NaN counts as not). */
function allFloat32(scores: ArrayLike<number>): boolean {
  for (let i = 0; i < scores.length; i++) {
    const x = scores[i];
    if (Math.fround(x) !== x) return false;
  }
  return true;
}

/**
 * Rank samples by score, highest first, ties adjacent.
 *
 * @param scores N scores: a `Float32Array` (radix path), or any numbers (float32-exact values take
 *   the radix path too; other float64 values a comparator sort). NaN is rejected.
 * @param payload N unsigned ints carried along the sort (e.g. 0 = normal, r ≥ 1 = GT region id).
 * @throws {Error} when a score is NaN or the lengths differ.
 */
export function rankDescending(
  scores: ArrayLike<number>,
  payload: Uint32Array,
  opts: RankOptions = {},
): RankedSamples {
  const what = opts.what ?? "scores";
  const n = scores.length;
  if (payload.length !== n) {
    throw new Error(`${what}: ${n} scores but ${payload.length} labels`);
  }
  const vals = opts.consumePayload ? payload : payload.slice();
  if (scores instanceof Float32Array || allFloat32(scores)) {
    const f32 = scores instanceof Float32Array ? scores : Float32Array.from(scores);
    const bits = new Uint32Array(f32.buffer, f32.byteOffset, n);
    const keys = new Uint32Array(n);
    descendingKeys(bits, keys, what);
    const sorted = radixSortPairs(keys, vals);
    const sk = sorted.keys;
    return { n, groupKeys: sk, payload: sorted.values, scoreAt: (i) => keyToFloat(sk[i]) };
  }
  // float64 path: index permutation sorted by a comparator (no NaN, +-Infinity safe).
  const s = Float64Array.from(scores);
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(s[i])) {
      throw new Error(`${what}: value at index ${i} is NaN (scores must be numbers)`);
    }
  }
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => (s[a] > s[b] ? -1 : s[a] < s[b] ? 1 : 0));
  const sortedScores = new Float64Array(n);
  const sortedPayload = new Uint32Array(n);
  const groupKeys = new Uint32Array(n);
  let g = 0;
  for (let i = 0; i < n; i++) {
    const v = s[order[i]];
    if (i > 0 && v !== sortedScores[i - 1]) g++;
    sortedScores[i] = v;
    sortedPayload[i] = vals[order[i]];
    groupKeys[i] = g;
  }
  return { n, groupKeys, payload: sortedPayload, scoreAt: (i) => sortedScores[i] };
}

/**
 * Placement of the normal pixels among the distinct anomalous scores, for the pooled pixel metrics
 * (`pixel.ts`): instead of sorting all N·H·W pixels, every normal pixel is counted into the gap
 * between two consecutive anomalous thresholds (or tied with one). The counts are exactly what the
 * full sorted curve needs, with no memory per normal pixel.
 * @module
 */

import { descendingKey, keyToFloat } from "./ranking.ts";

/** Bits of the lookup table that narrows a normal pixel's search among the thresholds. */
const TABLE_BITS = 20;
/** Pixels per chunk of the partitioned placement. */
const CHUNK = 2 ** 23;

/** Monotone bucketing of the threshold range, with its lookup table. */
interface Buckets {
  kMin: number;
  kMax: number;
  /** Number of buckets. */
  nb: number;
  /** Linear in the score value (true) or in the key bits (false, when an end is ±∞). */
  linear: boolean;
  hiV: number;
  scale: number;
  shift: number;
  /** `table[b]` = first threshold index in bucket b or later; `table[nb] = m`. */
  table: Int32Array;
}

/**
 * Buckets over the threshold range `[tKey[0], tKey[m−1]]`. They split the score **value** range
 * linearly (anomaly scores are spread roughly uniformly in value, not in float bit patterns); when
 * an end threshold is ±∞ they split the key range instead. Either bucket function is monotone,
 * which is all the table needs: the first threshold ≥ a key of bucket b lies in
 * `[table[b], table[b + 1]]`. Ties are always decided on the exact keys.
 */
function makeBuckets(tKey: Uint32Array): Buckets {
  const m = tKey.length;
  const kMin = tKey[0], kMax = tKey[m - 1];
  const hiV = keyToFloat(kMin), loV = keyToFloat(kMax);
  const nbMax = Math.min(2 ** TABLE_BITS, Math.max(2, 2 * m));
  const linear = Number.isFinite(hiV - loV) && hiV > loV;
  const scale = linear ? (nbMax - 1) / (hiV - loV) : 0;
  let shift = 0;
  while ((kMax - kMin) >>> shift >= nbMax) shift++;
  const bk: Buckets = { kMin, kMax, nb: 0, linear, hiV, scale, shift, table: new Int32Array(0) };
  const nb = bucketOfKey(bk, kMax, nbMax) + 1;
  const table = new Int32Array(nb + 1);
  let j = m;
  for (let b = nb; b >= 0; b--) {
    while (j > 0 && bucketOfKey(bk, tKey[j - 1], nbMax) >= b) j--;
    table[b] = j;
  }
  bk.nb = nb;
  bk.table = table;
  return bk;
}

/** The bucket of an in-range key (kMin ≤ k ≤ kMax), clamped below `nb`. */
function bucketOfKey(bk: Buckets, k: number, nb: number): number {
  return bk.linear
    ? Math.min(nb - 1, ((bk.hiV - keyToFloat(k)) * bk.scale) | 0)
    : (k - bk.kMin) >>> bk.shift;
}

/**
 * Count the normal pixels (mask 0) relative to the ascending threshold keys `tKey`:
 * `before[j]` = keys strictly between `tKey[j−1]` and `tKey[j]` (`before[m]`: after the last),
 * `tied[j]` = keys equal to `tKey[j]`. A pixel inside the threshold range is located with the
 * bucket table ({@link makeBuckets}) plus a binary search within its bucket.
 *
 * With many thresholds (more than `partitionAbove`), the table, keys and counts no longer fit in
 * cache, so the in-range normal pixels are first grouped into 256 partitions of consecutive buckets
 * (chunk by chunk) and then placed partition by partition ({@link placePartitioned}).
 * @throws {Error} on a NaN score.
 */
export function placeNormals(
  bits: Uint32Array,
  masks: Uint8Array,
  tKey: Uint32Array,
  n0: number,
  partitionAbove: number,
): { before: Int32Array; tied: Int32Array } {
  const m = tKey.length;
  const before = new Int32Array(m + 1), tied = new Int32Array(m); // counts < 2^31
  if (m === 0) {
    before[0] = n0;
    return { before, tied };
  }
  const bk = makeBuckets(tKey);
  if (m <= partitionAbove) placeDirect(bits, masks, tKey, bk, before, tied);
  else placePartitioned(bits, masks, tKey, bk, before, tied);
  return { before, tied };
}

/** Count one in-range key `k` of bucket `b` (see {@link placeNormals}). */
function placeKey(
  k: number,
  b: number,
  tKey: Uint32Array,
  table: Int32Array,
  before: Int32Array,
  tied: Int32Array,
): void {
  let lo = table[b], hi = table[b + 1]; // the first key >= k lies in [lo, hi]
  if (lo === hi) { // no threshold in this bucket: k lies strictly before threshold lo
    before[lo]++;
    return;
  }
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (tKey[mid] < k) lo = mid + 1;
    else hi = mid;
  }
  if (tKey[lo] === k) tied[lo]++;
  else before[lo]++;
}

/** One pass: locate every normal pixel directly. */
function placeDirect(
  bits: Uint32Array,
  masks: Uint8Array,
  tKey: Uint32Array,
  bk: Buckets,
  before: Int32Array,
  tied: Int32Array,
): void {
  const { kMin, kMax, nb, linear, hiV, scale, shift, table } = bk;
  const m = tKey.length, len = bits.length;
  const values = new Float32Array(bits.buffer, bits.byteOffset, len);
  for (let i = 0; i < len; i++) {
    if (masks[i] !== 0) continue;
    const k = descendingKey(bits[i]);
    if (k < 0) throw new Error(`pixelScores: value at index ${i} is NaN`);
    if (k < kMin) before[0]++;
    else if (k > kMax) before[m]++;
    else {
      const b = linear ? Math.min(nb - 1, ((hiV - values[i]) * scale) | 0) : (k - kMin) >>> shift;
      placeKey(k, b, tKey, table, before, tied);
    }
  }
}

/**
 * Chunk by chunk (2^23 pixels, fixed 72 MiB of scratch reused across chunks): collect the chunk's
 * in-range normal keys with their partition (256 partitions of consecutive buckets), group them by
 * partition (counting sort), then place them partition after partition, so that each partition's
 * table slice, thresholds and counts stay in cache.
 */
function placePartitioned(
  bits: Uint32Array,
  masks: Uint8Array,
  tKey: Uint32Array,
  bk: Buckets,
  before: Int32Array,
  tied: Int32Array,
): void {
  const { kMin, kMax, nb, linear, hiV, scale, shift, table } = bk;
  const m = tKey.length, len = bits.length;
  const values = new Float32Array(bits.buffer, bits.byteOffset, len);
  let ps = 0;
  while (nb >>> ps > 256) ps++;
  const nParts = ((nb - 1) >>> ps) + 1; // <= 256
  const chunk = Math.min(len, CHUNK);
  const inKeys = new Uint32Array(chunk), grouped = new Uint32Array(chunk);
  const parts = new Uint8Array(chunk);
  const pos = new Int32Array(nParts + 1);
  for (let start = 0; start < len; start += chunk) {
    const end = Math.min(len, start + chunk);
    pos.fill(0);
    let nIn = 0;
    for (let i = start; i < end; i++) {
      if (masks[i] !== 0) continue;
      const k = descendingKey(bits[i]);
      if (k < 0) throw new Error(`pixelScores: value at index ${i} is NaN`);
      if (k < kMin) before[0]++;
      else if (k > kMax) before[m]++;
      else {
        const b = linear ? Math.min(nb - 1, ((hiV - values[i]) * scale) | 0) : (k - kMin) >>> shift;
        const p = b >>> ps;
        inKeys[nIn] = k;
        parts[nIn++] = p;
        pos[p + 1]++;
      }
    }
    for (let p = 0; p < nParts; p++) pos[p + 1] += pos[p];
    for (let t = 0; t < nIn; t++) grouped[pos[parts[t]]++] = inKeys[t];
    for (let t = 0; t < nIn; t++) {
      const k = grouped[t];
      placeKey(k, bucketOfKey(bk, k, nb), tKey, table, before, tied);
    }
  }
}

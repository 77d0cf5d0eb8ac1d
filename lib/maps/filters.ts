/**
 * Anomaly-map post-processing shared by bank-only scoring and the SNARM head (spec §7):
 * bilinear upsampling, Gaussian smoothing (σ = 4, truncate 4, scipy `reflect` borders, per image)
 * and the image score (max of a 16×16 average pool with stride 2).
 * @module
 */

/**
 * Bilinear resize of one map, PyTorch `F.interpolate(mode="bilinear")` semantics.
 * @param src `(h, w)` row-major f32.
 * @param alignCorners `true`: corners map to corners (official `pixel_forward`, spec §6 Outputs);
 *   `false`: half-pixel centres, src = (dst + 0.5)·h/H − 0.5 clamped at 0 (PatchCore, spec §1).
 * @returns `(H, W)` row-major f32.
 */
export function resizeBilinear(
  src: Float32Array,
  h: number,
  w: number,
  H: number,
  W: number,
  alignCorners: boolean,
): Float32Array {
  if (src.length !== h * w) {
    throw new Error(`resizeBilinear: map has ${src.length} values, expected ${h}×${w}`);
  }
  const out = new Float32Array(H * W);
  const coord = (d: number, n: number, N: number): number => {
    if (alignCorners) return N > 1 ? d * (n - 1) / (N - 1) : 0;
    const s = (d + 0.5) * (n / N) - 0.5;
    return s < 0 ? 0 : s;
  };
  const x0 = new Int32Array(W), x1 = new Int32Array(W), fx = new Float64Array(W);
  for (let X = 0; X < W; X++) {
    const sx = coord(X, w, W);
    const i = Math.min(Math.floor(sx), w - 1);
    x0[X] = i;
    x1[X] = Math.min(i + 1, w - 1);
    fx[X] = sx - i;
  }
  for (let Y = 0; Y < H; Y++) {
    const sy = coord(Y, h, H);
    const y0 = Math.min(Math.floor(sy), h - 1);
    const y1 = Math.min(y0 + 1, h - 1);
    const fy = sy - y0;
    for (let X = 0; X < W; X++) {
      const a = src[y0 * w + x0[X]], b = src[y0 * w + x1[X]];
      const c = src[y1 * w + x0[X]], d = src[y1 * w + x1[X]];
      const top = a + (b - a) * fx[X];
      const bot = c + (d - c) * fx[X];
      out[Y * W + X] = top + (bot - top) * fy;
    }
  }
  return out;
}

/** The 1-D Gaussian weights of scipy.ndimage.gaussian_filter (radius = round(truncate·σ)). */
export function gaussianKernel1d(sigma: number, truncate = 4): Float64Array {
  const radius = Math.round(truncate * sigma);
  const k = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) {
    const v = Math.exp(-0.5 * (i * i) / (sigma * sigma));
    k[i + radius] = v;
    sum += v;
  }
  for (let i = 0; i < k.length; i++) k[i] /= sum;
  return k;
}

/** scipy `reflect` index: (d c b a | a b c d | d c b a), for any offset. */
function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * n;
  let m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - 1 - m;
}

/**
 * 2-D Gaussian filter of ONE map, as `scipy.ndimage.gaussian_filter(map, sigma, truncate=4,
 * mode="reflect")` (separable, float64 accumulation). Spec §7: σ = 4, applied per image (the
 * official call would also blur across the batch axis when B > 1; snarm does not).
 * @param map `(H, W)` row-major f32.
 * @returns `(H, W)` row-major f32.
 */
export function gaussianFilter(
  map: Float32Array,
  H: number,
  W: number,
  sigma = 4,
  truncate = 4,
): Float32Array {
  if (map.length !== H * W) {
    throw new Error(`gaussianFilter: map has ${map.length} values, expected ${H}×${W}`);
  }
  const k = gaussianKernel1d(sigma, truncate);
  const r = (k.length - 1) / 2;
  // scipy filters axis 0 first, then axis 1, rounding to the array dtype (f32) in between. Each
  // output sums its taps in order t = −r … r in float64, as before; the loops run over whole rows
  // (axis 0) and over a reflected copy of each row (axis 1) instead of reflecting every tap.
  const tmp = new Float32Array(H * W);
  const acc = new Float64Array(W);
  for (let y = 0; y < H; y++) {
    acc.fill(0);
    for (let t = -r; t <= r; t++) {
      const kt = k[t + r], row = reflectIndex(y + t, H) * W;
      for (let x = 0; x < W; x++) acc[x] += kt * map[row + x];
    }
    tmp.set(acc, y * W);
  }
  const out = new Float32Array(H * W);
  const pad = new Float32Array(W + 2 * r);
  for (let y = 0; y < H; y++) {
    const row = y * W;
    for (let x = -r; x < W + r; x++) pad[x + r] = tmp[row + reflectIndex(x, W)];
    for (let x = 0; x < W; x++) {
      let s = 0;
      for (let t = 0; t <= 2 * r; t++) s += k[t] * pad[x + t];
      out[row + x] = s;
    }
  }
  return out;
}

/**
 * Image score (spec §7): max over the map after a `size`×`size` average pool with stride
 * `stride` (PyTorch `F.avg_pool2d(map, 16, 2)`, no padding, floor mode).
 * @param map `(H, W)` row-major f32, the smoothed anomaly map.
 * @throws {Error} when the map is smaller than the pooling window.
 */
export function imageScore(map: Float32Array, H: number, W: number, size = 16, stride = 2): number {
  if (H < size || W < size) {
    throw new Error(`imageScore: map ${H}×${W} is smaller than the ${size}×${size} pool`);
  }
  // Summed-area table for O(1) window sums.
  const S = new Float64Array((H + 1) * (W + 1));
  for (let y = 0; y < H; y++) {
    let rowSum = 0;
    for (let x = 0; x < W; x++) {
      rowSum += map[y * W + x];
      S[(y + 1) * (W + 1) + x + 1] = S[y * (W + 1) + x + 1] + rowSum;
    }
  }
  let best = -Infinity;
  const area = size * size;
  for (let y = 0; y + size <= H; y += stride) {
    for (let x = 0; x + size <= W; x += stride) {
      const s = S[(y + size) * (W + 1) + x + size] - S[y * (W + 1) + x + size] -
        S[(y + size) * (W + 1) + x] + S[y * (W + 1) + x];
      const v = Math.fround(s / area);
      if (v > best) best = v;
    }
  }
  return best;
}

/**
 * Bilinear upsampling with align_corners = true (official `pixel_forward`, spec §6 "Outputs") and
 * its vector-Jacobian product, float64. Same sampling as lib/maps `resizeBilinear(…, true)`:
 * source coordinate s = D·(n − 1)/(N − 1) (0 when N = 1), i0 = min(⌊s⌋, n − 1),
 * i1 = min(i0 + 1, n − 1), weight s − i0.
 * @module
 */

interface Taps {
  i0: Int32Array;
  i1: Int32Array;
  f: Float64Array;
}

function taps(n: number, N: number): Taps {
  const i0 = new Int32Array(N), i1 = new Int32Array(N), f = new Float64Array(N);
  for (let D = 0; D < N; D++) {
    const s = N > 1 ? D * (n - 1) / (N - 1) : 0;
    const i = Math.min(Math.floor(s), n - 1);
    i0[D] = i;
    i1[D] = Math.min(i + 1, n - 1);
    f[D] = s - i;
  }
  return { i0, i1, f };
}

/**
 * Upsample `nMaps` maps x `(nMaps, h, w)` to `(nMaps, H, W)`, align_corners = true.
 * @throws {Error} on a size mismatch.
 */
export function upsampleBilinearForward(
  x: ArrayLike<number>,
  nMaps: number,
  h: number,
  w: number,
  H: number,
  W: number,
): Float64Array {
  if (x.length !== nMaps * h * w) {
    throw new Error(`upsample: ${x.length} values, expected (${nMaps}, ${h}, ${w})`);
  }
  const ty = taps(h, H), tx = taps(w, W);
  const out = new Float64Array(nMaps * H * W);
  for (let m = 0; m < nMaps; m++) {
    const o = m * h * w;
    for (let Y = 0; Y < H; Y++) {
      const y0 = ty.i0[Y], y1 = ty.i1[Y], fy = ty.f[Y];
      for (let X = 0; X < W; X++) {
        const x0 = tx.i0[X], x1 = tx.i1[X], fx = tx.f[X];
        const top = x[o + y0 * w + x0] * (1 - fx) + x[o + y0 * w + x1] * fx;
        const bot = x[o + y1 * w + x0] * (1 - fx) + x[o + y1 * w + x1] * fx;
        out[(m * H + Y) * W + X] = top * (1 - fy) + bot * fy;
      }
    }
  }
  return out;
}

/** VJP of {@link upsampleBilinearForward}: dy `(nMaps, H, W)` → dx `(nMaps, h, w)`. */
export function upsampleBilinearBackward(
  dy: ArrayLike<number>,
  nMaps: number,
  h: number,
  w: number,
  H: number,
  W: number,
): Float64Array {
  if (dy.length !== nMaps * H * W) {
    throw new Error(`upsample backward: ${dy.length} values, expected (${nMaps}, ${H}, ${W})`);
  }
  const ty = taps(h, H), tx = taps(w, W);
  const dx = new Float64Array(nMaps * h * w);
  for (let m = 0; m < nMaps; m++) {
    const o = m * h * w;
    for (let Y = 0; Y < H; Y++) {
      const y0 = ty.i0[Y], y1 = ty.i1[Y], fy = ty.f[Y];
      for (let X = 0; X < W; X++) {
        const x0 = tx.i0[X], x1 = tx.i1[X], fx = tx.f[X];
        const g = dy[(m * H + Y) * W + X];
        dx[o + y0 * w + x0] += g * (1 - fy) * (1 - fx);
        dx[o + y0 * w + x1] += g * (1 - fy) * fx;
        dx[o + y1 * w + x0] += g * fy * (1 - fx);
        dx[o + y1 * w + x1] += g * fy * fx;
      }
    }
  }
  return dx;
}

/**
 * Shared tensor shapes used across snarm's stages.
 * @module
 */

/**
 * Patch features of N images on an h×w grid, **channels-last**: `(N, h, w, C)` row-major f32,
 * i.e. the C-vector of patch (n, y, x) starts at `((n·h + y)·w + x)·C`. Bank search, coreset and
 * residuals all use this layout (one patch = one contiguous row).
 */
export interface FeatureGrid {
  data: Float32Array;
  n: number;
  h: number;
  w: number;
  c: number;
}

/** Convert channels-last `(N, h, w, C)` to channels-first `(N, C, h, w)` (the PyTorch layout). */
export function toChannelsFirst(g: FeatureGrid): Float32Array {
  const { n, h, w, c, data } = g;
  const hw = h * w;
  const out = new Float32Array(n * c * hw);
  for (let b = 0; b < n; b++) {
    for (let p = 0; p < hw; p++) {
      const src = (b * hw + p) * c;
      for (let k = 0; k < c; k++) out[(b * c + k) * hw + p] = data[src + k];
    }
  }
  return out;
}

/** Convert channels-first `(N, C, h, w)` to a channels-last {@link FeatureGrid}. */
export function fromChannelsFirst(
  data: Float32Array,
  n: number,
  c: number,
  h: number,
  w: number,
): FeatureGrid {
  const hw = h * w;
  const out = new Float32Array(n * c * hw);
  for (let b = 0; b < n; b++) {
    for (let k = 0; k < c; k++) {
      const src = (b * c + k) * hw;
      for (let p = 0; p < hw; p++) out[(b * hw + p) * c + k] = data[src + p];
    }
  }
  return { data: out, n, h, w, c };
}

/**
 * Anomaly-map visualisation: a jet colour map of the map, blended over the preprocessed RGB crop,
 * encoded as PNG with `npm:fast-png`. The normalisation range is chosen by the caller (e.g. the
 * per-category min/max of all maps, as the evaluator's binning uses, spec §9).
 * @module
 */

// deno-lint-ignore no-import-prefix
import { encode } from "npm:fast-png@8.0.0";

/** Options of {@link encodeHeatmapOverlay}. */
export interface HeatmapOptions {
  /** Map value drawn as the coldest colour (values below are clamped). */
  vmin: number;
  /** Map value drawn as the hottest colour (values above are clamped); must exceed `vmin`. */
  vmax: number;
  /** Weight of the colour map in the blend, 0..1 (0 = image only, 1 = colour map only). */
  alpha?: number;
  /** Image width in px; default: the map is square and its side is `sqrt(map.length)`. */
  width?: number;
  /** Image height in px; default `map.length / width`. */
  height?: number;
}

/**
 * Matplotlib "jet" colour map (its `_jet_data` segments) at `t` in [0, 1].
 * @returns `[r, g, b]` in [0, 1].
 */
export function jet(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, t));
  const pw = (pts: [number, number][]) => {
    for (let i = 1; i < pts.length; i++) {
      const [x1, y1] = pts[i];
      const [x0, y0] = pts[i - 1];
      if (x <= x1) return y0 + ((x - x0) / (x1 - x0)) * (y1 - y0);
    }
    return pts[pts.length - 1][1];
  };
  return [
    pw([[0, 0], [0.35, 0], [0.66, 1], [0.89, 1], [1, 0.5]]),
    pw([[0, 0], [0.125, 0], [0.375, 1], [0.64, 1], [0.91, 0], [1, 0]]),
    pw([[0, 0.5], [0.11, 1], [0.34, 1], [0.65, 0], [1, 0]]),
  ];
}

/**
 * Encode an RGB u8 image as an 8-bit RGB PNG.
 * @param rgb `(height, width, 3)` row-major u8.
 * @throws {RangeError} when the length does not match.
 */
export function encodePng(rgb: Uint8Array, width: number, height: number): Uint8Array {
  if (!(width > 0 && height > 0) || rgb.length !== width * height * 3) {
    throw new RangeError(`encodePng: ${rgb.length} bytes; expected ${height}x${width}x3`);
  }
  return encode({ width, height, data: rgb, depth: 8, channels: 3 });
}

/**
 * Blend a jet-coloured anomaly map over an image and encode as PNG:
 * `out = (1 - alpha) * rgb + alpha * 255 * jet((map - vmin) / (vmax - vmin))`, rounded.
 * Non-finite map values are drawn as the image alone.
 * @param rgb `(H, W, 3)` row-major u8 RGB (e.g. `Sample.rgb`, the 392×392 crop).
 * @param map `(H, W)` row-major f32 anomaly map on the same grid.
 * @returns PNG file bytes (8-bit RGB, W×H).
 * @throws {RangeError} on mismatched sizes, `vmax <= vmin`, non-finite bounds or alpha outside
 *   [0, 1].
 */
export function encodeHeatmapOverlay(
  rgb: Uint8Array,
  map: Float32Array,
  opts: HeatmapOptions,
): Uint8Array {
  const { vmin, vmax } = opts;
  const alpha = opts.alpha ?? 0.5;
  const width = opts.width ?? Math.round(Math.sqrt(map.length));
  const height = opts.height ?? map.length / width;
  if (!Number.isInteger(height) || width * height !== map.length) {
    throw new RangeError(
      `heatmap: map has ${map.length} values; expected width x height (${width} x ${height})`,
    );
  }
  if (rgb.length !== map.length * 3) {
    throw new RangeError(`heatmap: image has ${rgb.length} bytes; expected ${height}x${width}x3`);
  }
  if (!Number.isFinite(vmin) || !Number.isFinite(vmax) || !(vmax > vmin)) {
    throw new RangeError(`heatmap: range [${vmin}, ${vmax}]; expected finite vmin < vmax`);
  }
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`heatmap: alpha ${alpha}; expected 0..1`);
  const lut = new Float32Array(256 * 3);
  for (let i = 0; i < 256; i++) lut.set(jet(i / 255).map((v) => v * 255), 3 * i);
  const out = new Uint8Array(rgb.length);
  const inv = 1 / (vmax - vmin);
  for (let i = 0; i < map.length; i++) {
    const v = map[i];
    if (!Number.isFinite(v)) {
      out.set(rgb.subarray(3 * i, 3 * i + 3), 3 * i);
      continue;
    }
    const k = 3 * Math.round(Math.min(1, Math.max(0, (v - vmin) * inv)) * 255);
    for (let c = 0; c < 3; c++) {
      out[3 * i + c] = Math.round((1 - alpha) * rgb[3 * i + c] + alpha * lut[k + c]);
    }
  }
  return encodePng(out, width, height);
}

/**
 * Plotly figure JSON for snarm's views: the figure type, number rounding, matrix layout, colour
 * scales, PNG data URIs for image traces and curve thinning. Nothing here needs a DOM: figures are
 * plain `{ data, layout }` objects (plotly.js schema) that Jupyter renders from
 * `application/vnd.plotly.v1+json` and headless Chromium renders to PNG/SVG (`export.ts`).
 * @module
 */
import { encodePng } from "../io/heatmap.ts";

/** One plotly trace (`type` plus its attributes, plotly.js schema). */
export type PlotlyTrace = { type: string; [attribute: string]: unknown };

/** A plotly layout object (plotly.js schema). */
export type PlotlyLayout = Record<string, unknown>;

/**
 * A plotly figure: `data` (traces) and `layout`, plus an optional plotly `config`. Figures built by
 * this module also carry a non-enumerable `Symbol.for("Jupyter.display")` method (see
 * `jupyter.ts`), so a figure that ends a Deno notebook cell draws itself; `JSON.stringify` ignores it.
 */
export interface PlotlyFigure {
  data: PlotlyTrace[];
  layout: PlotlyLayout;
  config?: Record<string, unknown>;
}

/** Default sequential colour scale of the anomaly / residual maps. */
export const MAP_COLORSCALE = "Jet";

/** Colour of normal ("good") samples in charts. */
export const GOOD_COLOR = "#1f77b4";
/** Colour of defective samples in charts. */
export const DEFECT_COLOR = "#d62728";
/** Colour of self-reference patches. */
export const REFERENCE_COLOR = "#17becf";
/** Colour of suspicious patches (the ones the navigator sends through the Mamba). */
export const SUSPICIOUS_COLOR = "#d62728";

/**
 * Round to `digits` significant digits relative to the largest magnitude (keeps figure JSON small;
 * plots need no more). Non-finite values become `null` (a gap in plotly).
 * @param values any numeric array. @param digits significant digits (default 4).
 */
export function roundValues(values: ArrayLike<number>, digits = 4): (number | null)[] {
  let maxAbs = 0;
  for (let i = 0; i < values.length; i++) {
    const a = Math.abs(values[i]);
    if (Number.isFinite(a) && a > maxAbs) maxAbs = a;
  }
  const out = new Array<number | null>(values.length);
  if (maxAbs === 0) {
    for (let i = 0; i < values.length; i++) out[i] = Number.isFinite(values[i]) ? 0 : null;
    return out;
  }
  const exp = digits - Math.ceil(Math.log10(maxAbs));
  const q = Math.pow(10, exp);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    out[i] = Number.isFinite(v)
      ? (exp >= 0 ? Math.round(v * q) / q : Math.round(v * q) * (1 / q))
      : null;
  }
  return out;
}

/**
 * Row-major `(h, w)` values → plotly `z` (h rows of w columns, row 0 = top of the image when the
 * y axis is reversed), rounded with {@link roundValues}.
 * @throws {Error} when `values` does not hold `h·w` numbers (names `what`).
 */
export function toMatrix(
  values: ArrayLike<number>,
  h: number,
  w: number,
  what = "map",
  digits = 4,
): (number | null)[][] {
  if (values.length !== h * w) {
    throw new Error(`${what}: has ${values.length} values, expected (h=${h}, w=${w}) = ${h * w}`);
  }
  const flat = roundValues(values, digits);
  const z: (number | null)[][] = [];
  for (let y = 0; y < h; y++) z.push(flat.slice(y * w, (y + 1) * w));
  return z;
}

/** Minimum and maximum of the finite values (`[NaN, NaN]` when none). */
export function finiteRange(values: ArrayLike<number>): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : [NaN, NaN];
}

function base64(bytes: Uint8Array): string {
  let s = "";
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    s += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(s);
}

/**
 * `data:image/png;base64,…` URI of an RGB image, for a plotly `image` trace's `source` (far smaller
 * than a nested `z` array).
 * @param rgb `(height, width, 3)` row-major u8.
 * @throws {Error} when `rgb` does not hold `width·height·3` bytes.
 */
export function pngDataUri(rgb: Uint8Array, width: number, height: number): string {
  if (rgb.length !== width * height * 3) {
    throw new Error(
      `rgb image: has ${rgb.length} bytes, expected (height=${height}, width=${width}, 3) = ${
        width * height * 3
      }`,
    );
  }
  return "data:image/png;base64," + base64(encodePng(rgb, width, height));
}

/**
 * A plotly `image` trace showing an RGB image with pixel (x, y) centred at integer coordinates
 * (pixel units; pairs with heatmaps whose `x`/`y` run over 0…W−1 / 0…H−1).
 * @param rgb `(height, width, 3)` row-major u8.
 */
export function imageTrace(
  rgb: Uint8Array,
  width: number,
  height: number,
  axes: { xaxis?: string; yaxis?: string } = {},
): PlotlyTrace {
  return {
    type: "image",
    source: pngDataUri(rgb, width, height),
    x0: 0,
    y0: 0,
    dx: 1,
    dy: 1,
    name: "image",
    hoverinfo: "skip",
    ...axes,
  };
}

/**
 * Thin a monotone-ish curve for plotting: keep a point when it is at least `eps` away (max-norm,
 * in axis units) from the last kept point, and always keep the first and last point; `eps` grows
 * until at most `maxPoints` remain. Curves that already fit are returned unchanged.
 * @returns the kept indices (ascending).
 */
export function thinCurveIndices(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  maxPoints = 2000,
): number[] {
  const n = x.length;
  if (n <= maxPoints) return Array.from({ length: n }, (_, i) => i);
  let eps = 1 / maxPoints;
  for (;;) {
    const keep = [0];
    let lx = x[0], ly = y[0];
    for (let i = 1; i < n - 1; i++) {
      const dx = Math.abs(x[i] - lx), dy = Math.abs(y[i] - ly);
      if (dx >= eps || dy >= eps || Number.isNaN(dx) || Number.isNaN(dy)) {
        keep.push(i);
        lx = x[i];
        ly = y[i];
      }
    }
    keep.push(n - 1);
    if (keep.length <= maxPoints) return keep;
    eps *= 1.5;
  }
}

/** A plotly axis title object. */
export function axisTitle(text: string): { text: string } {
  return { text };
}

/**
 * Axis pair settings for an image in pixel (or patch) coordinates: y reversed (row 0 on top), equal
 * aspect, no grid.
 */
export function imageAxes(
  width: number,
  height: number,
  xTitle: string,
  yTitle: string,
  xName = "x",
): { xaxis: Record<string, unknown>; yaxis: Record<string, unknown> } {
  return {
    xaxis: {
      title: axisTitle(xTitle),
      range: [-0.5, width - 0.5],
      showgrid: false,
      zeroline: false,
      constrain: "domain",
    },
    yaxis: {
      title: axisTitle(yTitle),
      range: [height - 0.5, -0.5],
      showgrid: false,
      zeroline: false,
      scaleanchor: xName,
      scaleratio: 1,
      constrain: "domain",
    },
  };
}

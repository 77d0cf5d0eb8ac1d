/**
 * Map figures (plotly JSON): an image with its anomaly-map overlay, patch-grid maps (inter- and
 * intra-residual norms, the waypoint), the self-reference selection of the navigator (spec §5),
 * how that selection moves with the ratio, and grids of maps (e.g. the per-head maps, spec §6).
 *
 * Image conventions: `rgb` is `(H, W, 3)` row-major u8 (the preprocessed crop of `loadSample`),
 * pixel maps are `(H, W)` row-major f32, patch maps `(h, w)` row-major on the backbone grid
 * (position p = y·w + x; with an image of side S each patch covers S/w pixels).
 * @module
 */
import type { FeatureGrid } from "../types.ts";
import type { CategoryResult } from "../eval/run.ts";
import { selectReferences } from "../residual/navigator.ts";
import { referenceCount } from "../residual/validate.ts";
import {
  axisTitle,
  finiteRange,
  imageAxes,
  imageTrace,
  MAP_COLORSCALE,
  type PlotlyFigure,
  type PlotlyTrace,
  REFERENCE_COLOR,
  roundValues,
  SUSPICIOUS_COLOR,
  toMatrix,
} from "./figure.ts";
import { makeFigure } from "./jupyter.ts";
import { channelsFirstNorms, gridNorms } from "../maps/bank.ts";

/** Options of {@link anomalyOverlayFigure}. */
export interface OverlayOptions {
  /** Image width W in px. */
  width: number;
  /** Image height H in px (default W). */
  height?: number;
  /** `(H, W)` 0/1 ground-truth mask; its outline is drawn (white contour at 0.5). */
  mask?: Uint8Array | null;
  /** Figure title. */
  title?: string;
  /** Colour range of the map (default: the map's own min/max). */
  zmin?: number;
  zmax?: number;
  /** Opacity of the map over the image (default 0.5). */
  opacity?: number;
  /** Colour-bar title (default "anomaly score"). */
  colorbarTitle?: string;
  /** Plotly colour scale (default Jet). */
  colorscale?: string;
}

/**
 * An image with its anomaly map overlaid (semi-transparent heat map) and the ground-truth outline.
 * Traces: `image` (the RGB crop as a PNG source), `heatmap` (`z` is H rows × W columns of the map),
 * and, with a mask, a `contour` of the mask at level 0.5.
 * @param rgb `(H, W, 3)` row-major u8. @param map `(H, W)` row-major f32 anomaly map.
 * @throws {Error} when `rgb`, `map` or `mask` do not match `(H, W)`.
 */
export function anomalyOverlayFigure(
  rgb: Uint8Array,
  map: Float32Array,
  opts: OverlayOptions,
): PlotlyFigure {
  const W = opts.width, H = opts.height ?? opts.width;
  const [lo, hi] = finiteRange(map);
  const data: PlotlyTrace[] = [
    imageTrace(rgb, W, H),
    {
      type: "heatmap",
      name: "anomaly map",
      z: toMatrix(map, H, W, "anomaly map"),
      zmin: opts.zmin ?? lo,
      zmax: opts.zmax ?? hi,
      zsmooth: false,
      opacity: opts.opacity ?? 0.5,
      colorscale: opts.colorscale ?? MAP_COLORSCALE,
      colorbar: { title: axisTitle(opts.colorbarTitle ?? "anomaly score") },
      hovertemplate: "x %{x}, y %{y}<br>score %{z}<extra></extra>",
    },
  ];
  if (opts.mask) {
    data.push({
      type: "contour",
      name: "ground truth",
      z: toMatrix(opts.mask, H, W, "mask"),
      contours: { start: 0.5, end: 0.5, size: 1, coloring: "none" },
      line: { color: "white", width: 2 },
      showlegend: false,
      hoverinfo: "skip",
    });
  }
  return makeFigure(data, {
    title: { text: opts.title ?? "anomaly map over the image" },
    ...imageAxes(W, H, "x (px)", "y (px)"),
    margin: { l: 60, r: 20, t: 80, b: 60 },
    annotations: opts.mask
      ? [{
        text: "white outline: ground-truth defect",
        xref: "paper",
        yref: "paper",
        x: 0,
        y: -0.13,
        xanchor: "left",
        showarrow: false,
        font: { size: 11 },
      }]
      : [],
  });
}

/**
 * Overlay of image `i` of a category result: the map on the category's common colour range (min/max
 * over all its maps, so images are comparable), the mask outline when the category has masks, and
 * a title with the id, label and image score.
 * @throws {RangeError} when `i` is not an image index of `c`.
 */
export function categoryOverlayFigure(
  c: CategoryResult,
  i: number,
  opts: { zmin?: number; zmax?: number; opacity?: number; title?: string } = {},
): PlotlyFigure {
  if (!Number.isInteger(i) || i < 0 || i >= c.ids.length) {
    throw new RangeError(`categoryOverlayFigure: image ${i} outside 0..${c.ids.length - 1}`);
  }
  const S = c.size, px = S * S;
  let zmin = opts.zmin, zmax = opts.zmax;
  if (zmin === undefined || zmax === undefined) {
    const [lo, hi] = finiteRange(c.maps);
    zmin ??= lo;
    zmax ??= hi;
  }
  const label = c.labels[i] ? `defect: ${c.defectTypes[i]}` : "good";
  return anomalyOverlayFigure(
    c.rgb.subarray(i * px * 3, (i + 1) * px * 3),
    c.maps.subarray(i * px, (i + 1) * px),
    {
      width: S,
      mask: c.hasMasks && c.labels[i] ? c.masks.subarray(i * px, (i + 1) * px) : null,
      zmin,
      zmax,
      opacity: opts.opacity,
      title: opts.title ??
        `${c.category} ${c.ids[i]}<br>${label}, image score ${c.imageScores[i].toPrecision(4)}`,
    },
  );
}

/** Options of {@link patchMapFigure} and the maps built on it. */
export interface PatchMapOptions {
  /** Figure title. */
  title?: string;
  /** Colour-bar title: what the values measure. */
  colorbarTitle?: string;
  /** `(S, S, 3)` u8 image drawn under the map (patch cells then span S/w px). */
  rgb?: Uint8Array;
  /** Side S of `rgb` in px (required with `rgb`). */
  imageSize?: number;
  /** Map opacity (default 0.6 over an image, 1 without). */
  opacity?: number;
  zmin?: number;
  zmax?: number;
  colorscale?: string;
  /** Draw a contour line at this value (e.g. a threshold). */
  contourAt?: number;
  /** Name of the contour line in the legend. */
  contourName?: string;
}

/**
 * A patch-grid map as a heat map, optionally over the image it came from. Without an image the axes
 * are in patch units (column, row); with one they are in pixels and each cell covers S/w × S/h px.
 * @param values `(h, w)` row-major values.
 * @throws {Error} when `values` is not `h·w` long, or `rgb` without a matching `imageSize`.
 */
export function patchMapFigure(
  values: ArrayLike<number>,
  h: number,
  w: number,
  opts: PatchMapOptions = {},
): PlotlyFigure {
  const z = toMatrix(values, h, w, opts.title ?? "patch map");
  const data: PlotlyTrace[] = [];
  let geom: { x0: number; dx: number; y0: number; dy: number } = { x0: 0, dx: 1, y0: 0, dy: 1 };
  let axes;
  if (opts.rgb) {
    const S = opts.imageSize;
    if (!S || opts.rgb.length !== S * S * 3) {
      throw new Error(
        `patchMapFigure: rgb has ${opts.rgb.length} bytes; expected (imageSize, imageSize, 3) with imageSize given`,
      );
    }
    data.push(imageTrace(opts.rgb, S, S));
    geom = { x0: (S / w - 1) / 2, dx: S / w, y0: (S / h - 1) / 2, dy: S / h };
    axes = imageAxes(S, S, "x (px)", "y (px)");
  } else {
    axes = imageAxes(w, h, "patch column", "patch row");
  }
  const [lo, hi] = finiteRange(values);
  data.push({
    type: "heatmap",
    name: opts.colorbarTitle ?? "value",
    z,
    ...geom,
    zmin: opts.zmin ?? lo,
    zmax: opts.zmax ?? hi,
    zsmooth: false,
    opacity: opts.opacity ?? (opts.rgb ? 0.6 : 1),
    colorscale: opts.colorscale ?? MAP_COLORSCALE,
    colorbar: { title: axisTitle(opts.colorbarTitle ?? "value") },
    hovertemplate: "x %{x}, y %{y}<br>%{z}<extra></extra>",
  });
  if (opts.contourAt !== undefined) {
    data.push({
      type: "contour",
      name: opts.contourName ?? `level ${opts.contourAt.toPrecision(4)}`,
      z,
      ...geom,
      contours: { start: opts.contourAt, end: opts.contourAt, size: 1, coloring: "none" },
      line: { color: "white", width: 2 },
      showlegend: true,
      hoverinfo: "skip",
    });
  }
  return makeFigure(data, {
    title: { text: opts.title ?? "patch map" },
    ...axes,
    legend: { orientation: "h", y: -0.12 },
    margin: { l: 60, r: 20, t: 50, b: 60 },
  });
}

/** Options of the residual / waypoint maps: the image index plus {@link PatchMapOptions}. */
export interface ImageMapOptions extends PatchMapOptions {
  /** Image index in the batch (default 0). */
  index?: number;
}

/**
 * Inter-residual norm map ‖r_i‖₂ on the patch grid (spec §3: r = mean of the k nearest bank
 * entries − f): how far each patch is from the normal memory bank.
 * @param residual channels-last `(N, h, w, C)` inter-residual (`computeInterResidual(...).residual`).
 */
export function interResidualFigure(
  residual: FeatureGrid,
  opts: ImageMapOptions = {},
): PlotlyFigure {
  return patchMapFigure(gridNorms(residual, opts.index ?? 0), residual.h, residual.w, {
    title: "inter-residual norm (distance to the bank)",
    colorbarTitle: "‖r‖₂ inter-residual",
    ...opts,
  });
}

/**
 * Intra-residual norm map ‖s_i‖₂ (spec §5: s = f[nearest self-reference] − f): how far each patch
 * is from the closest reference patch of the same image.
 * @param intraResidual `(B, C, h, w)` channels-first (`fuseResiduals(...).intraResidual`).
 */
export function intraResidualFigure(
  intraResidual: Float32Array,
  shape: { B: number; C: number; h: number; w: number },
  opts: ImageMapOptions = {},
): PlotlyFigure {
  return patchMapFigure(
    channelsFirstNorms(intraResidual, shape, opts.index ?? 0),
    shape.h,
    shape.w,
    {
      title: "intra-residual norm (distance to the nearest self-reference)",
      colorbarTitle: "‖s‖₂ intra-residual",
      ...opts,
    },
  );
}

function imageSlice(x: Float32Array, L: number, index: number, what: string): Float32Array {
  if (x.length % L !== 0 || x.length === 0) {
    throw new Error(`${what}: ${x.length} values is not a multiple of h·w = ${L}`);
  }
  const B = x.length / L;
  if (!Number.isInteger(index) || index < 0 || index >= B) {
    throw new RangeError(`${what}: image ${index} outside 0..${B - 1}`);
  }
  return x.subarray(index * L, (index + 1) * L);
}

/**
 * Waypoint map w = u + mean_c P(r) of the navigator (spec §5 step 3): low values = patches that
 * look normal (candidates for self-references).
 * @param waypoint `(B, h, w)` (or `(h, w)`) row-major f32 (`fuseResiduals(...).waypoint`).
 * @param opts.contourAt e.g. the K-th smallest waypoint, the selection threshold.
 */
export function waypointFigure(
  waypoint: Float32Array,
  h: number,
  w: number,
  opts: ImageMapOptions = {},
): PlotlyFigure {
  return patchMapFigure(imageSlice(waypoint, h * w, opts.index ?? 0, "waypoint"), h, w, {
    title: "waypoint map (navigator)",
    colorbarTitle: "waypoint u + mean P(r)",
    colorscale: "Viridis",
    ...opts,
  });
}

/** The self-reference selection of one image (spec §5 step 4). */
export interface SelectionSummary {
  /** h·w positions L. */
  L: number;
  /** Number of references K = round(ratio·L) (Python rounding). */
  K: number;
  /** `(L)` 1 = reference, 0 = suspicious. */
  refMask: Uint8Array;
  /** The K-th smallest waypoint: references are the patches at or below it. */
  threshold: number;
  /** `(L)` positions by ascending waypoint (ties → lower position). */
  order: Int32Array;
}

/**
 * Select the self-references of one image: the K = round(ratio·h·w) smallest waypoints
 * (`selectReferences`, spec §5 step 4), with the threshold and the full ascending order.
 * @param waypoint `(h, w)` f32 of one image.
 * @throws {Error} for a ratio that gives K outside 1…L (via `referenceCount`).
 */
export function selfReferenceSelection(
  waypoint: Float32Array,
  h: number,
  w: number,
  ratio: number,
): SelectionSummary {
  const L = h * w;
  if (waypoint.length !== L) {
    throw new Error(
      `selfReferenceSelection: waypoint has ${waypoint.length} values, expected ${L}`,
    );
  }
  const K = referenceCount(L, ratio);
  const sel = selectReferences(waypoint, 1, L, L);
  const order = sel.refIndices;
  const refMask = new Uint8Array(L);
  for (let k = 0; k < K; k++) refMask[order[k]] = 1;
  return { L, K, refMask, threshold: waypoint[order[K - 1]], order };
}

/** Options of {@link selfReferenceFigure}. */
export interface SelfReferenceOptions {
  /** Self-reference ratio (`--self-ratio`, 0.75 in the README). */
  ratio: number;
  /** Image index in the batch (default 0). */
  index?: number;
  /** `(S, S, 3)` u8 image under the selection (default: the waypoint map is the background). */
  rgb?: Uint8Array;
  /** Side S of `rgb` in px. */
  imageSize?: number;
  title?: string;
}

/**
 * Self-reference selection of one image (spec §5 step 4) in two panels. Left: the image (or the
 * waypoint map when no image is given) with the suspicious patches (waypoint above the threshold;
 * the tokens the navigator sends through the Mamba) shaded red and the references marked by cyan
 * dots. Right: every waypoint in ascending order, references and suspicious patches coloured, with
 * the K-th waypoint value (the threshold) as a dashed line.
 *
 * Traces: [background], suspicious shading `heatmap` (h×w, null on references), reference
 * `scatter` (K points), sorted-waypoint `scatter`s (K and L−K points), threshold line.
 * @param waypoint `(B, h, w)` or `(h, w)` f32.
 */
export function selfReferenceFigure(
  waypoint: Float32Array,
  h: number,
  w: number,
  opts: SelfReferenceOptions,
): PlotlyFigure {
  const wp = imageSlice(waypoint, h * w, opts.index ?? 0, "waypoint");
  const sel = selfReferenceSelection(wp, h, w, opts.ratio);
  const { L, K, refMask, threshold, order } = sel;
  const data: PlotlyTrace[] = [];
  let cell = { x0: 0, dx: 1, y0: 0, dy: 1 };
  let axes;
  if (opts.rgb) {
    const S = opts.imageSize;
    if (!S || opts.rgb.length !== S * S * 3) {
      throw new Error(
        `selfReferenceFigure: rgb has ${opts.rgb.length} bytes; expected (imageSize, imageSize, 3) with imageSize given`,
      );
    }
    data.push(imageTrace(opts.rgb, S, S));
    cell = { x0: (S / w - 1) / 2, dx: S / w, y0: (S / h - 1) / 2, dy: S / h };
    axes = imageAxes(S, S, "x (px)", "y (px)");
  } else {
    const [lo, hi] = finiteRange(wp);
    data.push({
      type: "heatmap",
      name: "waypoint",
      z: toMatrix(wp, h, w, "waypoint"),
      zmin: lo,
      zmax: hi,
      colorscale: "Greys",
      reversescale: true,
      zsmooth: false,
      colorbar: { title: axisTitle("waypoint"), x: 0.47, len: 0.8, thickness: 14 },
      hovertemplate: "column %{x}, row %{y}<br>waypoint %{z}<extra></extra>",
    });
    axes = imageAxes(w, h, "patch column", "patch row");
  }
  const shade: (number | null)[][] = [];
  for (let y = 0; y < h; y++) {
    const row: (number | null)[] = [];
    for (let x = 0; x < w; x++) row.push(refMask[y * w + x] ? null : 1);
    shade.push(row);
  }
  data.push({
    type: "heatmap",
    name: `suspicious (${L - K})`,
    z: shade,
    ...cell,
    zmin: 0,
    zmax: 1,
    colorscale: [[0, SUSPICIOUS_COLOR], [1, SUSPICIOUS_COLOR]],
    showscale: false,
    opacity: 0.45,
    zsmooth: false,
    hoverinfo: "skip",
  });
  const rx: number[] = [], ry: number[] = [];
  for (let p = 0; p < L; p++) {
    if (!refMask[p]) continue;
    rx.push(cell.x0 + (p % w) * cell.dx);
    ry.push(cell.y0 + Math.floor(p / w) * cell.dy);
  }
  data.push({
    type: "scatter",
    mode: "markers",
    name: `reference (K = ${K})`,
    x: rx,
    y: ry,
    marker: { color: REFERENCE_COLOR, size: 4, line: { width: 0 } },
    hoverinfo: "skip",
  });
  // Legend entry for the shading (heat maps have no legend symbol).
  data.push({
    type: "scatter",
    mode: "markers",
    name: `suspicious → Mamba (L−K = ${L - K})`,
    x: [null],
    y: [null],
    marker: { color: SUSPICIOUS_COLOR, symbol: "square", size: 10, opacity: 0.6 },
  });
  const sorted = roundValues(Array.from(order, (p) => wp[p]), 6);
  const ranks = Array.from({ length: L }, (_, i) => i + 1);
  data.push({
    type: "scatter",
    mode: "markers",
    name: "reference waypoints",
    x: ranks.slice(0, K),
    y: sorted.slice(0, K),
    marker: { color: REFERENCE_COLOR, size: 4 },
    xaxis: "x2",
    yaxis: "y2",
    showlegend: false,
    hovertemplate: "rank %{x}<br>waypoint %{y}<extra>reference</extra>",
  });
  data.push({
    type: "scatter",
    mode: "markers",
    name: "suspicious waypoints",
    x: ranks.slice(K),
    y: sorted.slice(K),
    marker: { color: SUSPICIOUS_COLOR, size: 4 },
    xaxis: "x2",
    yaxis: "y2",
    showlegend: false,
    hovertemplate: "rank %{x}<br>waypoint %{y}<extra>suspicious</extra>",
  });
  data.push({
    type: "scatter",
    mode: "lines",
    name: `threshold = K-th waypoint (${threshold.toPrecision(4)})`,
    x: [1, L],
    y: [threshold, threshold],
    line: { color: "black", dash: "dash", width: 1.5 },
    xaxis: "x2",
    yaxis: "y2",
  });
  const title = opts.title ??
    `self-reference selection: ratio ${opts.ratio} → K = ${K} of L = ${L} patches are references`;
  return makeFigure(data, {
    title: { text: title },
    xaxis: { ...axes.xaxis, domain: [0, 0.46] },
    yaxis: { ...axes.yaxis },
    xaxis2: {
      domain: [0.66, 1],
      anchor: "y2",
      title: axisTitle("rank (ascending waypoint)"),
      range: [0, L + 1],
    },
    yaxis2: { anchor: "x2", title: axisTitle("waypoint u + mean P(r)") },
    legend: { orientation: "h", y: -0.15 },
    margin: { l: 60, r: 20, t: 60, b: 80 },
    width: 1000,
    height: 520,
  });
}

/**
 * How the self-reference set moves with the ratio: each patch is coloured by the smallest ratio that
 * makes it a reference, (rank + 1)/L with rank its position in the ascending waypoint order (exact
 * up to the Python rounding of K = round(ratio·L)). The reference set of any ratio ρ is the region
 * at or below ρ; `ratios` are drawn as contour lines.
 * @param waypoint `(B, h, w)` or `(h, w)` f32.
 */
export function selectionRatioFigure(
  waypoint: Float32Array,
  h: number,
  w: number,
  opts: ImageMapOptions & { ratios?: number[] } = {},
): PlotlyFigure {
  const wp = imageSlice(waypoint, h * w, opts.index ?? 0, "waypoint");
  const L = h * w;
  const { order } = selfReferenceSelection(wp, h, w, 1);
  const entry = new Float32Array(L);
  for (let r = 0; r < L; r++) entry[order[r]] = (r + 1) / L;
  const fig = patchMapFigure(entry, h, w, {
    title: "smallest self-ratio at which each patch becomes a reference",
    colorbarTitle: "entry ratio (rank+1)/L",
    colorscale: "Viridis",
    zmin: 0,
    zmax: 1,
    ...opts,
  });
  const heat = fig.data[fig.data.length - 1];
  for (const ratio of opts.ratios ?? []) {
    fig.data.push({
      type: "contour",
      name: `ratio ${ratio}`,
      z: heat.z,
      x0: heat.x0,
      dx: heat.dx,
      y0: heat.y0,
      dy: heat.dy,
      contours: { start: ratio, end: ratio, size: 1, coloring: "none", showlabels: true },
      line: { color: "white", width: 1.5 },
      showlegend: false,
      hoverinfo: "skip",
    });
  }
  return fig;
}

/** Options of {@link mapGridFigure}. */
export interface MapGridOptions {
  /** One title per map. */
  titles?: string[];
  /** Columns of the grid (default ⌈√n⌉). */
  cols?: number;
  /** Shared colour range (default: min/max over all maps). */
  zmin?: number;
  zmax?: number;
  colorscale?: string;
  /** Colour-bar title: what the values measure. */
  colorbarTitle?: string;
  /** Figure title. */
  title?: string;
  /** Pixel size of one panel (default 220). */
  panelSize?: number;
}

/**
 * A grid of `(h, w)` maps sharing one colour scale (one `heatmap` trace per map on its own axes,
 * `z` = h rows × w columns). Used for the per-head maps and the ratio sweep.
 * @throws {Error} when a map is not `h·w` long or `maps` is empty.
 */
export function mapGridFigure(
  maps: ArrayLike<number>[],
  h: number,
  w: number,
  opts: MapGridOptions = {},
): PlotlyFigure {
  const n = maps.length;
  if (n === 0) throw new Error("mapGridFigure: no map given");
  const cols = opts.cols ?? Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  let lo = Infinity, hi = -Infinity;
  for (const m of maps) {
    const [a, b] = finiteRange(m);
    if (a < lo) lo = a;
    if (b > hi) hi = b;
  }
  const gap = 0.04, vgap = 0.12;
  const cw = (1 - gap * (cols - 1)) / cols;
  const rh = (1 - vgap * (rows - 1)) / rows;
  // One shared colour scale: the same zmin/zmax on every trace, the colour bar on the first.
  const scale = {
    zmin: opts.zmin ?? lo,
    zmax: opts.zmax ?? hi,
    colorscale: opts.colorscale ?? MAP_COLORSCALE,
  };
  const layout: Record<string, unknown> = {
    title: { text: opts.title ?? "maps" },
    annotations: [] as unknown[],
    margin: { l: 30, r: 20, t: 90, b: 20 },
    width: Math.round(cols * (opts.panelSize ?? 220) + 140),
    height: Math.round(rows * (opts.panelSize ?? 220) + 110),
  };
  const data: PlotlyTrace[] = [];
  for (let i = 0; i < n; i++) {
    const r = Math.floor(i / cols), c = i % cols;
    const sx = i === 0 ? "" : String(i + 1);
    const x0 = c * (cw + gap), y1 = Math.min(1, 1 - r * (rh + vgap));
    const y0 = Math.max(0, Number((y1 - rh).toFixed(6)));
    data.push({
      type: "heatmap",
      name: opts.titles?.[i] ?? `map ${i}`,
      z: toMatrix(maps[i], h, w, opts.titles?.[i] ?? `map ${i}`),
      ...scale,
      showscale: i === 0,
      ...(i === 0 ? { colorbar: { title: axisTitle(opts.colorbarTitle ?? "value") } } : {}),
      zsmooth: false,
      xaxis: "x" + sx,
      yaxis: "y" + sx,
      hovertemplate: "column %{x}, row %{y}<br>%{z}<extra>" +
        (opts.titles?.[i] ?? `map ${i}`).replace(/<br>/g, " ") + "</extra>",
    });
    layout["xaxis" + sx] = {
      domain: [Number(x0.toFixed(6)), Math.min(1, Number((x0 + cw).toFixed(6)))],
      anchor: "y" + sx,
      showticklabels: false,
      ticks: "",
      showgrid: false,
      zeroline: false,
      range: [-0.5, w - 0.5],
      constrain: "domain",
    };
    layout["yaxis" + sx] = {
      domain: [y0, Number(y1.toFixed(6))],
      anchor: "x" + sx,
      showticklabels: false,
      ticks: "",
      showgrid: false,
      zeroline: false,
      range: [h - 0.5, -0.5],
      scaleanchor: "x" + sx,
      constrain: "domain",
    };
    (layout.annotations as unknown[]).push({
      text: opts.titles?.[i] ?? `map ${i}`,
      x: x0 + cw / 2,
      y: y1,
      xref: "paper",
      yref: "paper",
      xanchor: "center",
      yanchor: "bottom",
      showarrow: false,
      font: { size: 11 },
    });
  }
  return makeFigure(data, layout);
}

/** Names of the four scans of a branch (spec §6; official scan order 0…3). */
export const SCAN_NAMES: readonly string[] = [
  "row-major",
  "column-major",
  "reversed row-major",
  "reversed column-major",
];

/**
 * The per-head maps of one image as a grid: head index = branch·nScan + scan (official logits
 * order), branch i using dilation `scaleList[i]`.
 * @param headLogits `(nHeads, B, 1, h, w)` or `(nHeads, B, h, w)` row-major f32 logits.
 * @param opts.sigmoid show sigmoid(logit), the per-head anomaly probability (default false: logits).
 * @throws {Error} when `headLogits` is not `nHeads·B·h·w` long.
 */
export function headMapsFigure(
  headLogits: Float32Array,
  dims: { nHeads: number; B: number; h: number; w: number },
  opts: {
    index?: number;
    scaleList?: number[];
    nScan?: number;
    sigmoid?: boolean;
    title?: string;
  } = {},
): PlotlyFigure {
  const { nHeads, B, h, w } = dims;
  const L = h * w;
  if (headLogits.length !== nHeads * B * L) {
    throw new Error(
      `headMapsFigure: headLogits has ${headLogits.length} values, expected (${nHeads}, ${B}, 1, ${h}, ${w})`,
    );
  }
  const b = opts.index ?? 0;
  if (!Number.isInteger(b) || b < 0 || b >= B) {
    throw new RangeError(`headMapsFigure: image ${b} outside 0..${B - 1}`);
  }
  const nScan = opts.nScan ?? 4;
  const maps: Float32Array[] = [];
  const titles: string[] = [];
  for (let k = 0; k < nHeads; k++) {
    const m = headLogits.slice((k * B + b) * L, (k * B + b + 1) * L);
    if (opts.sigmoid) { for (let p = 0; p < L; p++) m[p] = 1 / (1 + Math.exp(-m[p])); }
    maps.push(m);
    const branch = Math.floor(k / nScan), scan = k % nScan;
    const dil = opts.scaleList?.[branch];
    titles.push(
      `head ${k}: branch ${branch}${dil !== undefined ? ` (dilation ${dil})` : ""}<br>${
        SCAN_NAMES[scan] ?? `scan ${scan}`
      } scan`,
    );
  }
  return mapGridFigure(maps, h, w, {
    titles,
    cols: nScan,
    colorbarTitle: opts.sigmoid ? "sigmoid(head logit)" : "head logit",
    title: opts.title ?? `per-head maps of image ${b}`,
    colorscale: MAP_COLORSCALE,
  });
}

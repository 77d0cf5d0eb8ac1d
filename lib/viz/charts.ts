/**
 * Chart figures (plotly JSON): image-score histograms of good vs defective images, ROC, PR and PRO
 * curves from the metrics module's exact curve points (spec §9), and the histogram of the
 * nearest-bank distances (spec §3).
 * @module
 */
import type { PrCurve, ProCurve, RocCurve } from "../metrics/curves.ts";
import {
  axisTitle,
  DEFECT_COLOR,
  finiteRange,
  GOOD_COLOR,
  type PlotlyFigure,
  type PlotlyTrace,
  roundValues,
  thinCurveIndices,
} from "./figure.ts";
import { makeFigure } from "./jupyter.ts";

/** Shared bins for several histograms: `{ start, end, size }` over the finite range. */
function sharedBins(values: ArrayLike<number>[], nbins: number) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    const [a, b] = finiteRange(v);
    if (a < lo) lo = a;
    if (b > hi) hi = b;
  }
  if (!(lo <= hi)) return undefined;
  if (lo === hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  const size = (hi - lo) / nbins;
  return { start: lo, end: hi + size * 1e-6, size };
}

/**
 * Histogram of the image scores of good (label 0) and defective (label 1) images, on shared bins
 * and overlaid: the gap between the two is what I-AUROC measures.
 * Traces: `histogram` "good" (x = the good images' scores) and "defective".
 * @param scores `(N)` image scores. @param labels `(N)` 0/1.
 * @throws {Error} when lengths differ.
 */
export function scoreHistogramFigure(
  scores: ArrayLike<number>,
  labels: ArrayLike<number | boolean>,
  opts: { nbins?: number; title?: string; scoreTitle?: string } = {},
): PlotlyFigure {
  if (scores.length !== labels.length) {
    throw new Error(`scoreHistogramFigure: ${scores.length} scores but ${labels.length} labels`);
  }
  const good: number[] = [], bad: number[] = [];
  for (let i = 0; i < scores.length; i++) (labels[i] ? bad : good).push(scores[i]);
  const xbins = sharedBins([good, bad], opts.nbins ?? 30);
  const trace = (name: string, x: number[], color: string): PlotlyTrace => ({
    type: "histogram",
    name: `${name} (n = ${x.length})`,
    x: roundValues(x, 6),
    xbins,
    autobinx: false,
    opacity: 0.6,
    marker: { color },
  });
  return makeFigure([trace("good", good, GOOD_COLOR), trace("defective", bad, DEFECT_COLOR)], {
    title: { text: opts.title ?? "image scores: good vs defective" },
    barmode: "overlay",
    xaxis: { title: axisTitle(opts.scoreTitle ?? "image anomaly score") },
    yaxis: { title: axisTitle("images") },
    legend: { orientation: "h", y: -0.2 },
  });
}

/** A named curve for the multi-curve charts (e.g. one per category). */
export interface NamedCurve<T> {
  name: string;
  curve: T;
  /** Area under it (shown in the legend), e.g. the metric value. */
  area?: number;
}

function series<T>(c: T | NamedCurve<T>[], name: string): NamedCurve<T>[] {
  return Array.isArray(c) ? c : [{ name, curve: c }];
}

function curveTrace(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  name: string,
  maxPoints: number,
  hover: string,
): PlotlyTrace {
  const keep = thinCurveIndices(x, y, maxPoints);
  return {
    type: "scatter",
    mode: "lines",
    name,
    x: roundValues(keep.map((i) => x[i]), 6),
    y: roundValues(keep.map((i) => y[i]), 6),
    line: { shape: "linear", width: 2 },
    hovertemplate: hover + "<extra>%{fullData.name}</extra>",
  };
}

function areaName(n: NamedCurve<unknown>, metric: string): string {
  return n.area === undefined || Number.isNaN(n.area)
    ? n.name
    : `${n.name} (${metric} ${(100 * n.area).toFixed(2)}%)`;
}

/** Options of the curve charts. */
export interface CurveOptions {
  title?: string;
  /** Most points per curve (default 2000; curves with more are thinned, shape-preserving). */
  maxPoints?: number;
}

/**
 * ROC curve(s): TPR against FPR, with the chance diagonal.
 * @param curves one `rocCurve(...)` result or several named ones.
 */
export function rocFigure(
  curves: RocCurve | NamedCurve<RocCurve>[],
  opts: CurveOptions = {},
): PlotlyFigure {
  const data = series(curves, "ROC").map((n) =>
    curveTrace(
      n.curve.fpr,
      n.curve.tpr,
      areaName(n, "AUROC"),
      opts.maxPoints ?? 2000,
      "FPR %{x}<br>TPR %{y}",
    )
  );
  data.push({
    type: "scatter",
    mode: "lines",
    name: "chance",
    x: [0, 1],
    y: [0, 1],
    line: { dash: "dot", color: "grey", width: 1 },
    hoverinfo: "skip",
  });
  return makeFigure(data, {
    title: { text: opts.title ?? "ROC curve" },
    xaxis: { title: axisTitle("false positive rate"), range: [0, 1] },
    yaxis: { title: axisTitle("true positive rate"), range: [0, 1.02] },
    legend: { orientation: "h", y: -0.2 },
  });
}

/**
 * Precision-recall curve(s) (precision against recall).
 * @param curves one `prCurve(...)` result or several named ones.
 */
export function prFigure(
  curves: PrCurve | NamedCurve<PrCurve>[],
  opts: CurveOptions = {},
): PlotlyFigure {
  const data = series(curves, "PR").map((n) =>
    curveTrace(
      n.curve.recall,
      n.curve.precision,
      areaName(n, "AP"),
      opts.maxPoints ?? 2000,
      "recall %{x}<br>precision %{y}",
    )
  );
  return makeFigure(data, {
    title: { text: opts.title ?? "precision-recall curve" },
    xaxis: { title: axisTitle("recall"), range: [0, 1] },
    yaxis: { title: axisTitle("precision"), range: [0, 1.02] },
    legend: { orientation: "h", y: -0.2 },
  });
}

/**
 * PRO curve(s): mean per-region overlap against the false positive rate over normal pixels, with
 * the FPR limit of AUPRO (0.3, MVTec AD protocol) marked.
 * @param curves one `proCurve(...)` result or several named ones.
 */
export function proFigure(
  curves: ProCurve | NamedCurve<ProCurve>[],
  opts: CurveOptions & { fprLimit?: number } = {},
): PlotlyFigure {
  const limit = opts.fprLimit ?? 0.3;
  const data = series(curves, "PRO").map((n) =>
    curveTrace(
      n.curve.fpr,
      n.curve.pro,
      areaName(n, "AUPRO"),
      opts.maxPoints ?? 2000,
      "FPR %{x}<br>PRO %{y}",
    )
  );
  data.push({
    type: "scatter",
    mode: "lines",
    name: `AUPRO limit FPR = ${limit}`,
    x: [limit, limit],
    y: [0, 1],
    line: { dash: "dash", color: "grey", width: 1 },
    hoverinfo: "skip",
  });
  return makeFigure(data, {
    title: { text: opts.title ?? "PRO curve" },
    xaxis: { title: axisTitle("false positive rate (normal pixels)"), range: [0, 1] },
    yaxis: { title: axisTitle("per-region overlap (PRO)"), range: [0, 1.02] },
    legend: { orientation: "h", y: -0.2 },
  });
}

/** A named group of nearest-bank distances (e.g. the patches of good vs defective images). */
export interface DistanceGroup {
  name: string;
  /** `(Q, k)` distances from `searchTopK` (column 0 = nearest) or `(Q)` nearest distances. */
  distances: Float32Array;
}

/**
 * Histogram of the distance of each patch to its nearest bank entry ‖f − m₁‖₂ (spec §3), one
 * overlaid trace per group on shared bins. Trace `x` holds one value per patch.
 * @param groups one distance array or several named groups.
 * @param opts.k neighbours per row of `distances` (default 1; column 0, the nearest, is used).
 * @param opts.normalize show each group as fractions of its patches (default: true for groups).
 * @param opts.logY logarithmic y axis (shows the far tail).
 * @throws {Error} when a distance array is not a multiple of `k` long.
 */
export function bankDistanceHistogramFigure(
  groups: Float32Array | DistanceGroup[],
  opts: { k?: number; nbins?: number; title?: string; normalize?: boolean; logY?: boolean } = {},
): PlotlyFigure {
  const k = opts.k ?? 1;
  const norm = opts.normalize ?? !(groups instanceof Float32Array);
  const gs = groups instanceof Float32Array ? [{ name: "patches", distances: groups }] : groups;
  const nearest = gs.map((g) => {
    if (g.distances.length % k !== 0) {
      throw new Error(
        `bankDistanceHistogramFigure: ${g.name} has ${g.distances.length} distances, not (Q, ${k})`,
      );
    }
    const q = g.distances.length / k;
    const d = new Float32Array(q);
    for (let i = 0; i < q; i++) d[i] = g.distances[i * k];
    return d;
  });
  const xbins = sharedBins(nearest, opts.nbins ?? 50);
  const colors = [GOOD_COLOR, DEFECT_COLOR, "#2ca02c", "#9467bd", "#ff7f0e"];
  const data: PlotlyTrace[] = gs.map((g, i) => ({
    type: "histogram",
    name: `${g.name} (n = ${nearest[i].length})`,
    x: roundValues(nearest[i], 5),
    xbins,
    autobinx: false,
    opacity: gs.length > 1 ? 0.6 : 0.85,
    marker: { color: colors[i % colors.length] },
    ...(norm ? { histnorm: "probability" } : {}),
  }));
  return makeFigure(data, {
    title: { text: opts.title ?? "distance to the nearest bank entry" },
    barmode: "overlay",
    xaxis: { title: axisTitle("nearest-bank distance ‖f − m₁‖₂") },
    yaxis: {
      title: axisTitle(norm ? "fraction of the group's patches" : "patches"),
      ...(opts.logY ? { type: "log" } : {}),
    },
    legend: { orientation: "h", y: -0.2 },
  });
}

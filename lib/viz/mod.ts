/**
 * Views of the method (issue #4): plotly figure builders (anomaly overlays, inter/intra-residual
 * and waypoint maps, the self-reference selection, per-head maps, score histograms, ROC/PR/PRO
 * curves, nearest-bank distances), Jupyter display for the Deno kernel, static PNG/SVG export via
 * headless Chromium, and the HTML evaluation report.
 *
 * ```ts
 * import { anomalyOverlayFigure, saveFigure } from "./mod.ts";
 * const fig = anomalyOverlayFigure(sample.rgb, map, { width: 392, mask: sample.mask });
 * fig;                                   // in a Deno notebook: draws itself (plotly)
 * await saveFigure("overlay.png", fig);  // PNG via headless Chromium
 * ```
 * @module
 */
export * from "./figure.ts";
export * from "./jupyter.ts";
export * from "./maps.ts";
export * from "./charts.ts";
export * from "./export.ts";
export * from "./report.ts";
export * from "./notebook.ts";

/**
 * Views of the method (issue #4): plotly figure builders (anomaly overlays, inter/intra-residual
 * and waypoint maps, the self-reference selection, per-head maps, score histograms, ROC/PR/PRO
 * curves, nearest-bank distances), Jupyter display for the Deno kernel, static PNG/SVG export via
 * headless Chromium, and the HTML evaluation report.
 *
 * `saveFigure("overlay.png", fig)` writes a PNG through headless Chromium.
 *
 * @example
 * ```ts
 * import { anomalyOverlayFigure } from "./mod.ts";
 * const rgb = new Uint8Array(32 * 32 * 3).fill(128); // (H, W, 3) image
 * const map = Float32Array.from({ length: 32 * 32 }, (_, i) => i % 32); // (H, W) anomaly map
 * const mask = new Uint8Array(32 * 32).fill(1, 0, 64); // (H, W) ground truth
 * const fig = anomalyOverlayFigure(rgb, map, { width: 32, mask });
 * fig; // in a Deno notebook: draws itself (plotly figure JSON: data + layout)
 * if (fig.data.length < 2) throw new Error("image + heatmap traces");
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

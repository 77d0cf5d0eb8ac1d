/**
 * lib/viz: figure builders give valid plotly JSON whose trace sizes agree with their inputs; the
 * Jupyter display bundles; static PNG/SVG export through headless Chromium (decoded, checked for
 * size and content, and every figure checked with Plotly.validate); the HTML report.
 *
 * The Chromium tests run when Chromium and plotly.js are found, and always in CI (CI=true), where
 * their absence fails them.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
// deno-lint-ignore no-import-prefix
import { decode } from "npm:fast-png@8.0.0";
import { channelsFirstNorms, gridNorms } from "../lib/maps/mod.ts";
import {
  anomalyOverlayFigure,
  bankDistanceHistogramFigure,
  canExportFigures,
  categoryOverlayFigure,
  displayBundle,
  enableJupyterDisplay,
  headMapsFigure,
  interResidualFigure,
  intraResidualFigure,
  JUPYTER_DISPLAY,
  mapGridFigure,
  patchMapFigure,
  PLOTLY_MIME,
  type PlotlyFigure,
  type PlotlyTrace,
  prFigure,
  proFigure,
  rankExamples,
  recordsView,
  renderFigures,
  rocFigure,
  roundValues,
  scoreHistogramFigure,
  selectionRatioFigure,
  selfReferenceFigure,
  selfReferenceSelection,
  thinCurveIndices,
  validateFigures,
  view,
  waypointFigure,
  writeReport,
} from "../lib/viz/mod.ts";
import { computeMetrics, metricsTable, prCurve, proCurve, rocCurve } from "../lib/metrics/mod.ts";
import type { CategoryResult, EvalResult } from "../lib/eval/run.ts";
import type { FeatureGrid } from "../lib/types.ts";

const inCi = Deno.env.get("CI") === "true";
const exportTest = {
  ignore: !canExportFigures() && !inCi,
  sanitizeResources: false,
  sanitizeOps: false,
};

/** Deterministic pseudo-random numbers in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Every value is JSON-representable as plotly expects: finite numbers or null, plain arrays. */
function assertPlainJson(x: unknown, path = "fig"): void {
  if (x === null || typeof x === "string" || typeof x === "boolean") return;
  if (typeof x === "number") {
    assert.ok(Number.isFinite(x), `${path} is ${x}`);
    return;
  }
  assert.ok(x !== undefined, `${path} is undefined`);
  assert.equal(typeof x, "object", `${path} is a ${typeof x}`);
  if (Array.isArray(x)) {
    x.forEach((v, i) => assertPlainJson(v, `${path}[${i}]`));
    return;
  }
  assert.equal(Object.getPrototypeOf(x), Object.prototype, `${path} is not a plain object/array`);
  for (const [k, v] of Object.entries(x as object)) {
    if (v === undefined) continue; // dropped by JSON.stringify, like plotly's default
    assertPlainJson(v, `${path}.${k}`);
  }
}

function assertFigure(fig: PlotlyFigure): void {
  assert.ok(Array.isArray(fig.data) && fig.data.length > 0, "figure has traces");
  for (const t of fig.data) assert.equal(typeof t.type, "string");
  assertPlainJson({ data: fig.data, layout: fig.layout });
  const round = JSON.parse(JSON.stringify(fig));
  assert.deepEqual(Object.keys(round).sort(), ["config", "data", "layout"]);
  assert.equal(round.data.length, fig.data.length);
}

function zShape(t: PlotlyTrace): [number, number] {
  const z = t.z as unknown[][];
  assert.ok(Array.isArray(z), `${t.type} trace has a z matrix`);
  const w = (z[0] as unknown[]).length;
  for (const row of z) assert.equal((row as unknown[]).length, w, "rectangular z");
  return [z.length, w];
}

function pngSize(uri: string): [number, number] {
  const b64 = uri.replace(/^data:image\/png;base64,/, "");
  const bin = atob(b64);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  const img = decode(bytes);
  return [img.height, img.width];
}

function byType(fig: PlotlyFigure, type: string): PlotlyTrace[] {
  return fig.data.filter((t) => t.type === type);
}

// Synthetic inputs shared by the tests.
const S = 48, h = 6, w = 8, L = h * w;
const rand = rng(7);
const rgb = Uint8Array.from({ length: S * S * 3 }, () => Math.floor(rand() * 256));
const map = Float32Array.from({ length: S * S }, (_, i) => Math.sin(i / 37) + rand() * 0.1);
const mask = Uint8Array.from({ length: S * S }, (_, i) => (i % S > 30 && i / S < 12 ? 1 : 0));
const wp2 = Float32Array.from({ length: 2 * L }, () => rand());

Deno.test("anomalyOverlayFigure: image, H×W heat map and mask contour", () => {
  const fig = anomalyOverlayFigure(rgb, map, { width: S, mask, title: "t" });
  assertFigure(fig);
  assert.deepEqual(fig.data.map((t) => t.type), ["image", "heatmap", "contour"]);
  assert.deepEqual(pngSize(fig.data[0].source as string), [S, S]);
  assert.deepEqual(zShape(fig.data[1]), [S, S]);
  assert.deepEqual(zShape(fig.data[2]), [S, S]);
  const z = fig.data[1].z as number[][];
  assert.ok(Math.abs(z[3][5] - map[3 * S + 5]) < 1e-3, "z[row][col] = map[row·W + col]");
  assert.ok((fig.data[1].colorbar as { title: { text: string } }).title.text.length > 0);
  assert.equal(anomalyOverlayFigure(rgb, map, { width: S }).data.length, 2, "no mask, no contour");
  assert.throws(() => anomalyOverlayFigure(rgb, map.subarray(1), { width: S }), /anomaly map/);
});

Deno.test("patch maps: inter/intra-residual norms and waypoint on the h×w grid", () => {
  const C = 5;
  const grid: FeatureGrid = {
    n: 2,
    h,
    w,
    c: C,
    data: Float32Array.from({ length: 2 * L * C }, () => rand() - 0.5),
  };
  const norms = gridNorms(grid, 1);
  assert.equal(norms.length, L);
  let s = 0;
  for (let k = 0; k < C; k++) s += grid.data[(L + 3) * C + k] ** 2;
  assert.ok(Math.abs(norms[3] - Math.sqrt(s)) < 1e-6);
  const inter = interResidualFigure(grid, { index: 1 });
  assertFigure(inter);
  assert.deepEqual(zShape(byType(inter, "heatmap")[0]), [h, w]);

  // Channels-first (B, C, h, w): the same values transposed give the same norms.
  const cf = new Float32Array(2 * C * L);
  for (let b = 0; b < 2; b++) {
    for (let p = 0; p < L; p++) {
      for (let k = 0; k < C; k++) cf[(b * C + k) * L + p] = grid.data[(b * L + p) * C + k];
    }
  }
  const cfn = channelsFirstNorms(cf, { B: 2, C, h, w }, 1);
  for (let p = 0; p < L; p++) assert.ok(Math.abs(cfn[p] - norms[p]) < 1e-5);
  const intra = intraResidualFigure(cf, { B: 2, C, h, w }, { index: 1, rgb, imageSize: S });
  assertFigure(intra);
  assert.deepEqual(intra.data.map((t) => t.type), ["image", "heatmap"]);
  const heat = intra.data[1];
  assert.deepEqual(zShape(heat), [h, w]);
  assert.equal(heat.dx, S / w, "a patch cell spans S/w px");
  assert.equal(heat.dy, S / h);

  const wf = waypointFigure(wp2, h, w, { index: 1, contourAt: 0.5 });
  assertFigure(wf);
  assert.deepEqual(wf.data.map((t) => t.type), ["heatmap", "contour"]);
  assert.equal((wf.data[0].z as number[][])[0][0], roundValues([wp2[L]])[0]);
  assert.throws(() => waypointFigure(wp2, h, w, { index: 2 }), RangeError);
  assert.throws(() => patchMapFigure(new Float32Array(L - 1), h, w), /expected/);
});

Deno.test("selfReferenceFigure: K references, L−K suspicious, threshold = K-th waypoint", () => {
  const ratio = 0.75;
  const sel = selfReferenceSelection(wp2.subarray(L, 2 * L), h, w, ratio);
  const K = Math.round(L * ratio);
  assert.equal(sel.K, K);
  assert.equal(sel.refMask.reduce((a, b) => a + b, 0), K);
  const wp = wp2.subarray(L);
  for (let p = 0; p < L; p++) {
    if (sel.refMask[p]) assert.ok(wp[p] <= sel.threshold);
    else assert.ok(wp[p] > sel.threshold);
  }
  for (const withImage of [false, true]) {
    const fig = selfReferenceFigure(wp2, h, w, {
      ratio,
      index: 1,
      ...(withImage ? { rgb, imageSize: S } : {}),
    });
    assertFigure(fig);
    const heats = byType(fig, "heatmap");
    const shade = heats[heats.length - 1];
    assert.deepEqual(zShape(shade), [h, w]);
    const nulls = (shade.z as (number | null)[][]).flat().filter((v) => v === null).length;
    assert.equal(nulls, K, "references are unshaded");
    const sc = byType(fig, "scatter");
    const refDots = sc.find((t) => String(t.name).startsWith("reference ("))!;
    assert.equal((refDots.x as number[]).length, K);
    const refW = sc.find((t) => t.name === "reference waypoints")!;
    const susW = sc.find((t) => t.name === "suspicious waypoints")!;
    assert.equal((refW.y as number[]).length, K);
    assert.equal((susW.y as number[]).length, L - K);
    const thr = sc.find((t) => String(t.name).startsWith("threshold"))!;
    assert.ok(Math.abs((thr.y as number[])[0] - sel.threshold) < 1e-6);
  }
  const ratioFig = selectionRatioFigure(wp2, h, w, { index: 1, ratios: [0.25, 0.5] });
  assertFigure(ratioFig);
  const entry = (ratioFig.data[0].z as number[][]).flat();
  assert.equal(entry.length, L);
  // The reference set of ratio ρ is exactly {entry ≤ K/L}.
  for (let p = 0; p < L; p++) assert.equal(entry[p] <= K / L + 1e-9, sel.refMask[p] === 1);
  assert.equal(byType(ratioFig, "contour").length, 2);
});

Deno.test("mapGridFigure / headMapsFigure: one h×w heat map per head on a shared scale", () => {
  const nHeads = 8, B = 2;
  const logits = Float32Array.from({ length: nHeads * B * L }, () => rand() * 4 - 2);
  const fig = headMapsFigure(logits, { nHeads, B, h, w }, { index: 1, scaleList: [3, 6] });
  assertFigure(fig);
  assert.equal(fig.data.length, nHeads);
  for (const t of fig.data) {
    assert.deepEqual(zShape(t), [h, w]);
    assert.equal(t.zmin, fig.data[0].zmin);
    assert.equal(t.zmax, fig.data[0].zmax);
  }
  const head5 = fig.data[5].z as number[][];
  assert.ok(Math.abs(head5[1][2] - logits[(5 * B + 1) * L + w + 2]) < 1e-3);
  assert.equal(fig.data.filter((t) => t.showscale).length, 1, "one colour bar");
  assert.ok(String(fig.data[4].name).includes("dilation 6"));
  const sig = headMapsFigure(logits, { nHeads, B, h, w }, { sigmoid: true });
  for (const v of (sig.data[0].z as number[][]).flat()) assert.ok(v! > 0 && v! < 1);
  assert.throws(() => headMapsFigure(logits.subarray(1), { nHeads, B, h, w }), /headLogits/);
  assert.throws(() => mapGridFigure([], h, w), /no map/);
});

Deno.test("charts: histograms and ROC/PR/PRO traces match their inputs", () => {
  const n = 40;
  const scores = Float32Array.from({ length: n }, () => rand());
  const labels = Uint8Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 1 : 0));
  for (let i = 0; i < n; i++) if (labels[i]) scores[i] += 0.5;
  const hist = scoreHistogramFigure(scores, labels);
  assertFigure(hist);
  const nDef = labels.reduce((a, b) => a + b, 0);
  assert.equal((hist.data[0].x as number[]).length, n - nDef);
  assert.equal((hist.data[1].x as number[]).length, nDef);
  assert.deepEqual(hist.data[0].xbins, hist.data[1].xbins, "shared bins");

  const roc = rocCurve(scores, labels);
  const rf = rocFigure(roc);
  assertFigure(rf);
  assert.equal((rf.data[0].x as number[]).length, roc.fpr.length);
  assert.equal((rf.data[0].y as number[]).length, roc.tpr.length);
  const pr = prCurve(scores, labels);
  const pf = prFigure([{ name: "a", curve: pr, area: 0.9 }]);
  assertFigure(pf);
  assert.equal((pf.data[0].x as number[]).length, pr.recall.length);
  assert.ok(String(pf.data[0].name).includes("90.00"));
  const maps = Float32Array.from({ length: 3 * 16 * 16 }, () => rand());
  const masks = Uint8Array.from({ length: 3 * 16 * 16 }, (_, i) => (i % 16 < 4 && i > 256 ? 1 : 0));
  const pro = proCurve(maps, masks, [3, 16, 16]);
  const thin = proFigure(pro, { maxPoints: 50 });
  assertFigure(thin);
  const tx = thin.data[0].x as number[];
  assert.ok(tx.length <= 50 && tx.length >= 2, `thinned to ${tx.length}`);
  assert.equal(tx[0], 0);
  assert.equal(tx[tx.length - 1], roundValues([pro.fpr[pro.fpr.length - 1]], 6)[0]);

  const d = Float32Array.from({ length: 30 * 3 }, () => rand());
  const dh = bankDistanceHistogramFigure(
    [{ name: "good", distances: d }, { name: "bad", distances: d.subarray(0, 12 * 3) }],
    { k: 3 },
  );
  assertFigure(dh);
  assert.deepEqual(dh.data.map((t) => (t.x as number[]).length), [30, 12]);
  assert.ok(Math.abs((dh.data[0].x as number[])[1] - d[3]) < 1e-4, "column 0 = nearest");
  assert.throws(() =>
    bankDistanceHistogramFigure([{ name: "x", distances: d.subarray(1) }], { k: 3 })
  );
});

Deno.test("thinCurveIndices keeps the end points and at most maxPoints", () => {
  const n = 10_000;
  const x = Float64Array.from({ length: n }, (_, i) => i / (n - 1));
  const y = x.map((v) => Math.sqrt(v));
  const keep = thinCurveIndices(x, y, 300);
  assert.ok(keep.length <= 300);
  assert.equal(keep[0], 0);
  assert.equal(keep[keep.length - 1], n - 1);
  for (let i = 1; i < keep.length; i++) assert.ok(keep[i] > keep[i - 1]);
  assert.equal(thinCurveIndices(x.subarray(0, 10), y.subarray(0, 10), 300).length, 10);
});

function syntheticCategory(): CategoryResult {
  const n = 6, size = 32, px = size * size;
  const r = rng(3);
  const labels = Uint8Array.from([0, 0, 0, 1, 1, 1]);
  const maps = Float32Array.from({ length: n * px }, () => r());
  const masks = new Uint8Array(n * px);
  for (let i = 3; i < n; i++) {
    for (let y = 8; y < 16; y++) {
      for (let x = 8; x < 16; x++) {
        masks[i * px + y * size + x] = 1;
        maps[i * px + y * size + x] += 1.5;
      }
    }
  }
  const imageScores = Float32Array.from({ length: n }, (_, i) => {
    let m = -Infinity;
    for (let p = 0; p < px; p++) m = Math.max(m, maps[i * px + p]);
    return m;
  });
  imageScores[0] = 3; // a confident false positive
  return {
    category: "toy",
    metrics: computeMetrics({
      imageScores,
      imageLabels: labels,
      pixelScores: maps,
      pixelMasks: masks,
      shape: [n, size, size],
    }),
    hasMasks: true,
    maskConventions: { "0/255": 3 },
    emptyMasks: [],
    ids: ["test/good/0", "test/good/1", "test/good/2", "test/cut/0", "test/cut/1", "test/cut/2"],
    labels,
    defectTypes: ["good", "good", "good", "cut", "cut", "cut"],
    paths: ["g0.png", "g1.png", "g2.png", "c0.png", "c1.png", "c2.png"],
    imageScores,
    maps,
    masks,
    rgb: Uint8Array.from({ length: n * px * 3 }, () => Math.floor(r() * 256)),
    size,
    seconds: { embedTest: 0, search: 0, maps: 0 },
  };
}

function syntheticResult(method = "bank"): EvalResult {
  const c = syntheticCategory();
  return {
    config: { data: "synthetic", imageSize: c.size, method },
    categories: [c],
    banks: [{
      name: "unified",
      T: 10,
      seconds: 0.1,
      meta: { numPatches: 100 } as EvalResult["banks"][number]["meta"],
    }],
    heads: [],
    adapter: "test",
    seconds: 1,
  };
}

Deno.test("rankExamples and categoryOverlayFigure pick and draw the worst cases", () => {
  const c = syntheticCategory();
  const r = rankExamples(c, 2);
  assert.deepEqual(r.falsePositives[0], 0, "highest-scoring good image first");
  for (const i of r.falsePositives) assert.equal(c.labels[i], 0);
  for (const i of r.falseNegatives) assert.equal(c.labels[i], 1);
  assert.ok(c.imageScores[r.falseNegatives[0]] <= c.imageScores[r.falseNegatives[1]]);
  assert.ok(c.imageScores[r.truePositives[0]] >= c.imageScores[r.truePositives[1]]);
  const fig = categoryOverlayFigure(c, 4);
  assertFigure(fig);
  assert.deepEqual(fig.data.map((t) => t.type), ["image", "heatmap", "contour"]);
  assert.deepEqual(zShape(fig.data[1]), [c.size, c.size]);
  assert.equal(categoryOverlayFigure(c, 0).data.length, 2, "good image: no outline");
  assert.throws(() => categoryOverlayFigure(c, 6), RangeError);
});

Deno.test("Jupyter display: plotly JSON + HTML fallback, tables and results as HTML", () => {
  const fig = rocFigure(rocCurve([0.1, 0.9, 0.4], [0, 1, 1]));
  const bundle = (fig as unknown as Record<symbol, () => Record<string, unknown>>)
    [JUPYTER_DISPLAY]();
  const plotly = bundle[PLOTLY_MIME] as PlotlyFigure;
  assert.deepEqual(plotly.data, fig.data);
  assert.deepEqual(plotly.layout, fig.layout);
  assert.match(String(bundle["text/html"]), /<div id="snarm-plot-[^"]+"[\s\S]*Plotly\.newPlot/);
  assert.doesNotMatch(String(bundle["text/html"]), /<\/script>[\s\S]*<\/script>[\s\S]*<\/script>/);
  assert.match(String(bundle["text/plain"]), /ROC curve/);
  assert.ok(!JSON.stringify(fig).includes("Jupyter"), "the display method is not serialised");

  const table = metricsTable([{ category: "toy", image_auroc: 0.5, aupro: NaN }]);
  const tb = displayBundle(table);
  assert.match(String(tb["text/html"]), /<th>I-AUROC<\/th>/);
  assert.match(String(tb["text/html"]), /50\.00/);
  assert.match(String(tb["text/html"]), /n\/a/);
  enableJupyterDisplay();
  enableJupyterDisplay(); // idempotent
  assert.equal(typeof (table as unknown as Record<symbol, unknown>)[JUPYTER_DISPLAY], "function");

  const res = displayBundle(view(syntheticResult()));
  assert.match(String(res["text/html"]), /toy/);
  assert.match(String(res["text/html"]), /I-AUROC/);
  const cat = displayBundle(syntheticCategory());
  assert.match(String(cat["text/html"]), /6 test images \(3 good, 3 defective\)/);
  const rec = displayBundle(recordsView([{ a: 1, b: "x<y" }], "cap"));
  assert.match(String(rec["text/html"]), /x&lt;y/);
  assert.throws(() => displayBundle(42), /expected a plotly figure/);
});

Deno.test({
  name:
    "static export: PNG of the requested size, not blank; SVG; Plotly.validate accepts every figure",
  ...exportTest,
  async fn() {
    const c = syntheticCategory();
    const roc = rocCurve(c.imageScores, c.labels);
    const figs: PlotlyFigure[] = [
      anomalyOverlayFigure(rgb, map, { width: S, mask }),
      patchMapFigure(wp2.subarray(0, L), h, w, { rgb, imageSize: S, contourAt: 0.5 }),
      selfReferenceFigure(wp2, h, w, { ratio: 0.5, rgb, imageSize: S }),
      selfReferenceFigure(wp2, h, w, { ratio: 0.75 }),
      selectionRatioFigure(wp2, h, w, { ratios: [0.5] }),
      headMapsFigure(Float32Array.from({ length: 8 * L }, () => rand()), { nHeads: 8, B: 1, h, w }),
      scoreHistogramFigure(c.imageScores, c.labels),
      rocFigure(roc),
      prFigure(prCurve(c.imageScores, c.labels)),
      proFigure(proCurve(c.maps, c.masks, [6, c.size, c.size])),
      bankDistanceHistogramFigure(Float32Array.from({ length: 50 }, () => rand())),
      categoryOverlayFigure(c, 4),
    ];
    const problems = await validateFigures(figs);
    assert.equal(problems.length, figs.length);
    problems.forEach((p, i) => assert.deepEqual(p, [], `figure ${i}: ${p.join("; ")}`));

    const [png, svg] = await renderFigures([
      { figure: figs[0], format: "png", width: 640, height: 400 },
      { figure: figs[7], format: "svg", width: 500, height: 300 },
    ]);
    const img = decode(png);
    assert.equal(img.width, 640);
    assert.equal(img.height, 400);
    const ch = img.channels;
    const colours = new Set<number>();
    let nonWhite = 0;
    for (let p = 0; p < img.width * img.height; p++) {
      const r = img.data[p * ch], g = img.data[p * ch + 1], b = img.data[p * ch + 2];
      colours.add((r << 16) | (g << 8) | b);
      if (r < 240 || g < 240 || b < 240) nonWhite++;
    }
    assert.ok(colours.size > 100, `${colours.size} distinct colours`);
    assert.ok(nonWhite > 0.1 * img.width * img.height, `${nonWhite} non-white pixels`);
    const svgText = new TextDecoder().decode(svg);
    assert.match(svgText, /^<svg[^>]*width="500"[^>]*height="300"/);
    assert.match(svgText, /false positive rate/);
  },
});

Deno.test({
  name: "writeReport writes report.html, plotly.min.js and the figure PNGs",
  ...exportTest,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "snarm-viz-test-" });
    try {
      const files = await writeReport(dir, syntheticResult(), { overlays: 3, requirePng: true });
      const html = await Deno.readTextFile(files.html);
      assert.match(html, /<script src="plotly\.min\.js"><\/script>/);
      assert.match(html, /<h2 id="toy">toy<\/h2>/);
      assert.equal((html.match(/Plotly\.newPlot/g) ?? []).length, 4 + 3, "4 charts + 3 overlays");
      assert.ok((await Deno.stat(join(dir, "plotly.min.js"))).size > 1_000_000);
      assert.equal(files.pngs.length, 7);
      for (const p of files.pngs) {
        const img = decode(await Deno.readFile(p));
        assert.ok(img.width >= 600 && img.height >= 450, `${p}: ${img.width}×${img.height}`);
      }
      assert.deepEqual(files.warnings, []);
      // every PNG the page links exists
      const links = [...html.matchAll(/href="([^"]+\.png)"/g)].map((m) => m[1]);
      assert.equal(links.length, 7);
      for (const l of links) await Deno.stat(join(dir, l));
      assert.match(html, /Bank-only scoring \(inter-residual norm\)/);
      // A SNARM run states the method and the head used, not "bank-only".
      const snarm = syntheticResult("snarm");
      snarm.heads = [{
        scope: "unified",
        path: "/cache/fit-x/head.safetensors",
        fitted: true,
        cached: false,
        seconds: 1,
        blend: { lambda: 0.5, headMean: 0, headStd: 1, bankMean: 0, bankStd: 1 },
        fit: null,
      }];
      const f2 = await writeReport(join(dir, "snarm"), snarm, { overlays: 0, png: false });
      const h2 = await Deno.readTextFile(f2.html);
      assert.doesNotMatch(h2, /href="[^"]+\.png"/, "no PNG written, none linked");
      assert.doesNotMatch(h2, /Bank-only/);
      assert.match(
        h2,
        /SNARM scoring, head unified: \/cache\/fit-x\/head\.safetensors \(fitted on this data(&#39;|')s training images, blended with the bank map, λ = 0\.5\)/,
      );
      // categories whose file-safe names coincide get distinct folders and anchors
      const two = syntheticResult();
      two.categories = [
        { ...two.categories[0], category: "螺丝" },
        { ...two.categories[0], category: "螺母" },
      ];
      const f3 = await writeReport(join(dir, "two"), two, { overlays: 1, png: false });
      const h3 = await Deno.readTextFile(f3.html);
      assert.match(h3, /<h2 id="_">螺丝<\/h2>/);
      assert.match(h3, /<h2 id="_-2">螺母<\/h2>/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

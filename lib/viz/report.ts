/**
 * The HTML evaluation report (`deno task eval --report`): one self-contained folder with
 * `report.html` (interactive plotly figures: metrics table, per-category score histograms, ROC / PR
 * / PRO curves, anomaly overlays of the worst false positives, worst false negatives and best
 * detections), a copy of `plotly.min.js` so it opens offline, and PNGs of every figure
 * (`figures/<category>/…png`, via headless Chromium).
 * @module
 */
import { basename, join, relative } from "node:path";
import type { CategoryResult, EvalResult } from "../eval/run.ts";
import { prCurve, proCurve, rocCurve } from "../metrics/curves.ts";
import { writeFileAtomic } from "../io/safetensors.ts";
import type { PlotlyFigure } from "./figure.ts";
import { finiteRange } from "./figure.ts";
import { evalResultHtml, figureHtml, scoringSummary } from "./jupyter.ts";
import { categoryOverlayFigure } from "./maps.ts";
import { prFigure, proFigure, rocFigure, scoreHistogramFigure } from "./charts.ts";
import { type ExportTools, findPlotlyJs, saveFigures } from "./export.ts";

/** Image indices of a category ranked for inspection (by image score, no threshold needed). */
export interface RankedExamples {
  /** Good images with the highest scores (the worst false positives first). */
  falsePositives: number[];
  /** Defective images with the lowest scores (the worst false negatives first). */
  falseNegatives: number[];
  /** Defective images with the highest scores (the clearest detections first). */
  truePositives: number[];
}

/**
 * Rank a category's test images for inspection: the `n` highest-scoring good images (likely false
 * positives), the `n` lowest-scoring defective ones (likely false negatives) and the `n`
 * highest-scoring defective ones.
 */
export function rankExamples(
  c: Pick<CategoryResult, "imageScores" | "labels">,
  n = 4,
): RankedExamples {
  const idx = Array.from(c.imageScores, (_, i) => i);
  const good = idx.filter((i) => !c.labels[i]).sort((a, b) => c.imageScores[b] - c.imageScores[a]);
  const bad = idx.filter((i) => c.labels[i]).sort((a, b) => c.imageScores[a] - c.imageScores[b]);
  return {
    falsePositives: good.slice(0, n),
    falseNegatives: bad.slice(0, n),
    truePositives: bad.slice(-n).reverse(),
  };
}

/** Options of {@link writeReport}. */
export interface ReportOptions {
  /** Overlays per category (default 12: a third each of worst FP, worst FN, best detections). */
  overlays?: number;
  /**
   * Write PNGs of the figures (default true). When Chromium or plotly.js is missing the PNGs are
   * skipped with a warning, unless `requirePng` is set.
   */
  png?: boolean;
  /** Fail instead of skipping PNGs when the static export is unavailable (default false). */
  requirePng?: boolean;
  /** Report title (default "snarm evaluation report"). */
  title?: string;
  /** Chromium / plotly.js locations for the PNGs and the copied plotly.min.js. */
  tools?: ExportTools;
}

/** What {@link writeReport} wrote. */
export interface ReportFiles {
  /** Path of report.html. */
  html: string;
  /** PNG paths (empty when the PNGs were skipped). */
  pngs: string[];
  /** The copied plotly.min.js, or null when it was not found (the report then loads the CDN). */
  plotlyJs: string | null;
  /** Warnings (e.g. PNGs skipped). */
  warnings: string[];
}

function esc(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

function safeName(s: string): string {
  return s.replace(/^test\//, "").replace(/[^A-Za-z0-9._-]+/g, "_");
}

/**
 * File-safe names that stay distinct: `螺丝` and `螺母` both clean to `_`, so a name already
 * given to another original gets `-2`, `-3`, … (in the order asked, so the same run names the
 * same way).
 */
function uniqueNamer(): (original: string) => string {
  const byOriginal = new Map<string, string>(), used = new Set<string>();
  return (original) => {
    let name = byOriginal.get(original);
    if (name === undefined) {
      const base = safeName(original);
      name = base;
      for (let k = 2; used.has(name); k++) name = `${base}-${k}`;
      used.add(name);
      byOriginal.set(original, name);
    }
    return name;
  };
}

interface ReportFigure {
  figure: PlotlyFigure;
  png: string; // relative path
  caption: string;
  width: number;
  height: number;
}

function categoryFigures(c: CategoryResult, nOverlays: number, folder: string): ReportFigure[] {
  const dir = `figures/${folder}`;
  const overlayName = uniqueNamer();
  const out: ReportFigure[] = [];
  const nDef = c.labels.reduce((a, b) => a + b, 0);
  const hasBoth = nDef > 0 && nDef < c.labels.length;
  out.push({
    figure: scoreHistogramFigure(c.imageScores, c.labels, {
      title: `${c.category}: image scores, good vs defective`,
    }),
    png: `${dir}/scores.png`,
    caption: "image-score histogram",
    width: 700,
    height: 450,
  });
  if (hasBoth) {
    out.push({
      figure: rocFigure([{
        name: c.category,
        curve: rocCurve(c.imageScores, c.labels),
        area: c.metrics.image_auroc,
      }], { title: `${c.category}: image-level ROC` }),
      png: `${dir}/roc.png`,
      caption: "image-level ROC",
      width: 600,
      height: 520,
    });
    out.push({
      figure: prFigure([{
        name: c.category,
        curve: prCurve(c.imageScores, c.labels),
        area: c.metrics.image_ap,
      }], { title: `${c.category}: image-level precision-recall` }),
      png: `${dir}/pr.png`,
      caption: "image-level precision-recall",
      width: 600,
      height: 520,
    });
  }
  if (c.hasMasks && nDef > 0) {
    out.push({
      figure: proFigure([{
        name: c.category,
        curve: proCurve(c.maps, c.masks, [c.labels.length, c.size, c.size]),
        area: c.metrics.aupro,
      }], { title: `${c.category}: PRO curve (pixel level)` }),
      png: `${dir}/pro.png`,
      caption: "PRO curve",
      width: 600,
      height: 520,
    });
  }
  const per = Math.max(1, Math.ceil(nOverlays / 3));
  const ranked = rankExamples(c, per);
  const picks: Array<[number, string]> = [];
  const seen = new Set<number>();
  const add = (list: number[], kind: string) => {
    for (const i of list) {
      if (picks.length >= nOverlays || seen.has(i)) continue;
      seen.add(i);
      picks.push([i, kind]);
    }
  };
  add(ranked.falsePositives, "highest-scoring good image (worst false positive)");
  add(ranked.falseNegatives, "lowest-scoring defective image (worst false negative)");
  add(ranked.truePositives, "highest-scoring defective image (clearest detection)");
  const [zmin, zmax] = finiteRange(c.maps);
  for (const [i, kind] of picks) {
    out.push({
      figure: categoryOverlayFigure(c, i, { zmin, zmax }),
      png: `${dir}/overlay_${overlayName(c.ids[i])}.png`,
      caption: kind,
      width: 640,
      height: 600,
    });
  }
  return out;
}

const STYLE = `body{font-family:system-ui,sans-serif;margin:24px;max-width:1400px}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 8px}
caption{caption-side:bottom;font-size:80%;color:#555}
.grid{display:flex;flex-wrap:wrap;gap:12px}.cell{flex:1 1 560px;min-width:480px}
.cap{font-size:85%;color:#444}`;

/**
 * Write the HTML report of an evaluation into `outDir` (created if needed; files written
 * atomically): `report.html`, `plotly.min.js` (copied when found, else the page loads the plotly CDN)
 * and `figures/<category>/{scores,roc,pr,pro,overlay_<id>}.png`.
 * @param result the value of `runEval` (maps, masks and RGB crops are used for the overlays).
 * @returns the written paths and any warnings.
 * @throws {FigureExportError} only with `requirePng` when the static export is unavailable or fails.
 */
export async function writeReport(
  outDir: string,
  result: EvalResult,
  opts: ReportOptions = {},
): Promise<ReportFiles> {
  const warnings: string[] = [];
  await Deno.mkdir(outDir, { recursive: true });
  let plotlyJs: string | null = null;
  let plotlySrc: string;
  try {
    const src = findPlotlyJs(opts.tools?.plotlyJs);
    plotlyJs = join(outDir, "plotly.min.js");
    await writeFileAtomic(plotlyJs, await Deno.readFile(src));
    plotlySrc = basename(plotlyJs);
  } catch (e) {
    warnings.push(`report: ${(e as Error).message}; the report loads plotly.js from the CDN`);
    plotlySrc = "https://cdn.plot.ly/plotly-4.1.2.min.js";
  }
  const nOverlays = opts.overlays ?? 12;
  const folderOf = uniqueNamer();
  const perCategory = result.categories.map((c) => {
    const folder = folderOf(c.category);
    return { c, folder, figs: categoryFigures(c, nOverlays, folder) };
  });
  const all = perCategory.flatMap((p) => p.figs);
  // The PNGs first: the page links only those that were written.
  let pngs: string[] = [];
  if (opts.png ?? true) {
    try {
      pngs = await saveFigures(
        all.map((f) => ({
          figure: f.figure,
          path: join(outDir, f.png),
          width: f.width,
          height: f.height,
        })),
        opts.tools,
      );
    } catch (e) {
      if (opts.requirePng) throw e;
      warnings.push(`report: PNGs skipped: ${(e as Error).message}`);
    }
  }
  const written = new Set(pngs.map((p) => relative(outDir, p)));
  const sections: string[] = [];
  for (const { c, folder, figs } of perCategory) {
    const charts = figs.filter((f) => !f.png.includes("/overlay_"));
    const overlays = figs.filter((f) => f.png.includes("/overlay_"));
    const cell = (f: ReportFigure) =>
      `<div class="cell">${figureHtml(f.figure, { src: plotlySrc, height: f.height })}
<div class="cap">${esc(f.caption)}${
        written.has(f.png) ? ` — <a href="${f.png}">PNG</a>` : ""
      }</div></div>`;
    const nDef = c.labels.reduce((a, b) => a + b, 0);
    sections.push(`<h2 id="${esc(folder)}">${esc(c.category)}</h2>
<p>${c.ids.length} test images (${
      c.ids.length - nDef
    } good, ${nDef} defective); maps ${c.size}×${c.size}${
      c.hasMasks ? "" : "; no ground-truth masks (pixel metrics undefined)"
    }.</p>
<div class="grid">${charts.map(cell).join("\n")}</div>
<h3>anomaly overlays</h3><p>Colour range shared by all images of the category; white outline = ground truth.</p>
<div class="grid">${overlays.map(cell).join("\n")}</div>`);
  }
  const title = opts.title ?? "snarm evaluation report";
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>${STYLE}</style><script src="${plotlySrc}"></script></head><body>
<h1>${esc(title)}</h1>
<p>${esc(scoringSummary(result))} (see configuration below).</p>
${evalResultHtml(result)}
${sections.join("\n")}
</body></html>`;
  const htmlPath = join(outDir, "report.html");
  await writeFileAtomic(htmlPath, html);
  for (const w of warnings) console.warn(`snarm ${w}`);
  return { html: htmlPath, pngs, plotlyJs, warnings };
}

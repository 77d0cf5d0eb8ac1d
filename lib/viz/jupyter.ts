/**
 * Jupyter display for the Deno kernel: figures, arquero tables and evaluation results draw
 * themselves when they end a notebook cell. The kernel calls an object's
 * `Symbol.for("Jupyter.display")` method and shows the MIME bundle it returns
 * (environment.md §6): figures give `application/vnd.plotly.v1+json` (rendered by JupyterLab /
 * VS Code) with a `text/html` fallback that draws with plotly.js from the page or the plotly CDN,
 * tables and results give `text/html`; every bundle also has `text/plain`.
 * @module
 */
// Full npm: specifier so the toolkit also works when imported by URL (project rule).
// deno-lint-ignore no-import-prefix
import * as aq from "npm:arquero@8.0.3";
import type { CategoryResult, EvalResult } from "../eval/run.ts";
import { blendLabel } from "../eval/blend.ts";
import { METRIC_KEYS } from "../metrics/compute.ts";
import { METRIC_LABELS, type MetricsTable, metricsTable } from "../metrics/table.ts";
import type { PlotlyFigure, PlotlyLayout, PlotlyTrace } from "./figure.ts";

/** The symbol the Deno Jupyter kernel looks up on a cell's result. */
export const JUPYTER_DISPLAY: unique symbol = Symbol.for("Jupyter.display") as never;

/** A Jupyter MIME bundle: MIME type → data (string, or a JSON object for JSON types). */
export type MimeBundle = Record<string, unknown>;

/** An object that displays itself in a Deno notebook. */
export interface Displayable {
  [JUPYTER_DISPLAY](): MimeBundle;
}

/** The plotly.js version of `npm:plotly.js-dist-min` the toolkit renders with. */
export const PLOTLY_VERSION = "4.1.2";

/** MIME type of plotly figure JSON (JupyterLab's plotly renderer). */
export const PLOTLY_MIME = "application/vnd.plotly.v1+json";

function escapeHtml(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}

/** JSON for embedding inside an HTML `<script>` (no `</script>` or `<!--` can appear). */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replaceAll("<", "\\u003c").replaceAll("\u2028", "\\u2028")
    .replaceAll("\u2029", "\\u2029");
}

let divCounter = 0;

/**
 * HTML that draws a figure: a `<div>` and a script that uses `window.Plotly` when the page has it
 * and otherwise loads plotly.js `PLOTLY_VERSION` from `src` (default: the plotly CDN).
 * @param src URL of plotly.min.js, e.g. a file copied next to a report.
 */
export function figureHtml(
  fig: PlotlyFigure,
  opts: { src?: string; height?: number; id?: string } = {},
): string {
  const id = opts.id ?? `snarm-plot-${Date.now().toString(36)}-${divCounter++}`;
  const src = opts.src ?? `https://cdn.plot.ly/plotly-${PLOTLY_VERSION}.min.js`;
  const h = opts.height ?? ((fig.layout.height as number | undefined) ?? 450);
  const payload = scriptJson({ data: fig.data, layout: fig.layout, config: fig.config ?? {} });
  return `<div id="${id}" style="width:100%;height:${h}px"></div>
<script>(function(){var f=${payload};function draw(){window.Plotly.newPlot(${
    JSON.stringify(id)
  },f.data,f.layout,f.config);}
if(window.Plotly){draw();}else{var s=document.createElement("script");s.src=${
    JSON.stringify(src)
  };s.onload=draw;document.head.appendChild(s);}})();</script>`;
}

/** One-line text summary of a figure (its title and trace types). */
export function figureSummary(fig: PlotlyFigure): string {
  const t = fig.layout.title as { text?: string } | string | undefined;
  const title = typeof t === "string" ? t : t?.text ?? "figure";
  return `plotly figure "${title.replace(/<br\s*\/?>/g, " — ").replace(/<[^>]*>/g, "")}" (${
    fig.data.map((d) => d.type).join(", ")
  })`;
}

/** The MIME bundle of a figure: plotly JSON, the HTML fallback and a text line. */
export function figureBundle(fig: PlotlyFigure): MimeBundle {
  return {
    [PLOTLY_MIME]: { data: fig.data, layout: fig.layout, config: fig.config ?? {} },
    "text/html": figureHtml(fig),
    "text/plain": figureSummary(fig),
  };
}

/**
 * Make a figure from traces and a layout, with the Jupyter display method attached
 * (non-enumerable, so `JSON.stringify(fig)` is the plain plotly JSON).
 */
export function makeFigure(data: PlotlyTrace[], layout: PlotlyLayout): PlotlyFigure {
  const fig: PlotlyFigure = { data, layout, config: { responsive: true } };
  return attachDisplay(fig, () => figureBundle(fig));
}

/** Attach a non-enumerable `Symbol.for("Jupyter.display")` method to `obj` and return it. */
export function attachDisplay<T extends object>(obj: T, bundle: () => MimeBundle): T & Displayable {
  Object.defineProperty(obj, JUPYTER_DISPLAY, {
    value: bundle,
    enumerable: false,
    configurable: true,
    writable: true,
  });
  return obj as T & Displayable;
}

function isFigure(x: unknown): x is PlotlyFigure {
  return typeof x === "object" && x !== null && Array.isArray((x as PlotlyFigure).data) &&
    typeof (x as PlotlyFigure).layout === "object";
}

function isTable(x: unknown): x is MetricsTable {
  return typeof x === "object" && x !== null &&
    typeof (x as MetricsTable).toHTML === "function" &&
    typeof (x as MetricsTable).columnNames === "function";
}

function isEvalResult(x: unknown): x is EvalResult {
  return typeof x === "object" && x !== null && Array.isArray((x as EvalResult).categories) &&
    typeof (x as EvalResult).config === "object" && "adapter" in x;
}

function isCategoryResult(x: unknown): x is CategoryResult {
  return typeof x === "object" && x !== null &&
    typeof (x as CategoryResult).category === "string" &&
    (x as CategoryResult).maps instanceof Float32Array;
}

function fmtMetric(v: unknown, style: "percent" | "fraction"): string {
  if (typeof v !== "number") return escapeHtml(String(v));
  if (Number.isNaN(v)) return "n/a";
  return style === "percent" ? (100 * v).toFixed(2) : v.toFixed(4);
}

/**
 * An arquero table as an HTML `<table>`. Metric columns (the keys of `METRIC_LABELS`) get their
 * short headers and are shown in percent (2 decimals) unless `style` is `"fraction"`; NaN is `n/a`.
 * @param opts.limit rows shown (default 100; the rest is summarised in a caption).
 */
export function tableHtml(
  table: MetricsTable,
  opts: { style?: "percent" | "fraction"; limit?: number; caption?: string } = {},
): string {
  const style = opts.style ?? "percent";
  const limit = opts.limit ?? 100;
  const names = table.columnNames();
  const n = table.numRows();
  const head = names.map((c) => `<th>${escapeHtml(METRIC_LABELS[c] ?? c)}</th>`).join("");
  const rows: string[] = [];
  for (let r = 0; r < Math.min(n, limit); r++) {
    rows.push(
      "<tr>" + names.map((c) => {
        const v = table.get(c, r);
        const isMetric = c in METRIC_LABELS;
        const txt = isMetric
          ? fmtMetric(v, style)
          : typeof v === "number"
          ? String(Number(v.toPrecision(6)))
          : escapeHtml(String(v));
        return `<td style="text-align:${typeof v === "number" ? "right" : "left"}">${txt}</td>`;
      }).join("") + "</tr>",
    );
  }
  const cap = [
    opts.caption ? escapeHtml(opts.caption) : "",
    n > limit ? `${limit} of ${n} rows` : "",
    names.some((c) => c in METRIC_LABELS) && style === "percent" ? "metrics in %" : "",
  ].filter(Boolean).join("; ");
  return `<table class="snarm-table">${
    cap ? `<caption>${cap}</caption>` : ""
  }<thead><tr>${head}</tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

/** A plain-text rendering of a table (first 20 rows). */
function tableText(table: MetricsTable): string {
  const names = table.columnNames();
  const lines = [names.join("\t")];
  for (let r = 0; r < Math.min(table.numRows(), 20); r++) {
    lines.push(names.map((c) => String(table.get(c, r))).join("\t"));
  }
  return lines.join("\n");
}

/** The per-category metrics table of an evaluation result (with the `mean` row). */
export function resultTable(result: EvalResult): MetricsTable {
  return metricsTable(result.categories.map((c) => ({ category: c.category, ...c.metrics })));
}

function configHtml(config: Record<string, unknown>): string {
  const rows = Object.entries(config).map(([k, v]) =>
    `<tr><th style="text-align:left">${escapeHtml(k)}</th><td style="text-align:left">${
      escapeHtml(typeof v === "string" ? v : JSON.stringify(v))
    }</td></tr>`
  );
  return `<table class="snarm-config">${rows.join("")}</table>`;
}

/** HTML summary of an evaluation result: metrics table, banks, timings and configuration. */
/**
 * One line saying how a run scored: bank-only, or SNARM with which head (fitted on the data or
 * given with --head) and the head/bank blend λ.
 */
export function scoringSummary(result: EvalResult): string {
  if (result.config.method !== "snarm") return "Bank-only scoring (inter-residual norm)";
  const heads = result.heads.map((h) =>
    `${h.scope}: ${h.path} (${
      h.fitted ? "fitted on this data's training images" : "given explicitly"
    }${h.blend ? `, blended with the bank map, ${blendLabel(h.blend)}` : ""})`
  );
  return `SNARM scoring, head ${heads.join("; ")}`;
}

export function evalResultHtml(result: EvalResult): string {
  const banks = result.banks.map((b) =>
    `<li>${escapeHtml(b.name)}: T = ${b.T} entries from ${b.meta.numPatches} patches (${
      b.seconds.toFixed(1)
    } s)</li>`
  ).join("");
  const cats = result.categories.map((c) =>
    `<li>${escapeHtml(c.category)}: ${c.ids.length} test images, ${
      c.labels.reduce((a, b) => a + b, 0)
    } defective, maps ${c.size}×${c.size}${c.hasMasks ? "" : ", no masks"}</li>`
  ).join("");
  return `<div class="snarm-result"><b>snarm evaluation</b> — ${result.categories.length} categories in ${
    result.seconds.toFixed(1)
  } s on ${escapeHtml(result.adapter)}
<p>${escapeHtml(scoringSummary(result))}</p>
${tableHtml(resultTable(result))}
<ul>${cats}</ul><b>banks</b><ul>${banks}</ul>
<details><summary>configuration</summary>${configHtml(result.config)}</details></div>`;
}

/** HTML summary of one category's result. */
export function categoryResultHtml(c: CategoryResult): string {
  const nDef = c.labels.reduce((a, b) => a + b, 0);
  const metrics = METRIC_KEYS.map((k) =>
    `<tr><th style="text-align:left">${METRIC_LABELS[k]}</th><td style="text-align:right">${
      fmtMetric(c.metrics[k], "percent")
    }</td></tr>`
  ).join("");
  return `<div class="snarm-category"><b>${
    escapeHtml(c.category)
  }</b>: ${c.ids.length} test images (${
    c.ids.length - nDef
  } good, ${nDef} defective), maps ${c.size}×${c.size}
<table class="snarm-table"><caption>metrics in %</caption>${metrics}</table></div>`;
}

/**
 * The MIME bundle of a figure, arquero table, {@link EvalResult} or {@link CategoryResult}.
 * @throws {Error} for any other value.
 */
export function displayBundle(x: unknown): MimeBundle {
  if (typeof x === "object" && x !== null && JUPYTER_DISPLAY in x) {
    return (x as Displayable)[JUPYTER_DISPLAY]();
  }
  if (isFigure(x)) return figureBundle(x);
  if (isTable(x)) return { "text/html": tableHtml(x), "text/plain": tableText(x) };
  if (isEvalResult(x)) {
    return {
      "text/html": evalResultHtml(x),
      "text/plain": `snarm evaluation: ${x.categories.map((c) => c.category).join(", ")}`,
    };
  }
  if (isCategoryResult(x)) {
    return { "text/html": categoryResultHtml(x), "text/plain": `snarm category ${x.category}` };
  }
  throw new Error(
    "display: expected a plotly figure, an arquero table, an EvalResult or a CategoryResult",
  );
}

/**
 * A wrapper that displays `x` (figure, arquero table, EvalResult, CategoryResult) when it ends a
 * notebook cell: `view(result)` shows the metrics table and summary instead of the raw object.
 */
export function view(x: unknown): Displayable {
  const bundle = displayBundle(x);
  return attachDisplay({}, () => bundle);
}

/**
 * Plain records (one object per row, same keys) as a table that displays itself as HTML; numbers
 * are shown with up to 6 significant digits.
 * @throws {Error} when `rows` is empty.
 */
export function recordsView(
  rows: Array<Record<string, string | number | boolean | null>>,
  caption?: string,
): Displayable {
  if (!rows.length) throw new Error("recordsView: no row given");
  const cols = Object.keys(rows[0]);
  const cell = (v: unknown) =>
    typeof v === "number"
      ? `<td style="text-align:right">${
        Number.isInteger(v) ? String(v) : Number.isNaN(v) ? "n/a" : String(Number(v.toPrecision(6)))
      }</td>`
      : `<td style="text-align:left">${escapeHtml(String(v))}</td>`;
  const html = `<table class="snarm-table">${
    caption ? `<caption>${escapeHtml(caption)}</caption>` : ""
  }<thead><tr>${cols.map((c) => `<th>${escapeHtml(c)}</th>`).join("")}</tr></thead><tbody>${
    rows.map((r) => "<tr>" + cols.map((c) => cell(r[c])).join("") + "</tr>").join("")
  }</tbody></table>`;
  const text = [cols.join("\t"), ...rows.map((r) => cols.map((c) => String(r[c])).join("\t"))]
    .join("\n");
  return attachDisplay({}, () => ({ "text/html": html, "text/plain": text }));
}

type JupyterNs = { display?: (b: MimeBundle, o: { raw: boolean }) => Promise<void> };

/**
 * Display `x` now (mid-cell) through `Deno.jupyter.display`; outside a notebook kernel print its
 * text/plain form instead.
 */
export async function show(x: unknown): Promise<void> {
  const bundle = displayBundle(x);
  // Under `deno run` merely reading Deno.jupyter throws ("only available in `deno jupyter`").
  let jup: JupyterNs | undefined;
  try {
    jup = (Deno as unknown as { jupyter?: JupyterNs }).jupyter;
  } catch {
    jup = undefined;
  }
  if (jup?.display) {
    await jup.display(bundle, { raw: true });
  } else {
    console.log(String(bundle["text/plain"] ?? ""));
  }
}

/**
 * Make every arquero table (e.g. `metricsTable(...)`) display as HTML when it ends a notebook cell,
 * by adding the display method to arquero's table prototype. Idempotent; call once per notebook.
 */
export function enableJupyterDisplay(): void {
  const proto = Object.getPrototypeOf(aq.table({ x: [] })) as object;
  if (Object.prototype.hasOwnProperty.call(proto, JUPYTER_DISPLAY)) return;
  Object.defineProperty(proto, JUPYTER_DISPLAY, {
    value: function (this: MetricsTable) {
      return { "text/html": tableHtml(this), "text/plain": tableText(this) };
    },
    enumerable: false,
    configurable: true,
    writable: true,
  });
}

/**
 * Static export of plotly figures (PNG, SVG) and figure validation, by rendering plotly.js in
 * headless Chromium (environment.md §7): plotly.js needs a DOM, so Deno writes an HTML page that
 * loads `plotly.min.js` (npm `plotly.js-dist-min`) from disk, calls `Plotly.toImage` /
 * `Plotly.validate` for every job, and reads the results back from `chromium --dump-dom`.
 * One Chromium run handles a whole batch.
 * @module
 */
import { dirname, join } from "node:path";
import { writeFileAtomic } from "../io/safetensors.ts";
import type { PlotlyFigure } from "./figure.ts";
import { PLOTLY_VERSION, scriptJson } from "./jupyter.ts";

/** Error of the static export (missing Chromium or plotly.js, a failed render). */
export class FigureExportError extends Error {
  /** Error name. */
  override name = "FigureExportError";
}

/** Where to find the tools; every field falls back to a search. */
export interface ExportTools {
  /** Path of the Chromium binary (else `$SNARM_CHROMIUM`, `$CHROME_PATH`, then PATH). */
  chromium?: string;
  /** Path of `plotly.min.js` (else `$SNARM_PLOTLY_JS`, then node_modules and the Deno npm cache). */
  plotlyJs?: string;
  /** Wall-clock limit of one Chromium run in ms (default 120 s + 3 s per job). */
  timeoutMs?: number;
}

function isFile(p: string): boolean {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

function listDir(p: string): string[] {
  try {
    return [...Deno.readDirSync(p)].map((e) => e.name);
  } catch {
    return [];
  }
}

/** node_modules folders to look in: next to this toolkit, then the cwd and its parents. */
function nodeModulesDirs(): string[] {
  const dirs: string[] = [];
  const here = new URL("../../node_modules", import.meta.url);
  if (here.protocol === "file:") dirs.push(decodeURIComponent(here.pathname));
  let d: string;
  try {
    d = Deno.cwd();
  } catch {
    return dirs;
  }
  for (;;) {
    dirs.push(join(d, "node_modules"));
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  return [...new Set(dirs)];
}

/** Deno's npm cache folder of `plotly.js-dist-min` (`$DENO_DIR` or the default cache location). */
function denoNpmCacheDirs(): string[] {
  const out: string[] = [];
  const denoDir = env("DENO_DIR");
  if (denoDir) out.push(join(denoDir, "npm/registry.npmjs.org/plotly.js-dist-min"));
  const xdg = env("XDG_CACHE_HOME");
  if (xdg) out.push(join(xdg, "deno/npm/registry.npmjs.org/plotly.js-dist-min"));
  const home = env("HOME");
  if (home) {
    out.push(join(home, ".cache/deno/npm/registry.npmjs.org/plotly.js-dist-min"));
    out.push(join(home, "Library/Caches/deno/npm/registry.npmjs.org/plotly.js-dist-min"));
  }
  return out;
}

/**
 * Locate `plotly.min.js`: the explicit path, `$SNARM_PLOTLY_JS`, `node_modules/plotly.js-dist-min`
 * (next to the toolkit, in the cwd or a parent, also inside `node_modules/.deno/`), then the Deno npm
 * cache (`deno cache npm:plotly.js-dist-min@4.1.2` puts it there; version `PLOTLY_VERSION` first).
 * @throws {FigureExportError} listing the places searched and how to install it.
 */
export function findPlotlyJs(explicit?: string): string {
  const tried: string[] = [];
  const check = (p: string | undefined) => {
    if (!p) return undefined;
    tried.push(p);
    return isFile(p) ? p : undefined;
  };
  const direct = explicit ?? env("SNARM_PLOTLY_JS");
  if (direct) {
    if (check(direct)) return direct;
    throw new FigureExportError(`plotly.js not found at ${direct} (plotlyJs / $SNARM_PLOTLY_JS)`);
  }
  for (const nm of nodeModulesDirs()) {
    const hit = check(join(nm, "plotly.js-dist-min/plotly.min.js"));
    if (hit) return hit;
    const dotDeno = join(nm, ".deno");
    const versions = listDir(dotDeno).filter((n) => n.startsWith("plotly.js-dist-min@")).sort()
      .reverse();
    for (const v of versions) {
      const p = check(join(dotDeno, v, "node_modules/plotly.js-dist-min/plotly.min.js"));
      if (p) return p;
    }
  }
  for (const cache of denoNpmCacheDirs()) {
    const versions = listDir(cache).sort().reverse();
    versions.sort((a, b) => (b === PLOTLY_VERSION ? 1 : 0) - (a === PLOTLY_VERSION ? 1 : 0));
    for (const v of versions) {
      const p = check(join(cache, v, "plotly.min.js"));
      if (p) return p;
    }
  }
  throw new FigureExportError(
    `plotly.js (npm plotly.js-dist-min ${PLOTLY_VERSION}) not found; looked in ${
      tried.slice(0, 6).join(", ")
    }${tried.length > 6 ? ", …" : ""}. Add "plotly.js-dist-min": "${PLOTLY_VERSION}" to ` +
      `package.json and run \`deno install\`, or run \`deno cache npm:plotly.js-dist-min@${PLOTLY_VERSION}\`, ` +
      `or set SNARM_PLOTLY_JS to plotly.min.js`,
  );
}

/**
 * Locate a Chromium/Chrome binary: the explicit path, `$SNARM_CHROMIUM`, `$CHROME_PATH`, then
 * `chromium`, `chromium-browser`, `google-chrome`, `google-chrome-stable` on PATH.
 * @throws {FigureExportError} naming the candidates and the Debian package to install.
 */
export function findChromium(explicit?: string): string {
  const direct = explicit ?? env("SNARM_CHROMIUM") ?? env("CHROME_PATH");
  if (direct) {
    if (isFile(direct)) return direct;
    throw new FigureExportError(`Chromium not found at ${direct} (chromium / $SNARM_CHROMIUM)`);
  }
  const names = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];
  const path = (env("PATH") ?? "/usr/bin:/bin").split(":").filter(Boolean);
  for (const n of names) {
    for (const d of path) {
      const p = join(d, n);
      if (isFile(p)) return p;
    }
  }
  throw new FigureExportError(
    `no Chromium found (tried ${names.join(", ")} on PATH, $SNARM_CHROMIUM, $CHROME_PATH); ` +
      "install it (Debian: apt-get install -y --no-install-recommends chromium) or set SNARM_CHROMIUM",
  );
}

/** True when both Chromium and plotly.js can be found (static export possible). */
export function canExportFigures(tools: ExportTools = {}): boolean {
  try {
    findChromium(tools.chromium);
    findPlotlyJs(tools.plotlyJs);
    return true;
  } catch {
    return false;
  }
}

/** One static-image job. */
export interface ImageJob {
  figure: PlotlyFigure;
  format: "png" | "svg";
  /** Image width in CSS px (default: the layout's width, else 800). */
  width?: number;
  /** Image height in CSS px (default: the layout's height, else 500). */
  height?: number;
  /** Pixel ratio of PNGs (default 1: the PNG is exactly width × height). */
  scale?: number;
}

type PageTask =
  | {
    kind: "image";
    data: unknown;
    layout: unknown;
    format: string;
    width: number;
    height: number;
    scale: number;
  }
  | { kind: "validate"; data: unknown; layout: unknown };

const PAGE_SCRIPT = `
(async () => {
  const out = [];
  for (const t of TASKS) {
    try {
      if (t.kind === "image") {
        out.push({ ok: await Plotly.toImage({ data: t.data, layout: t.layout },
          { format: t.format, width: t.width, height: t.height, scale: t.scale }) });
      } else {
        let errs;
        try {
          errs = Plotly.validate(t.data, t.layout) || [];
        } catch (e) {
          // plotly.js 4.1.2: validate throws on a layout.legend when no legend gets drawn;
          // validate the legend against a trace that shows one, and the rest without it.
          if (!t.layout || !t.layout.legend) throw e;
          const { legend, ...rest } = t.layout;
          errs = [...(Plotly.validate(t.data, rest) || []),
            ...(Plotly.validate([{ type: "scatter", x: [0], y: [0], showlegend: true }], { legend }) || [])];
        }
        out.push({ ok: errs.map((e) => e.msg) });
      }
    } catch (e) {
      out.push({ err: String(e && e.stack || e) });
    }
  }
  const pre = document.createElement("pre");
  pre.id = "snarm-out";
  pre.textContent = btoa(unescape(encodeURIComponent(JSON.stringify(out))));
  document.body.appendChild(pre);
})();`;

function decodeBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

async function runPage(tasks: PageTask[], tools: ExportTools): Promise<unknown[]> {
  if (tasks.length === 0) return [];
  const chromium = findChromium(tools.chromium);
  const plotly = findPlotlyJs(tools.plotlyJs);
  const dir = await Deno.makeTempDir({ prefix: "snarm-plot-" });
  try {
    const page = join(dir, "page.html");
    const plotlyUrl = new URL("file://" + encodeURI(plotly).replaceAll("#", "%23")).href;
    await Deno.writeTextFile(
      page,
      `<!doctype html><html><head><meta charset="utf-8"><script src="${plotlyUrl}"></script></head>` +
        `<body><script>const TASKS = ${scriptJson(tasks)};${PAGE_SCRIPT}</script></body></html>`,
    );
    const timeout = tools.timeoutMs ?? 120_000 + 3000 * tasks.length;
    const cmd = new Deno.Command(chromium, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        `--user-data-dir=${join(dir, "profile")}`,
        "--hide-scrollbars",
        "--dump-dom",
        `--virtual-time-budget=${Math.max(60_000, 5000 * tasks.length)}`,
        "file://" + encodeURI(page),
      ],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(timeout),
    });
    let res: Deno.CommandOutput;
    try {
      res = await cmd.output();
    } catch (e) {
      throw new FigureExportError(
        `${chromium} did not finish the plot page within ${timeout} ms: ${(e as Error).message}`,
      );
    }
    const dom = new TextDecoder().decode(res.stdout);
    const m = dom.match(/<pre id="snarm-out">([A-Za-z0-9+/=]*)<\/pre>/);
    if (!m) {
      const err = new TextDecoder().decode(res.stderr).split("\n").filter((l) =>
        l && !/dbus|bus\.cc|unexpected operator/i.test(l)
      ).slice(-8).join("\n");
      throw new FigureExportError(
        `${chromium} (exit ${res.code}) rendered no figure output from ${plotly}; stderr:\n${err}`,
      );
    }
    const json = new TextDecoder().decode(decodeBase64(m[1]));
    const out = JSON.parse(json) as Array<{ ok?: unknown; err?: string }>;
    return out.map((o, i) => {
      if (o.err !== undefined) {
        throw new FigureExportError(
          `plotly.js failed on figure ${i}: ${o.err.split("\n").slice(0, 3).join(" | ")}`,
        );
      }
      return o.ok;
    });
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function positiveSize(v: unknown, def: number, what: string): number {
  const n = typeof v === "number" ? v : def;
  if (!Number.isInteger(n) || n <= 0 || n > 10000) {
    throw new FigureExportError(`${what} must be an integer in 1..10000 px, got ${v}`);
  }
  return n;
}

/**
 * Render figures to PNG or SVG in one headless-Chromium run.
 * @returns per job, the PNG file bytes (RGBA, exactly width·scale × height·scale px) or the SVG
 *   document as UTF-8 bytes.
 * @throws {FigureExportError} when Chromium or plotly.js is missing, a size is invalid, or plotly.js
 *   fails on a figure (names its index).
 */
export async function renderFigures(
  jobs: ImageJob[],
  tools: ExportTools = {},
): Promise<Uint8Array[]> {
  const tasks: PageTask[] = jobs.map((j, i) => {
    if (j.format !== "png" && j.format !== "svg") {
      throw new FigureExportError(`figure ${i}: format must be "png" or "svg", got "${j.format}"`);
    }
    return {
      kind: "image",
      data: j.figure.data,
      layout: j.figure.layout,
      format: j.format,
      width: positiveSize(j.width ?? j.figure.layout.width, 800, `figure ${i} width`),
      height: positiveSize(j.height ?? j.figure.layout.height, 500, `figure ${i} height`),
      scale: j.scale ?? 1,
    };
  });
  const urls = await runPage(tasks, tools) as string[];
  return urls.map((u, i) => {
    const comma = u.indexOf(",");
    if (!u.startsWith("data:") || comma < 0) {
      throw new FigureExportError(`figure ${i}: plotly.js returned no data URL`);
    }
    const head = u.slice(0, comma);
    const body = u.slice(comma + 1);
    if (head.endsWith(";base64")) return decodeBase64(body);
    return new TextEncoder().encode(decodeURIComponent(body));
  });
}

/** Render one figure; see {@link renderFigures}. */
export async function renderFigure(
  figure: PlotlyFigure,
  opts: Omit<ImageJob, "figure"> & ExportTools,
): Promise<Uint8Array> {
  const [out] = await renderFigures([{ ...opts, figure }], opts);
  return out;
}

/** A figure and the file it goes to (`.png` or `.svg`, decided by the extension). */
export interface SaveJob extends Omit<ImageJob, "format"> {
  path: string;
}

/**
 * Render figures and write them (atomically) to `.png` / `.svg` files, in one Chromium run.
 * @throws {FigureExportError} for another extension, or as {@link renderFigures}.
 */
export async function saveFigures(jobs: SaveJob[], tools: ExportTools = {}): Promise<string[]> {
  const full: ImageJob[] = jobs.map((j) => {
    const ext = j.path.toLowerCase().match(/\.(png|svg)$/)?.[1];
    if (!ext) throw new FigureExportError(`${j.path}: expected a .png or .svg file name`);
    return { ...j, format: ext as "png" | "svg" };
  });
  const bytes = await renderFigures(full, tools);
  for (let i = 0; i < jobs.length; i++) {
    await Deno.mkdir(dirname(jobs[i].path), { recursive: true });
    await writeFileAtomic(jobs[i].path, bytes[i]);
  }
  return jobs.map((j) => j.path);
}

/** Render one figure to `path` (`.png` or `.svg`); see {@link saveFigures}. */
export async function saveFigure(
  path: string,
  figure: PlotlyFigure,
  opts: Omit<ImageJob, "figure" | "format"> & ExportTools = {},
): Promise<string> {
  await saveFigures([{ ...opts, path, figure }], opts);
  return path;
}

/**
 * Check figures against the plotly.js schema with `Plotly.validate` (in headless Chromium).
 * @returns per figure, the list of validation messages (empty = valid).
 * @throws {FigureExportError} when Chromium or plotly.js is missing.
 */
export async function validateFigures(
  figures: PlotlyFigure[],
  tools: ExportTools = {},
): Promise<string[][]> {
  return await runPage(
    figures.map((f) => ({ kind: "validate", data: f.data, layout: f.layout })),
    tools,
  ) as string[][];
}

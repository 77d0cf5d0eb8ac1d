/**
 * The page (web/index.html, served by `deno task serve`): load a bank, a head and the backbone,
 * drop images (or a folder with masks), see the overlay, the inter-residual norms, the
 * self-reference selection, per-image scores and, for a labelled folder, the metrics table. Also
 * the hooks `deno task browser-test` drives (`globalThis.snarm`).
 * @module
 */
/// <reference lib="dom" />
import { createScorer, type PageResult, type Scorer } from "./pipeline.ts";
import { runKernelCases } from "./kernel_cases.ts";
import { tryGetGpu } from "../lib/gpu/mod.ts";
import { encodeHeatmapOverlay } from "../lib/io/heatmap.ts";
import { patchMapFigure, selfReferenceFigure } from "../lib/viz/maps.ts";
import { computeMetrics, METRIC_KEYS } from "../lib/metrics/compute.ts";
import { blendLabel } from "../lib/eval/blend.ts";

(globalThis as { SNARM_ORT_WASM_PATHS?: string }).SNARM_ORT_WASM_PATHS =
  new URL("../node_modules/onnxruntime-web/dist/", import.meta.url).href;
const DEFAULT_MODEL = new URL("../data/models/mobilenetv2-12-int8.onnx", import.meta.url);

// deno-lint-ignore no-explicit-any
const Plotly = (globalThis as any).Plotly;
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function status(text: string, error = false) {
  const s = $("status");
  s.textContent = text;
  s.className = error ? "error" : "";
}

async function bytesOf(f: File | URL | string): Promise<Uint8Array> {
  if (f instanceof File) return new Uint8Array(await f.arrayBuffer());
  const r = await fetch(f);
  if (!r.ok) throw new Error(`${f}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

function fileOf(id: string): File | null {
  return $<HTMLInputElement>(id).files?.[0] ?? null;
}

let scorer: Scorer | null = null;
let scorerKey = "";

async function getScorer(): Promise<Scorer> {
  const bank = fileOf("bank");
  if (!bank) throw new Error("choose a bank file first (deno task eval --save-bank FILE)");
  const model = fileOf("model"), head = fileOf("head");
  // a rebuilt file of the same name and size differs in its modification time
  const key = [bank, model, head].map((f) => f ? `${f.name}:${f.size}:${f.lastModified}` : "-")
    .join("|");
  if (scorer && key === scorerKey) return scorer;
  status("loading the backbone, bank and head…");
  // the new scorer first: when it fails (a bad head), the previous one stays usable
  const next = await createScorer({
    model: await bytesOf(model ?? DEFAULT_MODEL),
    bank: await bytesOf(bank),
    head: head ? await bytesOf(head) : undefined,
  });
  await scorer?.release();
  scorer = next;
  scorerKey = key;
  return scorer;
}

/** A labelled folder: `<type>/<file>` images, `ground_truth/<type>/<stem>_mask.*` masks. */
function labelled(files: File[]) {
  const rel = (f: File) =>
    (f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name;
  const masks = new Map<string, File>();
  const images: Array<{ file: File; type: string; label: 0 | 1; mask?: File }> = [];
  // a category folder (MVTec layout) also holds its training images: only test/ is scored
  const hasTest = files.some((f) => rel(f).split("/").slice(0, -1).includes("test"));
  for (const f of files) {
    const parts = rel(f).split("/");
    if (!/\.(png|jpe?g)$/i.test(f.name)) continue;
    const gi = parts.indexOf("ground_truth");
    if (gi >= 0) {
      const stem = f.name.replace(/(_mask)?\.[^.]+$/i, "");
      masks.set(`${parts[gi + 1]}/${stem}`, f);
    }
  }
  for (const f of files) {
    const parts = rel(f).split("/");
    if (!/\.(png|jpe?g)$/i.test(f.name) || parts.includes("ground_truth")) continue;
    if (hasTest && !parts.slice(0, -1).includes("test")) continue;
    const type = parts.length > 1 ? parts[parts.length - 2] : "";
    const stem = f.name.replace(/\.[^.]+$/, "");
    images.push({
      file: f,
      type,
      label: type === "good" ? 0 : 1,
      mask: masks.get(`${type}/${stem}`),
    });
  }
  return images;
}

function show(r: PageResult, blend: string) {
  const row = document.createElement("div");
  row.className = "img";
  let lo = Infinity, hi = -Infinity;
  for (const v of r.map) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  const png = encodeHeatmapOverlay(r.rgb, r.map, {
    vmin: lo,
    vmax: hi,
    alpha: 0.5,
    width: r.size,
    height: r.size,
  });
  const img = document.createElement("img");
  img.src = URL.createObjectURL(new Blob([png as BlobPart], { type: "image/png" }));
  const cap = document.createElement("div");
  const esc = (t: string) => t.replace(/[&<>"]/g, (ch) => `&#${ch.charCodeAt(0)};`);
  cap.innerHTML = `<b>${esc(r.name)}</b><br>image score <b>${r.score.toFixed(4)}</b> ${blend}<br>` +
    `<small>embed ${r.seconds.embed.toFixed(2)} s, search ${r.seconds.search.toFixed(2)} s, maps ${
      r.seconds.maps.toFixed(2)
    } s</small>`;
  const left = document.createElement("div");
  left.append(img, cap);
  const norms = document.createElement("div");
  norms.className = "plot";
  const refs = document.createElement("div");
  refs.className = "plot";
  row.append(left, norms, refs);
  $("results").append(row);
  const fig = patchMapFigure(r.residualNorms, r.grid, r.grid, {
    title: "inter-residual ‖r‖ per patch",
  });
  const fit = (layout: object, w: number) => ({
    ...layout,
    width: w,
    height: 320,
    autosize: false,
  });
  Plotly?.newPlot(norms, fig.data, fit(fig.layout, 420), { displayModeBar: false });
  if (r.waypoint) {
    const sf = selfReferenceFigure(r.waypoint, r.grid, r.grid, {
      ratio: scorer!.head!.config.self_ratio,
      rgb: r.rgb,
      imageSize: r.size,
    });
    Plotly?.newPlot(refs, sf.data, fit(sf.layout, 460), { displayModeBar: false });
  } else {
    refs.textContent = "self-references: SNARM head only";
  }
}

async function run(files: File[]) {
  try {
    const s = await getScorer();
    const items = labelled(files);
    if (!items.length) throw new Error("no PNG/JPEG image among the files");
    $("results").replaceChildren();
    $("metrics").replaceChildren();
    const blend = s.head
      ? `(SNARM head${s.blend ? `, blended with the bank map, ${blendLabel(s.blend)}` : ""})`
      : "(bank-only)";
    const t0 = performance.now();
    // pixel metrics need every defect image's mask (a missing one is not an all-normal mask)
    const anyMask = items.some((i) => i.mask);
    const unmasked = items.filter((i) => i.label === 1 && !i.mask);
    const withMasks = anyMask && unmasked.length === 0;
    const size = s.geometry.crop, px = size * size;
    const maps = new Float32Array(items.length * px), masks = new Uint8Array(items.length * px);
    const scores = new Float32Array(items.length), labels = new Uint8Array(items.length);
    for (let i = 0; i < items.length; i++) {
      const it = items[i];
      const eta = i ? ((performance.now() - t0) / i) * (items.length - i) / 1000 : NaN;
      status(
        `scoring ${i + 1}/${items.length} ${it.file.name}${
          isNaN(eta) ? "" : `, ETA ${eta.toFixed(0)} s`
        } on ${s.adapter}`,
      );
      const r = await s.score(await bytesOf(it.file), it.file.name);
      show(r, blend);
      maps.set(r.map, i * px);
      scores[i] = r.score;
      labels[i] = it.label;
      if (it.mask) masks.set(s.mask(await bytesOf(it.mask), it.mask.name), i * px);
    }
    if (labels.some((l) => l === 1) && labels.some((l) => l === 0)) {
      const m = computeMetrics({
        imageScores: scores,
        imageLabels: labels,
        ...(withMasks
          ? { pixelScores: maps, pixelMasks: masks, shape: [items.length, size, size] }
          : {}),
      });
      $("metrics").innerHTML = `<table><tr>${
        METRIC_KEYS.map((k) => `<th>${k}</th>`).join("")
      }</tr><tr>${
        METRIC_KEYS.map((k) =>
          `<td class="num">${Number.isFinite(m[k]) ? (100 * m[k]).toFixed(2) : "n/a"}</td>`
        ).join("")
      }</tr></table>`;
    }
    status(
      `${items.length} images in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s on ${s.adapter}` +
        (anyMask && unmasked.length
          ? `; pixel metrics left out: no mask for ${unmasked.length} defect image(s), e.g. ` +
            unmasked[0].file.name
          : ""),
    );
  } catch (e) {
    status((e as Error).message, true);
  }
}

for (const id of ["images", "folder"]) {
  $<HTMLInputElement>(id).addEventListener("change", (ev) => {
    run([...((ev.target as HTMLInputElement).files ?? [])]);
  });
}
const drop = $("drop");
drop.addEventListener("dragover", (e) => e.preventDefault());
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  run([...(e.dataTransfer?.files ?? [])]);
});

/** Hooks for `deno task browser-test` (cli/browser_test.ts). */
const hooks = {
  async runKernelCases(filter?: string) {
    const gpu = await tryGetGpu();
    if (!gpu) throw new Error("no WebGPU adapter");
    const re = filter ? new RegExp(filter) : undefined;
    return { adapter: gpu.info.description, results: await runKernelCases(gpu, re) };
  },
  /** Score images given by URL with the given files (URLs); maps as base64 f32. */
  async scoreUrls(o: { model: string; bank: string; head?: string; images: string[] }) {
    const s = await createScorer({
      model: await bytesOf(o.model),
      bank: await bytesOf(o.bank),
      head: o.head ? await bytesOf(o.head) : undefined,
    });
    const out = [];
    scorer = s;
    for (const u of o.images) {
      const r = await s.score(await bytesOf(u), u.split("/").pop()!);
      const b = new Uint8Array(r.map.buffer, r.map.byteOffset, r.map.byteLength);
      let bin = "";
      for (let i = 0; i < b.length; i += 0x8000) {
        bin += String.fromCharCode(...b.subarray(i, i + 0x8000));
      }
      out.push({ name: r.name, score: r.score, map: btoa(bin), size: r.size });
      show(r, s.head ? "(SNARM head)" : "(bank-only)");
    }
    status(`${out.length} images scored on ${s.adapter}`);
    return out;
  },
};
(globalThis as { snarm?: typeof hooks }).snarm = hooks;

tryGetGpu().then((g) =>
  g ? status(`ready: WebGPU adapter ${g.info.description}. Choose a bank, then images.`) : status(
    "this browser offers no WebGPU adapter: use a recent Chrome/Edge (or chromium with " +
      "--enable-unsafe-webgpu)",
    true,
  )
);

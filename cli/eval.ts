/**
 * `deno task eval`: SNARM evaluation on real images (the shipped SNARM head by default,
 * bank-only scoring with `--method bank`). Prints the metrics table and writes `results.csv`,
 * `results.json` and anomaly-map PNGs (heat map over the image) to `--out`.
 * Everything is written to a staging folder first and moved into `--out` only when the run
 * succeeds, so a failed run leaves nothing half-written there.
 *
 * Options: --data --category --backbone --model --bank-size --bank-cap --image-size --out --seed
 * --per-category-bank --save-bank --load-bank --no-png --help
 * @module
 */
import { parseArgs } from "node:util";
import { dirname, join, resolve } from "node:path";
import { runEval } from "../lib/eval/run.ts";
import { encodeHeatmapOverlay } from "../lib/io/heatmap.ts";
import { formatTable, metricsTable } from "../lib/metrics/mod.ts";
import { METRIC_KEYS } from "../lib/metrics/compute.ts";
import { tryGetGpu } from "../lib/gpu/mod.ts";
import { writeReport } from "../lib/viz/report.ts";
import { readSafeTensors } from "../lib/io/safetensors.ts";

const DEFAULT_DATA = new URL("../data/hazelnut_toy", import.meta.url).pathname;
/** The shipped SNARM head (trained by the README's `deno task train` command). */
const DEFAULT_HEAD = new URL("../data/snarm_head.safetensors", import.meta.url).pathname;

/**
 * The scoring method and head: `--method` / `--head` as given; without them the shipped head
 * when it fits the backbone, feature dim and image size, else bank-only scoring (with a notice).
 */
async function chooseMethod(
  v: {
    method?: string;
    head?: string;
    backbone?: string;
    "feature-dim"?: string;
    "image-size"?: string;
  },
): Promise<{ method: "bank" | "snarm"; head?: string }> {
  if (v.method !== undefined && v.method !== "bank" && v.method !== "snarm") {
    throw new Error(`--method must be "bank" or "snarm", got "${v.method}"`);
  }
  if (v.method === "bank") {
    if (v.head !== undefined) console.error("snarm eval: --method bank ignores --head");
    return { method: "bank" };
  }
  const backbone = v.backbone ?? "mobilenetv2";
  const misfit = (meta: Record<string, string>): string[] => {
    const why: string[] = [];
    if (meta.backbone !== undefined && meta.backbone !== backbone) {
      why.push(`it was trained on ${meta.backbone}, not ${backbone}`);
    }
    const dim = v["feature-dim"] ?? (backbone === "mobilenetv2" ? "256" : undefined);
    if (
      meta.feature_dim !== undefined && dim !== undefined &&
      Number(meta.feature_dim) !== Number(dim)
    ) {
      why.push(`it expects ${meta.feature_dim}-d features, not ${Number(dim)}`);
    }
    const size = Number(v["image-size"] ?? "392");
    if (meta.image_size !== undefined && Number(meta.image_size) !== size) {
      why.push(`it was trained at ${meta.image_size}², not ${size}²`);
    }
    return why;
  };
  if (v.head !== undefined) {
    const head = userPath(v.head);
    let meta: Record<string, string> | null = null;
    try {
      meta = (await readSafeTensors(head)).metadata;
    } catch {
      meta = null; // loadHead reports the error with the file name
    }
    const why = meta ? misfit(meta) : [];
    if (why.length) console.error(`snarm eval: warning: --head ${head}: ${why.join("; ")}`);
    return { method: "snarm", head };
  }
  let meta: Record<string, string> | null = null;
  try {
    meta = (await readSafeTensors(DEFAULT_HEAD)).metadata;
  } catch {
    meta = null;
  }
  const why = meta ? misfit(meta) : [`no shipped head at ${DEFAULT_HEAD}`];
  if (!why.length) return { method: "snarm", head: DEFAULT_HEAD };
  if (v.method === "snarm") {
    throw new Error(
      `--method snarm: the shipped head does not fit (${why.join("; ")}); pass --head`,
    );
  }
  console.error(`snarm eval: bank-only scoring (shipped SNARM head not used: ${why.join("; ")})`);
  return { method: "bank" };
}

const HELP = `deno task eval [options]

SNARM evaluation: backbone patch features → memory bank (coreset, built on the fly) → exact
top-3 bank search (WebGPU) → inter-residual → anomaly maps (bank-only: residual norm; --method
snarm: the SNARM head) → Gaussian σ=4 → image score → the 7 metrics. Relative paths are resolved
from the folder you run the task in. SNARM_NO_GPU=1 forces the TypeScript reference path.

  --data DIR            dataset root in MVTec AD layout (default: embedded data/hazelnut_toy)
  --method bank|snarm   SNARM head (default: the shipped data/snarm_head.safetensors when it fits
                        the backbone, feature dim and image size) or bank-only scoring
  --head W.safetensors  SNARM head weights (official parameter names; in_chans = 2 × feature dim),
                        e.g. results/train/head.safetensors from deno task train
  --category NAME       evaluate only this category (repeatable; default: all)
  --backbone NAME       mobilenetv2 (embedded, default) | dinov2-vitb14-reg4 (needs --model)
  --model FILE.onnx     ONNX model for the backbone preset
  --feature-dim D       patch feature dimension (Aggregator width; default the preset's, 256)
  --bank-size T         bank size after the coreset (default 10000; official 100000)
  --bank-cap N          random cap of training patches before the coreset (default 200000)
  --image-size S        centre-crop / backbone input size, multiple of 8 (default 392)
  --per-category-bank   one bank per category instead of one unified bank
  --save-bank FILE      also save the bank(s) as safetensors (atomic)
  --load-bank FILE      use this bank instead of building one
  --out DIR             output folder (default results/)
  --seed N              seed of the random cap and coreset (default 0)
  --no-png              skip the anomaly-map PNGs
  --report              also write report/: report.html (interactive plots, metrics table,
                        per-image overlays), plotly.min.js, figures/*.png (PNGs need Chromium)
  -h, --help            this text
`;

function intOpt(v: string | undefined, name: string, def: number, min = 0): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new Error(
      `--${name} expects ${min > 0 ? "a positive" : "a non-negative"} integer, got "${v}"`,
    );
  }
  return n;
}

/** `deno task` runs in the project root; resolve user paths against the caller's folder. */
const CALLER_CWD = Deno.env.get("INIT_CWD") ?? Deno.cwd();
function userPath(p: string): string {
  return resolve(CALLER_CWD, p);
}

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      data: { type: "string" },
      method: { type: "string" },
      head: { type: "string" },
      category: { type: "string", multiple: true },
      backbone: { type: "string", default: "mobilenetv2" },
      model: { type: "string" },
      "bank-size": { type: "string" },
      "feature-dim": { type: "string" },
      "bank-cap": { type: "string" },
      "image-size": { type: "string" },
      "per-category-bank": { type: "boolean", default: false },
      "save-bank": { type: "string" },
      "load-bank": { type: "string" },
      out: { type: "string", default: "results" },
      seed: { type: "string" },
      "no-png": { type: "boolean", default: false },
      report: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    allowPositionals: false,
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const out = userPath(values.out!);
  const data = values.data === undefined ? DEFAULT_DATA : userPath(values.data);
  const saveBank = values["save-bank"] === undefined ? undefined : userPath(values["save-bank"]);
  const loadBank = values["load-bank"] === undefined ? undefined : userPath(values["load-bank"]);
  // Parse every number before any work, so a bad value fails at once with the flag's name.
  const numbers = {
    featureDim: values["feature-dim"] === undefined
      ? undefined
      : intOpt(values["feature-dim"], "feature-dim", 0, 1),
    bankSize: intOpt(values["bank-size"], "bank-size", 10_000, 1),
    bankCap: intOpt(values["bank-cap"], "bank-cap", 200_000, 1),
    imageSize: intOpt(values["image-size"], "image-size", 392, 1),
    seed: intOpt(values.seed, "seed", 0),
  };
  if (values.backbone === "dinov2-vitb14-reg4" && !values.model) {
    throw new Error("--backbone dinov2-vitb14-reg4 needs --model <your DINOv2 ONNX export>");
  }
  try {
    if (!Deno.statSync(out).isDirectory) throw new Error(`--out ${out} exists and is not a folder`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (saveBank) {
    try {
      if (!Deno.statSync(dirname(saveBank)).isDirectory) throw new Error("not a folder");
    } catch {
      throw new Error(`--save-bank ${saveBank}: its folder ${dirname(saveBank)} does not exist`);
    }
  }
  if (loadBank) {
    const ignored = ["bank-size", "bank-cap", "save-bank", "seed"].filter((k) =>
      values[k as keyof typeof values] !== undefined
    );
    if (ignored.length) {
      console.error(
        `snarm eval: --load-bank given, ignoring ${ignored.map((k) => `--${k}`).join(", ")}`,
      );
    }
  }
  const chosen = await chooseMethod(values);
  const gpu = await tryGetGpu();
  console.error(
    `snarm eval: data ${data}; ${
      chosen.method === "snarm" ? `SNARM head ${chosen.head}` : "bank-only scoring"
    }; adapter: ${gpu ? gpu.info.description : "none (TypeScript reference)"}`,
  );

  // Stage every output next to --out; move into place only on success.
  await Deno.mkdir(dirname(out), { recursive: true });
  const staging = `${out}.partial-${Deno.pid}`;
  await Deno.mkdir(staging, { recursive: true });
  const onSigint = () => {
    try {
      Deno.removeSync(staging, { recursive: true });
    } catch { /* already gone */ }
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSigint);
  Deno.addSignalListener("SIGTERM", onSigint);
  const staged: string[] = [];
  try {
    const result = await runEval({
      data,
      method: chosen.method,
      head: chosen.head,
      categories: values.category,
      backbone: values.backbone,
      model: values.model,
      ...numbers,
      unified: !values["per-category-bank"],
      loadBankPath: loadBank,
      saveBankPath: saveBank,
      onCategory: async (c) => {
        if (values["no-png"]) return;
        let lo = Infinity, hi = -Infinity;
        for (const v of c.maps) {
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
        const dir = join(staging, "maps", c.category);
        await Deno.mkdir(dir, { recursive: true });
        const px = c.size * c.size;
        for (let i = 0; i < c.ids.length; i++) {
          const png = encodeHeatmapOverlay(
            c.rgb.subarray(i * px * 3, (i + 1) * px * 3),
            c.maps.subarray(i * px, (i + 1) * px),
            { vmin: lo, vmax: hi, alpha: 0.5, width: c.size, height: c.size },
          );
          const name = c.ids[i].replace(/^test\//, "").replaceAll("/", "_") + ".png";
          await Deno.writeFile(join(dir, name), png);
        }
        staged.push(join("maps", c.category));
      },
    });
    const rows = result.categories.map((c) => ({ category: c.category, ...c.metrics }));
    const table = metricsTable(rows);
    console.log(formatTable(table));
    const json = {
      config: result.config,
      adapter: result.adapter,
      seconds: Number(result.seconds.toFixed(2)),
      banks: result.banks.map((b) => ({
        name: b.name,
        T: b.T,
        seconds: Number(b.seconds.toFixed(2)),
        numPatches: b.meta.numPatches,
        numCandidates: b.meta.numCandidates,
      })),
      categories: Object.fromEntries(result.categories.map((c) => [c.category, {
        ...Object.fromEntries(METRIC_KEYS.map((k) => [k, finiteOrNull(c.metrics[k])])),
        n_test: c.ids.length,
        n_defect: c.labels.reduce((a, b) => a + b, 0),
        has_masks: c.hasMasks,
        seconds: c.seconds,
      }])),
      mean: Object.fromEntries(METRIC_KEYS.map((k) => {
        const i = table.numRows() - 1;
        return [k, finiteOrNull(table.get(k, i) as number)];
      })),
    };
    await Deno.writeTextFile(join(staging, "results.json"), JSON.stringify(json, null, 2) + "\n");
    await Deno.writeTextFile(join(staging, "results.csv"), table.toCSV() + "\n");
    staged.push("results.json", "results.csv");
    if (values.report) {
      const rep = await writeReport(join(staging, "report"), result, { png: !values["no-png"] });
      staged.push("report");
      console.error(`snarm eval: report/report.html, ${rep.pngs.length} PNGs`);
    }
    // Commit: replace this tool's outputs in --out (results, maps, report) by the staged ones.
    await Deno.mkdir(out, { recursive: true });
    for (const rel of ["results.json", "results.csv", "maps", "report"]) {
      await Deno.remove(join(out, rel), { recursive: true }).catch(() => {});
    }
    for (const rel of staged) {
      const dst = join(out, rel);
      await Deno.mkdir(dirname(dst), { recursive: true });
      await Deno.remove(dst, { recursive: true }).catch(() => {});
      await Deno.rename(join(staging, rel), dst);
    }
    console.error(
      `snarm eval: ${result.categories.length} ${
        result.categories.length === 1 ? "category" : "categories"
      } in ${result.seconds.toFixed(1)} s; wrote ${out}/results.csv, results.json${
        values["no-png"] ? "" : ", maps/"
      }`,
    );
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
    Deno.removeSignalListener("SIGTERM", onSigint);
    await Deno.remove(staging, { recursive: true }).catch(() => {});
  }
}

function finiteOrNull(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`snarm eval: error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}

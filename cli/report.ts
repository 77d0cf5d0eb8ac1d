/**
 * `deno run -A cli/report.ts`: run a bank-only evaluation and write its HTML report (interactive
 * plots, metrics table, per-image overlays) and figure PNGs to `--out` — the same report that
 * `deno task eval --report` writes next to the results.
 *
 * Options: --data --category --backbone --model --bank-size --bank-cap --image-size --seed
 * --per-category-bank --out --overlays --no-png --help
 * @module
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { runEval } from "../lib/eval/run.ts";
import { formatTable } from "../lib/metrics/mod.ts";
import { resultTable } from "../lib/viz/jupyter.ts";
import { writeReport } from "../lib/viz/report.ts";

const DEFAULT_DATA = new URL("../data/hazelnut_toy", import.meta.url).pathname;

const HELP = `deno run -A cli/report.ts [options]

Bank-only SNARM evaluation (as deno task eval), then an HTML report in --out: report.html
(metrics table, score histograms, ROC / PR / PRO curves, anomaly overlays of the worst false
positives, worst false negatives and clearest detections), plotly.min.js, and figures/*.png
(needs Chromium; skipped with a warning when it is missing).

  --data DIR            dataset root in MVTec AD layout (default: embedded data/hazelnut_toy)
  --category NAME       evaluate only this category (repeatable; default: all)
  --backbone NAME       mobilenetv2 (default) | dinov2-vitb14-reg4 (needs --model)
  --model FILE.onnx     ONNX model for the backbone preset
  --bank-size T         bank size after the coreset (default 10000)
  --bank-cap N          random cap of training patches before the coreset (default 200000)
  --image-size S        centre-crop / backbone input size, multiple of 8 (default 392)
  --seed N              seed of the random cap and coreset (default 0)
  --per-category-bank   one bank per category instead of one unified bank
  --out DIR             report folder (default results/report)
  --overlays N          overlays per category (default 12)
  --no-png              skip the PNGs
  -h, --help            this text
`;

function intOpt(v: string | undefined, name: string, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    throw new Error(`--${name} expects a non-negative integer, got "${v}"`);
  }
  return n;
}

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      data: { type: "string" },
      category: { type: "string", multiple: true },
      backbone: { type: "string", default: "mobilenetv2" },
      model: { type: "string" },
      "bank-size": { type: "string" },
      "bank-cap": { type: "string" },
      "image-size": { type: "string" },
      seed: { type: "string" },
      "per-category-bank": { type: "boolean", default: false },
      out: { type: "string", default: "results/report" },
      overlays: { type: "string" },
      "no-png": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const out = resolve(values.out!);
  const overlays = intOpt(values.overlays, "overlays", 12);
  const result = await runEval({
    data: resolve(values.data ?? DEFAULT_DATA),
    categories: values.category,
    backbone: values.backbone,
    model: values.model,
    bankSize: intOpt(values["bank-size"], "bank-size", 10_000),
    bankCap: intOpt(values["bank-cap"], "bank-cap", 200_000),
    imageSize: intOpt(values["image-size"], "image-size", 392),
    seed: intOpt(values.seed, "seed", 0),
    unified: !values["per-category-bank"],
  });
  console.log(formatTable(resultTable(result)));
  const t0 = performance.now();
  const files = await writeReport(out, result, { overlays, png: !values["no-png"] });
  console.error(
    `snarm report: wrote ${files.html} and ${files.pngs.length} PNGs in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s`,
  );
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`snarm report: error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}

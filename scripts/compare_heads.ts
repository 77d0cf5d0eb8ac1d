/**
 * Model selection without the test set: score several fitted heads on one and the same validation
 * split of a dataset's *training* images (clean + synthetic anomalies of every source, the split a
 * fit holds out: `valFraction` 0.2, at most 10 images per category, seed 0), with
 * lib/train/validate.ts (the seven metrics at grid resolution, and their mean).
 *
 *   deno run -A scripts/compare_heads.ts --data DIR [--image-size S] [--no-crop] HEAD.safetensors…
 *
 * Prints one line per head: `name  score  I-AUROC … AUPRO` (validation, %), then bank-only.
 * @module
 */
import { parseArgs } from "node:util";
import { prepareTrainingSet } from "../lib/train/samples.ts";
import { validateBank, validateHead } from "../lib/train/validate.ts";
import { metricsMean } from "../lib/train/validate.ts";
import { loadHeadWeights } from "../lib/model/weights.ts";
import { METRIC_KEYS } from "../lib/metrics/compute.ts";
import { DEFAULT_TEXTURE_DIR } from "../lib/train/synth.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: {
    data: { type: "string" },
    "image-size": { type: "string", default: "392" },
    "no-crop": { type: "boolean", default: false },
    "bank-size": { type: "string", default: "10000" },
    backbone: { type: "string" },
  },
  allowPositionals: true,
});
if (!values.data || !positionals.length) {
  throw new Error("usage: compare_heads.ts --data DIR [--image-size S] [--no-crop] HEAD…");
}
const size = Number(values["image-size"]);
const set = await prepareTrainingSet({
  roots: [values.data],
  imageSize: size,
  resize: values["no-crop"] ? size : undefined,
  bankSize: Number(values["bank-size"]),
  backbone: values.backbone,
  maxImages: 1,
  synthPerImage: 0,
  valFraction: 0.2,
  textureDir: DEFAULT_TEXTURE_DIR,
  cacheDir: null,
  progress: false,
});
const fmt = (m: Record<string, number>) =>
  METRIC_KEYS.map((k) => (100 * m[k]).toFixed(2)).join("\t");
console.log(
  `validation: ${set.val.length} samples (${set.val.filter((s) => s.synthetic).length} synthetic)`,
);
// Per family of anomaly sources too: MemSeg's (structure, texture) and the defect-shaped ones.
const memseg = new Set(["structure", "texture"]);
const families = {
  all: set.val,
  memseg: set.val.filter((s) => !s.synthetic || memseg.has(s.source!)),
  defects: set.val.filter((s) => !s.synthetic || !memseg.has(s.source!)),
};
console.log(`name\tfamily\tscore\t${METRIC_KEYS.join("\t")}`);
for (const path of positionals) {
  const w = await loadHeadWeights(path);
  for (const [fam, val] of Object.entries(families)) {
    const v = await validateHead(w, val, set.h, set.w, 0);
    console.log(`${path}\t${fam}\t${(100 * v.score).toFixed(2)}\t${fmt(v.snarm)}`);
  }
}
for (const [fam, val] of Object.entries(families)) {
  const bank = validateBank(val, set.C, set.h, set.w);
  console.log(`bank-only\t${fam}\t${(100 * metricsMean(bank)).toFixed(2)}\t${fmt(bank)}`);
}

/**
 * Mask conventions end to end (issue #12 item 2): a 0/1 mask among 0/255 ones is binarised by its
 * own convention (not read as empty) and reported in results.json; a mask named `*_mask.PNG` is
 * found; a defect image whose mask is blank is warned about by name. Per-image results and raw
 * maps (item 5).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeImage, toGray } from "../lib/io/image.ts";
import { encodePng } from "../lib/io/heatmap.ts";
import { readSafeTensors, requireTensor } from "../lib/io/safetensors.ts";
import { computeMetrics } from "../lib/metrics/compute.ts";
import { checkFeaturesFinite } from "../lib/eval/run.ts";
import { runDeno } from "./_run.ts";

const CLI = new URL("../cli/eval.ts", import.meta.url).pathname;
const HAZEL = new URL("../data/hazelnut_toy/hazelnut", import.meta.url).pathname;
const SMALL = ["--method", "bank", "--image-size", "64", "--bank-size", "300"];

async function evalRun(root: string, out: string) {
  const r = await runDeno([CLI, "--data", root, "--out", out, ...SMALL, "--no-png"]);
  assert.equal(r.code, 0, r.stderr);
  return { stderr: r.stderr, json: JSON.parse(await Deno.readTextFile(join(out, "results.json"))) };
}

/** A copy of hazelnut_toy with 6 train images and the colour defects (masks as given). */
async function copyHazel(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "snarm_masks_" });
  const cat = join(root, "hazelnut");
  for (const d of ["train/good", "test/good", "test/colour", "ground_truth/colour"]) {
    await Deno.mkdir(join(cat, d), { recursive: true });
  }
  for (const f of ["00", "01", "02", "03", "06", "07"]) {
    await Deno.copyFile(join(HAZEL, `train/good/${f}.jpg`), join(cat, `train/good/${f}.jpg`));
  }
  for (const f of ["04", "05"]) {
    await Deno.copyFile(join(HAZEL, `test/good/${f}.jpg`), join(cat, `test/good/${f}.jpg`));
  }
  for (const f of ["00", "01", "02"]) {
    await Deno.copyFile(join(HAZEL, `test/colour/${f}.jpg`), join(cat, `test/colour/${f}.jpg`));
    await Deno.copyFile(
      join(HAZEL, `ground_truth/colour/${f}_mask.png`),
      join(cat, `ground_truth/colour/${f}_mask.png`),
    );
  }
  return root;
}

/** Rewrite a mask file as gray values `f(v)` (PNG, RGB-replicated). */
async function rewriteMask(path: string, dst: string, f: (v: number) => number) {
  const img = decodeImage(await Deno.readFile(path), path);
  const g = toGray(img);
  const rgb = new Uint8Array(g.length * 3);
  for (let i = 0; i < g.length; i++) rgb.fill(f(g[i]), 3 * i, 3 * i + 3);
  await Deno.writeFile(dst, encodePng(rgb, img.width, img.height));
}

Deno.test("masks: a 0/1 mask among 0/255 ones counts (not empty), conventions reported; *_mask.PNG found", async () => {
  const root = await copyHazel();
  const gt = join(root, "hazelnut", "ground_truth", "colour");
  const base = await evalRun(root, join(root, "out0"));
  const b = base.json.categories.hazelnut;
  assert.deepEqual(b.mask_conventions, { "0/255": 3 });
  assert.deepEqual(b.empty_masks, []);

  // One mask as 0/1 (a lab convention), another renamed with an upper-case extension.
  await rewriteMask(join(gt, "01_mask.png"), join(gt, "01_mask.png"), (v) => (v >= 127 ? 1 : 0));
  await Deno.rename(join(gt, "02_mask.png"), join(gt, "02_mask.PNG"));
  const mixed = await evalRun(root, join(root, "out1"));
  const m = mixed.json.categories.hazelnut;
  assert.deepEqual(m.mask_conventions, { "0/255": 2, "0/1": 1 });
  assert.match(mixed.stderr, /masks in mixed conventions 0\/255 × 2, 0\/1 × 1/);
  // Same defect pixels up to the pre-/post-resize threshold order at the mask edges.
  assert.ok(
    Math.abs(m.pixel_ap - b.pixel_ap) < 0.01,
    `P-AP ${m.pixel_ap} vs ${b.pixel_ap} with the 0/255 mask`,
  );
  assert.ok(Math.abs(m.pixel_auroc - b.pixel_auroc) < 0.005);
  await Deno.remove(root, { recursive: true });
});

Deno.test("masks: a defect image with a blank mask is warned about by file", async () => {
  const root = await copyHazel();
  const gt = join(root, "hazelnut", "ground_truth", "colour");
  await rewriteMask(join(gt, "00_mask.png"), join(gt, "00_mask.png"), () => 0);
  const r = await evalRun(root, join(root, "out"));
  const c = r.json.categories.hazelnut;
  assert.deepEqual(c.empty_masks, [join(gt, "00_mask.png")]);
  assert.deepEqual(c.mask_conventions, { "0/255": 2, "empty": 1 });
  assert.match(
    r.stderr,
    /1 defect image mask\(s\) empty after thresholding and geometry.*00_mask\.png/,
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("per-image results: images.csv lists every test image; --save-maps writes the raw maps the metrics came from", async () => {
  const root = await copyHazel();
  const out = join(root, "out");
  const r = await runDeno([CLI, "--data", root, "--out", out, ...SMALL, "--no-png", "--save-maps"]);
  assert.equal(r.code, 0, r.stderr);
  const csv = (await Deno.readTextFile(join(out, "images.csv"))).trim().split("\n");
  assert.equal(csv[0], "category,id,path,label,defect_type,score");
  assert.equal(csv.length, 1 + 5);
  const rows = csv.slice(1).map((l) => l.split(","));
  assert.deepEqual(rows.map((x) => x[1]), [
    "test/colour/00",
    "test/colour/01",
    "test/colour/02",
    "test/good/04",
    "test/good/05",
  ]);
  assert.deepEqual(rows.map((x) => x[3]), ["1", "1", "1", "0", "0"]);
  assert.ok(rows[0][2].endsWith("hazelnut/test/colour/00.jpg"));
  const st = await readSafeTensors(join(out, "raw_maps", "hazelnut.safetensors"));
  const maps = requireTensor(st, "maps", "F32", [5, 64, 64]).data as Float32Array;
  const masks = requireTensor(st, "masks", "U8", [5, 64, 64]).data as Uint8Array;
  const scores = requireTensor(st, "scores", "F32", [5]).data as Float32Array;
  const labels = requireTensor(st, "labels", "U8", [5]).data as Uint8Array;
  assert.deepEqual(JSON.parse(st.metadata.ids), rows.map((x) => x[1]));
  assert.deepEqual([...scores].map((v) => Math.fround(v)), rows.map((x) => Math.fround(+x[5])));
  // The metrics recomputed from the saved maps are the run's metrics.
  const m = computeMetrics({
    imageScores: scores,
    imageLabels: labels,
    pixelScores: maps,
    pixelMasks: masks,
    shape: [5, 64, 64],
  });
  const json = JSON.parse(await Deno.readTextFile(join(out, "results.json")));
  for (const k of ["image_auroc", "pixel_auroc", "pixel_ap", "aupro"] as const) {
    assert.equal(m[k], json.categories.hazelnut[k], k);
  }
  await Deno.remove(root, { recursive: true });
});

Deno.test("smaller: non-finite backbone features name the image and the patch; --bank-size above the patches says so", async () => {
  const f = { data: new Float32Array(2 * 3 * 4), n: 1, h: 2, w: 3, c: 4 };
  checkFeaturesFinite(f, "a.png");
  f.data[(1 * 3 + 2) * 4 + 1] = NaN;
  assert.throws(
    () => checkFeaturesFinite(f, "/d/a.png"),
    /backbone features of \/d\/a\.png have a non-finite value \(NaN\) at patch \(1, 2\), channel 1/,
  );
  const root = await copyHazel();
  const r = await runDeno(
    [CLI, "--data", root, "--out", join(root, "o"), "--method", "bank", "--image-size", "64"]
      .concat(["--bank-size", "100000", "--no-png"]),
  );
  const err = r.stderr;
  assert.equal(r.code, 0, err);
  // 6 training images × 8 × 8 patches at 64².
  assert.match(
    err,
    /--bank-size 100000 exceeds the 384 patches of the training images \(unified\): the bank keeps all of them \(T = 384\)/,
  );
  await Deno.remove(root, { recursive: true });
});

/**
 * Tests of the eval-time head fit (lib/eval/fit.ts `fitHead`) and of how `runEval` uses a given
 * head (lib/eval/run.ts), on a tiny MVTec-layout copy of hazelnut_toy at 64²: a fit is
 * deterministic per seed, the cache is reused for the same settings and data and missed for other
 * ones, train.json holds the validation curve, a head fitted on other categories is warned about,
 * and a head or bank of another geometry (resize → crop) is refused.
 *
 * The fits are shared between the tests of this file (one kernel compilation per process).
 */
import assert from "node:assert/strict";
import {
  BLEND_LAMBDAS,
  blendMaps,
  blendMargin,
  blendScored,
  IMAGE_METRICS,
  PIXEL_METRICS,
  selectLambda,
} from "../lib/eval/blend.ts";
import { imageScore } from "../lib/maps/mod.ts";
import type { Metrics } from "../lib/metrics/compute.ts";
import { splitImages } from "../lib/train/samples.ts";
import { join } from "node:path";
import { gpuTest, requireGpu } from "./_gpu.ts";
import {
  FIT_SOURCES,
  fitDefaults,
  fitHead,
  type FitOptions,
  type FitResult,
  heldOutSources,
} from "../lib/eval/fit.ts";
import { SYNTH_SOURCES } from "../lib/train/synth.ts";
import { runEval } from "../lib/eval/run.ts";
import { loadBackbone } from "../lib/backbone/mod.ts";
import { loadBank } from "../lib/bank/bank.ts";
import { readSafeTensors } from "../lib/io/safetensors.ts";

const HAZEL = new URL("../data/hazelnut_toy/hazelnut", import.meta.url).pathname;
const TRAIN = ["00", "01", "02", "03", "06", "07", "08", "09"];

/** Temp folders of this file, removed when the test process ends. */
const temps: string[] = [];
globalThis.addEventListener("unload", () => {
  for (const t of temps) {
    try {
      Deno.removeSync(t, { recursive: true });
    } catch { /* already gone */ }
  }
});
async function tempDir(prefix: string): Promise<string> {
  const d = await Deno.makeTempDir({ prefix });
  temps.push(d);
  return d;
}

/**
 * A tiny MVTec-layout copy of hazelnut_toy: 8 train, 2 good + 2 defective test images with masks,
 * under the category folder `category`.
 */
async function tinyDataset(category = "hazelnut"): Promise<string> {
  const root = await tempDir("snarm_fit_");
  const cat = join(root, category);
  const copy = async (rel: string) => {
    await Deno.mkdir(join(cat, rel, ".."), { recursive: true });
    await Deno.copyFile(join(HAZEL, rel), join(cat, rel));
  };
  for (const f of TRAIN) await copy(`train/good/${f}.jpg`);
  for (const f of ["04", "05"]) await copy(`test/good/${f}.jpg`);
  for (const f of ["00", "01"]) {
    await copy(`test/colour/${f}.jpg`);
    await copy(`ground_truth/colour/${f}_mask.png`);
  }
  return root;
}

const FIT = { steps: 4, maxImages: 4, valFraction: 0.25, synthPerImage: 1 };
const GEOMETRY = { imageSize: 64, bankSize: 300 };

let shaPromise: Promise<string> | null = null;
/** SHA-256 of the embedded backbone model (part of the fit key). */
function modelSha(): Promise<string> {
  shaPromise ??= (async () => {
    const bb = await loadBackbone("mobilenetv2", { inputSize: 64, grid: 8 });
    try {
      return bb.describe().modelSha256;
    } finally {
      await bb.release();
    }
  })();
  return shaPromise;
}

async function fit(
  data: string,
  cacheDir: string,
  extra: Partial<FitOptions> = {},
): Promise<FitResult> {
  return await fitHead({
    data,
    categories: ["hazelnut"],
    ...GEOMETRY,
    ...FIT,
    cacheDir,
    progress: false,
    modelSha256: await modelSha(),
    ...extra,
  });
}

/** The tensors of a safetensors file as name → raw bytes (metadata, with wall times, left out). */
async function tensorBytes(path: string): Promise<Map<string, Uint8Array>> {
  const st = await readSafeTensors(path);
  const out = new Map<string, Uint8Array>();
  for (const [name, t] of st.tensors) {
    out.set(name, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength).slice());
  }
  return out;
}

function sameTensors(a: Map<string, Uint8Array>, b: Map<string, Uint8Array>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, x] of a) {
    const y = b.get(name);
    if (!y || y.length !== x.length || x.some((v, i) => v !== y[i])) return false;
  }
  return true;
}

/** Data and the reference fit (seed 0), shared by the tests below. */
let shared: Promise<{ data: string; cache: string; base: FitResult }> | null = null;
function baseFit() {
  shared ??= (async () => {
    const data = await tinyDataset();
    const cache = await tempDir("snarm_fit_cache_");
    const base = await fit(data, cache);
    return { data, cache, base };
  })();
  return shared;
}

/** Run `f` with console.warn captured; returns its result and the warnings. */
async function captureWarnings<T>(f: () => Promise<T>): Promise<{ value: T; warnings: string[] }> {
  const warnings: string[] = [];
  const orig = console.warn;
  console.warn = (...args: unknown[]) => {
    warnings.push(args.map(String).join(" "));
  };
  try {
    return { value: await f(), warnings };
  } finally {
    console.warn = orig;
  }
}

Deno.test({
  name: "fitHead: a fit is deterministic per seed (identical head tensors), another seed differs",
  ...gpuTest,
  async fn() {
    requireGpu();
    const { data, base } = await baseFit();
    assert.equal(base.cached, false);
    const head = await readSafeTensors(base.headPath);
    assert.deepEqual(JSON.parse(head.metadata.categories), ["hazelnut"]);
    assert.equal(head.metadata.image_size, "64");
    assert.equal(head.metadata.resize, "73"); // round(64 · 448 / 392)
    assert.ok(head.metadata.snarm_fit_key, "the fit key is recorded in the head");
    assert.equal(typeof JSON.parse(head.metadata.snarm_train).bestStep, "number");
    // The head/bank blend chosen on validation is stored with the head.
    const blend = JSON.parse(head.metadata.snarm_blend);
    assert.ok(BLEND_LAMBDAS.includes(blend.lambda), `λ ${blend.lambda} is a candidate`);
    assert.ok(blend.headStd > 0 && blend.bankStd > 0);

    // Same settings and seed in another cache: same key, byte-identical weights.
    const again = await fit(data, await tempDir("snarm_fit_cache_"));
    assert.equal(again.cached, false);
    assert.equal(again.dir.split("/").pop(), base.dir.split("/").pop());
    const a = await tensorBytes(base.headPath);
    assert.ok(a.size > 0);
    assert.ok(sameTensors(a, await tensorBytes(again.headPath)), "same seed → same weights");
    assert.deepEqual(again.bank.features, base.bank.features);
    // Whole files, metadata included: no clock or timing in a head or bank file.
    for (const f of ["head.safetensors", "bank.safetensors"]) {
      assert.deepEqual(
        await Deno.readFile(join(again.dir, f)),
        await Deno.readFile(join(base.dir, f)),
        `${f} bytes differ between two fits with the same seed`,
      );
    }

    // Another seed: another key and other weights.
    const other = await fit(data, await tempDir("snarm_fit_cache_"), { seed: 1 });
    assert.equal(other.cached, false);
    assert.notEqual(other.dir.split("/").pop(), base.dir.split("/").pop());
    assert.ok(!sameTensors(a, await tensorBytes(other.headPath)), "another seed → other weights");
  },
});

Deno.test({
  name:
    "fitHead: the cache is reused for the same settings and data, missed for other steps or data; train.json holds the validation",
  ...gpuTest,
  async fn() {
    requireGpu();
    const { data, cache, base } = await baseFit();
    const headMtime = (await Deno.stat(base.headPath)).mtime;

    const hit = await fit(data, cache);
    assert.equal(hit.cached, true);
    assert.equal(hit.headPath, base.headPath);
    assert.equal(hit.dir, base.dir);
    assert.ok(hit.seconds < 15, `a cache hit only loads (took ${hit.seconds.toFixed(1)} s)`);
    assert.deepEqual((await Deno.stat(base.headPath)).mtime, headMtime, "head not rewritten");
    assert.deepEqual(hit.bank.features, base.bank.features);

    // The record: settings, a non-empty validation curve, the bank-only validation.
    const rec = JSON.parse(await Deno.readTextFile(join(base.dir, "train.json")));
    assert.deepEqual(hit.record, rec);
    assert.ok(Array.isArray(rec.validation) && rec.validation.length > 0, "validation curve");
    for (const v of rec.validation) {
      assert.equal(typeof v.step, "number");
      assert.equal(typeof v.score, "number");
    }
    assert.ok(rec.bankValidation && typeof rec.bankValidation === "object", "bankValidation");
    assert.ok(rec.valSamples > 0);
    // every candidate λ and bank-only (λ = 1) were scored on validation; the chosen one is best
    const lambdas = rec.blend.table.map((t: { lambda: number }) => t.lambda);
    assert.deepEqual(lambdas, [...BLEND_LAMBDAS, 1]);
    // dominance rule per group: the map's λ has the largest worst pixel-metric margin over
    // bank-only, the image score's λ_img the largest worst image-metric margin
    assert.equal(rec.blend.rule, "dominance per metric group");
    assert.equal(rec.blend.blend.lambda, selectLambda(rec.blend.table, PIXEL_METRICS));
    assert.equal(rec.blend.blend.imageLambda, selectLambda(rec.blend.table, IMAGE_METRICS));
    const at = (l: number) => rec.blend.table.find((t: { lambda: number }) => t.lambda === l);
    const map = at(rec.blend.blend.lambda), img = at(rec.blend.blend.imageLambda);
    for (const t of rec.blend.table.filter((t: { lambda: number }) => t.lambda < 1)) {
      assert.ok(t.pixelMargin <= map.pixelMargin + 1e-9, `λ ${t.lambda}: pixel margin ≤ λ's`);
      assert.ok(t.imageMargin <= img.imageMargin + 1e-9, `λ ${t.lambda}: image margin ≤ λ_img's`);
      assert.equal(t.margin, Math.min(t.imageMargin, t.pixelMargin));
    }
    assert.equal(rec.settings.steps, FIT.steps);
    for (const f of ["head.safetensors", "bank.safetensors", "loss.csv", "key.json"]) {
      await Deno.stat(join(base.dir, f));
    }
    const leftovers = [...Deno.readDirSync(cache)].filter((e) =>
      /\.(partial|stage|old|lock)/.test(e.name)
    );
    assert.deepEqual(leftovers, []);

    // Another setting: a miss, another folder.
    const steps = await fit(data, cache, { steps: FIT.steps + 1 });
    assert.equal(steps.cached, false);
    assert.notEqual(steps.dir, base.dir);
    assert.equal(steps.record.step, FIT.steps + 1);

    // The same files under another root: the key hashes names and contents, so a hit.
    const copy = await tinyDataset();
    const copyHit = await fit(copy, cache);
    assert.equal(copyHit.cached, true);
    assert.equal(copyHit.dir, base.dir);

    // Other data (one training image replaced by another's bytes): a miss, another folder.
    await Deno.copyFile(
      join(copy, "hazelnut/train/good/01.jpg"),
      join(copy, "hazelnut/train/good/00.jpg"),
    );
    const changed = await fit(copy, cache);
    assert.equal(changed.cached, false);
    assert.notEqual(changed.dir, base.dir);
    assert.notEqual(changed.dir, steps.dir);

    // refit: true fits again into the same folder (the same weights: same seed).
    const before = await tensorBytes(base.headPath);
    const refit = await fit(data, cache, { refit: true });
    assert.equal(refit.cached, false);
    assert.equal(refit.dir, base.dir);
    assert.ok(sameTensors(await tensorBytes(refit.headPath), before));
  },
});

Deno.test({
  name: "runEval with a head fitted on other categories warns naming them; a matching one does not",
  ...gpuTest,
  async fn() {
    requireGpu();
    const { data, base } = await baseFit();
    const nut = await tinyDataset("nut");
    const opts = { method: "snarm" as const, head: base.headPath, ...GEOMETRY, progress: false };
    const foreign = await captureWarnings(() => runEval({ data: nut, ...opts }));
    assert.deepEqual(foreign.value.categories.map((c) => c.category), ["nut"]);
    assert.deepEqual(foreign.value.heads.map((h) => [h.fitted, h.path]), [[false, base.headPath]]);
    const warned = foreign.warnings.filter((w) => /was fitted on/.test(w));
    assert.equal(warned.length, 1, foreign.warnings.join("\n"));
    assert.match(warned[0], /snarm: warning: head .* was fitted on \[hazelnut\], not on \[nut\]/);

    const own = await captureWarnings(() => runEval({ data, ...opts }));
    assert.deepEqual(own.value.categories.map((c) => c.category), ["hazelnut"]);
    assert.deepEqual(own.warnings.filter((w) => /fitted on/.test(w)), []);
    const m = own.value.categories[0].metrics;
    assert.ok(m.image_auroc >= 0 && m.image_auroc <= 1);
  },
});

Deno.test({
  name: "a head or bank of another geometry (resize → crop) is refused",
  ...gpuTest,
  async fn() {
    requireGpu();
    const { data, base } = await baseFit();
    await assert.rejects(
      runEval({
        data,
        method: "snarm",
        head: base.headPath,
        ...GEOMETRY,
        resize: 64, // no crop; the head was fitted at 73 → 64
        progress: false,
      }),
      /was fitted with geometry resize 73 → crop 64, but this run uses resize 64 → crop 64/,
    );
    const bankPath = join(base.dir, "bank.safetensors");
    const { meta } = await loadBank(bankPath);
    assert.equal(meta.resize, 73);
    const expect = { backbone: meta.backbone, taps: meta.taps, dim: meta.dim, inputSize: 64 };
    await loadBank(bankPath, { ...expect, resize: 73 }); // the same geometry loads
    await assert.rejects(
      loadBank(bankPath, { ...expect, resize: 64 }),
      /was built with geometry resize 73 → crop 64/,
    );
  },
});

Deno.test("heldOutSources: a fit validates on the anomaly sources it does not train on", () => {
  // Default: trains on the defect-shaped kinds, validates on MemSeg's structure + texture.
  assert.deepEqual(heldOutSources(FIT_SOURCES), ["structure", "texture"]);
  assert.deepEqual(fitDefaults({}).valSources, ["structure", "texture"]);
  assert.deepEqual(fitDefaults({ sources: ["structure", "texture"] }).valSources, [
    "scratch",
    "blob",
    "edge",
    "smear",
    "stain",
    "paint",
  ]);
  // Training on everything leaves nothing held out: validate on everything.
  assert.deepEqual(heldOutSources(SYNTH_SOURCES), [...SYNTH_SOURCES]);
  // An explicit choice wins.
  assert.deepEqual(fitDefaults({ valSources: ["blob"] }).valSources, ["blob"]);
  for (const s of heldOutSources(["blob", "texture"])) {
    assert.ok(!["blob", "texture"].includes(s));
  }
});

Deno.test("blendMaps: z-scores each map with its clean statistics and mixes them with weight λ", () => {
  const head = Float32Array.from([0.1, 0.3, 0.5]), bank = Float32Array.from([2, 4, 6]);
  const b = { lambda: 0.25, headMean: 0.1, headStd: 0.2, bankMean: 2, bankStd: 4 };
  const out = blendMaps(head, bank, b);
  for (let i = 0; i < 3; i++) {
    const want = 0.75 * (head[i] - 0.1) / 0.2 + 0.25 * (bank[i] - 2) / 4;
    assert.ok(Math.abs(out[i] - want) < 1e-6, `pixel ${i}: ${out[i]} vs ${want}`);
  }
  // λ = 0: the head's map alone (up to the z-score), order preserved
  const h0 = blendMaps(head, bank, { ...b, lambda: 0 });
  assert.ok(h0[0] < h0[1] && h0[1] < h0[2]);
  assert.throws(() => blendMaps(head, bank.subarray(0, 2), b), /head map 3 vs bank map 2/);
});

Deno.test("selectLambda: the candidate with the largest worst-metric margin over bank-only", () => {
  const m = (iauroc: number, pap: number, aupro: number) =>
    ({ image_auroc: iauroc, pixel_ap: pap, aupro }) as unknown as Metrics;
  const bank = { lambda: 1, metrics: m(1, 0.3, 0.865) };
  // λ 0 has the best mean but loses AUPRO by 0.03; λ 0.25 loses by 0.0001; 0.5 and 0.75 win all
  const t = [
    { lambda: 0, metrics: m(1, 0.44, 0.832) },
    { lambda: 0.25, metrics: m(1, 0.43, 0.8649) },
    { lambda: 0.5, metrics: m(1, 0.39, 0.873) },
    { lambda: 0.75, metrics: m(1, 0.35, 0.871) },
    bank,
  ];
  // 0.5 and 0.75 tie at margin 0 (image AUROC 1 = 1): the better mean decides
  assert.equal(selectLambda(t), 0.5);
  assert.equal(blendMargin(t[2].metrics, bank.metrics), 0);
  assert.ok(Math.abs(blendMargin(t[0].metrics, bank.metrics) + 0.033) < 1e-12);
  // a metric that is NaN on one side (no anomalous pixel) is left out of the margin
  const nan = m(NaN, 0.5, 0.9);
  assert.ok(Math.abs(blendMargin(nan, bank.metrics) - 0.035) < 1e-12);
  // equal margins and means: the larger λ (more bank weight)
  assert.equal(
    selectLambda([
      { lambda: 0.25, metrics: bank.metrics },
      { lambda: 0.5, metrics: bank.metrics },
      bank,
    ]),
    0.5,
  );
  assert.throws(() => selectLambda([t[0]]), /needs bank-only/);
  // a candidate without any finite metric never wins
  const none = m(NaN, NaN, NaN);
  assert.equal(blendMargin(none, bank.metrics), -Infinity);
  assert.equal(selectLambda([{ lambda: 0, metrics: none }, t[2], bank]), 0.5);
  // per metric group: on P-AP alone λ 0 wins, on AUPRO alone λ 0.5
  assert.equal(selectLambda(t, ["pixel_ap"]), 0);
  assert.equal(selectLambda(t, ["aupro"]), 0.5);
});

Deno.test("blendScored: the map is the λ blend, the image score the max-pool of the λ_img blend", () => {
  const size = 32, px = size * size;
  // head map: a bright 8×8 square at the top left; bank map: a brighter one at the bottom right
  const head = new Float32Array(px), bank = new Float32Array(px);
  for (let y = 0; y < 8; y++) {
    for (let x = 0; x < 8; x++) {
      head[y * size + x] = 1;
      bank[(24 + y) * size + 24 + x] = 3;
    }
  }
  const b = { lambda: 0.25, headMean: 0, headStd: 1, bankMean: 0, bankStd: 1 };
  const same = blendScored(head, bank, b, size);
  assert.deepEqual(same.map, blendMaps(head, bank, b));
  assert.equal(same.score, imageScore(same.map, size, size));
  const split = blendScored(head, bank, { ...b, imageLambda: 0.75 }, size);
  assert.deepEqual(split.map, same.map, "λ_img leaves the map alone");
  const img = blendMaps(head, bank, { ...b, lambda: 0.75 });
  assert.equal(split.score, imageScore(img, size, size));
  assert.ok(split.score > same.score, "more weight on the brighter bank square, higher score");
});

Deno.test("splitImages: seeded, disjoint validation and training images per category, with caps", () => {
  const a = splitImages([28, 10], 5, 0.2, 0, 10);
  const b = splitImages([28, 10], 5, 0.2, 0, 10);
  assert.deepEqual(a, b, "deterministic per seed");
  assert.notDeepEqual(splitImages([28, 10], 5, 0.2, 1, 10), a, "another seed, another split");
  const inCat = (xs: number[], lo: number, hi: number) => xs.filter((i) => i >= lo && i < hi);
  assert.equal(inCat(a.val, 0, 28).length, 6); // round(28 · 0.2)
  assert.equal(inCat(a.val, 28, 38).length, 2);
  assert.equal(inCat(a.selected, 0, 28).length, 5); // maxImages
  assert.equal(inCat(a.selected, 28, 38).length, 5);
  assert.ok(a.val.every((i) => !a.selected.includes(i)), "validation images are never trained on");
  assert.equal(splitImages([200], undefined, 0.2, 0, 10).val.length, 10, "at most maxVal");
  assert.equal(splitImages([1], undefined, 0.2, 0, 10).val.length, 0, "one image: no validation");
  // no validation split: the old selection (seeded subset) is unchanged
  assert.deepEqual(splitImages([28], 5, 0, 3).val, []);
});

Deno.test("recoverFitCache: a fit killed half-way leaves nothing behind for any key; a live process's is kept", async () => {
  const { recoverFitCache } = await import("../lib/eval/fit.ts");
  const root = await Deno.makeTempDir({ prefix: "snarm_fit_cache_recover_" });
  try {
    // a PID that is not running (above the kernel's pid_max default) and this process's own
    const dead = join(root, "fit-aaaa.stage-4194304999");
    const live = join(root, `fit-bbbb.stage-${Deno.pid}`);
    const done = join(root, "fit-cccc");
    for (const d of [dead, live, done]) await Deno.mkdir(d);
    // this process's stage counts as live only while it is one of its own (stageFolder)
    const { stageFolder } = await import("../lib/io/commit.ts");
    const own = await stageFolder(join(root, "fit-bbbb"));
    assert.equal(own, live);
    await recoverFitCache(root);
    const names = [...Deno.readDirSync(root)].map((e) => e.name).sort();
    assert.deepEqual(names, ["fit-bbbb.stage-" + Deno.pid, "fit-cccc"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

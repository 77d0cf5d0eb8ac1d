/**
 * Dataset layouts beyond MVTec AD (issue #12 item 3), built from the embedded hazelnut_toy:
 * MVTec 3D-AD RGB (validation/ as extra normals or ignored) and Folder datasets (detected, or
 * given with --normal-dir/--abnormal-dir/--mask-dir, normals split by --split-ratio, seeded).
 * The same images in MVTec layout and in MVTec 3D-AD layout give the same metrics.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { detectFolderLayout, listCategories, loadSplit } from "../lib/data/dataset.ts";
import { runDeno } from "./_run.ts";
import { layoutMagneticTile } from "../scripts/layout_magnetic_tile.ts";

const CLI = new URL("../cli/eval.ts", import.meta.url).pathname;
const HAZEL = new URL("../data/hazelnut_toy/hazelnut", import.meta.url).pathname;
const TRAIN = ["00", "01", "02", "03", "06", "07"];

async function cp(src: string, dst: string) {
  await Deno.mkdir(join(dst, ".."), { recursive: true });
  await Deno.copyFile(src, dst);
}

async function evalJson(args: string[]) {
  const r = await runDeno([CLI, "--method", "bank", "--image-size", "64", "--bank-size", "300"]
    .concat(["--no-png", ...args]));
  assert.equal(r.code, 0, r.stderr);
  const out = args[args.indexOf("--out") + 1];
  return JSON.parse(await Deno.readTextFile(join(out, "results.json")));
}

Deno.test("layout: MVTec 3D-AD RGB is read (masks in gt/, validation/ ignored or used) and scores as MVTec AD", async () => {
  const root = await Deno.makeTempDir({ prefix: "snarm_3d_" });
  const mv = join(root, "mvtec", "hazelnut"), d3 = join(root, "mvtec3d", "hazelnut");
  for (const f of TRAIN) {
    await cp(join(HAZEL, `train/good/${f}.jpg`), join(mv, `train/good/${f}.jpg`));
    await cp(join(HAZEL, `train/good/${f}.jpg`), join(d3, `train/good/rgb/${f}.jpg`));
  }
  await cp(join(HAZEL, "train/good/08.jpg"), join(d3, "validation/good/rgb/08.jpg"));
  for (const f of ["04", "05"]) {
    await cp(join(HAZEL, `test/good/${f}.jpg`), join(mv, `test/good/${f}.jpg`));
    await cp(join(HAZEL, `test/good/${f}.jpg`), join(d3, `test/good/rgb/${f}.jpg`));
  }
  for (const f of ["00", "01", "02"]) {
    await cp(join(HAZEL, `test/colour/${f}.jpg`), join(mv, `test/colour/${f}.jpg`));
    await cp(join(HAZEL, `test/colour/${f}.jpg`), join(d3, `test/colour/rgb/${f}.jpg`));
    const m = join(HAZEL, `ground_truth/colour/${f}_mask.png`);
    await cp(m, join(mv, `ground_truth/colour/${f}_mask.png`));
    await cp(m, join(d3, `test/colour/gt/${f}.png`));
  }
  const s = loadSplit(join(root, "mvtec3d"), "hazelnut");
  assert.equal(s.layout, "mvtec3d");
  assert.equal(s.train.length, 6);
  assert.equal(s.test.length, 5);
  assert.ok(s.hasMasks);
  assert.ok(s.test.find((r) => r.id === "test/colour/01")!.maskPath!.endsWith("colour/gt/01.png"));
  const v = loadSplit(join(root, "mvtec3d"), "hazelnut", { validationAsTrain: true });
  assert.equal(v.train.length, 7);
  assert.ok(v.train.some((r) => r.id === "validation/good/08"));

  const a = await evalJson(["--data", join(root, "mvtec"), "--out", join(root, "o1")]);
  const b = await evalJson(["--data", join(root, "mvtec3d"), "--out", join(root, "o2")]);
  assert.deepEqual(b.categories.hazelnut, a.categories.hazelnut, "same images → same metrics");
  const c = await evalJson([
    "--data",
    join(root, "mvtec3d"),
    "--validation-as-train",
    "--out",
    join(root, "o3"),
  ]);
  assert.equal(typeof c.categories.hazelnut.pixel_ap, "number");
  await Deno.remove(root, { recursive: true });
});

Deno.test("layout: Folder datasets — detected (good/ + anomalous folders + mask/) or given by flags; normal split seeded", async () => {
  const root = await Deno.makeTempDir({ prefix: "snarm_folder_" });
  const ds = join(root, "nuts");
  for (const f of [...TRAIN, "08", "09", "10", "11"]) {
    await cp(join(HAZEL, `train/good/${f}.jpg`), join(ds, `good/${f}.jpg`));
  }
  for (const f of ["00", "01", "02"]) {
    await cp(join(HAZEL, `test/colour/${f}.jpg`), join(ds, `colour/${f}.jpg`));
    await cp(join(HAZEL, `ground_truth/colour/${f}_mask.png`), join(ds, `mask/${f}_mask.png`));
  }
  const spec = detectFolderLayout(ds);
  assert.ok(spec);
  assert.deepEqual(listCategories(ds), ["nuts"]);
  const s = loadSplit(ds, "nuts");
  assert.equal(s.layout, "folder");
  assert.equal(s.train.length, 8);
  assert.equal(s.test.filter((r) => r.label === 0).length, 2); // round(0.2 · 10)
  assert.equal(s.test.filter((r) => r.label === 1).length, 3);
  assert.ok(s.hasMasks);
  // Seeded: the same seed gives the same split, another seed another one.
  const again = loadSplit(ds, "nuts", { folder: { ...spec!, seed: 0 } });
  assert.deepEqual(again.train.map((r) => r.id), s.train.map((r) => r.id));
  const other = loadSplit(ds, "nuts", { folder: { ...spec!, seed: 7 } });
  assert.notDeepEqual(other.train.map((r) => r.id), s.train.map((r) => r.id));
  // Ambiguous roots are not taken for Folder datasets.
  assert.equal(detectFolderLayout(join(HAZEL, "..")), null);

  const auto = await evalJson(["--data", ds, "--out", join(root, "o1")]);
  const flags = await evalJson([
    "--normal-dir",
    join(ds, "good"),
    "--abnormal-dir",
    join(ds, "colour"),
    "--mask-dir",
    join(ds, "mask"),
    "--out",
    join(root, "o2"),
  ]);
  assert.deepEqual(Object.keys(auto.categories), ["nuts"]);
  assert.deepEqual(flags.categories.nuts, auto.categories.nuts);
  assert.equal(auto.categories.nuts.n_test, 5);
  assert.equal(typeof auto.categories.nuts.pixel_ap, "number");
  const ratio = await evalJson([
    "--normal-dir",
    join(ds, "good"),
    "--abnormal-dir",
    join(ds, "colour"),
    "--split-ratio",
    "0.5",
    "--out",
    join(root, "o3"),
  ]);
  assert.equal(ratio.categories.nuts.n_test, 5 + 3);
  assert.equal(ratio.categories.nuts.pixel_ap, null, "no --mask-dir: image metrics only");
  await Deno.remove(root, { recursive: true });
});

Deno.test("layout: the raw magnetic-tile dataset is re-laid into MVTec layout (every 5th free image → test/good)", async () => {
  const raw = await Deno.makeTempDir({ prefix: "snarm_mt_raw_" });
  const jpg = join(HAZEL, "train/good/00.jpg"),
    png = join(HAZEL, "ground_truth/colour/00_mask.png");
  for (let i = 0; i < 10; i++) await cp(jpg, join(raw, "MT_Free/Imgs", `exp${i}_num_${i}.jpg`));
  for (const n of ["a", "b"]) {
    await cp(jpg, join(raw, "MT_Blowhole/Imgs", `${n}.jpg`));
    await cp(png, join(raw, "MT_Blowhole/Imgs", `${n}.png`));
  }
  const out = join(raw, "out");
  const counts = await layoutMagneticTile(raw, out);
  assert.deepEqual(counts, { "train/good": 8, "test/good": 2, "test/blowhole": 2 });
  const s = loadSplit(out, "magnetic_tile");
  assert.equal(s.train.length, 8);
  assert.deepEqual(s.test.map((r) => r.id), [
    "test/blowhole/a",
    "test/blowhole/b",
    "test/good/exp4_num_4",
    "test/good/exp9_num_9",
  ]);
  assert.ok(s.hasMasks);
  await Deno.remove(raw, { recursive: true });
});

Deno.test("layout: two images that differ only by extension, and a category name that is a path, are refused naming them", async () => {
  const root = await Deno.makeTempDir({ prefix: "snarm_ids_" });
  try {
    const cat = join(root, "hz");
    for (const f of TRAIN.slice(0, 2)) {
      await cp(join(HAZEL, `train/good/${f}.jpg`), join(cat, `train/good/${f}.jpg`));
    }
    await cp(join(HAZEL, "test/good/04.jpg"), join(cat, "test/good/04.jpg"));
    await cp(join(HAZEL, "test/good/05.jpg"), join(cat, "test/good/04.JPEG"));
    assert.throws(
      () => loadSplit(root, "hz"),
      /04\.(jpg|JPEG) and .*04\.(jpg|JPEG) have the same image id "test\/good\/04"/,
    );
    // a VisA-style split CSV whose object names a path
    const visa = join(root, "visa");
    await cp(join(HAZEL, "train/good/00.jpg"), join(visa, "img/00.jpg"));
    await Deno.mkdir(join(visa, "split_csv"), { recursive: true });
    await Deno.writeTextFile(
      join(visa, "split_csv", "1cls.csv"),
      "object,split,label,image,mask\nline1/cam2,train,normal,img/00.jpg,\n",
    );
    assert.throws(
      () => listCategories(visa),
      /category "line1\/cam2" cannot name an output folder/,
    );
    assert.throws(() => loadSplit(root, "../hz"), /category "..\/hz" cannot name an output folder/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

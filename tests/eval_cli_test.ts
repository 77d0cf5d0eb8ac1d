/**
 * End-to-end tests of `deno task eval` (cli/eval.ts) as a subprocess on small real data: the
 * default run (SNARM with a head fitted on the data's training images, cached), the outputs and
 * their keys, and that a failing run leaves nothing in --out.
 */
import assert from "node:assert/strict";
import { loadHead } from "../lib/model/head.ts";
import { readSafeTensors } from "../lib/io/safetensors.ts";
import { join } from "node:path";
import { gpuTest } from "./_gpu.ts";

const CLI = new URL("../cli/eval.ts", import.meta.url).pathname;
const HAZEL = new URL("../data/hazelnut_toy/hazelnut", import.meta.url).pathname;

async function runCli(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { XDG_RUNTIME_DIR: "/tmp", SNARM_CACHE: FIT_CACHE, ...env },
  }).output();
  const td = new TextDecoder();
  return { code: out.code, stdout: td.decode(out.stdout), stderr: td.decode(out.stderr) };
}

/** A small MVTec-layout copy of hazelnut_toy: 6 train, 2 good + 3 defective test images. */
async function smallDataset(opts: { masks?: boolean } = {}): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "snarm_eval_" });
  const cat = join(root, "hazelnut");
  const copy = async (rel: string) => {
    await Deno.mkdir(join(cat, rel, ".."), { recursive: true });
    await Deno.copyFile(join(HAZEL, rel), join(cat, rel));
  };
  for (const f of ["00", "01", "02", "03", "06", "07"]) await copy(`train/good/${f}.jpg`);
  for (const f of ["04", "05"]) await copy(`test/good/${f}.jpg`);
  for (const f of ["00", "01", "02"]) {
    await copy(`test/colour/${f}.jpg`);
    if (opts.masks !== false) await copy(`ground_truth/colour/${f}_mask.png`);
  }
  return root;
}

const SMALL = ["--image-size", "128", "--bank-size", "300", "--no-png"];

/**
 * Fit cache shared by the tests that fit (the small datasets have the same training images, so
 * after the first fit the others are cache hits); removed when the test process ends.
 */
const FIT_CACHE = Deno.makeTempDirSync({ prefix: "snarm_eval_fit_cache_" });
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(FIT_CACHE, { recursive: true });
  } catch { /* already gone */ }
});
/** A default (fitted-head) run small enough to fit in seconds. */
const FIT = [
  "--image-size",
  "64",
  "--bank-size",
  "300",
  "--fit-steps",
  "3",
  "--fit-images",
  "3",
  "--cache-dir",
  FIT_CACHE,
];

Deno.test({
  name:
    "eval cli: default run fits a SNARM head (cached for a re-run) and writes results.csv/json with the 7 metric keys and PNG maps",
  ...gpuTest,
  async fn() {
    const root = await smallDataset();
    const out = join(root, "out");
    const cache = join(root, "cache");
    const fitArgs = FIT.map((a) => a === FIT_CACHE ? cache : a);
    const r = await runCli(["--data", root, "--out", out, ...fitArgs]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\| hazelnut/);
    // No --method: SNARM with a head fitted on the data's training images, said so.
    assert.match(r.stderr, /SNARM, head fitted on the data's training images/);
    const json = JSON.parse(await Deno.readTextFile(join(out, "results.json")));
    assert.equal(json.config.method, "snarm");
    assert.equal(json.config.head, null);
    assert.equal(json.config.fit.steps, 3);
    assert.equal(json.heads.length, 1);
    assert.equal(json.heads[0].fitted, true);
    // Cache hits and timings are in run.json (results.json is reproducible byte for byte).
    const run = JSON.parse(await Deno.readTextFile(join(out, "run.json")));
    assert.equal(run.heads[0].cached, false);
    assert.ok(run.heads[0].seconds > 0);
    assert.equal(json.heads[0].cached, undefined);
    assert.ok(json.heads[0].path.startsWith(cache), json.heads[0].path);
    assert.equal(json.heads[0].fit.settings.steps, 3);
    const keys = [
      "image_auroc",
      "image_ap",
      "image_f1max",
      "pixel_auroc",
      "pixel_ap",
      "pixel_f1max",
      "aupro",
    ];
    for (const k of keys) {
      assert.equal(typeof json.categories.hazelnut[k], "number", k);
      assert.ok(json.categories.hazelnut[k] >= 0 && json.categories.hazelnut[k] <= 1, k);
      assert.equal(json.mean[k], json.categories.hazelnut[k]);
    }
    assert.equal(json.config.bankSize, 300);
    assert.equal(json.config.imageSize, 64);
    assert.equal(json.config.resize, 73); // round(64 · 448 / 392)
    assert.equal(json.categories.hazelnut.n_test, 5);
    const csv = (await Deno.readTextFile(join(out, "results.csv"))).trim().split("\n");
    assert.equal(csv[0], ["category", ...keys].join(","));
    assert.equal(csv.length, 3); // header, hazelnut, mean
    const pngs = [...Deno.readDirSync(join(out, "maps", "hazelnut"))].map((e) => e.name).sort();
    assert.deepEqual(pngs, [
      "colour_00.png",
      "colour_01.png",
      "colour_02.png",
      "good_04.png",
      "good_05.png",
    ]);
    // A re-run (explicit --method snarm) reuses the cached fit and gives the same metrics.
    const again = await runCli([
      "--data",
      root,
      "--out",
      join(root, "again"),
      ...fitArgs,
      "--method",
      "snarm",
      "--no-png",
    ]);
    assert.equal(again.code, 0, again.stderr);
    const j2 = JSON.parse(await Deno.readTextFile(join(root, "again", "results.json")));
    assert.equal(j2.heads[0].fitted, true);
    const run2 = JSON.parse(await Deno.readTextFile(join(root, "again", "run.json")));
    assert.equal(run2.heads[0].cached, true);
    assert.equal(j2.heads[0].path, json.heads[0].path);
    for (const k of keys) assert.equal(j2.categories.hazelnut[k], json.categories.hazelnut[k], k);
    await Deno.remove(root, { recursive: true });
  },
});

Deno.test({
  name: "eval cli: a category without ground_truth is evaluated at image level, pixel metrics null",
  ...gpuTest,
  async fn() {
    const root = await smallDataset({ masks: false });
    const out = join(root, "out");
    const r = await runCli(["--data", root, "--out", out, ...FIT, "--no-png"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /no ground_truth/);
    const json = JSON.parse(await Deno.readTextFile(join(out, "results.json")));
    assert.equal(json.config.method, "snarm");
    assert.equal(json.heads[0].fitted, true);
    assert.equal(typeof json.categories.hazelnut.image_auroc, "number");
    for (const k of ["pixel_auroc", "pixel_ap", "pixel_f1max", "aupro"]) {
      assert.equal(json.categories.hazelnut[k], null, k);
    }
    await Deno.remove(root, { recursive: true });
  },
});

Deno.test("eval cli: wrong root → clear error naming it, nothing written to --out", async () => {
  const tmp = await Deno.makeTempDir();
  const out = join(tmp, "out");
  const r = await runCli(["--data", join(tmp, "nope"), "--out", out, ...SMALL]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /nope/);
  assert.throws(() => Deno.statSync(out));
  assert.deepEqual([...Deno.readDirSync(tmp)], []); // no staging folder left behind
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("eval cli: empty category (no train images) → error naming the folder", async () => {
  const root = await smallDataset();
  for (const e of Deno.readDirSync(join(root, "hazelnut/train/good"))) {
    await Deno.remove(join(root, "hazelnut/train/good", e.name));
  }
  const out = join(root, "out");
  const r = await runCli(["--data", root, "--out", out, ...SMALL]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /hazelnut/);
  assert.match(r.stderr, /train/);
  assert.throws(() => Deno.statSync(out));
  await Deno.remove(root, { recursive: true });
});

Deno.test({
  name: "eval cli: corrupt test image → error naming the file; an existing --out is left untouched",
  ...gpuTest,
  async fn() {
    const root = await smallDataset();
    const bad = join(root, "hazelnut/test/colour/01.jpg");
    const bytes = await Deno.readFile(bad);
    await Deno.writeFile(bad, bytes.subarray(0, Math.floor(bytes.length / 3))); // truncated JPEG
    const out = join(root, "out");
    await Deno.mkdir(out);
    await Deno.writeTextFile(join(out, "results.csv"), "previous run\n");
    const r = await runCli(["--data", root, "--out", out, ...FIT, "--no-png"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /01\.jpg/);
    assert.equal(await Deno.readTextFile(join(out, "results.csv")), "previous run\n");
    assert.deepEqual([...Deno.readDirSync(out)].map((e) => e.name), ["results.csv"]);
    const leftovers = [...Deno.readDirSync(root)].filter((e) => e.name.includes("partial"));
    assert.deepEqual(leftovers, []);
    await Deno.remove(root, { recursive: true });
  },
});

Deno.test("eval cli: bad option value → clear error", async () => {
  const r = await runCli(["--bank-size", "lots"]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--bank-size expects a positive integer/);
});

const TINY_HEAD =
  new URL("../../shared/fixtures/snarm_official/tiny/weights.safetensors", import.meta.url)
    .pathname;

Deno.test({
  name: "eval cli: --method snarm runs the head (tiny official weights, 32-d features) end to end",
  ...gpuTest,
  async fn() {
    const root = await smallDataset();
    const out = join(root, "out");
    const r = await runCli([
      "--data",
      root,
      "--out",
      out,
      ...SMALL,
      "--method",
      "snarm",
      "--head",
      TINY_HEAD,
      "--feature-dim",
      "32",
    ]);
    assert.equal(r.code, 0, r.stderr);
    // A given head is used as is (no fit); it records no categories, so a warning says so.
    assert.match(r.stderr, /warning: head .* was not fitted on recorded categories/);
    const json = JSON.parse(await Deno.readTextFile(join(out, "results.json")));
    assert.equal(json.config.method, "snarm");
    assert.equal(json.config.featureDim, 32);
    assert.deepEqual(
      json.heads.map((h: { fitted: boolean; path: string }) => [h.fitted, h.path]),
      [[false, TINY_HEAD]],
    );
    for (const k of ["image_auroc", "pixel_auroc", "aupro"]) {
      const v = json.categories.hazelnut[k];
      assert.ok(typeof v === "number" && v >= 0 && v <= 1, `${k} = ${v}`);
    }
    await Deno.remove(root, { recursive: true });
  },
});

Deno.test("eval cli: --method snarm with a head whose in_chans does not match the features → error naming both", async () => {
  const root = await smallDataset();
  const r = await runCli([
    "--data",
    root,
    "--out",
    join(root, "out"),
    ...SMALL,
    "--method",
    "snarm",
    "--head",
    TINY_HEAD,
  ]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /in_chans 64/);
  assert.match(r.stderr, /256-d features/);
  await Deno.remove(root, { recursive: true });
});

Deno.test("eval cli: bad fit options are refused before any work, naming the value", async () => {
  const tmp = await Deno.makeTempDir();
  const out = join(tmp, "out");
  const synth = await runCli(["--out", out, ...FIT, "--synth", "structure,glitter"]);
  assert.notEqual(synth.code, 0);
  assert.match(synth.stderr, /unknown anomaly source 'glitter'/);
  assert.match(synth.stderr, /structure, texture/); // the valid sources are listed
  const both = await runCli(["--out", out, ...FIT, "--no-crop", "--resize", "80"]);
  assert.notEqual(both.code, 0);
  assert.match(both.stderr, /--no-crop and --resize exclude each other/);
  const preset = await runCli(["--out", out, ...FIT, "--fit-preset", "huge"]);
  assert.notEqual(preset.code, 0);
  assert.match(preset.stderr, /--fit-preset must be "cpu" or "paper", got "huge"/);
  const steps = await runCli(["--out", out, ...FIT, "--fit-steps", "0"]);
  assert.notEqual(steps.code, 0);
  assert.match(steps.stderr, /--fit-steps expects a positive integer, got "0"/);
  assert.deepEqual([...Deno.readDirSync(tmp)], []); // nothing written
  assert.deepEqual([...Deno.readDirSync(FIT_CACHE)].filter((e) => e.name.includes("partial")), []);
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("eval cli: bad --method refused, --help names the fit flags, the shipped head (--init-head shipped) fits the defaults", async () => {
  const bad = await runCli(["--method", "nope", ...SMALL]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--method must be "bank" or "snarm", got "nope"/);
  const r = await runCli(["--help"]);
  assert.equal(r.code, 0);
  for (
    const flag of ["--fit-steps", "--no-crop", "--refit", "--resize", "--cache-dir", "--synth"]
  ) {
    assert.match(r.stdout, new RegExp(`${flag}\\b`), flag);
  }
  assert.match(r.stdout, /--init-head FILE\|shipped/);
  assert.match(r.stdout, /SNARM \(default\) or bank-only/);
  // The shipped head is the starting point of `--init-head shipped`: its metadata fits the defaults.
  const meta = (await readSafeTensors(new URL("../data/snarm_head.safetensors", import.meta.url)))
    .metadata;
  assert.equal(meta.backbone, "mobilenetv2");
  assert.equal(meta.feature_dim, "256");
  assert.equal(meta.image_size, "392");
  const head = await loadHead(new URL("../data/snarm_head.safetensors", import.meta.url));
  assert.equal(head.config.in_chans, 512);
});

Deno.test({
  name:
    "eval cli: --save-bank then --load-bank (per category) reuses the banks; another image size is refused",
  ...gpuTest,
  async fn() {
    const root = await smallDataset();
    const bank = join(root, "bank.safetensors");
    const a = await runCli([
      "--data",
      root,
      "--out",
      join(root, "a"),
      ...SMALL,
      "--method",
      "bank",
      "--per-category-bank",
      "--save-bank",
      bank,
    ]);
    assert.equal(a.code, 0, a.stderr);
    Deno.statSync(join(root, "bank.hazelnut.safetensors"));
    const b = await runCli([
      "--data",
      root,
      "--out",
      join(root, "b"),
      ...SMALL,
      "--method",
      "bank",
      "--per-category-bank",
      "--load-bank",
      bank,
      "--category",
      "hazelnut",
      "--category",
      "hazelnut",
    ]);
    assert.equal(b.code, 0, b.stderr);
    const ja = JSON.parse(await Deno.readTextFile(join(root, "a", "results.json")));
    const jb = JSON.parse(await Deno.readTextFile(join(root, "b", "results.json")));
    assert.deepEqual(jb.categories.hazelnut.image_auroc, ja.categories.hazelnut.image_auroc);
    assert.deepEqual(jb.categories.hazelnut.aupro, ja.categories.hazelnut.aupro);
    const c = await runCli([
      "--data",
      root,
      "--out",
      join(root, "c"),
      "--no-png",
      "--image-size",
      "160",
      "--per-category-bank",
      "--load-bank",
      bank,
    ]);
    assert.notEqual(c.code, 0);
    assert.match(c.stderr, /input size/);
    await Deno.remove(root, { recursive: true });
  },
});

Deno.test("eval cli: --out naming an existing file fails before any work", async () => {
  const tmp = await Deno.makeTempDir();
  const file = join(tmp, "afile");
  await Deno.writeTextFile(file, "x");
  const r = await runCli(["--out", file, ...SMALL]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /exists and is not a folder/);
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("eval cli: without a WebGPU adapter the default says why and scores bank-only; --method snarm fails clearly", async () => {
  const root = await smallDataset();
  try {
    const out = join(root, "out");
    const noGpu = { SNARM_NO_GPU: "1" };
    const r = await runCli(["--data", root, "--out", out, ...SMALL], noGpu);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /bank-only scoring: fitting the SNARM head needs a WebGPU adapter/);
    const json = JSON.parse(await Deno.readTextFile(join(out, "results.json")));
    assert.equal(json.config.method, "bank");
    const s = await runCli([
      "--data",
      root,
      "--out",
      join(root, "o2"),
      "--method",
      "snarm",
      ...SMALL,
    ], noGpu);
    assert.notEqual(s.code, 0);
    assert.match(
      s.stderr,
      /--method "snarm" without a --head: fitting the SNARM head needs a WebGPU/,
    );
    assert.throws(() => Deno.statSync(join(root, "o2")));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test({
  name: "eval cli: without a WebGPU adapter a cached fit of the same settings scores SNARM",
  ...gpuTest,
  async fn() {
    const root = await smallDataset();
    const cache = await Deno.makeTempDir({ prefix: "snarm_eval_nogpu_cache_" });
    try {
      const fitArgs = FIT.map((a) => a === FIT_CACHE ? cache : a);
      const fitted = await runCli([
        "--data",
        root,
        "--out",
        join(root, "a"),
        ...fitArgs,
        "--no-png",
      ]);
      assert.equal(fitted.code, 0, fitted.stderr);
      const noGpu = { SNARM_NO_GPU: "1" };
      const listing = () => [...Deno.readDirSync(cache)].map((e) => e.name).sort().join(",");
      const before = listing();
      const r = await runCli(
        ["--data", root, "--out", join(root, "b"), ...fitArgs, "--no-png"],
        noGpu,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /snarm: bank-only scoring/);
      // a cache hit writes nothing there (no lock either: a read-only shared cache serves)
      assert.equal(listing(), before);
      const [a, b] = await Promise.all(
        ["a", "b"].map(async (o) =>
          JSON.parse(await Deno.readTextFile(join(root, o, "results.json")))
        ),
      );
      assert.equal(b.config.method, "snarm");
      // the cached head scores as on the fitting run (on a real GPU that run's head engine was
      // WebGPU, here the CPU engine: f32 rounding apart)
      for (const [k, v] of Object.entries(a.categories.hazelnut)) {
        if (typeof v === "number") {
          assert.ok(
            Math.abs(b.categories.hazelnut[k] - v) <= 1e-3,
            `${k}: ${v} vs ${b.categories.hazelnut[k]}`,
          );
        }
      }
      // other settings: no cached fit, bank-only with the reason
      const other = await runCli(
        ["--data", root, "--out", join(root, "c"), ...fitArgs, "--fit-steps", "4", "--no-png"],
        noGpu,
      );
      assert.equal(other.code, 0, other.stderr);
      assert.match(other.stderr, /bank-only scoring: .*holds no fit of these settings/);
      // the fit's own bank, given without the --bank-size it was built with: the same fit
      const entry = [...Deno.readDirSync(cache)].find((e) => e.name.startsWith("fit-"))!.name;
      const noSize = fitArgs.filter((a, i) =>
        a !== "--bank-size" && fitArgs[i - 1] !== "--bank-size"
      );
      const given = await runCli(
        [
          "--data",
          root,
          "--out",
          join(root, "g"),
          ...noSize,
          "--load-bank",
          join(cache, entry, "bank.safetensors"),
          "--no-png",
        ],
        noGpu,
      );
      assert.equal(given.code, 0, given.stderr);
      assert.doesNotMatch(given.stderr, /snarm: bank-only scoring/);
      // a damaged entry (its train.json lost) is no fit either: bank-only, not a failed refit
      await Deno.remove(join(cache, entry, "train.json"));
      const damaged = await runCli(
        ["--data", root, "--out", join(root, "d"), ...fitArgs, "--no-png"],
        noGpu,
      );
      assert.equal(damaged.code, 0, damaged.stderr);
      assert.match(damaged.stderr, /bank-only scoring: .*holds no fit of these settings/);
      // --refit needs the adapter: refused, not a silent bank-only run
      const refit = await runCli(
        ["--data", root, "--out", join(root, "e"), ...fitArgs, "--refit", "--no-png"],
        noGpu,
      );
      assert.notEqual(refit.code, 0);
      assert.match(refit.stderr, /--refit needs a WebGPU adapter/);
    } finally {
      await Deno.remove(root, { recursive: true });
      await Deno.remove(cache, { recursive: true });
    }
  },
});

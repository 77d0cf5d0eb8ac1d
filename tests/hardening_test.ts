/**
 * Cases found by trying to break the outputs, shards and layouts (a hostile test and a new-user
 * walkthrough): a SIGTERM during the commit keeps the user's files; a finished part does not make
 * another part of the same --out skip; merge refuses an --out among its inputs and names the
 * settings two parts differ in; --save-bank inside a replaced entry is refused; a part with the
 * bank a --prepare-only fit saved reuses that fit; a flat mask folder shared by same-named images
 * is refused; a split ratio that leaves no training image is refused.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { gpuTest, requireGpu } from "./_gpu.ts";
import { repoPath, runDeno } from "./_run.ts";
import { loadSplit } from "../lib/data/dataset.ts";

const CLI = repoPath("cli/eval.ts");
const MERGE = repoPath("cli/merge.ts");
const DATA = repoPath("data/hazelnut_toy");
const HAZEL = join(DATA, "hazelnut");
const BANK = ["--data", DATA, "--method", "bank", "--image-size", "64", "--bank-size", "300"];

Deno.test("hardening: SIGTERM while the commit carries the user's files keeps them (next run finishes)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "snarm_hard_" });
  const out = join(dir, "out");
  assert.equal((await runDeno([CLI, ...BANK, "--no-png", "--out", out])).code, 0);
  await Deno.writeTextFile(join(out, "mine.txt"), "keep\n");
  const p = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...BANK, "--no-png", "--out", out],
    env: { XDG_RUNTIME_DIR: "/tmp", SNARM_FAULT: "commit-carry:sleep5000" },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  // Wait until the carry happened (mine.txt moved into the stage), then SIGTERM.
  for (let i = 0; i < 400; i++) {
    const moved = [...Deno.readDirSync(dir)].some((e) => {
      try {
        return e.name.startsWith("out.stage-") && Deno.statSync(join(dir, e.name, "mine.txt"));
      } catch {
        return false;
      }
    });
    if (moved) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  p.kill("SIGTERM");
  await p.output();
  const next = await runDeno([CLI, ...BANK, "--no-png", "--out", out]);
  assert.equal(next.code, 0, next.stderr);
  assert.equal(await Deno.readTextFile(join(out, "mine.txt")), "keep\n");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("hardening: parts of one --out, merge into an input, settings named, --save-bank in a replaced entry", async () => {
  const dir = await Deno.makeTempDir({ prefix: "snarm_hard_" });
  const bank = join(dir, "bank.safetensors");
  assert.equal(
    (await runDeno([CLI, ...BANK, "--prepare-only", "--save-bank", bank, "--out", join(dir, "p")]))
      .code,
    0,
  );
  const part = (i: number, out: string, extra: string[] = []) =>
    runDeno([CLI, ...BANK, "--load-bank", bank, "--shard", `${i}/2`, "--out", out, ...extra]);
  // Part 0 finished in sx does not make part 1 in the same folder skip.
  assert.equal((await part(0, join(dir, "sx"))).code, 0);
  const p1 = await part(1, join(dir, "sx"));
  assert.equal(p1.code, 0, p1.stderr);
  assert.doesNotMatch(p1.stderr, /already complete/);
  // merge --out among the inputs is refused.
  assert.equal((await part(0, join(dir, "a"))).code, 0);
  assert.equal((await part(1, join(dir, "b"), ["--seed", "3"])).code, 0);
  const into = await runDeno([MERGE, join(dir, "a"), join(dir, "b"), "--out", join(dir, "a")]);
  assert.equal(into.code, 1);
  assert.match(into.stderr, /is one of the shard folders; merge into another folder/);
  // Parts with other settings: the differing one is named.
  const mixed = await runDeno([MERGE, join(dir, "a"), join(dir, "b"), "--out", join(dir, "m")]);
  assert.equal(mixed.code, 1);
  assert.match(mixed.stderr, /was run with other settings than .* \(numbers differs\)/);
  // --save-bank inside an entry the run replaces.
  const sb = await runDeno([
    CLI,
    ...BANK,
    "--out",
    join(dir, "o"),
    "--save-bank",
    join(dir, "o", "maps", "b.safetensors"),
  ]);
  assert.equal(sb.code, 1);
  assert.match(sb.stderr, /--save-bank .* lies in maps, which this run replaces in --out/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name:
    "hardening: a part given the bank a --prepare-only fit saved reuses that fit (no second fit)",
  ...gpuTest,
  async fn() {
    requireGpu();
    const dir = await Deno.makeTempDir({ prefix: "snarm_hard_fit_" });
    const fit = ["--data", DATA, "--image-size", "64", "--bank-size", "300", "--fit-steps", "3"]
      .concat(["--fit-images", "3", "--cache-dir", join(dir, "cache"), "--no-png"]);
    const bank = join(dir, "bank.safetensors");
    const prep = await runDeno([
      CLI,
      ...fit,
      "--prepare-only",
      "--save-bank",
      bank,
      "--out",
      join(dir, "p"),
    ]);
    assert.equal(prep.code, 0, prep.stderr);
    const part = await runDeno([
      CLI,
      ...fit,
      "--load-bank",
      bank,
      "--shard",
      "0/2",
      "--out",
      join(dir, "s0"),
    ]);
    assert.equal(part.code, 0, part.stderr);
    assert.match(part.stdout + part.stderr, /using the cached fit/);
    assert.equal(
      [...Deno.readDirSync(join(dir, "cache"))].filter((e) => e.name.startsWith("fit-")).length,
      1,
    );
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("hardening: Folder datasets — a flat mask folder shared by same-named images, a ratio leaving no training image", async () => {
  const root = await Deno.makeTempDir({ prefix: "snarm_hard_fold_" });
  const cp = async (src: string, dst: string) => {
    await Deno.mkdir(join(dst, ".."), { recursive: true });
    await Deno.copyFile(src, dst);
  };
  for (const f of ["00", "01", "02", "03"]) {
    await cp(join(HAZEL, `train/good/${f}.jpg`), join(root, `good/${f}.jpg`));
  }
  for (const t of ["typeA", "typeB"]) {
    await cp(join(HAZEL, "test/colour/00.jpg"), join(root, `${t}/00.jpg`));
  }
  await cp(join(HAZEL, "ground_truth/colour/00_mask.png"), join(root, "mask/00_mask.png"));
  assert.throws(
    () => loadSplit(root, "x"),
    /this mask's name fits .*typeA\/00\.jpg and images in .*typeB; .*\(one sub-folder per anomalous folder\)/,
  );
  // One sub-folder per type is unambiguous.
  for (const t of ["typeA", "typeB"]) {
    await cp(join(root, "mask/00_mask.png"), join(root, `mask/${t}/00_mask.png`));
  }
  assert.equal(loadSplit(root, "x").test.filter((r) => r.maskPath?.includes("typeB/")).length, 1);
  assert.throws(
    () =>
      loadSplit(root, "x", {
        folder: {
          normalDir: join(root, "good"),
          abnormalDirs: [join(root, "typeA")],
          splitRatio: 0.99,
        },
      }),
    /`splitRatio` 0\.99 sends all 4 normal images to the test set and leaves none for training/,
  );
  await Deno.remove(root, { recursive: true });
});

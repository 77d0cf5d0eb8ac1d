/**
 * Crash safety of `deno task eval` outputs (issue #13): real SIGKILLs of a child run at named
 * points (SNARM_FAULT, lib/util/fault.ts) — during the bank build, the bank write and each step of
 * the commit — then the invariant: `--out` holds the complete old or the complete new outputs
 * (or, killed between the two renames of the swap, is recovered to the new ones), a user's file
 * in `--out` survives, and the next run removes every leftover, saying so. Also: two runs on one
 * `--out` (the second refuses at once, naming the first's PID), a stale lock taken over, a
 * training `--out` locked, and byte-identical outputs for the same inputs and seed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { acquireLock, recoverOutput } from "../lib/io/commit.ts";
import { encodePng } from "../lib/io/heatmap.ts";
import { runDeno } from "./_run.ts";

const CLI = new URL("../cli/eval.ts", import.meta.url).pathname;
const TRAIN = new URL("../cli/train.ts", import.meta.url).pathname;
const DATA = new URL("../data/hazelnut_toy", import.meta.url).pathname;
const BASE = ["--data", DATA, "--method", "bank", "--image-size", "64"];
const OLD = [...BASE, "--bank-size", "200"];
const NEW = [...BASE, "--bank-size", "300"];
const td = new TextDecoder();

function evalCmd(args: string[], env: Record<string, string> = {}) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { XDG_RUNTIME_DIR: "/tmp", ...env },
  });
}

/** `deno task eval <args…>` as a subprocess (tests/_run.ts). */
const run = (args: string[], env: Record<string, string> = {}) => runDeno([CLI, ...args], env);

/** A fingerprint of a complete output folder: results files and the map file names. */
async function fingerprint(out: string): Promise<string | null> {
  try {
    const json = await Deno.readTextFile(join(out, "results.json"));
    const csv = await Deno.readTextFile(join(out, "results.csv"));
    await Deno.stat(join(out, "run.json"));
    const maps = [...Deno.readDirSync(join(out, "maps", "hazelnut"))].map((e) => e.name).sort();
    if (maps.length !== 23) return `incomplete maps (${maps.length})`;
    return JSON.stringify([json, csv, maps]);
  } catch (e) {
    return e instanceof Deno.errors.NotFound ? null : `unreadable: ${e}`;
  }
}

/** Entries beside `out` that a finished run must not leave (stage, old, partial, temp, lock). */
function debris(parent: string): string[] {
  return [...Deno.readDirSync(parent)].map((e) => e.name)
    .filter((n) => /\.(stage|old|partial|tmp|lock)/.test(n));
}

// Reference outputs of the old and the new settings, computed once.
const refDir = Deno.makeTempDirSync({ prefix: "snarm_crash_ref_" });
let refOld: string | null = null, refNew: string | null = null;
async function refs() {
  if (refOld) return;
  assert.equal((await run([...OLD, "--out", join(refDir, "old")])).code, 0);
  assert.equal((await run([...NEW, "--out", join(refDir, "new")])).code, 0);
  refOld = await fingerprint(join(refDir, "old"));
  refNew = await fingerprint(join(refDir, "new"));
  assert.ok(refOld && refNew && refOld !== refNew);
}

const CASES: Array<{ point: string; after: "old" | "new" | "absent"; recovered: "old" | "new" }> = [
  { point: "bank-build", after: "old", recovered: "old" },
  { point: "bank-write", after: "old", recovered: "old" },
  { point: "before-commit", after: "old", recovered: "old" },
  { point: "commit-marked", after: "old", recovered: "new" },
  { point: "commit-carry", after: "old", recovered: "new" },
  { point: "commit-aside", after: "absent", recovered: "new" },
  { point: "commit-swapped", after: "new", recovered: "new" },
];

for (const c of CASES) {
  Deno.test(`crash: SIGKILL at ${c.point} → --out ${c.after}, recovered to ${c.recovered}, no debris`, async () => {
    await refs();
    const parent = await Deno.makeTempDir({ prefix: "snarm_crash_" });
    const out = join(parent, "out");
    const bank = join(parent, "bank.safetensors");
    assert.equal((await run([...OLD, "--out", out, "--save-bank", bank])).code, 0);
    await Deno.writeTextFile(join(out, "notes.txt"), "mine\n"); // a user's file in --out
    const bankBefore = await Deno.readFile(bank);

    const killed = await run([...NEW, "--out", out, "--save-bank", bank], {
      SNARM_FAULT: c.point,
    });
    assert.equal(killed.signal, "SIGKILL", `expected a SIGKILL at ${c.point}: ${killed.stderr}`);
    const now = await fingerprint(out);
    const want = { old: refOld, new: refNew, absent: null }[c.after];
    assert.equal(now, want, `after the kill at ${c.point}, --out holds neither old nor new`);
    // The bank file is the old one or the new one, never a partial file.
    const b = await Deno.readFile(bank);
    assert.ok(b.length > 0 && (c.point === "bank-write" ? b.length === bankBefore.length : true));
    assert.ok(debris(parent).length > 0, "a kill leaves a lock or a stage");

    // Recovery (what every run does first, under the lock).
    const notes: string[] = [];
    await recoverOutput(out, (s) => notes.push(s));
    assert.equal(await fingerprint(out), c.recovered === "old" ? refOld : refNew);
    if (c.point !== "bank-write" && c.point !== "bank-build") {
      assert.equal(await Deno.readTextFile(join(out, "notes.txt")), "mine\n");
    }
    // The next run takes over the dead lock, removes the rest (saying so) and commits cleanly.
    const next = await run([...NEW, "--out", out, "--save-bank", bank]);
    assert.equal(next.code, 0, next.stderr);
    assert.match(next.stderr, /took over the lock on --out .* from process \d+/);
    if (c.point === "bank-write") {
      assert.match(next.stderr, /removed .*bank\.safetensors\.tmp-\d+-\w+, left by process \d+/);
    }
    assert.equal(await fingerprint(out), refNew);
    assert.equal(await Deno.readTextFile(join(out, "notes.txt")), "mine\n");
    assert.deepEqual(debris(parent), []);
    await Deno.remove(parent, { recursive: true });
  });
}

Deno.test("lock: a second run on the same --out refuses at once naming the first's PID; the first completes", async () => {
  await refs();
  const parent = await Deno.makeTempDir({ prefix: "snarm_lock_" });
  const out = join(parent, "out");
  const first = evalCmd([...NEW, "--out", out], { SNARM_FAULT: "before-commit:sleep6000" })
    .spawn();
  try {
    for (let i = 0; i < 300 && debris(parent).every((n) => !n.endsWith(".lock")); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const t0 = performance.now();
    const second = await run([...OLD, "--out", out]);
    assert.equal(second.code, 1);
    assert.match(second.stderr, new RegExp(`--out ${out} is in use by snarm process ${first.pid}`));
    assert.ok(performance.now() - t0 < 60_000);
  } finally {
    const r = await first.output();
    assert.equal(r.code, 0, td.decode(r.stderr));
  }
  assert.equal(await fingerprint(out), refNew);
  assert.deepEqual(debris(parent), []);
  await Deno.remove(parent, { recursive: true });
});

Deno.test("lock: a training --out held by a live process is refused naming it", async () => {
  const parent = await Deno.makeTempDir({ prefix: "snarm_lock_train_" });
  const out = join(parent, "train");
  const lock = await acquireLock(out, { what: "test" });
  try {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", TRAIN, "--data", DATA, "--out", out, "--steps", "1"],
      stdout: "piped",
      stderr: "piped",
      env: { XDG_RUNTIME_DIR: "/tmp" },
    }).output();
    assert.equal(r.code, 1);
    assert.match(td.decode(r.stderr), new RegExp(`is in use by snarm process ${Deno.pid}`));
  } finally {
    lock.release();
  }
  assert.deepEqual(debris(parent), []);
  await Deno.remove(parent, { recursive: true });
});

Deno.test("determinism: the same inputs and seed give byte-identical results, maps and bank", async () => {
  const parent = await Deno.makeTempDir({ prefix: "snarm_det_" });
  const files = async (dir: string) => {
    const acc: Record<string, Uint8Array> = {};
    const walk = async (d: string, rel: string) => {
      for await (const e of Deno.readDir(d)) {
        const p = join(d, e.name), r = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory) await walk(p, r);
        else if (e.name !== "run.json") acc[r] = await Deno.readFile(p); // timings: side file
      }
    };
    await walk(dir, "");
    return acc;
  };
  const args = [...BASE, "--bank-size", "250", "--seed", "5"];
  for (const k of ["a", "b"]) {
    const r = await run([
      ...args,
      "--out",
      join(parent, k),
      "--save-bank",
      join(parent, `${k}.st`),
    ]);
    assert.equal(r.code, 0, r.stderr);
  }
  const a = await files(join(parent, "a")), b = await files(join(parent, "b"));
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
  assert.ok(Object.keys(a).length >= 25); // results.json, results.csv, 23 maps
  for (const k of Object.keys(a)) assert.deepEqual(a[k], b[k], `${k} differs between the runs`);
  assert.deepEqual(
    await Deno.readFile(join(parent, "a.st")),
    await Deno.readFile(join(parent, "b.st")),
  );
  await Deno.remove(parent, { recursive: true });
});

Deno.test("size limits: --image-size bounded; a run over the machine's memory is refused before any work, a large one warned", async () => {
  const out = await Deno.makeTempDir({ prefix: "snarm_mem_" });
  for (const v of ["1e9", "100000", "4097", "16"]) {
    const r = await run([...BASE.slice(0, 4), "--image-size", v, "--out", out]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(`--image-size expects an integer in \\[32, 4096\\], got "${v}"`),
    );
  }
  const big = [...BASE.slice(0, 4), "--image-size", "1024", "--out", out];
  const refused = await run(big, { SNARM_MEMORY_LIMIT: "600M" });
  assert.equal(refused.code, 1);
  assert.match(
    refused.stderr,
    /needs more memory than the machine has: estimated [\d.]+ GB \(largest: test maps [\d.]+ GB, set by --image-size\) for 1024² input, 23 test images.*SNARM_MEMORY_LIMIT: 0\.59 GB\. Lower --image-size/,
  );
  assert.doesNotMatch(refused.stderr, /embed train/, "refused before any work");
  const warned = await run([...BASE, "--bank-size", "200", "--out", out], {
    SNARM_MEMORY_LIMIT: "700M",
  });
  assert.equal(warned.code, 0, warned.stderr);
  assert.match(
    warned.stderr,
    /warning: estimated 0\.\d\d GB .* over 50% of the 0\.68 GB available/,
  );
  await Deno.remove(out, { recursive: true });
});

Deno.test("smaller items: a FIFO named like an image is skipped with a warning; a tiny image is warned; a non-finite bank value names the file", async () => {
  const root = await Deno.makeTempDir({ prefix: "snarm_small_" });
  const cat = join(root, "nut");
  const src = join(DATA, "hazelnut");
  await Deno.mkdir(join(cat, "train", "good"), { recursive: true });
  await Deno.mkdir(join(cat, "test", "good"), { recursive: true });
  await Deno.mkdir(join(cat, "test", "crack"), { recursive: true });
  for (const f of ["00", "01", "02"]) {
    await Deno.copyFile(join(src, "train/good", `${f}.jpg`), join(cat, "train/good", `${f}.jpg`));
  }
  await Deno.copyFile(join(src, "test/good/04.jpg"), join(cat, "test/good/04.jpg"));
  await Deno.copyFile(join(src, "test/colour/00.jpg"), join(cat, "test/crack/00.jpg"));
  // A 1×1 PNG as a test image.
  const tiny = encodePng(new Uint8Array([128, 128, 128]), 1, 1);
  await Deno.writeFile(join(cat, "test/crack/01.png"), tiny);
  const mk = new Deno.Command("mkfifo", { args: [join(cat, "test/good/05.png")] }).outputSync();
  assert.equal(mk.code, 0);
  const out = join(root, "out"), bank = join(root, "bank.safetensors");
  const r = await run([
    "--data",
    root,
    "--method",
    "bank",
    "--image-size",
    "64",
    "--out",
    out,
    "--save-bank",
    bank,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /skipping .*test\/good\/05\.png: not a regular file \(FIFO/);
  assert.match(r.stderr, /warning: .*test\/crack\/01\.png is 1×1 px; upscaled to 64×64/);
  // A NaN written into the saved bank: --load-bank names the file, the row and the column.
  const bytes = await Deno.readFile(bank);
  const hl = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  new DataView(bytes.buffer).setFloat32(8 + hl + 4 * 5, NaN, true);
  await Deno.writeFile(bank, bytes);
  const nan = await run([
    "--data",
    root,
    "--method",
    "bank",
    "--image-size",
    "64",
    "--out",
    out,
    "--load-bank",
    bank,
  ]);
  assert.equal(nan.code, 1);
  assert.match(
    nan.stderr,
    new RegExp(`bank ${bank}: tensor features has a non-finite value \\(NaN\\) at row 0, column 5`),
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("commit: the new --out keeps the old folder's permission bits and the files this tool does not own", async () => {
  const { commitFolder, stageFolder } = await import("../lib/io/commit.ts");
  const root = await Deno.makeTempDir({ prefix: "snarm-commit-mode-" });
  try {
    const out = join(root, "out");
    await Deno.mkdir(out);
    await Deno.writeTextFile(join(out, "notes.txt"), "mine");
    await Deno.writeTextFile(join(out, "results.json"), "old");
    await Deno.chmod(out, 0o2750);
    const stage = await stageFolder(out);
    await Deno.writeTextFile(join(stage, "results.json"), "new");
    await commitFolder(stage, out, { replace: ["results.json"] });
    assert.equal((await Deno.stat(out)).mode! & 0o7777, 0o2750, "mode carried over");
    assert.equal(await Deno.readTextFile(join(out, "results.json")), "new");
    assert.equal(await Deno.readTextFile(join(out, "notes.txt")), "mine");
  } finally {
    await Deno.chmod(join(root, "out"), 0o755).catch(() => {});
    await Deno.remove(root, { recursive: true });
  }
});

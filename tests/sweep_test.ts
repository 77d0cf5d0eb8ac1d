/**
 * Training sweeps (issue #14 item 4): two `deno task train` runs that differ in the seed (as the
 * array tasks of slurm/train_sweep.sbatch do), summarised by `deno task sweep-summary` into one
 * table: the differing setting (seed), the loss and the validation of each run.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { gpuTest, requireGpu } from "./_gpu.ts";
import { runDeno } from "./_run.ts";

const HAZEL = new URL("../data/hazelnut_toy/hazelnut", import.meta.url).pathname;

const run = runDeno;

Deno.test({
  name: "sweep: two seeds trained, one summary table (settings that differ, loss, validation)",
  ...gpuTest,
  async fn() {
    requireGpu();
    const root = await Deno.makeTempDir({ prefix: "snarm_sweep_" });
    const cat = join(root, "data", "hazelnut");
    await Deno.mkdir(join(cat, "train/good"), { recursive: true });
    for (const f of ["00", "01", "02", "03", "06", "07"]) {
      await Deno.copyFile(join(HAZEL, `train/good/${f}.jpg`), join(cat, `train/good/${f}.jpg`));
    }
    const train = new URL("../cli/train.ts", import.meta.url).pathname;
    for (const seed of [0, 1]) {
      const r = await run([
        train,
        "--data",
        join(root, "data"),
        "--out",
        join(root, `run-${seed}`),
        "--seed",
        String(seed),
        "--steps",
        "4",
        "--image-size",
        "64",
        "--bank-size",
        "300",
        "--val-fraction",
        "0.3",
        "--val-every",
        "2",
        "--no-cache",
      ]);
      assert.equal(r.code, 0, r.stderr);
    }
    const summary = new URL("../cli/sweep_summary.ts", import.meta.url).pathname;
    const out = join(root, "summary.csv");
    const s = await run([summary, join(root, "run-0"), join(root, "run-1"), "--out", out]);
    assert.equal(s.code, 0, s.stderr);
    const lines = (await Deno.readTextFile(out)).trim().split("\n");
    const head = lines[0].split(",");
    assert.equal(lines.length, 3);
    assert.deepEqual(head.slice(0, 2), ["run", "seed"], "only the differing setting is a column");
    for (const k of ["step", "final_loss", "best_val", "best_step", "train_s"]) {
      assert.ok(head.includes(k), k);
    }
    const rows = lines.slice(1).map((l) =>
      Object.fromEntries(l.split(",").map((v, i) => [head[i], v]))
    );
    assert.deepEqual(rows.map((r) => r.seed), ["0", "1"]);
    assert.deepEqual(rows.map((r) => r.step), ["4", "4"]);
    for (const r of rows) {
      assert.ok(Number(r.final_loss) > 0 && Number.isFinite(Number(r.final_loss)));
      assert.ok(Number.isFinite(Number(r.best_val)));
    }
    assert.notEqual(rows[0].final_loss, rows[1].final_loss, "seeds differ");
    await Deno.remove(root, { recursive: true });
  },
});

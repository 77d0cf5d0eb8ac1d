/**
 * Sharded evaluation on a real one-node Slurm cluster (issue #14): `.ci/run` installs slurm-wlm
 * and munge; this test starts munged, slurmctld and slurmd on 127.0.0.1
 * (slurm/local_cluster.sh), prepares a bank once (`--prepare-only --save-bank`), submits
 * slurm/eval_cpu.sbatch as an array of 3 on the embedded data, merges, and checks that
 * results.json/results.csv/images.csv are byte-identical to the unsharded run's; then cancels one
 * part mid-run (scancel), re-submits the array (the finished parts skip) and merges again to the
 * same bytes. The daemons are stopped by their pids. Also: merge refuses a missing or foreign part.
 * Outside CI the test is skipped where Slurm is not installed or the user is not root.
 */
import assert from "node:assert/strict";
import { join } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const DATA = join(ROOT, "data/hazelnut_toy");
const td = new TextDecoder();
const haveSlurm = (() => {
  try {
    // `sbatch --version` needs a configuration; the binaries' presence is what counts here.
    return ["sbatch", "slurmctld", "slurmd", "munged"].every((b) =>
      new Deno.Command("sh", { args: ["-c", `command -v ${b}`] }).outputSync().success
    ) && Deno.uid() === 0;
  } catch {
    return false;
  }
})();
const inCi = Deno.env.get("CI") === "true";

async function sh(cmd: string, args: string[], env: Record<string, string> = {}) {
  const r = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  return { code: r.code, out: td.decode(r.stdout), err: td.decode(r.stderr) };
}

function deno(args: string[], env: Record<string, string> = {}) {
  return sh(Deno.execPath(), ["run", "-A", ...args], { XDG_RUNTIME_DIR: "/tmp", ...env });
}

const SMALL = ["--data", DATA, "--method", "bank", "--image-size", "64", "--bank-size", "300"];

async function same(a: string, b: string) {
  for (const f of ["results.json", "results.csv", "images.csv"]) {
    assert.equal(
      await Deno.readTextFile(join(a, f)),
      await Deno.readTextFile(join(b, f)),
      `${f} of ${b} differs from ${a}`,
    );
  }
}

Deno.test({
  name:
    "slurm: array of 3 shards + merge = unsharded run; a cancelled part re-submitted gives the same",
  ignore: !haveSlurm && !inCi,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    assert.ok(haveSlurm, "Slurm (slurm-wlm, munge) and root are needed in CI");
    const dir = await Deno.makeTempDir({ prefix: "snarm_slurm_" });
    const cluster = join(dir, "cluster");
    const start = await sh(join(ROOT, "slurm/local_cluster.sh"), ["start", cluster]);
    assert.equal(start.code, 0, start.err + start.out);
    const env = { SLURM_CONF: join(cluster, "slurm.conf") };
    try {
      // Shared inputs, prepared once; the unsharded reference with the same bank.
      const bank = join(dir, "bank.safetensors");
      const prep = await deno([
        join(ROOT, "cli/eval.ts"),
        ...SMALL,
        "--prepare-only",
        "--save-bank",
        bank,
        "--out",
        join(dir, "prep"),
      ]);
      assert.equal(prep.code, 0, prep.err);
      const ref = join(dir, "ref");
      const full = await deno([
        join(ROOT, "cli/eval.ts"),
        ...SMALL,
        "--load-bank",
        bank,
        "--no-png",
        "--out",
        ref,
      ]);
      assert.equal(full.code, 0, full.err);

      const submit = (
        out: string,
        extra: string[],
        more: Record<string, string> = {},
        array = "0-2",
      ) =>
        sh("sbatch", [
          ...extra,
          `--array=${array}`,
          "--cpus-per-task=1",
          "--mem=2000",
          `--output=${out}/eval-%a.log`,
          join(ROOT, "slurm/eval_cpu.sbatch"),
        ], {
          ...env,
          SNARM_DIR: ROOT,
          SNARM_OUT: out,
          SNARM_EVAL_ARGS: [...SMALL, "--load-bank", bank].join(" "),
          ...more,
        });
      const merge = (out: string) =>
        deno([
          join(ROOT, "cli/merge.ts"),
          ...[0, 1, 2].map((i) => join(out, `shard-${i}`)),
          "--out",
          join(out, "merged"),
        ]);

      // 1. An array of 3, waited for, then merged: identical to the unsharded run.
      const run1 = join(dir, "run1");
      await Deno.mkdir(run1);
      const t0 = performance.now();
      const s1 = await submit(run1, ["--wait"]);
      assert.equal(s1.code, 0, s1.err + s1.out);
      const tArray = (performance.now() - t0) / 1000;
      const m1 = await merge(run1);
      assert.equal(m1.code, 0, m1.err);
      await same(ref, join(run1, "merged"));
      console.log(`slurm: array of 3 + merge in ${tArray.toFixed(1)} s (scheduling included)`);

      // 2. Part 1 cancelled mid-run, the array re-submitted: finished parts skip, merge the same.
      const run2 = join(dir, "run2");
      await Deno.mkdir(run2);
      const s2 = await submit(run2, ["--parsable"], { SNARM_FAULT: "before-commit:sleep15000" });
      assert.equal(s2.code, 0, s2.err);
      const job = s2.out.trim().split(";")[0];
      let state = "";
      for (let i = 0; i < 600 && state !== "RUNNING"; i++) {
        state = (await sh("squeue", ["-h", "-j", `${job}_1`, "-o", "%T"], env)).out.trim();
        if (state !== "RUNNING") await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(state, "RUNNING", "part 1 started");
      await new Promise((r) => setTimeout(r, 3000)); // well inside the part's run
      assert.equal((await sh("scancel", [`${job}_1`], env)).code, 0);
      for (let i = 0; i < 1200; i++) {
        if (!(await sh("squeue", ["-h", "-j", job], env)).out.trim()) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      const done = (i: number) =>
        Deno.stat(join(run2, `shard-${i}`, "shard.json")).then(() => true, () => false);
      assert.deepEqual([await done(0), await done(1), await done(2)], [true, false, true]);
      // only the failed task re-submitted: part 1 of 3 (SNARM_SHARDS; the array alone says 1 of 1)
      const s1b = await submit(run2, ["--wait"], { SNARM_SHARDS: "3" }, "1");
      assert.equal(s1b.code, 0, s1b.err + s1b.out);
      assert.deepEqual([await done(0), await done(1), await done(2)], [true, true, true]);
      const s3 = await submit(run2, ["--wait"]);
      assert.equal(s3.code, 0, s3.err + s3.out);
      for (const i of [0, 1, 2]) {
        assert.match(
          await Deno.readTextFile(join(run2, `eval-${i}.log`)),
          new RegExp(`shard ${i}/3 is already complete`),
        );
      }
      const m2 = await merge(run2);
      assert.equal(m2.code, 0, m2.err);
      await same(ref, join(run2, "merged"));

      // 3. Merge refuses a missing part and a part of another run.
      const miss = await deno([
        join(ROOT, "cli/merge.ts"),
        join(run1, "shard-0"),
        join(run1, "shard-2"),
        "--out",
        join(dir, "m3"),
      ]);
      assert.equal(miss.code, 1);
      assert.match(miss.err, /shard\(s\) 1\/3 missing \(have 0\/3, 2\/3\)/);
    } finally {
      const stop = await sh(join(ROOT, "slurm/local_cluster.sh"), ["stop", cluster]);
      assert.equal(stop.code, 0, stop.err);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

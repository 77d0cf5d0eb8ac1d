/**
 * `deno task sweep-summary RUN_DIR… [--out summary.csv]`: one table of several `deno task train`
 * runs (a sweep, e.g. slurm/train_sweep.sbatch): the settings that differ between the runs, the
 * step reached, the mean loss of the last 10 % of steps, the best validation score and its step,
 * and the wall times — from each run's train.json and loss.csv.
 * @module
 */
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import * as aq from "npm:arquero@8.0.3";
import { writeFileAtomic } from "../lib/io/commit.ts";

/** One run's row. */
export type SweepRow = Record<string, string | number | null>;

/**
 * Rows of the runs in `dirs`: `run` (folder), every setting whose value differs between the runs
 * (JSON for non-scalars), `step`, `final_loss`, `best_val` (best validation score; null without
 * validation), `best_step`, `train_s`, `prep_s`.
 * @throws {Error} naming a folder without a readable train.json.
 */
export async function sweepRows(dirs: string[]): Promise<SweepRow[]> {
  const runs = [];
  for (const d of dirs) {
    let t;
    try {
      t = JSON.parse(await Deno.readTextFile(join(d, "train.json")));
    } catch (e) {
      throw new Error(
        `${d}: no readable train.json (${(e as Error).message}); a deno task train --out?`,
      );
    }
    if (t === null || typeof t !== "object" || typeof t.settings !== "object" || !t.settings) {
      throw new Error(`${d}/train.json is not a deno task train record (no "settings" object)`);
    }
    let lossTail: number | null = null;
    try {
      const lines = (await Deno.readTextFile(join(d, "loss.csv"))).trim().split("\n").slice(1);
      const tail = lines.slice(-Math.max(1, Math.floor(lines.length / 10)));
      lossTail = tail.reduce((a, l) => a + Number(l.split(",")[2]), 0) / tail.length;
    } catch { /* no loss.csv */ }
    runs.push({ d, t, lossTail });
  }
  const flat = (s: Record<string, unknown>) =>
    Object.fromEntries(
      Object.entries(s ?? {}).map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : v]),
    );
  const settings = runs.map((r) => flat(r.t.settings));
  const keys = [...new Set(settings.flatMap((s) => Object.keys(s)))].filter((k) =>
    new Set(settings.map((s) => String(s[k]))).size > 1
  );
  return runs.map((r, i) => {
    const val = (r.t.validation ?? []) as Array<{ step: number; score: number }>;
    const best = val.reduce<{ step: number; score: number } | null>(
      (a, v) => (a === null || v.score > a.score ? v : a),
      null,
    );
    return {
      run: r.d,
      ...Object.fromEntries(keys.map((k) => [k, (settings[i][k] ?? null) as string | number])),
      step: r.t.step ?? null,
      final_loss: r.lossTail,
      best_val: best ? best.score : null,
      best_step: r.t.bestStep ?? null,
      train_s: r.t.trainSeconds ?? null,
      prep_s: r.t.prepSeconds ?? null,
    };
  });
}

async function main() {
  const { values, positionals } = parseArgs({
    options: { out: { type: "string" }, help: { type: "boolean", default: false } },
    allowPositionals: true,
  });
  if (values.help || !positionals.length) {
    console.log("deno task sweep-summary RUN_DIR... [--out summary.csv]");
    if (!positionals.length && !values.help) Deno.exit(2);
    return;
  }
  const cwd = Deno.env.get("INIT_CWD") ?? Deno.cwd();
  const rows = await sweepRows(positionals.map((p) => resolve(cwd, p)));
  const table = aq.from(rows);
  table.print({ limit: Infinity });
  if (values.out) {
    const out = resolve(cwd, values.out);
    await writeFileAtomic(out, table.toCSV() + "\n");
    console.error(`sweep-summary: ${rows.length} run${rows.length === 1 ? "" : "s"}; wrote ${out}`);
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`sweep-summary: error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}

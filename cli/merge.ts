/**
 * `deno task merge SHARD_OUT_1 … SHARD_OUT_N --out OUT`: merge the parts of a sharded evaluation
 * (`deno task eval --shard I/N`) into the results an unsharded run writes (results.csv,
 * results.json, images.csv; `--save-maps` also the merged raw maps). Checks that the parts are
 * complete, disjoint and of one request (lib/eval/shard.ts), naming the missing or mismatched one.
 * @module
 */
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import {
  acquireLock,
  commitFolder,
  commitTarget,
  discardStage,
  recoverOutput,
  stageFolder,
} from "../lib/io/commit.ts";
import { mergeShards } from "../lib/eval/shard.ts";
import { writeRawMaps, writeResults } from "../lib/eval/results.ts";
import { cliMessage } from "../lib/util/errors.ts";

const HELP = `deno task merge SHARD_OUT... --out OUT [--save-maps]

Merges the --out folders of the N parts of a sharded deno task eval --shard I/N run into OUT:
results.csv, results.json and images.csv as an unsharded run writes them (exact f32 maps, so the
metrics are identical). Refuses missing, duplicate or mismatched parts, naming them.
`;

async function main() {
  const { values, positionals } = parseArgs({
    options: {
      out: { type: "string" },
      "save-maps": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    allowPositionals: true,
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const cwd = Deno.env.get("INIT_CWD") ?? Deno.cwd();
  if (!values.out) throw new Error("--out OUT is required");
  if (!positionals.length) throw new Error("give the shard output folders to merge");
  const out = commitTarget(resolve(cwd, values.out));
  // A shell glob over the parts (runs/shard-*) also matches what runs leave beside them: a lock
  // file, a stage or old folder of a killed part. Those are not parts.
  const dirs = positionals.map((p) => resolve(cwd, p)).filter((d) => {
    const debris = /\.(lock|stage-\d+|old-\d+|partial-\d+)$/.test(d);
    if (debris) console.error(`snarm merge: skipping ${d} (left beside a part, not a part)`);
    return !debris;
  });
  if (dirs.includes(out)) {
    throw new Error(`--out ${out} is one of the shard folders; merge into another folder`);
  }
  const t0 = performance.now();
  const lock = await acquireLock(out, { what: `--out ${out}` });
  let merged;
  try {
    await recoverOutput(out);
    const stage = await stageFolder(out);
    try {
      // Each category's merged maps come from the one concatenation the metrics use.
      merged = await mergeShards(dirs, async (category, raw) => {
        if (!values["save-maps"]) return;
        await Deno.mkdir(join(stage, "raw_maps"), { recursive: true });
        await writeRawMaps(join(stage, "raw_maps", `${category}.safetensors`), raw);
      });
      console.log(await writeResults(stage, merged.base, merged.categories, merged.images));
      await commitFolder(stage, out, {
        replace: ["results.json", "results.csv", "images.csv", "raw_maps"],
      });
    } finally {
      discardStage(stage);
    }
  } finally {
    lock.release();
  }
  console.error(
    `snarm merge: ${merged.count} shards, ${merged.images.length} test images, ` +
      `${merged.categories.length} ${
        merged.categories.length === 1 ? "category" : "categories"
      } in ${((performance.now() - t0) / 1000).toFixed(1)} s; ` +
      `wrote ${out}/results.csv, results.json, images.csv`,
  );
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(
      `snarm merge: error: ${cliMessage(e, { loadBankPath: "--load-bank" }, ["out", "shard"])}`,
    );
    Deno.exit(1);
  }
}

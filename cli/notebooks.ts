/**
 * `deno task notebooks`: execute every notebook in notebooks/ headless (jupyter nbconvert with the
 * Deno kernel) and fail on any cell error, an unexecuted cell, or a stored notebook that carries
 * outputs. Ends with `notebooks: N passed, M failed`.
 *
 * Options: --out DIR (keep the executed copies there) --only NAME (repeatable) --timeout S
 * --clear (rewrite the stored notebooks with outputs cleared and exit) --help
 * @module
 */
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { basename, join } from "node:path";
import {
  clearStoredNotebook,
  executeNotebook,
  parseNotebook,
  storedNotebookProblems,
} from "../lib/viz/notebook.ts";

const NOTEBOOKS = fileURLToPath(new URL("../notebooks/", import.meta.url));

const HELP = `deno task notebooks [options]

Executes every notebook in notebooks/ with \`jupyter nbconvert --to notebook --execute\` on the Deno
kernel and fails on any error output. Needs jupyter-nbconvert, python3-nbclient, jupyter-client,
jupyter-core (Debian) and the kernel (\`deno jupyter --install\`).

  --out DIR      keep the executed notebooks in DIR (default: a temporary folder, removed)
  --only NAME    run only this notebook (file name, with or without .ipynb; repeatable)
  --timeout S    per-cell timeout in seconds (default 600)
  --clear        clear the outputs of the stored notebooks (the committed form) and exit
  -h, --help     this text
`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      out: { type: "string" },
      only: { type: "string", multiple: true },
      timeout: { type: "string", default: "600" },
      clear: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  let files = [...Deno.readDirSync(NOTEBOOKS)]
    .filter((e) => e.isFile && e.name.endsWith(".ipynb"))
    .map((e) => e.name)
    .sort();
  if (values.only?.length) {
    const want = values.only.map((n) => n.endsWith(".ipynb") ? n : `${n}.ipynb`);
    const missing = want.filter((n) => !files.includes(n));
    if (missing.length) throw new Error(`no notebook ${missing.join(", ")} in ${NOTEBOOKS}`);
    files = files.filter((f) => want.includes(f));
  }
  if (!files.length) throw new Error(`no notebook found in ${NOTEBOOKS}`);
  if (values.clear) {
    for (const f of files) {
      const changed = await clearStoredNotebook(join(NOTEBOOKS, f));
      console.log(`${changed ? "cleared" : "clean  "} ${f}`);
    }
    return 0;
  }
  const timeout = Number(values.timeout);
  if (!Number.isInteger(timeout) || timeout <= 0) {
    throw new Error(`--timeout expects a positive integer, got "${values.timeout}"`);
  }
  const tmp = values.out ? null : await Deno.makeTempDir({ prefix: "snarm-notebooks-" });
  const outDir = values.out ?? tmp!;
  let passed = 0, failed = 0;
  const t0 = performance.now();
  try {
    for (const f of files) {
      const path = join(NOTEBOOKS, f);
      const stored = storedNotebookProblems(parseNotebook(await Deno.readTextFile(path), path));
      const r = await executeNotebook(path, { outDir, cellTimeoutS: timeout });
      const c = r.check;
      const problems = [
        ...stored.map((p) => `stored form: ${p} (run deno task notebooks --clear)`),
      ];
      if (!c) {
        problems.push(`nbconvert wrote no executed notebook (exit ${r.code})\n${r.stderrTail}`);
      } else {
        problems.push(...c.errors);
        if (c.notExecuted) problems.push(`${c.notExecuted} code cells did not run`);
        if (r.code !== 0) problems.push(`nbconvert exit ${r.code}\n${r.stderrTail}`);
      }
      const line = `${basename(f)}: ${r.seconds.toFixed(1)} s, ${c?.codeCells ?? 0} code cells, ${
        c?.plotlyOutputs ?? 0
      } plotly outputs`;
      if (problems.length === 0) {
        passed++;
        console.log(`ok     ${line}`);
      } else {
        failed++;
        console.log(`FAILED ${line}`);
        for (const p of problems) console.log(`  ${p.replaceAll("\n", "\n  ")}`);
      }
    }
  } finally {
    if (tmp) await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  console.log(
    `notebooks: ${passed} passed, ${failed} failed (${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s)${values.out ? `; executed copies in ${values.out}` : ""}`,
  );
  return failed ? 1 : 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (e) {
    console.error(`snarm notebooks: error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}

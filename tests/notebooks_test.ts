/**
 * Notebooks: the committed notebooks are stored cleared and import the toolkit through mod.ts; their
 * code type-checks against the current toolkit; the executed notebooks contain plotly outputs and no
 * error output.
 *
 * Executed copies: `.ci/run` runs `deno task notebooks --out DIR` and sets
 * SNARM_NOTEBOOKS_EXECUTED=DIR; without it (and outside CI) that test is ignored. A tiny notebook is
 * always executed end to end through the Deno kernel when jupyter and the kernel are installed
 * (always in CI).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  checkExecutedNotebook,
  clearNotebookOutputs,
  codeSources,
  executeNotebook,
  formatNotebook,
  type Notebook,
  parseNotebook,
  storedNotebookProblems,
} from "../lib/viz/notebook.ts";

const inCi = Deno.env.get("CI") === "true";
const NB_DIR = new URL("../notebooks/", import.meta.url).pathname;
const ROOT = new URL("../", import.meta.url).pathname;
const MOD = new URL("../mod.ts", import.meta.url).href;
const notebookFiles = [...Deno.readDirSync(NB_DIR)]
  .filter((e) => e.isFile && e.name.endsWith(".ipynb"))
  .map((e) => e.name)
  .sort();

async function load(name: string): Promise<Notebook> {
  const path = join(NB_DIR, name);
  return parseNotebook(await Deno.readTextFile(path), path);
}

function hasDenoKernel(): boolean {
  try {
    const out = new Deno.Command("jupyter", {
      args: ["kernelspec", "list", "--json"],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    if (!out.success) return false;
    return "deno" in (JSON.parse(new TextDecoder().decode(out.stdout)).kernelspecs ?? {});
  } catch {
    return false;
  }
}

Deno.test("stored notebooks: cleared, kernel deno, cell ids, toolkit through ../mod.ts, explained", async () => {
  assert.ok(notebookFiles.length >= 3, `notebooks: ${notebookFiles.join(", ")}`);
  for (const name of notebookFiles) {
    const nb = await load(name);
    assert.deepEqual(storedNotebookProblems(nb), [], name);
    const ids = nb.cells.map((c) => c.id);
    assert.equal(new Set(ids).size, ids.length, `${name}: cell ids are unique`);
    assert.equal(
      formatNotebook(nb),
      await Deno.readTextFile(join(NB_DIR, name)),
      `${name}: formatting`,
    );
    const code = codeSources(nb).join("\n");
    assert.match(code, /from "\.\.\/mod\.ts"/, `${name} imports ../mod.ts`);
    assert.doesNotMatch(
      code,
      /from "\.\.\/lib\//,
      `${name} imports the toolkit only through mod.ts`,
    );
    assert.doesNotMatch(code, /\/work\/|\/tmp\//, `${name} has no absolute paths`);
    assert.equal(nb.cells[0].cell_type, "markdown", `${name} starts with an explanation`);
    assert.ok(nb.cells.filter((c) => c.cell_type === "markdown").length >= 3, `${name}: markdown`);
  }
});

Deno.test("notebook code type-checks against the toolkit", async () => {
  const dir = await Deno.makeTempDir({ prefix: "snarm-nbcheck-" });
  try {
    const files: string[] = [];
    for (const name of notebookFiles) {
      const src = codeSources(await load(name)).join("\n\n").replaceAll('"../mod.ts"', `"${MOD}"`);
      const f = join(dir, name.replace(/\.ipynb$/, ".ts"));
      await Deno.writeTextFile(f, `${src}\nexport {};\n`);
      files.push(f);
    }
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--config", join(ROOT, "deno.json"), ...files],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const err = new TextDecoder().decode(out.stderr);
    assert.ok(out.success, `deno check of the notebook code failed:\n${err.slice(-3000)}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkExecutedNotebook / clearNotebookOutputs", () => {
  const nb: Notebook = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: "deno" } },
    cells: [
      { cell_type: "markdown", id: "a", source: "# t" },
      {
        cell_type: "code",
        id: "b",
        source: "1",
        execution_count: 1,
        outputs: [{
          output_type: "display_data",
          data: { "application/vnd.plotly.v1+json": { data: [] }, "text/html": "<div>" },
        }],
      },
      {
        cell_type: "code",
        id: "c",
        source: "x",
        execution_count: 2,
        outputs: [{
          output_type: "error",
          ename: "ReferenceError",
          evalue: "x is not defined",
          traceback: ["\x1b[31mReferenceError\x1b[0m: x is not defined", "    at <anonymous>:1:1"],
        }],
      },
      { cell_type: "code", id: "d", source: "y", execution_count: null, outputs: [] },
    ],
  };
  const c = checkExecutedNotebook(nb);
  assert.equal(c.codeCells, 3);
  assert.equal(c.notExecuted, 1);
  assert.equal(c.plotlyOutputs, 1);
  assert.equal(c.htmlOutputs, 1);
  assert.equal(c.errors.length, 1);
  assert.match(
    c.errors[0],
    /^cell 2: ReferenceError: x is not defined\n {4}ReferenceError: x is not/,
  );
  assert.equal(storedNotebookProblems(nb).length, 4);
  const cleared = clearNotebookOutputs(nb);
  assert.deepEqual(storedNotebookProblems(cleared), []);
  assert.equal(nb.cells[1].outputs!.length, 1, "the input is not modified");
  assert.throws(
    () => parseNotebook('{"nbformat": 3, "cells": []}', "x.ipynb"),
    /x\.ipynb: expected/,
  );
});

Deno.test({
  name: "a notebook runs headless on the Deno kernel and shows a plotly figure",
  ignore: !inCi && !hasDenoKernel(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // Inside notebooks/ so the kernel finds deno.json (npm resolution) from its cwd.
    const dir = await Deno.makeTempDir({ dir: NB_DIR, prefix: ".snarm-test-" });
    try {
      const nb: Notebook = {
        nbformat: 4,
        nbformat_minor: 5,
        metadata: { kernelspec: { name: "deno", display_name: "Deno", language: "typescript" } },
        cells: [
          {
            cell_type: "code",
            id: "c1",
            metadata: {},
            execution_count: null,
            outputs: [],
            // The figure is the cell's value (an execute_result, part of the cell's reply): a
            // mid-cell display can arrive after the next cell's error under load (seen once).
            source: 'import { rocFigure } from "../../lib/viz/mod.ts";\n' +
              "rocFigure({ fpr: new Float64Array([0, 0.5, 1]), tpr: new Float64Array([0, 1, 1]), " +
              "thresholds: new Float64Array([Infinity, 1, 0]) });",
          },
          {
            cell_type: "code",
            id: "c2",
            metadata: {},
            execution_count: null,
            outputs: [],
            source: "throw new Error('expected failure');",
          },
        ],
      };
      const path = join(dir, "tiny.ipynb");
      await Deno.writeTextFile(path, formatNotebook(nb));
      let r = await executeNotebook(path, { outDir: join(dir, "out"), cellTimeoutS: 120 });
      if (r.check && r.check.plotlyOutputs === 0) {
        // Seen once in ~10 CI runs (never in isolation): the kernel's reply to the first cell
        // carried no plotly output. Say so and run the notebook once more; a second miss fails.
        console.warn(
          `notebook run 1: no plotly output (errors: ${JSON.stringify(r.check.errors)}); again`,
        );
        r = await executeNotebook(path, { outDir: join(dir, "out2"), cellTimeoutS: 120 });
      }
      assert.ok(r.check, `no executed copy; stderr:\n${r.stderrTail}`);
      assert.equal(r.check.codeCells, 2);
      assert.equal(r.check.notExecuted, 0);
      assert.equal(
        r.check.plotlyOutputs,
        1,
        `the figure cell produced a plotly output (errors: ${JSON.stringify(r.check.errors)})`,
      );
      assert.equal(r.check.errors.length, 1, "the failing cell is reported");
      assert.match(r.check.errors[0], /expected failure/);
      assert.equal(r.ok, false);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const executedDir = Deno.env.get("SNARM_NOTEBOOKS_EXECUTED");

Deno.test({
  name: "executed notebooks (deno task notebooks --out): plotly outputs, no error output",
  ignore: !executedDir && !inCi,
  async fn() {
    assert.ok(
      executedDir,
      "set SNARM_NOTEBOOKS_EXECUTED to the --out folder of deno task notebooks",
    );
    for (const name of notebookFiles) {
      const path = join(executedDir, name);
      const nb = parseNotebook(await Deno.readTextFile(path), path);
      const c = checkExecutedNotebook(nb);
      assert.deepEqual(c.errors, [], `${name}: error outputs`);
      assert.equal(c.notExecuted, 0, `${name}: every code cell ran`);
      assert.ok(c.plotlyOutputs > 0, `${name}: has plotly outputs`);
      assert.equal(
        nb.cells.length,
        (await load(name)).cells.length,
        `${name}: same cells as stored`,
      );
    }
  },
});

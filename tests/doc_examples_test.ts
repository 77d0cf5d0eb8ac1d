/**
 * Every SNARM stage module carries a runnable `@example` (its JSDoc code block), and
 * `deno task test` runs them (`--doc` over lib/ and mod.ts), so the examples cannot rot.
 */
import assert from "node:assert/strict";

/** The method's stages, in order (mod.ts's module doc walks them), and the package entry. */
const STAGES = [
  "lib/data/mod.ts",
  "lib/backbone/mod.ts",
  "lib/bank/mod.ts",
  "lib/residual/mod.ts",
  "lib/model/mod.ts",
  "lib/maps/mod.ts",
  "lib/metrics/mod.ts",
  "lib/eval/explain.ts",
  "lib/train/mod.ts",
  "lib/viz/mod.ts",
  "mod.ts",
];

const root = new URL("../", import.meta.url);

/** The first module doc comment of `src` (up to its `@module` tag). */
function moduleDoc(src: string): string {
  const end = src.indexOf("@module");
  return end < 0 ? "" : src.slice(src.lastIndexOf("/**", end), end);
}

Deno.test("doc examples: every stage module has an @example that runs (no `ignore`)", async () => {
  for (const path of STAGES) {
    const doc = moduleDoc(await Deno.readTextFile(new URL(path, root)));
    const at = doc.indexOf("@example");
    assert.ok(at >= 0, `${path}: no @example in the module doc`);
    const fence = doc.slice(at).match(/```(\w+)([^\n]*)\n/);
    assert.ok(fence && fence[1] === "ts", `${path}: the @example is not a \`\`\`ts block`);
    assert.ok(!/\bignore\b/.test(fence[2]), `${path}: the @example is marked ignore`);
    assert.match(
      doc.slice(at),
      /import \{[^}]+\} from "\.\/[\w.]+";/,
      `${path}: imports its module`,
    );
  }
});

Deno.test("doc examples: `deno task test` runs the JSDoc examples of lib/ and mod.ts", async () => {
  const cfg = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  const task: string = cfg.tasks.test;
  assert.match(task, /^deno test\b/);
  assert.match(task, /\s--doc\b/, "deno test --doc type-checks and runs the code blocks");
  for (const p of ["tests/", "lib/", "mod.ts"]) {
    assert.ok(task.split(/\s+/).includes(p), `the test task covers ${p}`);
  }
});

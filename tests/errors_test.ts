/** lib/util/errors.ts: library errors name options; command lines map them to their flags. */
import assert from "node:assert/strict";
import { cliMessage, OptionError, optionFlag, withFlags } from "../lib/util/errors.ts";
import { runTraining } from "../lib/train/run.ts";

Deno.test("OptionError: the library names the option, cliMessage the flag", async () => {
  const e = new OptionError("maxImages", "must be a positive integer, got 0");
  assert.equal(e.message, "maxImages must be a positive integer, got 0");
  assert.equal(cliMessage(e), "--max-images must be a positive integer, got 0");
  assert.equal(optionFlag("valFraction"), "--val-fraction");
  assert.equal(optionFlag("steps", { steps: "--fit-steps" }), "--fit-steps");
  assert.equal(cliMessage(new Error("plain")), "plain");
  // A library call: the error is an OptionError naming the option, not a flag.
  const err = await runTraining({ data: [], out: "/nonexistent", steps: 0, progress: false })
    .then(() => null, (x) => x);
  assert.ok(err instanceof OptionError, String(err));
  assert.doesNotMatch(err.message, /--/);
});

Deno.test("withFlags: a command turns the backticked names of its own options into flags", () => {
  const msg = "bank b.safetensors was built at 256 (use the same `imageSize`); see `checkpoint`";
  // only the command's options are rewritten; `checkpoint` is none of them
  assert.equal(
    withFlags(msg, {}, ["image-size", "out"]),
    "bank b.safetensors was built at 256 (use the same --image-size); see `checkpoint`",
  );
  assert.equal(
    withFlags("pass the same `loadBankPath`", { loadBankPath: "--load-bank" }),
    "pass the same --load-bank",
  );
  // an OptionError's detail is rewritten too
  const e = new OptionError("out", "x already holds a run: pass `resume` to continue it");
  assert.equal(
    cliMessage(e, {}, ["out", "resume"]),
    "--out x already holds a run: pass --resume to continue it",
  );
  assert.equal(withFlags("no options here", {}, ["out"]), "no options here");
});

Deno.test("library messages name options, never flags: no `--flag` in lib/ error or warning text", async () => {
  const offenders: string[] = [];
  const walk = async (dir: URL) => {
    for await (const e of Deno.readDir(dir)) {
      const u = new URL(e.name + (e.isDirectory ? "/" : ""), dir);
      if (e.isDirectory) await walk(u);
      else if (e.name.endsWith(".ts")) {
        const lines = (await Deno.readTextFile(u)).split("\n");
        lines.forEach((l, i) => {
          const code = l.trim();
          if (code.startsWith("*") || code.startsWith("//") || code.startsWith("/*")) return;
          // a flag inside a string: quote or backtick, then --word (command lines of other tools
          // that the library spawns are listed below)
          if (
            /["`'(\s]--[a-z][a-z-]+/.test(code) && !/Deno\.Command|args|"--[a-z-]+",$/.test(code)
          ) {
            offenders.push(`${u.pathname.split("/lib/")[1]}:${i + 1}: ${code}`);
          }
        });
      }
    }
  };
  await walk(new URL("../lib/", import.meta.url));
  // spawned tools' own command lines (chromium, jupyter, apt) are not snarm flags
  const allowed = /viz\/export\.ts|viz\/notebook\.ts|io\/safetensors\.ts/;
  assert.deepEqual(offenders.filter((o) => !allowed.test(o)), []);
});

Deno.test("cliMessage: a node:util parseArgs error on one line", async () => {
  const { parseArgs } = await import("node:util");
  const { cliMessage } = await import("../lib/util/errors.ts");
  let err: unknown;
  try {
    parseArgs({ args: ["--steps", "-1"], options: { steps: { type: "string" } } });
  } catch (e) {
    err = e;
  }
  const msg = cliMessage(err);
  assert.ok(!msg.includes("\n"), msg);
  assert.match(msg, /--steps/);
});

Deno.test("runTraining: patience must be positive and needs a validation split", async () => {
  for (
    const [opts, re] of [
      [{ patience: 0, valFraction: 0.2 }, /patience must be a positive integer, got 0/],
      [{ patience: 2 }, /patience needs a validation split/],
    ] as const
  ) {
    const err = await runTraining({
      data: ["/nonexistent"],
      out: "/nonexistent",
      progress: false,
      ...opts,
    })
      .then(() => null, (x) => x);
    assert.ok(err instanceof OptionError, String(err));
    assert.match(err.message, re);
  }
});

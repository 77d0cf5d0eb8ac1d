/** lib/util/errors.ts: library errors name options; command lines map them to their flags. */
import assert from "node:assert/strict";
import { cliMessage, OptionError, optionFlag } from "../lib/util/errors.ts";
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

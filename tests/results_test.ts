/** results.json's base: what differs between runs of the same request is left out. */
import assert from "node:assert/strict";
import { resultsBase } from "../lib/eval/results.ts";
import type { EvalResult } from "../lib/eval/run.ts";

Deno.test("resultsBase: the fit record without timings and cache hits, at any depth", () => {
  const fit = {
    bestStep: 80,
    prepSeconds: 12.5,
    trainSeconds: 300,
    roots: [{ root: "/d", images: 28, selected: 22, T: 10000, seconds: 41.2, cached: false }],
    validation: [{ step: 40, score: 0.8 }],
  };
  const head = { scope: "unified", path: "h", fitted: true, cached: true, seconds: 3, fit };
  const r = {
    config: { method: "snarm" },
    adapter: "a",
    banks: [],
    heads: [head],
  } as unknown as EvalResult;
  const base = resultsBase(r);
  assert.deepEqual(base.heads, [{
    scope: "unified",
    path: "h",
    fitted: true,
    fit: {
      bestStep: 80,
      roots: [{ root: "/d", images: 28, selected: 22, T: 10000 }],
      validation: [{ step: 40, score: 0.8 }],
    },
  }]);
  // the run's own record is left as it was
  assert.equal(fit.roots[0].seconds, 41.2);
});

/**
 * The browser kernel cases (web/kernel_cases.ts) on this process's WebGPU adapter (wgpu + Naga;
 * lavapipe in CI): each WGSL kernel against its TypeScript reference. `deno task browser-test`
 * runs the same cases in headless chromium (Dawn + Tint, SwiftShader) and compares the outputs.
 */
import assert from "node:assert/strict";
import { gpuTest, requireGpu } from "./_gpu.ts";
import { KERNEL_CASES, runKernelCases } from "../web/kernel_cases.ts";

Deno.test({
  name: "browser kernel cases on the Deno adapter: every kernel within tolerance of its reference",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const results = await runKernelCases(gpu);
    assert.equal(results.length, KERNEL_CASES.length);
    for (const r of results) {
      console.log(
        `  ${r.ok ? "ok  " : "FAIL"} ${r.name}: err ${r.err.toExponential(2)} ` +
          `(tol ${r.tol}${r.relative ? ", relative" : ""}), ${r.seconds.toFixed(1)} s`,
      );
    }
    for (const r of results) assert.ok(r.ok, `${r.name}: error ${r.err} > ${r.tol}`);
    // Every WGSL file of the toolkit is exercised by some case.
    const covered = new Set(results.flatMap((r) => r.kernels));
    const all = [...Deno.readDirSync(new URL("../wgsl/", import.meta.url))]
      .map((e) => e.name).filter((n) => n.endsWith(".wgsl"));
    assert.deepEqual(all.filter((n) => !covered.has(n)).sort(), []);
  },
});

/**
 * The WebAssembly selective-scan kernel of the native head (wasm/head_scan.wat, embedded as
 * lib/model/scan_wasm.ts) against its TypeScript reference (scanRecurrence + gate), and the
 * embedded bytes against the .wat source.
 */
import assert from "node:assert/strict";
import { gate, HostScanStage, type ScanOperands, scanRecurrence } from "../lib/model/host_scan.ts";
import { mulberry32 } from "../lib/util/rng.ts";
import { assembleWat, embedModule, WASM_KERNELS } from "../scripts/build_wasm.ts";

Deno.test("scan wasm: the embedded bytes are the assembly of wasm/head_scan.wat", async () => {
  const root = new URL("../", import.meta.url);
  for (const k of WASM_KERNELS) {
    const text = await Deno.readTextFile(new URL(k.wat, root));
    const want = embedModule(await assembleWat(text, k.wat), k.name, k.wat);
    const have = await Deno.readTextFile(new URL(k.out, root));
    assert.equal(have, want, `${k.out} is stale: run deno run -A scripts/build_wasm.ts`);
  }
});

Deno.test("scan wasm: every shape equals scanRecurrence + gate to f32 rounding", () => {
  const shapes = [
    { N: 1, Ls: 1, di: 4, ns: 1, nBranch: 1 },
    { N: 3, Ls: 7, di: 12, ns: 4, nBranch: 2 },
    { N: 2, Ls: 33, di: 64, ns: 16, nBranch: 3 },
    { N: 4, Ls: 150, di: 256, ns: 4, nBranch: 1 },
  ];
  for (const shape of shapes) {
    const st = HostScanStage.create(shape);
    if (!st) throw new Error(`no WebAssembly SIMD kernel for ${JSON.stringify(shape)}`);
    const { N, Ls, di, ns, nBranch } = shape;
    const u = mulberry32(N * 1000 + di);
    const D: Float32Array[] = [];
    for (let i = 0; i < nBranch; i++) {
      const op = st.operands[i];
      // dA = exp(Δ·A) ∈ (0, 1), the rest signed
      for (const v of [op.du, op.B, op.C, op.u, op.g]) {
        for (let j = 0; j < v.length; j++) v[j] = 2 * u() - 1;
      }
      for (let j = 0; j < op.dA.length; j++) op.dA[j] = Math.exp(-3 * u());
      op.y.fill(NaN); // every value is written
      D.push(Float32Array.from({ length: di }, () => 2 * u() - 1));
    }
    for (let i = nBranch - 1; i >= 0; i--) {
      const op: ScanOperands = st.operands[i];
      const want = scanRecurrence(op.dA, op.du, op.B, op.C, N, Ls, di, ns);
      gate(want, op.u, op.g, D[i]);
      const y: Float32Array = st.run(i, D[i]);
      assert.equal(y, op.y);
      let worst = 0;
      for (let j = 0; j < want.length; j++) {
        worst = Math.max(worst, Math.abs(y[j] - want[j]) / (1 + Math.abs(want[j])));
      }
      assert.ok(worst < 2e-6, `${JSON.stringify(shape)} branch ${i}: max rel error ${worst}`);
      // a second run starts from h = 0 again
      assert.deepEqual(st.run(i, D[i]), y);
    }
  }
});

Deno.test("scan wasm: d_inner not a multiple of 4 has no kernel; bad sizes are refused", () => {
  assert.equal(HostScanStage.create({ N: 1, Ls: 2, di: 6, ns: 4, nBranch: 1 }), null);
  assert.throws(
    () => HostScanStage.create({ N: 0, Ls: 2, di: 4, ns: 4, nBranch: 1 }),
    /N = 0 must be a positive integer/,
  );
  const st = HostScanStage.create({ N: 1, Ls: 2, di: 4, ns: 1, nBranch: 1 })!;
  assert.throws(() => st.run(1, new Float32Array(4)), /branch 1 of 1/);
  assert.throws(() => st.run(0, new Float32Array(3)), /D has 3, want 4/);
});

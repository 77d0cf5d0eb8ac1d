/**
 * Tests of the training kernels' execution model (lib/train/gpu/graph.ts: recorded dispatches,
 * clears, copies, uniform rewrites) and of the `axpy` kernel (dropout(h) + stream, spec §6 step 3)
 * against its TypeScript reference, with its gradient checked by central finite differences.
 */
import assert from "node:assert/strict";
import { gpuTest, requireGpu } from "./_gpu.ts";
import { KernelSequence } from "../lib/train/gpu/graph.ts";
import { axpyRef, recordAxpy } from "../lib/train/gpu/axpy.ts";
import { mulberry32 } from "../lib/ops/pointwise.ts";

Deno.test({
  name: "KernelSequence: copy and clear replay in order; bad copies and uniforms are refused",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const seq = new KernelSequence(gpu, "test");
    try {
      const x = seq.tensor(new Float32Array([1, 2, 3, 4, 5]), "x");
      const y = seq.tensor(5, "y");
      seq.copy(x, 1, y, 0, 3);
      await seq.run();
      assert.deepEqual([...await seq.read(y)], [2, 3, 4, 0, 0]);
      seq.clear(y);
      await seq.run(); // copy then clear
      assert.deepEqual([...await seq.read(y)], [0, 0, 0, 0, 0]);
      assert.throws(() => seq.copy(x, 3, y, 0, 3), /out of range/);
      assert.throws(() => seq.upload(y, new Float32Array(6)), /overflows/);
    } finally {
      seq.destroy();
    }
  },
});

Deno.test({
  name: "axpy kernel: x·m + y matches the reference; its VJP passes a finite-difference check",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const n = 1037, rnd = mulberry32(11);
    const r = () => Float32Array.from({ length: n }, () => rnd() * 2 - 1);
    const x = r(), m = Float32Array.from({ length: n }, () => (rnd() < 0.1 ? 0 : 1 / 0.9)), y = r();
    const seq = new KernelSequence(gpu, "axpy");
    try {
      const X = seq.tensor(n + 3, "x"), M = seq.tensor(m, "m"), Y = seq.tensor(y, "y");
      const O = seq.tensor(n + 5, "out");
      seq.upload(X, x, 3);
      await recordAxpy(seq, {
        x: { t: X, off: 3 },
        m: { t: M },
        y: { t: Y },
        out: { t: O, off: 5 },
        n,
      });
      const F = async (xv: Float32Array) => {
        seq.upload(X, xv, 3);
        await seq.run();
        return await seq.read(O, 5, n);
      };
      const got = await F(x);
      const ref = axpyRef(x, m, y);
      for (let i = 0; i < n; i++) {
        assert.ok(Math.abs(got[i] - ref[i]) <= 1e-6 * (1 + Math.abs(ref[i])));
      }
      // VJP wrt x is g·m; directional central difference of Σ g·F(x) along v.
      const g = r(), v = r(), eps = 1e-2;
      const xp = x.map((a, i) => a + eps * v[i]), xm = x.map((a, i) => a - eps * v[i]);
      const fp = await F(xp), fm = await F(xm);
      let fd = 0, an = 0;
      for (let i = 0; i < n; i++) {
        fd += g[i] * (fp[i] - fm[i]) / (2 * eps);
        an += v[i] * g[i] * m[i];
      }
      const rel = Math.abs(fd - an) / Math.abs(an);
      console.log(`  axpy directional derivative: relative error ${rel.toExponential(2)}`);
      assert.ok(rel <= 2e-3);
      await assert.rejects(
        recordAxpy(seq, { x: { t: X }, m: null, y: { t: Y }, out: { t: O }, n: n + 10 }),
        /axpy: x \(x\) needs 1047 values/,
      );
    } finally {
      seq.destroy();
    }
  },
});

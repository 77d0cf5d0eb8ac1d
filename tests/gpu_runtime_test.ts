import assert from "node:assert/strict";
import {
  chunkRows,
  createStorage,
  getPipeline,
  GpuError,
  loadWgsl,
  pipelineCount,
  readF32,
  submitAndWait,
} from "../lib/gpu/mod.ts";
import { gpuTest, requireGpu } from "./_gpu.ts";

const DOUBLE = `@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < arrayLength(&x)) { x[g.x] = 2.0 * x[g.x] + 1.0; }
}`;

Deno.test({
  name: "gpu: adapter present and described",
  ...gpuTest,
  fn() {
    const gpu = requireGpu();
    assert.ok(gpu.info.description.length > 0);
    assert.ok(gpu.limits.maxStorageBufferBindingSize >= 128 * 1024 * 1024);
  },
});

Deno.test({
  name: "gpu: pipeline cached, dispatch computes, readback exact",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    const before = pipelineCount(gpu);
    const p1 = await getPipeline(gpu, "test-double", DOUBLE);
    const p2 = await getPipeline(gpu, "test-double", DOUBLE);
    assert.equal(p1, p2);
    assert.equal(pipelineCount(gpu), before + 1);
    const x = new Float32Array(1000).map((_, i) => i * 0.5);
    const buf = createStorage(gpu, x, "x");
    const bg = gpu.device.createBindGroup({
      layout: p1.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: buf } }],
    });
    await submitAndWait(gpu, "double", (enc) => {
      const pass = enc.beginComputePass();
      pass.setPipeline(p1);
      pass.setBindGroup(0, bg);
      pass.dispatchWorkgroups(Math.ceil(1000 / 64));
      pass.end();
    });
    const y = await readF32(gpu, buf, 1000);
    for (let i = 0; i < 1000; i++) assert.equal(y[i], 2 * x[i] + 1);
    buf.destroy();
  },
});

Deno.test({
  name: "gpu: WGSL compile error surfaces as GpuError with the message",
  ...gpuTest,
  async fn() {
    const gpu = requireGpu();
    await assert.rejects(
      () =>
        getPipeline(gpu, "test-broken", "@compute @workgroup_size(1) fn main() { let x: f32 = ; }"),
      (e: unknown) => e instanceof GpuError && /test-broken/.test((e as Error).message),
    );
  },
});

Deno.test("gpu: chunkRows splits at the binding limit and covers every row", () => {
  const r = chunkRows(100_000, 512 * 4, 128 * 1024 * 1024);
  assert.equal(r.length, 2);
  assert.deepEqual(r[0], [0, 65536]);
  assert.deepEqual(r[1], [65536, 100_000]);
  assert.throws(() => chunkRows(10, 1000, 999), GpuError);
});

Deno.test("gpu: missing WGSL file gives an error naming it", async () => {
  await assert.rejects(() => loadWgsl("does_not_exist.wgsl"), /does_not_exist\.wgsl/);
});

/**
 * lib/util/onnx_build.ts: graphs built with GraphBuilder run on onnxruntime-node; an output
 * renames its producer (no copy) and later uses and repeated outputs of the value still resolve.
 */
import assert from "node:assert/strict";
import { GraphBuilder } from "../lib/util/onnx_build.ts";
import { loadOrtNative } from "../lib/backbone/session.ts";

Deno.test({
  name: "GraphBuilder: outputs rename their producer; later uses and a second output still work",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const ort = await loadOrtNative();
    if (ort instanceof Error) throw ort;
    const g = new GraphBuilder("t");
    const x = g.input("x", "float", ["N"]);
    const y = g.op1("Mul", [x, g.const(new Float32Array([2]), [1])]);
    g.output(y, "double", "float", ["N"]); // renames the Mul's output
    const z = g.op1("Add", [y, g.const(new Float32Array([1]), [1])]); // a later use of y
    g.output(z, "plus_one", "float", ["N"]);
    g.output(y, "double_again", "float", ["N"]); // the same value twice: an Identity
    g.output(x, "x_copy", "float", ["N"]); // a graph input: an Identity
    const s = await ort.InferenceSession.create(g.encode(), { executionProviders: ["cpu"] });
    const out = await s.run({ x: new ort.Tensor("float32", Float32Array.of(1, 2, 3), [3]) });
    assert.deepEqual([...(out.double.data as Float32Array)], [2, 4, 6]);
    assert.deepEqual([...(out.plus_one.data as Float32Array)], [3, 5, 7]);
    assert.deepEqual([...(out.double_again.data as Float32Array)], [2, 4, 6]);
    assert.deepEqual([...(out.x_copy.data as Float32Array)], [1, 2, 3]);
    await s.release();
  },
});

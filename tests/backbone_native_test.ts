/**
 * Tests of the backbone's engines: ONNX Runtime's native CPU engine (`npm:onnxruntime-node`) vs
 * onnxruntime-web's wasm EP on the int8 MobileNetV2 and a real photo; the `dinov2_tiny` fixture
 * (official SNARM features) through the native engine; engine choice and bad engine names.
 */
import assert from "node:assert/strict";
import { readSafeTensors, requireTensor } from "../lib/io/safetensors.ts";
import { readImage } from "../lib/io/image.ts";
import { preprocessImage } from "../lib/data/preprocess.ts";
import { type EngineChoice, loadBackbone, loadOrtNative } from "../lib/backbone/mod.ts";

const HAZELNUT = new URL("../data/hazelnut_toy/hazelnut/test/good/04.jpg", import.meta.url);
const DINO = new URL("../../shared/fixtures/dinov2_tiny/", import.meta.url);
const DINO_MODEL = new URL("model.onnx", DINO);
const DINO_REF = new URL("reference.safetensors", DINO);
const DINO_PNG = new URL("magnetic_tile_blowhole_exp1_num_108719.png", DINO);
/** The fixture's tolerance (README: observed ≤ 6.7e-6 on onnxruntime-web, 15× margin). */
const DINO_TOL = 1e-4;
/** onnxruntime-web keeps its wasm instance alive between tests. */
const ortTest = { sanitizeResources: false, sanitizeOps: false };

const native = await loadOrtNative();
const nativeOk = !(native instanceof Error);
/** Platforms where onnxruntime-node 1.30.0 ships a CPU binary that must load. */
const nativeExpected = Deno.build.os === "linux" ||
  (Deno.build.os === "darwin" && Deno.build.arch === "aarch64") || Deno.build.os === "windows";

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "length mismatch");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(d), (x) => x.toString(16).padStart(2, "0")).join("");
}

Deno.test("native: onnxruntime-node loads under Deno on this platform (no install script)", () => {
  if (!nativeExpected) return;
  assert.ok(nativeOk, `onnxruntime-node did not load: ${(native as Error).message}`);
});

Deno.test({
  name: "native vs wasm: int8 MobileNetV2 on a hazelnut photo at 224², taps and features ≤ 1e-5",
  ignore: !nativeOk,
  ...ortTest,
  async fn() {
    const S = 224;
    const img = await readImage(HAZELNUT.pathname);
    const x = preprocessImage(img, { resize: 256, crop: S }).image;
    const opts = { inputSize: S, grid: S / 8 };
    const nat = await loadBackbone("mobilenetv2", { ...opts, engine: "native" });
    const web = await loadBackbone("mobilenetv2", { ...opts, engine: "wasm" });
    try {
      const dn = nat.describe(), dw = web.describe();
      assert.equal(dn.engine, "native");
      assert.equal(dn.executionProvider, "cpu");
      assert.equal(dn.threads, navigator.hardwareConcurrency);
      assert.equal(dw.engine, "wasm");
      assert.equal(dw.executionProvider, "wasm");
      assert.equal(dw.threads, 1);
      assert.equal(dn.modelSha256, dw.modelSha256);

      const [fn, fw] = [await nat.embed(x), await web.embed(x)];
      assert.deepEqual([fn.n, fn.h, fn.w, fn.c], [1, 28, 28, 256]);
      assert.deepEqual([fw.n, fw.h, fw.w, fw.c], [fn.n, fn.h, fn.w, fn.c]);
      const [tn, tw] = [await nat.tapMaps(x), await web.tapMaps(x)];
      assert.deepEqual(tn.map((m) => m.dims), [[1, 32, 28, 28], [1, 64, 14, 14], [1, 96, 14, 14]]);
      let tapErr = 0;
      for (let i = 0; i < tn.length; i++) {
        assert.equal(tn[i].name, tw[i].name);
        assert.deepEqual(tn[i].dims, tw[i].dims);
        tapErr = Math.max(tapErr, maxAbsDiff(tn[i].data, tw[i].data));
      }
      const err = maxAbsDiff(fn.data, fw.data);
      console.log(
        `  native vs wasm: features max abs diff ${err.toExponential(2)}, taps ${
          tapErr.toExponential(2)
        }`,
      );
      assert.ok(err <= 1e-5, `features max abs diff ${err}`);
      assert.ok(tapErr <= 1e-5, `taps max abs diff ${tapErr}`);
      let sq = 0;
      for (const v of fn.data) sq += v * v;
      assert.ok(sq > 0, "all-zero features");
    } finally {
      await nat.release();
      await web.release();
    }
  },
});

Deno.test({
  name: "native: dinov2_tiny fixture features (3 images) and block1/block8 taps within 1e-4",
  ignore: !nativeOk,
  ...ortTest,
  async fn() {
    const st = await readSafeTensors(DINO_REF);
    const what = "dinov2_tiny reference";
    const bb = await loadBackbone("dinov2-vitb14-reg4", {
      modelPath: DINO_MODEL.pathname,
      engine: "native",
    });
    try {
      const d = bb.describe();
      assert.equal(d.engine, "native");
      assert.equal(d.modelSha256, st.metadata.model_sha256);
      const png = "magnetic_tile_blowhole_exp1_num_108719";
      const pngInput = preprocessImage(await readImage(DINO_PNG.pathname)).image;
      assert.equal(
        await sha256Hex(new Uint8Array(pngInput.buffer)),
        st.metadata[`${png}.input_f32_sha256`],
        "toolkit preprocessing of the PNG ≠ the fixture's input",
      );
      const inputs: [string, Float32Array][] = [
        ...["hazelnut_colour_00", "hazelnut_good_04"].map((k): [string, Float32Array] => [
          k,
          requireTensor(st, `${k}.input`, "F32", [1, 3, 392, 392], what).data as Float32Array,
        ]),
        [png, pngInput],
      ];
      for (const [k, x] of inputs) {
        const want = requireTensor(st, `${k}.features`, "F32", [1, 49, 49, 512], what);
        const f = await bb.embed(x, [1, 3, 392, 392]);
        assert.deepEqual([f.n, f.h, f.w, f.c], [1, 49, 49, 512]);
        const err = maxAbsDiff(f.data, want.data as Float32Array);
        console.log(`  ${k}: native features max abs err ${err.toExponential(2)}`);
        assert.ok(err < DINO_TOL, `${k}: features max abs err ${err}`);
      }
      const k = "hazelnut_colour_00";
      const maps = await bb.tapMaps(inputs[0][1]);
      assert.equal(maps.length, 8);
      for (const [i, l] of [[0, 1], [7, 8]]) {
        const want = requireTensor(st, `${k}.block${l}`, "F32", [1, 789, 96], what);
        assert.deepEqual(maps[i].dims, [1, 789, 96]);
        const err = maxAbsDiff(maps[i].data, want.data as Float32Array);
        console.log(`  ${k}: native block${l} max abs err ${err.toExponential(2)}`);
        assert.ok(err < DINO_TOL, `block${l}: max abs err ${err}`);
      }
    } finally {
      await bb.release();
    }
  },
});

Deno.test({
  name: "engines: 'auto' picks native here; 'wasm' still works (dinov2_tiny, within 1e-4)",
  ...ortTest,
  async fn() {
    const auto = await loadBackbone("mobilenetv2", { inputSize: 64, grid: 8 });
    try {
      assert.equal(auto.describe().engine, nativeOk ? "native" : "wasm");
    } finally {
      await auto.release();
    }
    const st = await readSafeTensors(DINO_REF);
    const k = "hazelnut_good_04";
    const x = requireTensor(st, `${k}.input`, "F32", [1, 3, 392, 392]).data as Float32Array;
    const want = requireTensor(st, `${k}.features`, "F32", [1, 49, 49, 512]).data as Float32Array;
    const web = await loadBackbone("dinov2-vitb14-reg4", {
      modelPath: DINO_MODEL.pathname,
      engine: "wasm",
    });
    try {
      assert.equal(web.describe().engine, "wasm");
      const f = await web.embed(x);
      const err = maxAbsDiff(f.data, want);
      console.log(`  ${k}: wasm features max abs err ${err.toExponential(2)}`);
      assert.ok(err < DINO_TOL, `wasm features max abs err ${err}`);
      if (nativeOk) {
        const nat = await loadBackbone("dinov2-vitb14-reg4", {
          modelPath: DINO_MODEL.pathname,
          engine: "native",
          threads: 1,
        });
        try {
          assert.equal(nat.describe().threads, 1);
          const e2 = maxAbsDiff((await nat.embed(x)).data, f.data);
          console.log(
            `  ${k}: native (1 thread) vs wasm features max abs diff ${e2.toExponential(2)}`,
          );
          assert.ok(e2 < DINO_TOL, `native vs wasm ${e2}`);
        } finally {
          await nat.release();
        }
      }
    } finally {
      await web.release();
    }
  },
});

Deno.test({
  name: "engines: bad engine name, native + webgpu, bad thread count give clear errors",
  ...ortTest,
  async fn() {
    await assert.rejects(
      loadBackbone("mobilenetv2", { engine: "gpu" as EngineChoice }),
      /unknown engine 'gpu'; use "native" \(onnxruntime-node\), "wasm" \(onnxruntime-web\) or "auto"/,
    );
    await assert.rejects(
      loadBackbone("mobilenetv2", { engine: "native", executionProvider: "webgpu" }),
      /engine "native" runs ONNX Runtime's CPU EP; the webgpu EP needs engine "wasm"/,
    );
    await assert.rejects(
      loadBackbone("mobilenetv2", { engine: "native", threads: 0 }),
      nativeOk ? /threads must be a positive integer, got 0/ : /engine "native" unavailable/,
    );
  },
});

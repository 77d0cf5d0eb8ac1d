/**
 * lib/eval/explain.ts: one image stage by stage; the scoring path of `deno task eval` is the same
 * code (scoreFeatures = explainFeatures + blend), so its map equals the explanation's.
 */
import assert from "node:assert/strict";
import {
  buildBank,
  createBankIndex,
  explainFeatures,
  explainImage,
  loadBackbone,
  loadHead,
  loadSample,
  loadSplit,
  maskToPatches,
  scoreFeatures,
} from "../mod.ts";
import { gpuTest, requireGpu } from "./_gpu.ts";

Deno.test("maskToPatches: the patches a pixel mask touches", () => {
  const m = new Uint8Array(16 * 16);
  m[5 * 16 + 9] = 1; // pixel (5, 9) → patch (1, 2) of a 4×4 grid
  const p = maskToPatches(m, 16, 4, 4);
  assert.equal(p.reduce((a, b) => a + b, 0), 1);
  assert.equal(p[1 * 4 + 2], 1);
  assert.throws(() => maskToPatches(m, 15, 4, 4), /maskToPatches: mask of 256 pixels/);
});

Deno.test({
  name: "explainImage: every stage of one image, consistent with the eval scoring path",
  ...gpuTest,
  async fn() {
    requireGpu();
    const SIZE = 64, GRID = 8;
    const geometry = { resize: 73, crop: SIZE };
    const split = loadSplit(new URL("../data/hazelnut_toy", import.meta.url).pathname, "hazelnut");
    const backbone = await loadBackbone("mobilenetv2", { inputSize: SIZE, grid: GRID });
    const desc = backbone.describe();
    const bank = await buildBank(
      (async function* () {
        for (const r of split.train.slice(0, 6)) {
          yield await backbone.embed((await loadSample(r, geometry)).image, [1, 3, SIZE, SIZE]);
        }
      })(),
      { size: 100, seed: 0, backbone: desc.backbone, taps: desc.taps, inputSize: SIZE },
    );
    const index = await createBankIndex(null, bank.features, bank.meta.dim);
    const head = await loadHead(new URL("../data/snarm_head.safetensors", import.meta.url));
    const sample = await loadSample(split.test.find((r) => r.label === 1)!, geometry);
    const x = await explainImage(sample, { backbone, index, head });
    const L = GRID * GRID, C = x.features.c;
    assert.equal(x.interNorms.length, L);
    assert.equal(x.topk.indices.length, L * 3);
    assert.equal(x.refMask!.length, L);
    assert.equal(x.refMask!.reduce((a, b) => a + b, 0), Math.round(0.75 * L));
    assert.equal(x.intraResidual!.length, C * L);
    assert.equal(x.head!.smoothed.length, SIZE * SIZE);
    assert.equal(x.bankMap!.length, SIZE * SIZE);
    // A reference's nearest reference is another reference; every intraNn is one.
    for (let p = 0; p < L; p++) assert.equal(x.refMask![x.intraNn![p]], 1);
    // The bank-only and SNARM scoring of deno task eval give the same maps.
    const bankOnly = await scoreFeatures(x.features, index, 3, null, SIZE);
    assert.deepEqual(bankOnly.map, x.bankMap);
    const snarm = await scoreFeatures(x.features, index, 3, { head, blend: null }, SIZE);
    assert.deepEqual(snarm.map, x.head!.smoothed);
    const noHead = await explainFeatures(x.features, SIZE, { index });
    assert.equal(noHead.head, null);
    assert.equal(noHead.unary, null);
    // Bad inputs name what is wrong.
    await assert.rejects(() => explainFeatures(x.features, 8, { index }), /size \(the map side\)/);
    const { initHeadWeights } = await import("../lib/train/init.ts");
    const { Head, parseHeadConfig } = await import("../lib/model/mod.ts");
    const other = new Head(initHeadWeights(parseHeadConfig({ ...head.config, in_chans: 16 }), 0));
    await assert.rejects(
      () => explainFeatures(x.features, SIZE, { index, head: other }),
      /head expects in_chans = 16 = 2 × 8-d features; these features are 256-d/,
    );
    assert.throws(() => maskToPatches(new Uint8Array(SIZE * SIZE), SIZE, 0, 0), /grid 0×0/);
    index.destroy();
    await backbone.release();
  },
});

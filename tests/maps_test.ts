import assert from "node:assert/strict";
import { gaussianFilter, imageScore, resizeBilinear } from "../lib/maps/mod.ts";
import { readSafeTensors, requireTensor } from "../lib/io/safetensors.ts";

const TINY = new URL("../../shared/fixtures/snarm_official/tiny/io.safetensors", import.meta.url);

Deno.test("maps: per-image Gaussian σ=4 and image score match the official tiny fixture", async () => {
  const io = await readSafeTensors(TINY);
  const pm = requireTensor(io, "pixel_map", "F32", [2, 1, 96, 96]).data as Float32Array;
  const sm = requireTensor(io, "pixel_map_smoothed_per_image", "F32", [2, 96, 96])
    .data as Float32Array;
  const sc = requireTensor(io, "image_score_per_image", "F32", [2]).data as Float32Array;
  for (let b = 0; b < 2; b++) {
    const m = pm.subarray(b * 9216, (b + 1) * 9216);
    const g = gaussianFilter(m, 96, 96, 4);
    let err = 0;
    for (let i = 0; i < g.length; i++) err = Math.max(err, Math.abs(g[i] - sm[b * 9216 + i]));
    assert.ok(err < 1e-6, `smoothed map max error ${err}`);
    const s = imageScore(g, 96, 96);
    assert.ok(Math.abs(s - sc[b]) < 1e-6, `image score ${s} vs ${sc[b]}`);
  }
});

Deno.test("maps: bilinear align_corners=true reproduces the official logit upsampling", async () => {
  const io = await readSafeTensors(TINY);
  const logits = requireTensor(io, "head_logits", "F32", [8, 2, 1, 12, 12]).data as Float32Array;
  const pm = requireTensor(io, "pixel_map", "F32", [2, 1, 96, 96]).data as Float32Array;
  for (let b = 0; b < 2; b++) {
    const acc = new Float64Array(96 * 96);
    for (let h = 0; h < 8; h++) {
      const up = resizeBilinear(
        logits.subarray((h * 2 + b) * 144, (h * 2 + b + 1) * 144),
        12,
        12,
        96,
        96,
        true,
      );
      for (let i = 0; i < up.length; i++) acc[i] += 1 / (1 + Math.exp(-up[i]));
    }
    let err = 0;
    for (let i = 0; i < acc.length; i++) {
      err = Math.max(err, Math.abs(acc[i] / 8 - pm[b * 9216 + i]));
    }
    assert.ok(err < 1e-6, `pixel map max error ${err}`);
  }
});

Deno.test("maps: align_corners=false keeps a constant map and matches torch half-pixel centres", () => {
  const c = resizeBilinear(new Float32Array(9).fill(2.5), 3, 3, 7, 7, false);
  assert.ok(c.every((v) => v === 2.5));
  // torch: F.interpolate([[0,1]], size=4, bilinear, align_corners=False) along x = [0, .25, .75, 1]
  const r = resizeBilinear(new Float32Array([0, 1]), 1, 2, 1, 4, false);
  assert.deepEqual([...r], [0, 0.25, 0.75, 1]);
});

Deno.test("maps: image score is the max 16×16 window mean, stride 2", () => {
  const m = new Float32Array(32 * 32);
  for (let y = 10; y < 26; y++) for (let x = 4; x < 20; x++) m[y * 32 + x] = 1;
  assert.equal(imageScore(m, 32, 32), 1); // window at (10, 4) is aligned to stride 2
  m.fill(0);
  for (let y = 11; y < 27; y++) for (let x = 5; x < 21; x++) m[y * 32 + x] = 1;
  assert.equal(imageScore(m, 32, 32), Math.fround(15 * 15 / 256)); // odd offset: best window covers 15×15
  assert.throws(() => imageScore(new Float32Array(4), 2, 2), /smaller than/);
});

/**
 * Training building blocks (lib/train): MemSeg-style synthetic anomalies, Perlin masks, feature
 * jitter, previews, and the leave-own-image-out inter-residual on a small real bank.
 */
import assert from "node:assert/strict";
import { buildBank, createBankIndex, createRng } from "../lib/bank/mod.ts";
import {
  computeInterResidual,
  leaveImageOutMask,
  trainingResidual,
} from "../lib/residual/inter.ts";
import { loadBackbone } from "../lib/backbone/mod.ts";
import {
  encodePng,
  loadSplit,
  normalizeImageNet,
  preprocessRgb,
  readImage,
} from "../lib/data/mod.ts";
import { tryGetGpu } from "../lib/gpu/mod.ts";
import {
  applyStructureOp,
  blendAnomaly,
  encodeSynthStrip,
  jitterFeatures,
  listTextureFiles,
  perlinMask,
  randPerlin2d,
  rotateBilinear,
  shuffleTiles,
  STRUCTURE_OPS,
  synthesizeAnomaly,
  synthPreview,
} from "../lib/train/mod.ts";
import type { FeatureGrid } from "../lib/types.ts";

const HAZEL = new URL("../data/hazelnut_toy", import.meta.url).pathname;
const split = loadSplit(HAZEL, "hazelnut");
const S = 128;
const GEOM = { resize: 146, crop: S };
const ortTest = { sanitizeResources: false, sanitizeOps: false };

async function crop(i: number): Promise<Uint8Array> {
  return preprocessRgb(await readImage(split.train[i].path), GEOM);
}
const IMG = await crop(0);

const sum = (a: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
};

/** The tiles of an (H, W, 3) image as strings, sorted (a multiset). */
function tileMultiset(rgb: Uint8Array, h: number, w: number, grid: number): string[] {
  const th = h / grid, tw = w / grid, out: string[] = [];
  for (let t = 0; t < grid * grid; t++) {
    const y0 = Math.floor(t / grid) * th, x0 = (t % grid) * tw, parts: number[] = [];
    for (let y = 0; y < th; y++) {
      for (const v of rgb.subarray(((y0 + y) * w + x0) * 3, ((y0 + y) * w + x0 + tw) * 3)) {
        parts.push(v);
      }
    }
    out.push(parts.join(","));
  }
  return out.sort();
}

// ------------------------------------------------------------------------------------ Perlin

Deno.test("train: Perlin noise is zero on lattice points, scales stay in 2^0..2^5", () => {
  const rng = createRng(3);
  const n = randPerlin2d(64, 64, 4, 8, rng);
  for (let y = 0; y < 64; y += 16) {
    for (let x = 0; x < 64; x += 8) assert.ok(n[y * 64 + x] === 0, `lattice point (${y}, ${x})`);
  }
  let nonzero = 0;
  for (const v of n) if (Math.abs(v) > 1e-3) nonzero++;
  assert.ok(nonzero > 64 * 64 * 0.8 && n.every((v) => Math.abs(v) <= Math.SQRT2 + 1e-6));
  const seenY = new Set<number>(), seenX = new Set<number>();
  const r = createRng(11);
  for (let i = 0; i < 150; i++) {
    const m = perlinMask(32, 32, r);
    seenY.add(m.scaleY);
    seenX.add(m.scaleX);
    assert.ok(m.angle >= -90 && m.angle <= 90, `angle ${m.angle}`);
    assert.ok(m.tries >= 1);
  }
  const all = [1, 2, 4, 8, 16, 32];
  assert.deepEqual([...seenY].sort((a, b) => a - b), all);
  assert.deepEqual([...seenX].sort((a, b) => a - b), all);
  assert.throws(() => perlinMask(8, 8, createRng(1), { threshold: 5, maxTries: 3 }), /3 draws/);
});

Deno.test("train: rotation is cv2-like (0° identity, 90° counter-clockwise, fill 0); masks binary", () => {
  const w = 5, src = Float32Array.from({ length: 25 }, (_, i) => i + 1);
  assert.deepEqual(rotateBilinear(src, 5, 5, 1, 0), src);
  const r90 = rotateBilinear(src, 5, 5, 1, 90);
  for (let y = 0; y < 5; y++) {
    for (let x = 0; x < 5; x++) {
      assert.ok(Math.abs(r90[y * w + x] - src[x * w + (w - 1 - y)]) < 1e-6, `(${y},${x})`);
    }
  }
  const r45 = rotateBilinear(new Float32Array(81).fill(1), 9, 9, 1, 45);
  assert.equal(r45[0], 0); // the corner samples outside the image → fill
  assert.equal(r45[40], 1);
  const rng = createRng(5);
  let bigAngle = 0;
  for (let i = 0; i < 20; i++) {
    const m = perlinMask(S, S, rng);
    assert.ok(m.mask.every((v) => v === 0 || v === 1));
    assert.ok(sum(m.mask) > 0);
    bigAngle = Math.max(bigAngle, Math.abs(m.angle));
  }
  assert.ok(bigAngle > 30, "rotations were drawn");
});

// ----------------------------------------------------------------------------- synthesis

Deno.test("train: synthesizeAnomaly is deterministic per seed; masks binary, non-empty, varied", async () => {
  const a = await synthesizeAnomaly(IMG, S, S, { seed: 42 });
  const b = await synthesizeAnomaly(IMG, S, S, { seed: 42 });
  assert.deepEqual(a.rgb, b.rgb);
  assert.deepEqual(a.mask, b.mask);
  assert.equal(a.beta, b.beta);
  assert.equal(a.source, b.source);
  const c = await synthesizeAnomaly(IMG, S, S, { seed: 43 });
  assert.notDeepEqual(c.mask, a.mask);
  assert.notDeepEqual(c.rgb, a.rgb);
  const areas = new Set<number>();
  for (let s = 0; s < 12; s++) {
    const r = await synthesizeAnomaly(IMG, S, S, { seed: 100 + s });
    assert.ok(r.mask.every((v) => v === 0 || v === 1));
    const area = sum(r.mask);
    assert.ok(area > 0);
    areas.add(area);
    assert.ok(r.beta >= 0.3 && r.beta < 1, `beta ${r.beta}`);
    assert.equal(r.source, "structure"); // no textures given
    assert.equal(r.ops.length, 3);
    assert.equal(new Set(r.ops.map((o) => o.op)).size, 3);
  }
  assert.ok(areas.size >= 10, `mask areas ${[...areas]}`);
  await assert.rejects(synthesizeAnomaly(IMG, S, S, {}), /seed or opts\.rng/);
  await assert.rejects(synthesizeAnomaly(IMG, S, 120, { seed: 1 }), /expected \(H=128, W=120/);
  await assert.rejects(synthesizeAnomaly(IMG.subarray(0, 124 * 124 * 3), 124, 124, { seed: 1 }));
});

Deno.test("train: blending out = (1 − βm)·img + βm·source; unmasked pixels unchanged", async () => {
  for (const seed of [1, 2, 3]) {
    const r = await synthesizeAnomaly(IMG, S, S, { seed });
    let changed = 0;
    for (let p = 0; p < S * S; p++) {
      for (let c = 0; c < 3; c++) {
        const i = 3 * p + c;
        if (!r.mask[p]) {
          assert.equal(r.rgb[i], IMG[i]);
        } else {
          const want = (1 - r.beta) * IMG[i] + r.beta * r.sourceRgb[i];
          assert.ok(Math.abs(r.rgb[i] - want) <= 0.5 + 1e-9, `pixel ${p} ch ${c}`);
          if (r.rgb[i] !== IMG[i]) changed++;
        }
      }
    }
    assert.ok(changed > 0, "the anomaly changes some masked pixel");
  }
  assert.deepEqual(
    blendAnomaly(Uint8Array.of(0, 100, 200), Uint8Array.of(255, 0, 100), Uint8Array.of(1), 0.5),
    Uint8Array.of(128, 50, 150),
  );
  assert.throws(() => blendAnomaly(IMG, IMG, new Uint8Array(3), 0.5), /expected/);
});

Deno.test("train: structure source = tile permutation of the (un)augmented image", async () => {
  const r = await synthesizeAnomaly(IMG, S, S, { seed: 9, augment: false });
  assert.equal(r.source, "structure");
  assert.deepEqual(r.ops, []);
  assert.deepEqual(tileMultiset(r.sourceRgb, S, S, 8), tileMultiset(IMG, S, S, 8));
  assert.notDeepEqual(r.sourceRgb, IMG);
  const perm = r.tilePermutation!;
  assert.deepEqual([...perm].sort((a, b) => a - b), Array.from({ length: 64 }, (_, i) => i));
  const t = S / 8;
  for (let k = 0; k < 64; k++) {
    const sy = Math.floor(perm[k] / 8) * t, sx = (perm[k] % 8) * t;
    const dy = Math.floor(k / 8) * t, dx = (k % 8) * t;
    assert.equal(
      r.sourceRgb[((dy + 3) * S + dx + 5) * 3 + 1],
      IMG[((sy + 3) * S + sx + 5) * 3 + 1],
    );
  }
  // With augmentations the source is a permutation of tiles of the augmented image.
  const a = await synthesizeAnomaly(IMG, S, S, { seed: 9, ops: ["invert"], numOps: 1 });
  const inv = IMG.map((v) => 255 - v);
  assert.deepEqual(tileMultiset(a.sourceRgb, S, S, 8), tileMultiset(inv, S, S, 8));
  assert.throws(() => shuffleTiles(IMG, S, S, createRng(1), 7), /multiple of the 7×7/);
});

Deno.test("train: every augmentation keeps the shape, is seeded, and does what it says", () => {
  for (const op of STRUCTURE_OPS) {
    const x = applyStructureOp(op, IMG, S, S, createRng(4));
    const y = applyStructureOp(op, IMG, S, S, createRng(4));
    assert.equal(x.rgb.length, IMG.length, op);
    assert.deepEqual(x.rgb, y.rgb, op);
    assert.equal(x.applied.op, op);
  }
  const inv = applyStructureOp("invert", IMG, S, S, createRng(0)).rgb;
  assert.deepEqual(applyStructureOp("invert", inv, S, S, createRng(0)).rgb, IMG);
  const post = applyStructureOp("posterize", IMG, S, S, createRng(0));
  const bits = post.applied.params.bits as number;
  assert.ok(post.rgb.every((v) => (v & ((1 << (8 - bits)) - 1)) === 0));
  // Equalize spreads a low-contrast channel over nearly the full range.
  const flat = IMG.map((v) => 100 + (v >> 4));
  const eq = applyStructureOp("equalize", flat, S, S, createRng(0)).rgb;
  assert.ok(Math.max(...eq) - Math.min(...eq) > 200);
  const ac = applyStructureOp("autocontrast", flat, S, S, createRng(0)).rgb;
  assert.ok(Math.max(...ac) >= 250 && Math.min(...ac) <= 5);
  assert.throws(() => applyStructureOp("nope" as "invert", IMG, S, S, createRng(0)), /unknown op/);
});

Deno.test("train: texture source (folder of PNGs) is picked, resized and blended", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/striped`);
    for (let k = 0; k < 2; k++) {
      const w = 40 + 8 * k, h = 30;
      const px = new Uint8Array(w * h * 3).map((_, i) => ((i / 3) % w) * 5 + k * 100);
      await Deno.writeFile(`${dir}/striped/t${k}.png`, encodePng(px, w, h));
    }
    await Deno.writeTextFile(`${dir}/striped/notes.txt`, "not an image");
    assert.deepEqual(listTextureFiles(dir), [`${dir}/striped/t0.png`, `${dir}/striped/t1.png`]);
    const r = await synthesizeAnomaly(IMG, S, S, { seed: 2, textureDir: dir, textureProb: 1 });
    assert.equal(r.source, "texture");
    assert.equal(r.texturePath, `${dir}/striped/t${r.textureIndex}.png`);
    assert.equal(r.sourceRgb.length, S * S * 3);
    assert.deepEqual(
      r,
      await synthesizeAnomaly(IMG, S, S, { seed: 2, textureDir: dir, textureProb: 1 }),
    );
    const seen = new Set<string>();
    for (let s = 0; s < 16; s++) {
      seen.add((await synthesizeAnomaly(IMG, S, S, { seed: s, textureDir: dir })).source);
    }
    assert.deepEqual([...seen].sort(), ["structure", "texture"]);
    await Deno.mkdir(`${dir}/empty`);
    assert.throws(() => listTextureFiles(`${dir}/empty`), /no image files/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train: previews and the PNG strip", async () => {
  const p = await synthPreview(split.train, 2, 7, GEOM);
  assert.equal(p.length, 2);
  assert.notEqual(p[0].id, p[1].id);
  assert.deepEqual(p, await synthPreview(split.train, 2, 7, GEOM));
  for (const x of p) {
    assert.equal(x.synthRgb.length, S * S * 3);
    assert.ok(sum(x.mask) > 0);
  }
  const png = encodeSynthStrip(p);
  const dec = await import("../lib/io/image.ts").then((m) => m.decodeImage(png));
  assert.deepEqual([dec.width, dec.height], [3 * S + 8, 2 * S + 4]);
  assert.equal(dec.data[0], p[0].rgb[0]);
});

// ----------------------------------------------------------------------------------- jitter

Deno.test("train: jitter std = scale·‖f‖₂/C per patch, zero mean, seeded, input untouched", () => {
  const n = 1, h = 8, w = 10, c = 512;
  const rng = createRng(1);
  const data = new Float32Array(n * h * w * c);
  for (let p = 0; p < h * w; p++) {
    const amp = 0.1 + p * 0.05;
    for (let k = 0; k < c; k++) data[p * c + k] = amp * (2 * rng.nextFloat() - 1);
  }
  const f: FeatureGrid = { data, n, h, w, c };
  const copy = data.slice();
  const j = jitterFeatures(f, 30, 123);
  assert.deepEqual(data, copy);
  assert.deepEqual(j, jitterFeatures(f, 30, createRng(123)));
  assert.notDeepEqual(j.data, jitterFeatures(f, 30, 124).data);
  let ratioSum = 0, zsum = 0, z2 = 0;
  for (let p = 0; p < h * w; p++) {
    let ss = 0, s1 = 0, s2 = 0;
    for (let k = 0; k < c; k++) {
      ss += data[p * c + k] ** 2;
      const d = j.data[p * c + k] - data[p * c + k];
      s1 += d;
      s2 += d * d;
    }
    const want = (30 * Math.sqrt(ss)) / c;
    const got = Math.sqrt(s2 / c - (s1 / c) ** 2);
    const ratio = got / want;
    assert.ok(Math.abs(ratio - 1) < 0.15, `patch ${p}: std ratio ${ratio}`);
    ratioSum += ratio;
    zsum += s1 / want;
    z2 += s2 / (want * want);
  }
  const N = h * w * c;
  assert.ok(Math.abs(ratioSum / (h * w) - 1) < 0.02, `mean ratio ${ratioSum / (h * w)}`);
  assert.ok(Math.abs(zsum / N) < 0.02, `standardised mean ${zsum / N}`);
  assert.ok(Math.abs(z2 / N - 1) < 0.03, `standardised variance ${z2 / N}`);
});

// -------------------------------------------------------------------- leave-own-image-out

Deno.test({
  name: "train: leave-own-image-out residual on a real 3-image hazelnut bank (128², grid 16)",
  ...ortTest,
  async fn() {
    const bb = await loadBackbone("mobilenetv2", { inputSize: S, grid: 16 });
    const feats: FeatureGrid[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        feats.push(await bb.embed(normalizeImageNet(await crop(i), S, S)));
      }
    } finally {
      await bb.release();
    }
    const bank = await buildBank(feats, {
      size: 300,
      backbone: "mobilenetv2",
      taps: [],
      inputSize: S,
    });
    const c = bank.meta.dim;
    assert.equal(bank.meta.T, 300);
    const index = await createBankIndex(await tryGetGpu(), bank.features, c, bank.imageIndex);
    try {
      // k = 1 checks on the TypeScript reference search (exact; one kernel compile is enough),
      // k = 3 on the adapter's kernel (when there is one) against the reference.
      const ref = { variant: "reference" } as const;
      for (let img = 0; img < 3; img++) {
        const own = [...bank.imageIndex.keys()].filter((j) => bank.imageIndex[j] === img);
        assert.ok(own.length > 0);
        // Without exclusion: each own bank entry finds itself, so the k=1 residual is exactly 0.
        const plain = await computeInterResidual(feats[img], index, 1, ref);
        const loo = await trainingResidual(feats[img], index, img, 1, ref);
        assert.equal(loo.excluded, own.length);
        for (const j of own) {
          const p = bank.position[j];
          const a = plain.residual.data.subarray(p * c, (p + 1) * c);
          const b = loo.residual.data.subarray(p * c, (p + 1) * c);
          assert.ok(a.every((v) => v === 0), `image ${img} entry ${j}: residual not zero`);
          assert.ok(
            sum(b.map((v) => v * v)) > 0,
            `image ${img} entry ${j}: excluded residual zero`,
          );
          assert.ok(loo.distances[p] > 0);
        }
        const loo3 = await trainingResidual(feats[img], index, img);
        assert.equal(loo3.k, 3);
        assert.ok(loo3.indices.every((j) => bank.imageIndex[j] !== img), "own entry used");
        const loo3Ref = await trainingResidual(feats[img], index, img, 3, ref);
        assert.deepEqual(loo3.indices, loo3Ref.indices);
        assert.deepEqual(loo3.residual, loo3Ref.residual);
      }
      // An image that is not in the bank excludes nothing.
      const none = await trainingResidual(feats[0], index, 99, 1, ref);
      assert.equal(none.excluded, 0);
      assert.deepEqual(leaveImageOutMask(Int32Array.of(0, 1, 0, 2), 0), Uint8Array.of(0, 1, 0, 1));
      const noIds = await createBankIndex(null, bank.features, c);
      await assert.rejects(trainingResidual(feats[0], noIds, 0), /no entryImageIds/);
      await assert.rejects(
        trainingResidual({ ...feats[0], n: 2, data: new Float32Array(2 * 256 * c) }, index, 0),
        /one image/,
      );
    } finally {
      index.destroy();
    }
  },
});

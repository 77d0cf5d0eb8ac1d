import assert from "node:assert/strict";
// deno-lint-ignore no-import-prefix
import { decode as decodePng, encode as encodePngRaw } from "npm:fast-png@8.0.0";
// deno-lint-ignore no-import-prefix
import jpeg from "npm:jpeg-js@0.4.4";
import {
  centerCropOffset,
  DatasetError,
  decodeImage,
  detectImageFormat,
  detectMaskConvention,
  encodeHeatmapOverlay,
  encodePng,
  ImageError,
  IMAGENET_MEAN,
  IMAGENET_STD,
  jet,
  listCategories,
  loadSample,
  loadSplit,
  naturalCompare,
  preprocessImage,
  preprocessMask,
  preprocessRgb,
  readImage,
  resizeLinearU8,
  toGray,
} from "../lib/data/mod.ts";

const HAZEL = new URL("../data/hazelnut_toy", import.meta.url).pathname;
const SHARED = new URL("../../shared/data", import.meta.url).pathname;
const MAGTILE = `${SHARED}/magnetic_tile`;

/** Independent float reference: half-pixel bilinear with clamped coordinates, rounded. */
function bilinearRef(
  src: Uint8Array,
  w: number,
  h: number,
  cn: number,
  ow: number,
  oh: number,
): Float64Array {
  const out = new Float64Array(ow * oh * cn);
  const axis = (d: number, s: number, o: number) => {
    const f = Math.min(Math.max((d + 0.5) * (s / o) - 0.5, 0), s - 1);
    const i0 = Math.floor(f);
    return [i0, Math.min(i0 + 1, s - 1), f - i0];
  };
  for (let y = 0; y < oh; y++) {
    const [y0, y1, fy] = axis(y, h, oh);
    for (let x = 0; x < ow; x++) {
      const [x0, x1, fx] = axis(x, w, ow);
      for (let c = 0; c < cn; c++) {
        const p = (yy: number, xx: number) => src[(yy * w + xx) * cn + c];
        const top = p(y0, x0) * (1 - fx) + p(y0, x1) * fx;
        const bot = p(y1, x0) * (1 - fx) + p(y1, x1) * fx;
        out[(y * ow + x) * cn + c] = top * (1 - fy) + bot * fy;
      }
    }
  }
  return out;
}

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

async function withTempDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "snarm_data_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function grayPng(w: number, h: number, value: (x: number, y: number) => number): Uint8Array {
  const d = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) d[y * w + x] = value(x, y);
  return encodePngRaw({ width: w, height: h, data: d, depth: 8, channels: 1 });
}

function rgbPng(w: number, h: number): Uint8Array {
  const d = new Uint8Array(w * h * 3);
  for (let i = 0; i < d.length; i++) d[i] = (i * 7) % 256;
  return encodePng(d, w, h);
}

/** Build an MVTec-layout category under `root`. */
async function makeCategory(
  root: string,
  cat: string,
  o: { train?: number; masks?: boolean; skipMask?: boolean; maskSize?: number } = {},
) {
  const c = `${root}/${cat}`;
  await Deno.mkdir(`${c}/train/good`, { recursive: true });
  await Deno.mkdir(`${c}/test/good`, { recursive: true });
  await Deno.mkdir(`${c}/test/scratch`, { recursive: true });
  for (let i = 0; i < (o.train ?? 2); i++) {
    await Deno.writeFile(`${c}/train/good/${String(i).padStart(3, "0")}.png`, rgbPng(20, 16));
  }
  await Deno.writeFile(`${c}/test/good/000.png`, rgbPng(20, 16));
  await Deno.writeFile(`${c}/test/scratch/000.png`, rgbPng(20, 16));
  await Deno.writeFile(`${c}/test/scratch/001.png`, rgbPng(20, 16));
  if (o.masks ?? true) {
    await Deno.mkdir(`${c}/ground_truth/scratch`, { recursive: true });
    const ms = o.maskSize ?? 20;
    const m = grayPng(ms, 16, (x) => (x < 10 ? 255 : 0));
    await Deno.writeFile(`${c}/ground_truth/scratch/000_mask.png`, m);
    if (!o.skipMask) await Deno.writeFile(`${c}/ground_truth/scratch/001_mask.png`, m);
  }
}

// ----------------------------------------------------------------------------------- decoding

Deno.test("data: decode real JPEG and PNG from hazelnut_toy", async () => {
  const j = await readImage(`${HAZEL}/hazelnut/train/good/00.jpg`);
  assert.equal(j.format, "jpeg");
  assert.equal(j.width, 512);
  assert.equal(j.height, 512);
  assert.equal(j.grayscale, false);
  assert.equal(j.data.length, 512 * 512 * 3);
  let diffCh = 0; // a colour photo: channels differ somewhere
  for (let i = 0; i < j.data.length; i += 3) if (j.data[i] !== j.data[i + 2]) diffCh++;
  assert.ok(diffCh > 1000);

  const m = await readImage(`${HAZEL}/hazelnut/ground_truth/colour/00_mask.png`);
  assert.equal(m.format, "png");
  assert.equal(m.width, 512);
  assert.equal(m.height, 512);
  assert.equal(m.grayscale, true);
  const g = toGray(m);
  assert.deepEqual([...new Set(g)].sort((a, b) => a - b), [0, 255]);
});

Deno.test("data: grayscale JPEG (magnetic tile) replicated to RGB", async () => {
  const name = [...Deno.readDirSync(`${MAGTILE}/magnetic_tile/train/good`)].map((e) => e.name)
    .sort()[0];
  const img = await readImage(`${MAGTILE}/magnetic_tile/train/good/${name}`);
  assert.equal(img.grayscale, true);
  for (let i = 0; i < img.data.length; i += 3) {
    assert.ok(img.data[i] === img.data[i + 1] && img.data[i] === img.data[i + 2]);
  }
});

Deno.test("data: PNG variants (16-bit, gray+alpha, RGBA, palette, 1-bit)", () => {
  // 16-bit RGB: high byte kept (libpng strip_16, as cv2).
  const d16 = new Uint16Array([0x1234, 0xff00, 0x00ff, 0xabcd, 0x8080, 0x0001]);
  let img = decodeImage(encodePngRaw({ width: 2, height: 1, data: d16, depth: 16, channels: 3 }));
  assert.deepEqual([...img.data], [0x12, 0xff, 0x00, 0xab, 0x80, 0x00]);
  // 16-bit gray.
  img = decodeImage(
    encodePngRaw({
      width: 2,
      height: 1,
      data: new Uint16Array([0x7fff, 0x0100]),
      depth: 16,
      channels: 1,
    }),
  );
  assert.equal(img.grayscale, true);
  assert.deepEqual([...img.data], [0x7f, 0x7f, 0x7f, 1, 1, 1]);
  // gray + alpha: alpha dropped.
  img = decodeImage(
    encodePngRaw({ width: 2, height: 1, data: new Uint8Array([10, 0, 200, 255]), channels: 2 }),
  );
  assert.equal(img.grayscale, true);
  assert.deepEqual([...img.data], [10, 10, 10, 200, 200, 200]);
  // RGBA: alpha dropped (not composited).
  img = decodeImage(
    encodePngRaw({ width: 1, height: 1, data: new Uint8Array([1, 2, 3, 0]), channels: 4 }),
  );
  assert.equal(img.grayscale, false);
  assert.deepEqual([...img.data], [1, 2, 3]);
  // Palette (2-bit indices).
  img = decodeImage(encodePngRaw({
    width: 3,
    height: 1,
    data: new Uint8Array([0b00011000]),
    depth: 2,
    channels: 1,
    palette: [[10, 20, 30], [40, 50, 60], [70, 80, 90]],
  }));
  assert.deepEqual([...img.data], [10, 20, 30, 40, 50, 60, 70, 80, 90]);
  // 1-bit gray: scaled to 0/255, rows padded to bytes.
  img = decodeImage(encodePngRaw({
    width: 3,
    height: 2,
    data: new Uint8Array([0b10100000, 0b01100000]),
    depth: 1,
    channels: 1,
  }));
  assert.deepEqual([...toGray(img)], [255, 0, 255, 0, 255, 255]);
});

Deno.test("data: format detection by magic bytes, unsupported formats rejected", async () => {
  const bmp = new Uint8Array([0x42, 0x4d, 0x36, 0, 0, 0, 0, 0, 0, 0]);
  const gif = new TextEncoder().encode("GIF89a\x01\x00\x01\x00");
  const webp = new Uint8Array([0x52, 0x49, 0x46, 0x46, 0, 0, 0, 0, 0x57, 0x45, 0x42, 0x50]);
  assert.equal(detectImageFormat(bmp), "bmp");
  assert.equal(detectImageFormat(gif), "gif");
  assert.equal(detectImageFormat(webp), "webp");
  for (const [bytes, fmt] of [[bmp, "BMP"], [gif, "GIF"], [webp, "WEBP"]] as const) {
    assert.throws(
      () => decodeImage(bytes, "/x/a.png"),
      (e: Error) =>
        e instanceof ImageError && e.message.includes("/x/a.png") && e.message.includes(fmt) &&
        e.message.includes("expected a PNG"),
    );
  }
  await withTempDir(async (dir) => {
    const p = `${dir}/notes.png`;
    await Deno.writeTextFile(p, "this is not an image\n");
    await assert.rejects(
      () => readImage(p),
      (e: Error) =>
        e instanceof ImageError && e.message.includes(p) && e.message.includes("unsupported"),
    );
    await assert.rejects(() => readImage(`${dir}/missing.png`), ImageError);
    // A PNG named .jpg decodes (content decides).
    await Deno.writeFile(`${dir}/x.jpg`, rgbPng(4, 3));
    assert.equal((await readImage(`${dir}/x.jpg`)).format, "png");
  });
});

Deno.test("data: corrupt and truncated JPEG / PNG rejected with the path", async () => {
  const j = await Deno.readFile(`${HAZEL}/hazelnut/train/good/01.jpg`);
  const p = await Deno.readFile(`${HAZEL}/hazelnut/ground_truth/colour/01_mask.png`);
  const cases: [Uint8Array, string][] = [
    [j.subarray(0, 4000), "truncated.jpg"],
    [j.subarray(0, j.length - 2), "no_eoi.jpg"],
    [p.subarray(0, p.length - 20), "truncated.png"],
    [p.subarray(0, 30), "header_only.png"],
  ];
  const flipped = p.slice();
  flipped[Math.floor(p.length / 2)] ^= 0x5a; // inside IDAT: CRC mismatch
  cases.push([flipped, "corrupt.png"]);
  const jc = j.slice(); // garbage entropy data with the EOI kept
  for (let i = 2000; i < j.length - 2; i++) jc[i] = 0xff;
  cases.push([jc, "corrupt.jpg"]);
  for (const [bytes, name] of cases) {
    assert.throws(
      () => decodeImage(bytes, `/d/${name}`),
      (e: Error) =>
        e instanceof ImageError && e.message.includes(`/d/${name}`) &&
        /corrupt|truncated/.test(e.message),
      name,
    );
  }
  assert.throws(() => decodeImage(new Uint8Array(0), "/d/empty.png"), /empty file/);
});

// ------------------------------------------------------------------------------------- resize

Deno.test("data: resize matches OpenCV 4.6 cv2.resize INTER_LINEAR outputs", () => {
  // Expected values printed by python3-opencv 4.6.0 (Debian 12):
  // cv2.resize(a, (7, 4), interpolation=cv2.INTER_LINEAR) etc.
  const a = new Uint8Array([0, 50, 100, 150, 200, 10, 60, 110, 160, 255, 255, 0, 255, 0, 255]);
  assert.deepEqual([...resizeLinearU8(a, 5, 3, 1, 7, 4)], [
    ...[0, 28, 64, 100, 135, 171, 200],
    ...[6, 35, 70, 106, 142, 190, 234],
    ...[102, 65, 74, 164, 118, 166, 255],
    ...[255, 109, 73, 255, 73, 109, 255],
  ]);
  const c = new Uint8Array([0, 255, 255, 0]);
  assert.deepEqual([...resizeLinearU8(c, 2, 2, 1, 4, 4)], [
    ...[0, 64, 191, 255],
    ...[64, 96, 159, 191],
    ...[191, 159, 96, 64],
    ...[255, 191, 64, 0],
  ]);
  const b = new Uint8Array(7 * 5 * 3).map((_, i) => (i * 37) % 256);
  assert.deepEqual(
    [...resizeLinearU8(b, 7, 5, 3, 3, 2)],
    [80, 117, 154, 84, 121, 158, 87, 124, 161, 103, 140, 177, 106, 143, 180, 109, 146, 162],
  );
});

Deno.test("data: resize 4x4 -> 2x2 and 2x2 -> 4x4 by the formula", () => {
  // 4 -> 2: src = (d + 0.5) * 2 - 0.5 = 2d + 0.5: the mean of each 2x2 block.
  const d = new Uint8Array(16).map((_, i) => i * 17);
  const r = resizeLinearU8(d, 4, 4, 1, 2, 2);
  for (let y = 0; y < 2; y++) {
    for (let x = 0; x < 2; x++) {
      const s = d[2 * y * 4 + 2 * x] + d[2 * y * 4 + 2 * x + 1] + d[(2 * y + 1) * 4 + 2 * x] +
        d[(2 * y + 1) * 4 + 2 * x + 1];
      assert.equal(r[y * 2 + x], Math.round(s / 4));
    }
  }
  // 2 -> 4: src = (d + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 → clamped 0, 0.25, 0.75, 1.
  const u = new Uint8Array([0, 100, 200, 40]);
  const w = [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]];
  const up = resizeLinearU8(u, 2, 2, 1, 4, 4);
  for (let y = 0; y < 4; y++) {
    for (let x = 0; x < 4; x++) {
      const v = w[y][0] * (w[x][0] * u[0] + w[x][1] * u[1]) +
        w[y][1] * (w[x][0] * u[2] + w[x][1] * u[3]);
      assert.ok(Math.abs(up[y * 4 + x] - v) <= 0.5 + 1e-9, `(${y},${x}) ${up[y * 4 + x]} vs ${v}`);
    }
  }
});

Deno.test("data: resize keeps constants, keeps a ramp linear, agrees with float bilinear", () => {
  for (const [w, h, ow, oh] of [[37, 23, 448, 448], [512, 300, 448, 448], [9, 9, 4, 4]]) {
    const k = resizeLinearU8(new Uint8Array(w * h * 3).fill(173), w, h, 3, ow, oh);
    assert.ok(k.every((v) => v === 173));
  }
  // Horizontal ramp v = 4x, upscaled ×2: interior values follow the ramp exactly (±0.5 rounding).
  const W = 50;
  const ramp = new Uint8Array(W * 4).map((_, i) => 4 * (i % W));
  const up = resizeLinearU8(ramp, W, 4, 1, 2 * W, 8);
  for (let x = 1; x < 2 * W - 1; x++) {
    const expect = 4 * ((x + 0.5) / 2 - 0.5);
    assert.ok(Math.abs(up[3 * 2 * W + x] - expect) <= 0.5 + 1e-9, `x=${x}`);
  }
  // Random images, up and down (no antialiasing): within one grey level of exact bilinear.
  const rand = rng(7);
  for (
    const [w, h, cn, ow, oh] of [[61, 47, 3, 448, 448], [700, 530, 1, 448, 448], [13, 11, 3, 5, 7]]
  ) {
    const src = new Uint8Array(w * h * cn).map(() => Math.floor(rand() * 256));
    const got = resizeLinearU8(src, w, h, cn, ow, oh);
    const ref = bilinearRef(src, w, h, cn, ow, oh);
    let maxd = 0;
    for (let i = 0; i < got.length; i++) maxd = Math.max(maxd, Math.abs(got[i] - ref[i]));
    assert.ok(maxd <= 1, `${w}x${h}x${cn}: max diff ${maxd}`);
  }
  assert.throws(() => resizeLinearU8(new Uint8Array(5), 2, 2, 1, 4, 4), RangeError);
});

// --------------------------------------------------------------------------------- preprocess

Deno.test("data: preprocess shape, crop offset, value range, ImageNet normalisation", async () => {
  assert.equal(centerCropOffset(448, 392), 28);
  const img = await readImage(`${HAZEL}/hazelnut/test/colour/00.jpg`);
  const { image, rgb } = preprocessImage(img);
  assert.equal(image.length, 3 * 392 * 392);
  assert.equal(rgb.length, 392 * 392 * 3);
  const lo = Math.min(...IMAGENET_MEAN.map((m, c) => -m / IMAGENET_STD[c]));
  const hi = Math.max(...IMAGENET_MEAN.map((m, c) => (1 - m) / IMAGENET_STD[c]));
  let mn = Infinity;
  let mx = -Infinity;
  for (const v of image) {
    mn = Math.min(mn, v);
    mx = Math.max(mx, v);
  }
  assert.ok(mn >= lo - 1e-6 && mx <= hi + 1e-6 && mx - mn > 1, `range [${mn}, ${mx}]`);
  // CHW layout: image[c, y, x] = ((rgb[y, x, c] / 255) - mean[c]) / std[c].
  const n = 392 * 392;
  for (const i of [0, 1234, n - 1]) {
    for (let c = 0; c < 3; c++) {
      const want = (rgb[3 * i + c] / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
      assert.ok(Math.abs(image[c * n + i] - want) < 1e-6);
    }
  }
  // The crop is the centre of the 448 resize.
  const full = preprocessRgb(img, { resize: 448, crop: 448 });
  for (const [y, x] of [[0, 0], [100, 391], [391, 7]]) {
    for (let c = 0; c < 3; c++) {
      assert.equal(rgb[(y * 392 + x) * 3 + c], full[((y + 28) * 448 + x + 28) * 3 + c]);
    }
  }
  // Other sizes are options.
  const small = preprocessImage(img, { resize: 64, crop: 56 });
  assert.equal(small.image.length, 3 * 56 * 56);
  assert.throws(() => preprocessImage(img, { resize: 100, crop: 120 }), RangeError);
});

Deno.test("data: mask threshold >= 127 (official), conventions detected per file", () => {
  const w = 30;
  const h = 20;
  const g = { resize: 16, crop: 12 };
  const m126 = preprocessMask(new Uint8Array(w * h).fill(126), w, h, g, "ge127");
  const m127 = preprocessMask(new Uint8Array(w * h).fill(127), w, h, g, "ge127");
  assert.equal(m127.length, 144);
  assert.ok(m126.every((v) => v === 0));
  assert.ok(m127.every((v) => v === 1), "127 is foreground (official >= 127)");
  // A 0/255 mask with a pixel at exactly 127 after geometry: auto = ge127.
  const edge = new Uint8Array(w * h);
  edge[0] = 255;
  edge[1] = 127;
  assert.equal(detectMaskConvention(edge), "0/255");
  assert.deepEqual(preprocessMask(edge, w, h, g), preprocessMask(edge, w, h, g, "ge127"));
  const ids = new Uint8Array(w * h).fill(2); // VisA-style label map value
  assert.equal(detectMaskConvention(ids), "labels");
  assert.ok(preprocessMask(ids, w, h, g, "ge127").every((v) => v === 0));
  assert.ok(preprocessMask(ids, w, h, g, "nonzero").every((v) => v === 1));
  assert.ok(preprocessMask(ids, w, h, g).every((v) => v === 1), "auto: label map → nonzero");
  // 0/1 masks (lab datasets) are not read as empty.
  const ones = new Uint8Array(w * h).map((_, i) => (i % w < w / 2 ? 1 : 0));
  assert.equal(detectMaskConvention(ones), "0/1");
  const half255 = ones.map((v) => v * 255);
  assert.deepEqual(preprocessMask(ones, w, h, g), preprocessMask(half255, w, h, g));
  assert.equal(detectMaskConvention(new Uint8Array(4)), "empty");
  // Left half set: after geometry, left part 1, right part 0, boundary near the middle.
  const half = new Uint8Array(w * h).map((_, i) => (i % w < w / 2 ? 255 : 0));
  const r = preprocessMask(half, w, h, { resize: 40, crop: 40 });
  for (let y = 0; y < 40; y++) {
    assert.deepEqual([r[y * 40], r[y * 40 + 19], r[y * 40 + 20], r[y * 40 + 39]], [1, 1, 0, 0]);
  }
});

// ----------------------------------------------------------------------------------- datasets

Deno.test("data: hazelnut_toy split and a real sample", async () => {
  assert.deepEqual(listCategories(HAZEL), ["hazelnut"]);
  const s = loadSplit(HAZEL, "hazelnut");
  assert.equal(s.train.length, 28);
  assert.equal(s.test.length, 23);
  assert.equal(s.hasMasks, true);
  assert.equal(s.test.filter((r) => r.label === 0).length, 6);
  assert.equal(s.test.filter((r) => r.defectType === "colour").length, 17);
  assert.equal(s.test[0].id, "test/colour/00");
  assert.equal(s.test[0].maskPath, `${HAZEL}/hazelnut/ground_truth/colour/00_mask.png`);
  const ids = s.test.map((r) => r.id);
  assert.deepEqual(ids, [...ids].sort(naturalCompare));
  assert.deepEqual(loadSplit(HAZEL, "hazelnut"), s); // deterministic
  const x = await loadSample(s.test[0]);
  assert.equal(x.image.length, 3 * 392 * 392);
  assert.equal(x.mask!.length, 392 * 392);
  const area = x.mask!.reduce((a, b) => a + b, 0);
  assert.ok(area > 0 && area < 392 * 392 / 2, `mask area ${area}`);
  const good = await loadSample(s.test.find((r) => r.label === 0)!);
  assert.ok(good.mask !== null && good.mask.every((v) => v === 0));
});

Deno.test("data: magnetic_tile enumerates 762 train / 582 test (190 good + 392 defect, 5 types)", () => {
  const cats = listCategories(MAGTILE);
  assert.deepEqual(cats, ["magnetic_tile"]);
  const s = loadSplit(MAGTILE, "magnetic_tile");
  assert.equal(s.train.length, 762);
  assert.equal(s.test.length, 582);
  assert.equal(s.test.filter((r) => r.label === 0).length, 190);
  const defects = s.test.filter((r) => r.label === 1);
  assert.equal(defects.length, 392);
  assert.deepEqual(
    [...new Set(defects.map((r) => r.defectType))],
    ["blowhole", "break", "crack", "fray", "uneven"],
  );
  assert.ok(defects.every((r) => r.maskPath?.endsWith("_mask.png")));
  assert.equal(s.hasMasks, true);
  assert.equal(new Set([...s.train, ...s.test].map((r) => r.id)).size, 762 + 582);
});

Deno.test("data: naturalCompare orders digit runs by value", () => {
  const names = ["exp1_num_10", "exp1_num_9", "exp10_num_1", "exp2_num_100", "a", "b1"];
  assert.deepEqual(names.sort(naturalCompare), [
    "a",
    "b1",
    "exp1_num_9",
    "exp1_num_10",
    "exp2_num_100",
    "exp10_num_1",
  ]);
});

// ---------------------------------------------------------------------------------- bad input

Deno.test("data: wrong root (nonexistent, file, no categories)", async () => {
  await withTempDir(async (dir) => {
    assert.throws(
      () => listCategories(`${dir}/nope`),
      (e: Error) =>
        e instanceof DatasetError && e.message.includes(`${dir}/nope`) &&
        e.message.includes("does not exist") && e.message.includes("expected"),
    );
    await Deno.writeTextFile(`${dir}/file.txt`, "x");
    assert.throws(() => listCategories(`${dir}/file.txt`), /not a folder/);
    await Deno.mkdir(`${dir}/empty/some_folder`, { recursive: true });
    assert.throws(
      () => listCategories(`${dir}/empty`),
      (e: Error) => e instanceof DatasetError && e.message.includes("no categories found"),
    );
    assert.throws(() => loadSplit(`${dir}/nope`, "x"), DatasetError);
    // Root pointing at a category folder: hint to pass the parent.
    await makeCategory(dir, "cat");
    assert.throws(() => listCategories(`${dir}/cat`), /category folder itself/);
    assert.throws(
      () => loadSplit(dir, "dog"),
      (e: Error) => e.message.includes("categories here: cat"),
    );
  });
});

Deno.test("data: empty category (no train images)", async () => {
  await withTempDir(async (dir) => {
    await makeCategory(dir, "hollow", { train: 0 });
    await Deno.writeTextFile(`${dir}/hollow/train/good/readme.txt`, "not an image");
    assert.deepEqual(listCategories(dir), ["hollow"]);
    assert.throws(
      () => loadSplit(dir, "hollow"),
      (e: Error) =>
        e instanceof DatasetError && e.message.includes(`${dir}/hollow/train/good`) &&
        e.message.includes("no training images"),
    );
  });
});

Deno.test("data: missing mask for a defect image", async () => {
  await withTempDir(async (dir) => {
    await makeCategory(dir, "c", { skipMask: true });
    assert.throws(
      () => loadSplit(dir, "c"),
      (e: Error) =>
        e instanceof DatasetError &&
        e.message.includes(`${dir}/c/ground_truth/scratch/001_mask.png`) &&
        e.message.includes("missing ground-truth mask"),
    );
  });
});

Deno.test("data: mask of another size than its image", async () => {
  await withTempDir(async (dir) => {
    await makeCategory(dir, "c", { maskSize: 21 });
    const s = loadSplit(dir, "c");
    const rec = s.test.find((r) => r.label === 1)!;
    await assert.rejects(
      () => loadSample(rec),
      (e: Error) =>
        e instanceof DatasetError && e.message.includes(rec.maskPath!) &&
        e.message.includes(rec.path) && e.message.includes("21x16") &&
        e.message.includes("20x16"),
    );
  });
});

Deno.test("data: corrupt and unsupported images fail at loadSample with the path", async () => {
  await withTempDir(async (dir) => {
    await makeCategory(dir, "c");
    const good = `${dir}/c/test/good/000.png`;
    const bytes = await Deno.readFile(good);
    await Deno.writeFile(good, bytes.subarray(0, bytes.length - 16));
    await Deno.writeFile(`${dir}/c/train/good/009.bmp`, new Uint8Array([0x42, 0x4d, 1, 2, 3, 4]));
    const s = loadSplit(dir, "c");
    assert.equal(s.train.length, 3); // .bmp listed by extension, rejected by content at load
    await assert.rejects(
      () => loadSample(s.test.find((r) => r.label === 0)!),
      (e: Error) => e instanceof ImageError && e.message.includes(good),
    );
    await assert.rejects(
      () => loadSample(s.train[2]),
      (e: Error) =>
        e instanceof ImageError && e.message.includes("009.bmp") && e.message.includes("BMP"),
    );
  });
});

Deno.test("data: category without ground_truth folder → hasMasks false, mask null", async () => {
  await withTempDir(async (dir) => {
    await makeCategory(dir, "c", { masks: false });
    const s = loadSplit(dir, "c");
    assert.equal(s.hasMasks, false);
    const d = s.test.filter((r) => r.label === 1);
    assert.equal(d.length, 2);
    assert.ok(d.every((r) => r.maskPath === null));
    const x = await loadSample(d[0], { resize: 32, crop: 28 });
    assert.equal(x.mask, null);
    assert.equal(x.image.length, 3 * 28 * 28);
  });
});

Deno.test("data: VisA 1cls split CSV layout", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/split_csv`);
    for (const f of ["Normal", "Anomaly", "Masks"]) {
      await Deno.mkdir(`${dir}/pcb1/Data/${f}`, { recursive: true });
    }
    const img =
      jpeg.encode({ width: 24, height: 18, data: new Uint8Array(24 * 18 * 4).fill(90) }, 90)
        .data;
    for (const n of ["0000", "0001", "0002"]) {
      await Deno.writeFile(`${dir}/pcb1/Data/Normal/${n}.JPG`, img);
    }
    await Deno.writeFile(`${dir}/pcb1/Data/Anomaly/000.JPG`, img);
    // Label-map mask: value 1 on the left half.
    await Deno.writeFile(
      `${dir}/pcb1/Data/Masks/000.png`,
      grayPng(24, 18, (x) => (x < 12 ? 1 : 0)),
    );
    const csv = [
      "object,split,label,image,mask",
      "pcb1,train,normal,pcb1/Data/Normal/0001.JPG,",
      "pcb1,train,normal,pcb1/Data/Normal/0000.JPG,",
      "pcb1,test,normal,pcb1/Data/Normal/0002.JPG,",
      "pcb1,test,anomaly,pcb1/Data/Anomaly/000.JPG,pcb1/Data/Masks/000.png",
    ].join("\n");
    await Deno.writeTextFile(`${dir}/split_csv/1cls.csv`, csv + "\n");
    assert.deepEqual(listCategories(dir), ["pcb1"]);
    const s = loadSplit(dir, "pcb1");
    assert.equal(s.layout, "visa-csv");
    assert.deepEqual(s.train.map((r) => r.id), ["train/good/0000", "train/good/0001"]);
    assert.deepEqual(s.test.map((r) => [r.id, r.label]), [
      ["test/anomaly/000", 1],
      ["test/good/0002", 0],
    ]);
    assert.equal(s.hasMasks, true);
    const x = await loadSample(s.test[0], { resize: 48, crop: 48 });
    const area = x.mask!.reduce((a, b) => a + b, 0);
    assert.equal(area, 48 * 24);
    // Bad CSVs.
    await Deno.writeTextFile(`${dir}/bad.csv`, "object,split,image\npcb1,train,a.png\n");
    assert.throws(() => loadSplit(dir, "pcb1", { csv: `${dir}/bad.csv` }), /expected columns/);
    await Deno.writeTextFile(`${dir}/bad2.csv`, csv.replace("Masks/000.png", "Masks/404.png"));
    assert.throws(
      () => loadSplit(dir, "pcb1", { csv: `${dir}/bad2.csv` }),
      (e: Error) => e instanceof DatasetError && e.message.includes("Masks/404.png"),
    );
    assert.throws(() => loadSplit(dir, "pcb9"), /no rows for category "pcb9"/);
  });
});

// ------------------------------------------------------------------------------------ heatmap

Deno.test("data: heatmap overlay PNG decodes back to the right size and colours", () => {
  const w = 40;
  const h = 30;
  const rgb = new Uint8Array(w * h * 3).map((_, i) => (i * 13) % 256);
  const map = new Float32Array(w * h).map((_, i) => i / (w * h));
  const png = encodeHeatmapOverlay(rgb, map, { vmin: 0, vmax: 1, alpha: 0.6, width: w, height: h });
  const d = decodePng(png);
  assert.equal(d.width, w);
  assert.equal(d.height, h);
  assert.equal(d.channels, 3);
  // alpha 0: the image itself; alpha 1 at vmax: jet(1) = (0.5, 0, 0) → (128, 0, 0).
  const same = decodePng(encodeHeatmapOverlay(rgb, map, { vmin: 0, vmax: 1, alpha: 0, width: w }));
  assert.deepEqual([...same.data], [...rgb]);
  const hot = decodePng(
    encodeHeatmapOverlay(rgb, new Float32Array(w * h).fill(5), {
      vmin: 0,
      vmax: 1,
      alpha: 1,
      width: w,
    }),
  );
  assert.deepEqual([...hot.data.subarray(0, 3)], [128, 0, 0]);
  assert.deepEqual(jet(0), [0, 0, 0.5]);
  // Square maps need no size.
  const sq = decodePng(
    encodeHeatmapOverlay(new Uint8Array(16 * 16 * 3), new Float32Array(256), { vmin: 0, vmax: 1 }),
  );
  assert.equal(sq.width, 16);
  assert.throws(
    () => encodeHeatmapOverlay(rgb, map, { vmin: 1, vmax: 1, width: w }),
    /expected finite vmin < vmax/,
  );
  assert.throws(() => encodeHeatmapOverlay(rgb, map, { vmin: 0, vmax: 1 }), RangeError);
  const plain = decodePng(encodePng(rgb, w, h));
  assert.deepEqual([...plain.data], [...rgb]);
});

Deno.test("runGeometry: crop and resize bounded, errors name the option", async () => {
  const { runGeometry, MAX_IMAGE_SIZE } = await import("../lib/data/preprocess.ts");
  assert.deepEqual(runGeometry(392).geometry, { resize: 448, crop: 392 });
  assert.deepEqual(runGeometry(224, 224).geometry, { resize: 224, crop: 224 });
  assert.throws(() => runGeometry(224, 200), /resize must be an integer in \[the crop size 224/);
  assert.throws(() => runGeometry(392, 2 * MAX_IMAGE_SIZE + 1), /resize must be an integer in/);
  assert.throws(() => runGeometry(MAX_IMAGE_SIZE + 8), /imageSize must be a multiple of 8/);
});

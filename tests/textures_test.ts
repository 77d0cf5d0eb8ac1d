/**
 * The shipped texture folder `data/textures` (real-texture anomaly source, built by
 * scripts/build_textures.sh): every file decodes with the project's decoder, is RGB, between 64
 * and 256 px a side, not (near-)constant, named in PROVENANCE.md, and listed by
 * `listTextureFiles(DEFAULT_TEXTURE_DIR)`.
 */
import assert from "node:assert/strict";
import { readImage } from "../lib/io/image.ts";
import { DEFAULT_TEXTURE_DIR, listTextureFiles, synthesizeAnomaly } from "../lib/train/synth.ts";

const DIR = DEFAULT_TEXTURE_DIR;
const MIN_SIDE = 64;
const MAX_SIDE = 256;
/** Per-image pixel std over all channels (grey levels); the flattest shipped texture has ~6.3. */
const MIN_STD = 4;

function imageFiles(): string[] {
  return [...Deno.readDirSync(DIR)]
    .filter((e) => e.isFile && e.name !== "PROVENANCE.md")
    .map((e) => e.name)
    .sort();
}

Deno.test("data/textures: DEFAULT_TEXTURE_DIR points at the shipped folder", () => {
  assert.ok(DIR.endsWith("/data/textures"), DIR);
  assert.ok(Deno.statSync(DIR).isDirectory);
});

Deno.test("data/textures: only JPEG files plus PROVENANCE.md, 40..80 of them, < 5 MB", () => {
  const names = imageFiles();
  for (const n of names) assert.match(n, /^[a-z0-9_-]+\.jpg$/, n);
  assert.ok(names.length >= 40 && names.length <= 80, `${names.length} files`);
  const bytes = names.reduce((s, n) => s + Deno.statSync(`${DIR}/${n}`).size, 0);
  assert.ok(bytes < 5e6, `${bytes} bytes`);
});

Deno.test("data/textures: every file decodes as RGB JPEG, 64..256 px a side, not constant", async () => {
  for (const n of imageFiles()) {
    const img = await readImage(`${DIR}/${n}`);
    assert.equal(img.format, "jpeg", n);
    assert.equal(img.grayscale, false, `${n}: grayscale`);
    assert.equal(img.data.length, img.width * img.height * 3, n);
    for (const side of [img.width, img.height]) {
      assert.ok(side >= MIN_SIDE && side <= MAX_SIDE, `${n}: ${img.width}x${img.height}`);
    }
    let s = 0, s2 = 0;
    for (const v of img.data) {
      s += v;
      s2 += v * v;
    }
    const mean = s / img.data.length;
    const std = Math.sqrt(Math.max(0, s2 / img.data.length - mean * mean));
    assert.ok(std > MIN_STD, `${n}: pixel std ${std.toFixed(2)} <= ${MIN_STD}`);
  }
});

Deno.test("data/textures: PROVENANCE.md names every file with its source path and licence", () => {
  const prov = Deno.readTextFileSync(`${DIR}/PROVENANCE.md`);
  assert.match(prov, /ufoai-textures 2\.5-2/);
  assert.match(prov, /Georges "TRaK" Grondin/);
  assert.match(prov, /The above copyright notice and this permission notice shall be included/);
  const rows = new Map<string, string[]>();
  for (const line of prov.split("\n")) {
    const m = line.match(/^\| ([^ |]+\.jpg) \| (base\/textures\/\S+) \| (\d+x\d+) \| (\S+) \|$/);
    if (m) rows.set(m[1], [m[2], m[4]]);
  }
  const names = imageFiles();
  assert.deepEqual([...rows.keys()].sort(), names);
  for (const [n, [, lic]] of rows) {
    assert.ok(lic === "public-domain" || lic === "Expat", `${n}: ${lic}`);
    // The Expat notice in PROVENANCE.md covers the trak_* files (TRaK), and only those.
    assert.equal(lic === "Expat", n.startsWith("trak_"), `${n}: ${lic}`);
  }
});

Deno.test("data/textures: listTextureFiles lists exactly the shipped images", () => {
  const listed = listTextureFiles(DIR);
  assert.deepEqual(
    listed.map((p) => p.slice(p.lastIndexOf("/") + 1)).sort(),
    imageFiles(),
  );
  for (const p of listed) assert.ok(p.startsWith(DIR.replace(/\/+$/, "") + "/"), p);
});

Deno.test("data/textures: synthesizeAnomaly draws its texture source from the shipped folder", async () => {
  const S = 64;
  const rgb = new Uint8Array(S * S * 3).fill(128);
  const r = await synthesizeAnomaly(rgb, S, S, {
    seed: 7,
    textureDir: DEFAULT_TEXTURE_DIR,
    textureProb: 1,
  });
  assert.equal(r.source, "texture");
  assert.ok(r.texturePath && listTextureFiles(DIR).includes(r.texturePath), `${r.texturePath}`);
  assert.ok(r.mask.some((v) => v === 1));
  assert.ok(r.rgb.some((v, i) => r.mask[Math.floor(i / 3)] === 1 && v !== 128));
});

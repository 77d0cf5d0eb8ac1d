/**
 * Defect-shaped synthetic anomalies (lib/train/defects.ts) and the `sources` dispatcher of
 * `synthesizeAnomaly`: seeded, masks binary and non-empty, pixels outside the mask unchanged, each
 * kind has its documented shape; the default sources reproduce the MemSeg draw bit for bit.
 * Small synthetic images only (no model, no files), so this runs in seconds.
 */
import assert from "node:assert/strict";
import { createRng } from "../lib/bank/mod.ts";
import type { RgbImage } from "../lib/io/image.ts";
import {
  DEFECT_KINDS,
  type DefectKind,
  parseSynthSources,
  SYNTH_SOURCES,
  synthesizeAnomaly,
  synthesizeDefect,
} from "../lib/train/mod.ts";

const S = 128;
const N = S * S;

/** 128×128 textured gradient: a colour ramp plus a sinusoidal pattern and seeded noise. */
function texturedGradient(seed: number): Uint8Array {
  const r = createRng(seed);
  const img = new Uint8Array(N * 3);
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      for (let c = 0; c < 3; c++) {
        const v = 70 + 0.6 * x + 0.3 * y + 20 * c +
          25 * Math.sin(x / 2.5 + c) * Math.cos(y / 3) + 30 * (r.nextFloat() - 0.5);
        img[(y * S + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return img;
}
const IMG = texturedGradient(5);

/** A bright textured disc (radius 40) centred on a near-black background. */
function discImage(): Uint8Array {
  const r = createRng(9);
  const img = new Uint8Array(N * 3);
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const inside = Math.hypot(y - 63.5, x - 63.5) < 40;
      for (let c = 0; c < 3; c++) {
        img[(y * S + x) * 3 + c] = inside
          ? 150 + 20 * c + Math.round(20 * (r.nextFloat() - 0.5))
          : 5 + r.nextInt(4);
      }
    }
  }
  return img;
}

const sum = (a: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
};

function bbox(mask: Uint8Array, w = S) {
  let y0 = Infinity, y1 = -1, x0 = Infinity, x1 = -1;
  for (let p = 0; p < mask.length; p++) {
    if (!mask[p]) continue;
    const y = Math.floor(p / w), x = p % w;
    y0 = Math.min(y0, y);
    y1 = Math.max(y1, y);
    x0 = Math.min(x0, x);
    x1 = Math.max(x1, x);
  }
  return { y0, y1, x0, x1, hh: y1 - y0 + 1, ww: x1 - x0 + 1 };
}

/** 8-connected components of a mask, as lists of flat indices. */
function components(mask: Uint8Array, w = S): number[][] {
  const h = mask.length / w, seen = new Uint8Array(mask.length), out: number[][] = [];
  for (let p0 = 0; p0 < mask.length; p0++) {
    if (!mask[p0] || seen[p0]) continue;
    const comp: number[] = [], stack = [p0];
    seen[p0] = 1;
    while (stack.length) {
      const p = stack.pop()!;
      comp.push(p);
      const y = Math.floor(p / w), x = p % w;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const yy = y + dy, xx = x + dx, q = yy * w + xx;
          if (yy >= 0 && yy < h && xx >= 0 && xx < w && mask[q] && !seen[q]) {
            seen[q] = 1;
            stack.push(q);
          }
        }
      }
    }
    out.push(comp);
  }
  return out;
}

const SEEDS = [0, 1, 2, 3, 4, 5, 6, 7];

// ------------------------------------------------------------------------------- all kinds

Deno.test("defects: every kind is seeded, mask 0/1 non-empty, pixels outside the mask unchanged", () => {
  for (const kind of DEFECT_KINDS) {
    const a = synthesizeDefect(IMG, S, S, kind, { seed: 42 });
    const b = synthesizeDefect(IMG, S, S, kind, { seed: 42 });
    assert.equal(a.kind, kind);
    assert.deepEqual(a.rgb, b.rgb, kind);
    assert.deepEqual(a.mask, b.mask, kind);
    assert.deepEqual(a.params, b.params, kind);
    const c = synthesizeDefect(IMG, S, S, kind, { seed: 43 });
    assert.notDeepEqual(c.rgb, a.rgb, kind);
    assert.notDeepEqual(c.mask, a.mask, kind);
    // An Rng instead of a seed: the same stream gives the same result.
    assert.deepEqual(synthesizeDefect(IMG, S, S, kind, { rng: createRng(42) }).rgb, a.rgb, kind);
    for (const seed of SEEDS) {
      const r = synthesizeDefect(IMG, S, S, kind, { seed });
      assert.equal(r.rgb.length, N * 3);
      assert.equal(r.mask.length, N);
      assert.ok(r.mask.every((v) => v === 0 || v === 1), `${kind} ${seed}: mask 0/1`);
      assert.ok(sum(r.mask) > 0, `${kind} ${seed}: mask non-empty`);
      let changed = 0;
      for (let p = 0; p < N; p++) {
        for (let c = 0; c < 3; c++) {
          const i = 3 * p + c;
          if (!r.mask[p]) assert.equal(r.rgb[i], IMG[i], `${kind} ${seed}: pixel ${p} outside`);
          else if (r.rgb[i] !== IMG[i]) changed++;
        }
      }
      assert.ok(changed > 0, `${kind} ${seed}: the defect changes pixels`);
      assert.ok((r.params.change as number) >= 3, `${kind} ${seed}: change ${r.params.change}`);
      assert.ok((r.params.tries as number) >= 1);
    }
  }
  assert.deepEqual(IMG, texturedGradient(5), "input not modified");
});

Deno.test("defects: argument errors", () => {
  assert.throws(() => synthesizeDefect(IMG, S, S, "blob", {}), /seed or opts\.rng/);
  assert.throws(
    () => synthesizeDefect(IMG, S, S, "crack" as DefectKind, { seed: 1 }),
    /unknown kind 'crack'.*scratch, blob, edge, smear, stain/,
  );
  assert.throws(() => synthesizeDefect(IMG, S, 100, "blob", { seed: 1 }), /expected \(H=128/);
  assert.throws(() => synthesizeDefect(IMG, S, S, "blob", { seed: 1, maxTries: 0 }), /maxTries/);
  // A flat image cannot be smeared visibly: the most-changed draw is returned after maxTries.
  const flat = new Uint8Array(N * 3).fill(128);
  const sm = synthesizeDefect(flat, S, S, "smear", { seed: 1, maxTries: 3 });
  assert.equal(sm.params.tries, 3);
  assert.ok(sum(sm.mask) > 0);
});

// ---------------------------------------------------------------------------- shapes

Deno.test("defects: scratch = thin, small, elongated stroke, darker or brighter than the surface", () => {
  const polarities = new Set<string>();
  for (const seed of [...SEEDS, 8, 9, 10, 11]) {
    const r = synthesizeDefect(IMG, S, S, "scratch", { seed });
    const area = sum(r.mask);
    const b = bbox(r.mask);
    const diag = Math.hypot(b.hh, b.ww);
    assert.ok(area < 0.05 * N, `scratch ${seed}: area ${area}`);
    assert.ok(area / diag < 10, `scratch ${seed}: area/diag ${(area / diag).toFixed(1)} (thin)`);
    assert.ok(diag > 8, `scratch ${seed}: long (diag ${diag.toFixed(1)})`);
    const dark = r.params.polarity === "dark";
    polarities.add(r.params.polarity as string);
    let dLum = 0;
    for (let p = 0; p < N; p++) {
      if (r.mask[p]) { for (let c = 0; c < 3; c++) dLum += r.rgb[3 * p + c] - IMG[3 * p + c]; }
    }
    assert.ok(dark ? dLum < 0 : dLum > 0, `scratch ${seed}: ${r.params.polarity}, Δ ${dLum}`);
    const w = r.params.width as number;
    assert.ok(w >= 1 && w <= 3);
  }
  assert.deepEqual([...polarities].sort(), ["bright", "dark"]);
});

Deno.test("defects: blob = 1–3 small compact blobs; dark holes have a darker centre", () => {
  let sawDark = false;
  for (const seed of [...SEEDS, 8, 9, 10, 11]) {
    const r = synthesizeDefect(IMG, S, S, "blob", { seed });
    assert.ok(sum(r.mask) < 0.06 * N, `blob ${seed}: area ${sum(r.mask)}`);
    const comps = components(r.mask);
    assert.ok(comps.length >= 1 && comps.length <= 3, `blob ${seed}: ${comps.length} blobs`);
    for (const comp of comps) {
      const m = new Uint8Array(N);
      for (const p of comp) m[p] = 1;
      const b = bbox(m);
      assert.ok(
        comp.length / (b.hh * b.ww) > 0.45,
        `blob ${seed}: fill ${comp.length}/${b.hh}×${b.ww}`,
      );
      assert.ok(Math.max(b.hh, b.ww) <= 0.3 * S, `blob ${seed}: extent ${b.hh}×${b.ww}`);
    }
    if (r.params.polarity === "dark") {
      sawDark = true;
      // The darkest pixel change lies well inside the blob (not on its rim).
      const big = comps.reduce((a, c) => (c.length > a.length ? c : a));
      if (big.length < 30) continue;
      const rel = (p: number) =>
        sum([0, 1, 2].map((c) => r.rgb[3 * p + c])) / sum([0, 1, 2].map((c) => IMG[3 * p + c]));
      const inBig = new Set(big);
      const rim = big.filter((p) => [p - 1, p + 1, p - S, p + S].some((q) => !inBig.has(q)));
      const inner = big.filter((p) => !rim.includes(p));
      const mean = (ps: number[]) => sum(ps.map(rel)) / ps.length;
      assert.ok(mean(inner) < mean(rim), `blob ${seed}: centre ${mean(inner)} vs rim ${mean(rim)}`);
    }
  }
  assert.ok(sawDark);
});

Deno.test("defects: edge = jagged chunk at the image border, or bitten out of an object", () => {
  const fills = new Set<string>();
  for (const seed of [...SEEDS, 8, 9, 10, 11]) {
    const r = synthesizeDefect(IMG, S, S, "edge", { seed, edgeAnchor: "border" });
    assert.equal(r.params.anchor, "border");
    fills.add(r.params.fill as string);
    let near = Infinity, far = 0;
    for (let p = 0; p < N; p++) {
      if (!r.mask[p]) continue;
      const y = Math.floor(p / S), x = p % S;
      const d = Math.min(y, x, S - 1 - y, S - 1 - x);
      near = Math.min(near, d);
      far = Math.max(far, d);
    }
    assert.ok(near <= 0.15 * S, `edge ${seed}: nearest mask pixel ${near} px from the border`);
    assert.ok(far <= 0.25 * S, `edge ${seed}: farthest mask pixel ${far} px from the border`);
    assert.ok(sum(r.mask) < 0.1 * N);
  }
  assert.ok(fills.size >= 2, `fills ${[...fills]}`);
  // The textured gradient has no uniform background: "auto" falls back to the border.
  assert.equal(synthesizeDefect(IMG, S, S, "edge", { seed: 1 }).params.anchor, "border");
  // A disc on a black background: the chunk lies on the disc's outline, inside the object.
  const disc = discImage();
  for (const seed of SEEDS) {
    const r = synthesizeDefect(disc, S, S, "edge", { seed });
    assert.equal(r.params.anchor, "object");
    for (let p = 0; p < N; p++) {
      if (!r.mask[p]) continue;
      const d = Math.hypot(Math.floor(p / S) - 63.5, (p % S) - 63.5);
      assert.ok(d < 41.5 && d > 40 - 0.2 * S, `edge/object ${seed}: mask pixel at radius ${d}`);
    }
  }
});

Deno.test("defects: smear = region blurred toward its local mean (texture energy reduced)", () => {
  const blurs = new Set<string>();
  for (const seed of SEEDS) {
    const r = synthesizeDefect(IMG, S, S, "smear", { seed });
    blurs.add(r.params.blur as string);
    // High-frequency energy: squared differences of horizontal/vertical neighbours inside the mask.
    let eIn = 0, eOut = 0;
    for (let y = 0; y < S - 1; y++) {
      for (let x = 0; x < S - 1; x++) {
        const p = y * S + x;
        if (!r.mask[p] || !r.mask[p + 1] || !r.mask[p + S]) continue;
        for (let c = 0; c < 3; c++) {
          const i = 3 * p + c;
          eIn += (IMG[i] - IMG[i + 3]) ** 2 + (IMG[i] - IMG[i + 3 * S]) ** 2;
          eOut += (r.rgb[i] - r.rgb[i + 3]) ** 2 + (r.rgb[i] - r.rgb[i + 3 * S]) ** 2;
        }
      }
    }
    assert.ok(eOut < 0.8 * eIn, `smear ${seed}: energy ${eOut} vs ${eIn}`);
    assert.ok(sum(r.mask) < 0.25 * N, `smear ${seed}: area ${sum(r.mask)}`);
  }
  assert.deepEqual([...blurs].sort(), ["box", "motion"]);
});

Deno.test("defects: stain = soft region tinted toward one random colour", () => {
  const colours = new Set<string>();
  for (const seed of SEEDS) {
    const r = synthesizeDefect(IMG, S, S, "stain", { seed });
    const col = r.params.colour as number[];
    colours.add(col.join(","));
    const a = r.params.alphaMax as number;
    assert.ok(a >= 0.2 && a <= 0.6);
    let shift = 0, n = 0;
    for (let p = 0; p < N; p++) {
      if (!r.mask[p]) continue;
      n++;
      for (let c = 0; c < 3; c++) {
        const i = 3 * p + c;
        // Moved toward the stain colour, by at most alphaMax of the way (+ rounding).
        assert.ok(Math.abs(r.rgb[i] - col[c]) <= Math.abs(IMG[i] - col[c]) + 1, `stain ${seed}`);
        assert.ok(Math.abs(r.rgb[i] - IMG[i]) <= a * Math.abs(IMG[i] - col[c]) + 1);
        shift += Math.abs(r.rgb[i] - IMG[i]);
      }
    }
    assert.ok(shift / (3 * n) > 3, `stain ${seed}: mean shift ${shift / (3 * n)}`);
  }
  assert.ok(colours.size >= 7);
});

Deno.test("defects: paint = opaque hard-edged marks of one colour, on the object when there is one", () => {
  // A pale disc on a yellow background of about the same luminance (hazelnut-like): found by
  // colour distance, so the marks' anchor lies inside the disc.
  const r0 = createRng(3);
  const img = new Uint8Array(N * 3);
  for (let p = 0; p < N; p++) {
    const inside = Math.hypot(Math.floor(p / S) - 63.5, (p % S) - 63.5) < 40;
    const col = inside ? [225, 215, 180] : [230, 210, 60];
    for (let c = 0; c < 3; c++) img[3 * p + c] = col[c] + r0.nextInt(5) - 2;
  }
  const lum = (a: Uint8Array, p: number) =>
    0.299 * a[3 * p] + 0.587 * a[3 * p + 1] + 0.114 * a[3 * p + 2];
  assert.ok(Math.abs(lum(img, 0) - lum(img, 64 * S + 64)) < 15, "equal-luminance object");
  assert.equal(synthesizeDefect(img, S, S, "edge", { seed: 1 }).params.anchor, "object");
  const colours = new Set<string>();
  for (const seed of SEEDS) {
    const r = synthesizeDefect(img, S, S, "paint", { seed });
    const [ay, ax] = r.params.anchor as number[];
    assert.ok(
      Math.hypot(ay - 63.5, ax - 63.5) < 40,
      `paint ${seed}: anchor (${ay}, ${ax}) off the disc`,
    );
    const col = r.params.colour as number[], op = r.params.opacity as number;
    colours.add(col.join(","));
    assert.ok(op >= 0.7 && op <= 1);
    let area = 0, full = 0;
    for (let p = 0; p < N; p++) {
      if (!r.mask[p]) continue;
      area++;
      // Fully covered pixels: (1 − opacity)·img + opacity·colour (± rounding).
      const ok = [0, 1, 2].every((c) =>
        Math.abs(r.rgb[3 * p + c] - ((1 - op) * img[3 * p + c] + op * col[c])) <= 1
      );
      if (ok) full++;
    }
    assert.ok(area > 0 && area < 0.15 * N, `paint ${seed}: area ${area}`);
    assert.ok(full >= 0.3 * area, `paint ${seed}: ${full} of ${area} mask pixels fully painted`);
  }
  assert.ok(colours.size >= 7);
});

// ---------------------------------------------------------------------------- dispatcher

const TEX: RgbImage[] = [{
  width: 40,
  height: 30,
  data: Uint8Array.from({ length: 40 * 30 * 3 }, (_, i) => (i * 7) % 256),
}];

Deno.test("synthesizeAnomaly sources: default = ['structure', 'texture'] = no sources, bit for bit", async () => {
  for (const seed of [0, 1, 2, 3, 4, 5]) {
    for (const extra of [{}, { textures: TEX }, { textures: TEX, textureProb: 0.2 }]) {
      const a = await synthesizeAnomaly(IMG, S, S, { seed, ...extra });
      const b = await synthesizeAnomaly(IMG, S, S, {
        seed,
        ...extra,
        sources: ["structure", "texture"],
      });
      assert.deepEqual(b, a);
      assert.equal(a.defect, null);
      assert.ok(a.perlin !== null);
    }
  }
  // "structure" alone never takes the texture; "texture" alone always does.
  for (let seed = 0; seed < 6; seed++) {
    const s = await synthesizeAnomaly(IMG, S, S, { seed, textures: TEX, sources: ["structure"] });
    assert.equal(s.source, "structure");
    const t = await synthesizeAnomaly(IMG, S, S, { seed, textures: TEX, sources: ["texture"] });
    assert.equal(t.source, "texture");
  }
  await assert.rejects(
    synthesizeAnomaly(IMG, S, S, { seed: 1, sources: ["texture"] }),
    /no textures/,
  );
});

Deno.test("synthesizeAnomaly sources: defect kinds drawn uniformly, texture only with textures", async () => {
  // A single defect source: one entry draw, then synthesizeDefect on the same generator.
  const r = await synthesizeAnomaly(IMG, S, S, { seed: 7, sources: ["scratch"] });
  const rng = createRng(7);
  rng.nextInt(1);
  const d = synthesizeDefect(IMG, S, S, "scratch", { rng });
  assert.equal(r.source, "scratch");
  assert.deepEqual(r.rgb, d.rgb);
  assert.deepEqual(r.mask, d.mask);
  assert.deepEqual(r.sourceRgb, d.rgb);
  assert.equal(r.beta, 1);
  assert.equal(r.perlin, null);
  assert.deepEqual(r.defect, { kind: "scratch", params: d.params });
  assert.deepEqual(await synthesizeAnomaly(IMG, S, S, { seed: 7, sources: ["scratch"] }), r);

  const mixed = parseSynthSources("scratch,blob,texture");
  const seenNoTex = new Set<string>(), seenTex = new Set<string>();
  for (let seed = 0; seed < 24; seed++) {
    seenNoTex.add((await synthesizeAnomaly(IMG, S, S, { seed, sources: mixed })).source);
    const t = await synthesizeAnomaly(IMG, S, S, { seed, sources: mixed, textures: TEX });
    seenTex.add(t.source);
    assert.ok(t.mask.some((v) => v === 1));
  }
  assert.deepEqual([...seenNoTex].sort(), ["blob", "scratch"]);
  assert.deepEqual([...seenTex].sort(), ["blob", "scratch", "texture"]);

  // Defect-only sources need no tile grid; structure does.
  const odd = IMG.subarray(0, 60 * 60 * 3);
  const o = await synthesizeAnomaly(odd, 60, 60, { seed: 1, sources: ["blob", "stain"] });
  assert.equal(o.mask.length, 3600);
  await assert.rejects(
    synthesizeAnomaly(odd, 60, 60, { seed: 1, sources: ["blob", "structure"] }),
    /not a multiple of grid 8/,
  );
  // Defect options pass through.
  const e = await synthesizeAnomaly(discImage(), S, S, {
    seed: 3,
    sources: ["edge"],
    defect: { edgeAnchor: "border" },
  });
  assert.equal(e.defect!.params.anchor, "border");
  await assert.rejects(
    synthesizeAnomaly(IMG, S, S, { seed: 1, sources: ["scratch", "dent" as DefectKind] }),
    /unknown anomaly source 'dent'/,
  );
  await assert.rejects(synthesizeAnomaly(IMG, S, S, { seed: 1, sources: [] }), /no anomaly source/);
});

Deno.test("parseSynthSources: trimmed list; errors name the bad entry and list valid ones", () => {
  assert.deepEqual(parseSynthSources("scratch, blob ,texture"), ["scratch", "blob", "texture"]);
  assert.deepEqual(parseSynthSources("structure,texture"), ["structure", "texture"]);
  assert.deepEqual(parseSynthSources(SYNTH_SOURCES.join(",")), [...SYNTH_SOURCES]);
  assert.throws(
    () => parseSynthSources("scratch,crack"),
    (e: Error) =>
      e.name === "OptionError" &&
      /^sources names an unknown anomaly source 'crack'/.test(e.message) &&
      SYNTH_SOURCES.every((s) => e.message.includes(s)),
  );
  assert.throws(() => parseSynthSources(""), /empty entry/);
  assert.throws(
    () => parseSynthSources("blob,,stain", "valSources"),
    /^OptionError: valSources has an empty entry/,
  );
  assert.throws(() => parseSynthSources("Blob"), /'Blob'/);
});

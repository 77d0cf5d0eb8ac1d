/**
 * Metrics against the sklearn / exact-rational fixtures in shared/fixtures/metrics (small, medium,
 * edge, summary), plus curve sanity, the ranking sort, error paths and the per-category table.
 */
import assert from "node:assert/strict";
import {
  aupro,
  auroc,
  averagePrecision,
  computeMetrics,
  f1Max,
  formatTable,
  labelRegions,
  type MapShape,
  MEAN_ROW,
  METRIC_KEYS,
  type Metrics,
  metricsTable,
  pixelMetrics,
  prCurve,
  proCurve,
  rankDescending,
  rocCurve,
} from "../lib/metrics/mod.ts";
import { sweepMetrics } from "../lib/metrics/sweep.ts";

const FIXTURES = new URL("../../shared/fixtures/metrics/", import.meta.url);
const TOL = 1e-9;

type Num = number | null;
interface Expected {
  image: Record<string, unknown> & { exact: Record<string, Num> };
  pixel?: Record<string, unknown> & { exact: Record<string, Num> };
  aupro?: {
    value: Num;
    n_regions: number;
    regions_per_image: number[];
    region_sizes: number[];
    n_normal_pixels: number;
    n_curve_points: number;
    pro_at_fpr_limit?: number;
  };
}
interface Case {
  case: string;
  shape?: [number, number, number];
  scores?: number[];
  masks?: number[];
  image_scores: number[];
  image_labels: number[];
  expected: Expected;
  pro_curve?: { threshold: Num[]; fpr: Num[]; pro: Num[] };
}

async function load(name: string): Promise<unknown> {
  return JSON.parse(await Deno.readTextFile(new URL(name, FIXTURES)));
}

const small = await load("small.json") as Case;
const medium = await load("medium.json") as Case;
const edge = await load("edge.json") as { subcases: Record<string, Case> };
const summary = await load("summary.json") as Record<string, Record<string, Num | string>>;

/** Every case by its summary.json name. */
const CASES: [string, Case][] = [
  ["small", small],
  ["medium", medium],
  ...Object.entries(edge.subcases).map(([k, c]) => [`edge/${k}`, c] as [string, Case]),
];
const WITH_MAPS = CASES.filter(([, c]) => c.shape !== undefined);

function inputs(c: Case) {
  return {
    imageScores: c.image_scores,
    imageLabels: c.image_labels,
    pixelScores: c.scores ? Float32Array.from(c.scores) : undefined,
    pixelMasks: c.masks ? Uint8Array.from(c.masks) : undefined,
    shape: c.shape as MapShape | undefined,
  };
}

/**
 * The expected value of a fixture metric: null → NaN; sklearn's -0.0/0.0 for a case without
 * positives (where the exact value is null) → NaN too.
 */
function expectedOf(level: Expected["image"] | undefined, key: "auroc" | "ap" | "f1max"): number {
  if (level === undefined) return NaN;
  const v = level[key] as Num;
  if (v === null || level.exact[key] === null) return NaN;
  return v;
}

function expectedMetrics(c: Case): Metrics {
  const e = c.expected;
  return {
    image_auroc: expectedOf(e.image, "auroc"),
    image_ap: expectedOf(e.image, "ap"),
    image_f1max: expectedOf(e.image, "f1max"),
    pixel_auroc: expectedOf(e.pixel, "auroc"),
    pixel_ap: expectedOf(e.pixel, "ap"),
    pixel_f1max: expectedOf(e.pixel, "f1max"),
    aupro: e.aupro?.value ?? NaN,
  };
}

function assertClose(actual: number, expected: number, tol: number, what: string): void {
  if (Number.isNaN(expected)) {
    assert.ok(Number.isNaN(actual), `${what}: expected NaN (undefined), got ${actual}`);
    return;
  }
  assert.ok(
    Math.abs(actual - expected) <= tol,
    `${what}: got ${actual}, expected ${expected} (|diff| ${Math.abs(actual - expected)})`,
  );
}

/** Run fn with console.warn captured; returns fn's result and the warning lines. */
function captureWarnings<T>(fn: () => T): { result: T; warnings: string[] } {
  const warnings: string[] = [];
  const orig = console.warn;
  console.warn = (...args: unknown[]) => {
    warnings.push(args.map(String).join(" "));
  };
  try {
    return { result: fn(), warnings };
  } finally {
    console.warn = orig;
  }
}

for (const [name, c] of CASES) {
  Deno.test(`computeMetrics reproduces fixture ${name} within 1e-9 (null -> NaN)`, () => {
    const { result, warnings } = captureWarnings(() => computeMetrics(inputs(c)));
    assert.deepEqual(Object.keys(result).sort(), [...METRIC_KEYS].sort());
    const exp = expectedMetrics(c);
    for (const k of METRIC_KEYS) assertClose(result[k], exp[k], TOL, `${name} ${k}`);
    // one warning line per undefined metric, naming it (pixel metrics of an image-only case: none)
    const undefinedKeys = METRIC_KEYS.filter((k) =>
      Number.isNaN(exp[k]) && (c.masks !== undefined || k.startsWith("image_"))
    );
    assert.equal(warnings.length, undefinedKeys.length, `${name} warnings: ${warnings}`);
    for (const k of undefinedKeys) {
      assert.equal(warnings.filter((w) => w.includes(` ${k} is undefined`)).length, 1, k);
    }
  });
}

Deno.test("exact rational values also match (fixture `exact`) within 1e-9", () => {
  for (const [name, c] of CASES) {
    const m = captureWarnings(() => computeMetrics(inputs(c))).result;
    for (const level of ["image", "pixel"] as const) {
      const ex = c.expected[level]?.exact;
      if (!ex) continue;
      for (const k of ["auroc", "ap", "f1max"] as const) {
        assertClose(m[`${level}_${k}`], ex[k] ?? NaN, TOL, `${name} exact ${level} ${k}`);
      }
    }
  }
});

Deno.test("summary.json headline numbers are reproduced", () => {
  for (const [name, c] of CASES) {
    const row = summary[name];
    assert.ok(row, `summary has ${name}`);
    const m = captureWarnings(() => computeMetrics(inputs(c))).result;
    const exp = expectedMetrics(c);
    for (const k of METRIC_KEYS) {
      const v = row[k] as Num;
      // null, or sklearn's -0.0/0.0 where the metric is undefined, must be NaN here
      const want = v === null || Number.isNaN(exp[k]) ? NaN : v;
      assertClose(m[k], want, TOL, `summary ${name} ${k}`);
    }
  }
});

Deno.test("fixture image scores are the max of each map (input sanity)", () => {
  for (const [name, c] of WITH_MAPS) {
    const [n, h, w] = c.shape!;
    for (let i = 0; i < n; i++) {
      const map = c.scores!.slice(i * h * w, (i + 1) * h * w);
      assert.equal(Math.max(...map), c.image_scores[i], `${name} image ${i}`);
      assert.equal(
        map.some((_, p) => c.masks![i * h * w + p] === 1) ? 1 : 0,
        c.image_labels[i],
        `${name} label ${i}`,
      );
    }
  }
});

Deno.test("F1max operating point (smallest threshold reaching the max) matches the fixtures", () => {
  for (const [name, c] of CASES) {
    for (const level of ["image", "pixel"] as const) {
      const e = c.expected[level];
      if (!e || e.exact.f1max === null) continue;
      const r = level === "image"
        ? f1Max(c.image_scores, c.image_labels)
        : pixelMetrics(Float32Array.from(c.scores!), Uint8Array.from(c.masks!), c.shape!).f1max;
      assertClose(r.value, e.f1max as number, TOL, `${name} ${level} f1max`);
      assert.equal(r.threshold, e.f1max_threshold, `${name} ${level} f1max threshold`);
      assertClose(r.precision, e.f1max_precision as number, 1e-12, `${name} ${level} precision`);
      assertClose(r.recall, e.f1max_recall as number, 1e-12, `${name} ${level} recall`);
    }
  }
});

Deno.test("8-connected region labelling matches scipy (counts, per image, sizes)", () => {
  for (const [name, c] of WITH_MAPS) {
    const a = c.expected.aupro!;
    const reg = labelRegions(Uint8Array.from(c.masks!), c.shape!);
    assert.equal(reg.nRegions, a.n_regions, `${name} n_regions`);
    assert.deepEqual([...reg.regionsPerImage], a.regions_per_image, `${name} regions_per_image`);
    assert.deepEqual([...reg.sizes.subarray(1)], a.region_sizes, `${name} region_sizes`);
    assert.equal(reg.sizes[0], a.n_normal_pixels, `${name} n_normal_pixels`);
  }
});

Deno.test("pixel metrics with partitioned placement of normal pixels match the fixtures", () => {
  for (const [name, c] of WITH_MAPS) {
    const args = [Float32Array.from(c.scores!), Uint8Array.from(c.masks!), c.shape!] as const;
    const { result } = captureWarnings(() => pixelMetrics(...args, { partitionAbove: 0 }));
    const exp = expectedMetrics(c);
    assertClose(result.auroc, exp.pixel_auroc, TOL, `${name} pixel_auroc`);
    assertClose(result.ap, exp.pixel_ap, TOL, `${name} pixel_ap`);
    assertClose(result.f1max.value, exp.pixel_f1max, TOL, `${name} pixel_f1max`);
    assertClose(result.aupro, exp.aupro, TOL, `${name} aupro`);
  }
});

Deno.test("AUPRO: standalone aupro() and PRO at the FPR limit match the fixtures", () => {
  for (const [name, c] of WITH_MAPS) {
    const a = c.expected.aupro!;
    const { scores, masks, shape } = c;
    const { result, warnings } = captureWarnings(() =>
      aupro(Float32Array.from(scores!), Uint8Array.from(masks!), shape!)
    );
    assertClose(result, a.value ?? NaN, TOL, `${name} aupro`);
    assert.equal(warnings.length, a.value === null ? 1 : 0, `${name}: ${warnings}`);
    if (a.value !== null) {
      const px = pixelMetrics(Float32Array.from(scores!), Uint8Array.from(masks!), shape!);
      assertClose(px.proAtLimit, a.pro_at_fpr_limit!, TOL, `${name} pro_at_fpr_limit`);
    }
  }
});

Deno.test("proCurve equals the fixtures' exact PRO curves point by point", () => {
  for (const [name, c] of WITH_MAPS) {
    if (!c.pro_curve) continue;
    const { result: pc } = captureWarnings(() =>
      proCurve(Float32Array.from(c.scores!), Uint8Array.from(c.masks!), c.shape!)
    );
    const ref = c.pro_curve;
    assert.equal(pc.fpr.length, c.expected.aupro!.n_curve_points, `${name} n_curve_points`);
    assert.equal(pc.fpr.length, ref.fpr.length);
    for (let i = 0; i < ref.fpr.length; i++) {
      assert.equal(pc.thresholds[i], ref.threshold[i] ?? Infinity, `${name} threshold ${i}`);
      assertClose(pc.fpr[i], ref.fpr[i] ?? NaN, 1e-12, `${name} fpr ${i}`);
      assertClose(pc.pro[i], ref.pro[i] ?? NaN, 1e-12, `${name} pro ${i}`);
    }
  }
});

/** Trapezoid area under (x, y). */
function trapezoid(x: Float64Array, y: Float64Array): number {
  let a = 0;
  for (let i = 1; i < x.length; i++) a += (x[i] - x[i - 1]) * (y[i] + y[i - 1]) / 2;
  return a;
}

Deno.test("curve endpoints and monotonicity; areas agree with the metrics", () => {
  for (const [name, c] of [["small", small], ["medium", medium]] as const) {
    const scores = Float32Array.from(c.scores!);
    const masks = Uint8Array.from(c.masks!);
    const n1 = masks.reduce((s, v) => s + v, 0);
    const roc = rocCurve(scores, masks);
    const last = roc.fpr.length - 1;
    assert.deepEqual([roc.fpr[0], roc.tpr[0], roc.thresholds[0]], [0, 0, Infinity]);
    assert.deepEqual([roc.fpr[last], roc.tpr[last]], [1, 1], name);
    assert.equal(roc.thresholds[last], c.scores!.reduce((a, b) => Math.min(a, b)));
    for (let i = 1; i <= last; i++) {
      assert.ok(roc.fpr[i] >= roc.fpr[i - 1] && roc.tpr[i] >= roc.tpr[i - 1], `${name} ${i}`);
      assert.ok(roc.thresholds[i] < roc.thresholds[i - 1]);
    }
    assertClose(trapezoid(roc.fpr, roc.tpr), c.expected.pixel!.auroc as number, TOL, "ROC area");
    assert.equal(last, c.expected.pixel!.n_distinct_scores, `${name} one point per distinct score`);

    const pr = prCurve(scores, masks);
    assert.deepEqual([pr.recall[0], pr.precision[0]], [0, 1]);
    assert.equal(pr.recall[last], 1);
    assertClose(pr.precision[last], n1 / masks.length, 1e-15, `${name} last precision`);
    let ap = 0;
    for (let i = 1; i <= last; i++) ap += (pr.recall[i] - pr.recall[i - 1]) * pr.precision[i];
    assertClose(ap, c.expected.pixel!.ap as number, TOL, `${name} AP from prCurve`);
    assertClose(
      trapezoid(pr.recall, pr.precision),
      c.expected.pixel!.aupr_trapezoid_info_only as number,
      TOL,
      `${name} PR trapezoid (info)`,
    );

    const pro = proCurve(scores, masks, c.shape!);
    assert.deepEqual([pro.fpr[0], pro.pro[0]], [0, 0]);
    assert.equal(pro.fpr[pro.fpr.length - 1], 1);
    assertClose(pro.pro[pro.pro.length - 1], 1, 1e-12, `${name} last PRO`);

    const img = rocCurve(c.image_scores, c.image_labels);
    assertClose(trapezoid(img.fpr, img.tpr), c.expected.image.auroc as number, TOL, "image ROC");
  }
});

Deno.test("undefined curves give NaN axes with one warning, never a crash", () => {
  const { result, warnings } = captureWarnings(() => rocCurve([0.1, 0.4, 0.4], [0, 0, 0]));
  assert.deepEqual([result.tpr[0], result.fpr[2]], [0, 1]);
  assert.ok(Number.isNaN(result.tpr[1]));
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /ROC curve is undefined/);
});

Deno.test("standalone image-level functions agree with computeMetrics and warn by name", () => {
  assertClose(auroc(small.image_scores, small.image_labels), 15 / 16, TOL, "auroc");
  assertClose(averagePrecision(small.image_scores, small.image_labels), 19 / 20, TOL, "ap");
  assertClose(f1Max(small.image_scores, small.image_labels).value, 8 / 9, TOL, "f1");
  const c = edge.subcases.image_labels_all_zero;
  const { result, warnings } = captureWarnings(() =>
    averagePrecision(c.image_scores, c.image_labels.map((v) => v === 1))
  );
  assert.ok(Number.isNaN(result));
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /AP is undefined \(NaN\): no anomalous sample/);
});

/** Brute force over every distinct threshold: AUROC as Mann-Whitney pairs, AP, F1max, AUPRO. */
function bruteForce(scores: number[], masks: number[], shape: [number, number, number]) {
  const [, h, w] = shape;
  // regions by repeated 8-neighbour relaxation (independent of labelRegions' flood fill)
  const lab = masks.map((m, i) => (m ? i + 1 : 0));
  for (let changed = true; changed;) {
    changed = false;
    for (let i = 0; i < lab.length; i++) {
      if (!lab[i]) continue;
      const img = Math.floor(i / (h * w)), y = Math.floor(i / w) % h, x = i % w;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const yy = y + dy, xx = x + dx;
          if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
          const j = img * h * w + yy * w + xx;
          if (lab[j] && lab[j] < lab[i]) {
            lab[i] = lab[j];
            changed = true;
          }
        }
      }
    }
  }
  const ids = [...new Set(lab.filter((v) => v))];
  const size = new Map(ids.map((id) => [id, lab.filter((v) => v === id).length]));
  const pos = scores.filter((_, i) => masks[i]), neg = scores.filter((_, i) => !masks[i]);
  let u = 0;
  for (const p of pos) for (const q of neg) u += p > q ? 1 : p === q ? 0.5 : 0;
  const ts = [...new Set(scores)].sort((a, b) => b - a);
  let ap = 0, rPrev = 0, f1 = 0;
  const fx = [0], fy = [0];
  for (const t of ts) {
    const tp = pos.filter((s) => s >= t).length, fp = neg.filter((s) => s >= t).length;
    ap += (tp / pos.length - rPrev) * (tp / (tp + fp));
    rPrev = tp / pos.length;
    f1 = Math.max(f1, (2 * tp) / (tp + fp + pos.length));
    let pro = 0;
    for (const id of ids) {
      pro += lab.filter((v, i) => v === id && scores[i] >= t).length / size.get(id)!;
    }
    fx.push(fp / neg.length);
    fy.push(pro / ids.length);
  }
  let area = 0, k = 0;
  while (k + 1 < fx.length && fx[k + 1] <= 0.3) {
    area += (fx[k + 1] - fx[k]) * (fy[k + 1] + fy[k]) / 2;
    k++;
  }
  if (fx[k] < 0.3) {
    const yl = fy[k] + (fy[k + 1] - fy[k]) * (0.3 - fx[k]) / (fx[k + 1] - fx[k]);
    area += 0.5 * (fy[k] + yl) * (0.3 - fx[k]);
  }
  return { auroc: u / (pos.length * neg.length), ap, f1, aupro: area / 0.3 };
}

Deno.test("random tied maps with negative scores: one sort equals a brute-force threshold loop", () => {
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let trial = 0; trial < 4; trial++) {
    const shape: [number, number, number] = [3, 9, 11];
    const len = shape[0] * shape[1] * shape[2];
    const scores = Array.from({ length: len }, () => Math.fround(Math.round(rnd() * 40) / 8 - 2));
    scores[5] = -0; // ties with +0
    scores[6] = 0;
    const masks = Array.from({ length: len }, () => (rnd() < 0.2 ? 1 : 0));
    const bf = bruteForce(scores, masks, shape);
    const px = pixelMetrics(Float32Array.from(scores), Uint8Array.from(masks), shape);
    assertClose(px.auroc, bf.auroc, 1e-12, `trial ${trial} auroc`);
    assertClose(px.ap, bf.ap, 1e-12, `trial ${trial} ap`);
    assertClose(px.f1max.value, bf.f1, 1e-12, `trial ${trial} f1`);
    assertClose(px.aupro, bf.aupro, 1e-12, `trial ${trial} aupro`);
  }
});

Deno.test("pooled pixel path equals the full-sort sweep on wide-range random maps", () => {
  let seed = 99;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const shape: [number, number, number] = [5, 48, 40];
  const len = shape[0] * shape[1] * shape[2];
  for (let trial = 0; trial < 3; trial++) {
    const scores = Float32Array.from({ length: len }, (_, i) => {
      const v = rnd() < 0.1 ? Math.round(rnd() * 16) / 4 : (rnd() - 0.2) * 10 ** (rnd() * 8 - 4);
      return i % 97 === 0 ? -0 : v;
    });
    const masks = new Uint8Array(len);
    for (let b = 0; b < 12; b++) { // blobs, some touching only at a corner
      const img = Math.floor(rnd() * shape[0]), cy = rnd() * 48, cx = rnd() * 40, r = 1 + rnd() * 6;
      for (let y = 0; y < 48; y++) {
        for (let x = 0; x < 40; x++) {
          if ((y - cy) ** 2 + (x - cx) ** 2 < r * r) masks[(img * 48 + y) * 40 + x] = 1;
        }
      }
    }
    for (let i = 0; i < len; i++) if (masks[i] && rnd() < 0.5) scores[i] += 1;
    if (trial === 2) { // infinite scores: the bucket table falls back to key-space buckets
      const pos = masks.indexOf(1), neg = masks.indexOf(0);
      scores[pos] = Infinity;
      scores[neg] = Infinity;
      scores[neg + 1] = -Infinity;
    }
    const px = pixelMetrics(scores, masks, shape);
    const reg = labelRegions(masks, shape);
    const weights = Float64Array.from(reg.sizes, (s, r) => (r === 0 ? 0 : 1 / s));
    const ref = sweepMetrics(rankDescending(scores, reg.labels), {
      weights,
      nRegions: reg.nRegions,
    });
    assert.equal(px.nRegions, reg.nRegions);
    for (const k of ["auroc", "ap", "aupro", "proAtLimit"] as const) {
      assertClose(px[k], ref[k], 1e-13, `trial ${trial} ${k}`);
    }
    assert.deepEqual(px.f1max, ref.f1max, `trial ${trial} f1max`);
    const part = pixelMetrics(scores, masks, shape, { partitionAbove: 0 });
    assert.deepEqual(part, px, `trial ${trial}: partitioned placement gives identical results`);
    for (const lim of [0.05, 1]) {
      const a = pixelMetrics(scores, masks, shape, { fprLimit: lim });
      const b = sweepMetrics(rankDescending(scores, reg.labels), {
        weights,
        nRegions: reg.nRegions,
      }, lim);
      assertClose(a.aupro, b.aupro, 1e-13, `trial ${trial} limit ${lim}`);
    }
  }
});

Deno.test("rankDescending: radix path and float64 path order scores and keep ties together", () => {
  const vals = [3, -1, 0, -0, Infinity, -Infinity, 1e-30, -1e-30, 3, 0.5, 2.5e38, -2.5e38];
  for (const scores of [Float32Array.from(vals), vals.map((v) => v + (v === 3 ? 1e-12 : 0))]) {
    const payload = Uint32Array.from(vals.map((_, i) => i));
    const r = rankDescending(scores, payload);
    assert.deepEqual([...payload], vals.map((_, i) => i), "payload untouched by default");
    const sorted = [...r.payload].map((i) => scores[i]);
    for (let i = 1; i < r.n; i++) {
      assert.ok(sorted[i] <= sorted[i - 1], `order at ${i}`);
      assert.equal(r.groupKeys[i] === r.groupKeys[i - 1], sorted[i] === sorted[i - 1], `tie ${i}`);
      assert.equal(r.scoreAt(i), sorted[i] === 0 ? r.scoreAt(i) : sorted[i]);
    }
  }
  // large random float32 input against Array.prototype.sort
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const big = Float32Array.from({ length: 20000 }, () => (rnd() - 0.3) * 10 ** (rnd() * 6 - 3));
  const r = rankDescending(big, Uint32Array.from(big, (_, i) => i));
  const ref = [...big].sort((a, b) => b - a);
  assert.deepEqual([...r.payload].map((i) => big[i]), ref);
});

Deno.test("bad input throws a clear Error", () => {
  const s = Float32Array.from([0.1, NaN, 0.3, 0.4]);
  assert.throws(() => auroc(s, [0, 1, 0, 1]), /index 1 is NaN/);
  assert.throws(() => auroc([0.1, 0.2], [0, 2]), /label 2 at index 1/);
  assert.throws(() => auroc([0.1, 0.2], [0]), /2 scores but 1 labels/);
  const m = Uint8Array.from([0, 255, 0, 0]);
  assert.throws(() => labelRegions(m, [1, 2, 2]), /value 255 at index 1/);
  assert.throws(
    () =>
      computeMetrics({
        imageScores: [1],
        imageLabels: [1],
        pixelScores: new Float32Array(4),
        pixelMasks: new Uint8Array(4),
        shape: [1, 2, 3],
      }),
    /expected N\*H\*W = 1\*2\*3 = 6 values/,
  );
  assert.throws(
    () => computeMetrics({ imageScores: [1], imageLabels: [1], pixelMasks: new Uint8Array(4) }),
    /pixelMasks given without pixelScores/,
  );
});

Deno.test("metricsTable: one row per category plus the NaN-ignoring mean row; formatTable", () => {
  const picks: [string, Case][] = [
    ["small", small],
    ["medium", medium],
    ["constant", edge.subcases.constant_scores],
    ["image_only", edge.subcases.image_labels_all_one],
  ];
  const rows = picks.map(([category, c]) => ({
    category,
    ...captureWarnings(() => computeMetrics(inputs(c))).result,
  }));
  const t = metricsTable(rows);
  assert.deepEqual(t.columnNames(), ["category", ...METRIC_KEYS]);
  assert.equal(t.numRows(), picks.length + 1);
  assert.equal(t.get("category", picks.length), MEAN_ROW);
  for (const k of METRIC_KEYS) {
    // independent mean from the fixture values, skipping undefined ones
    const vals = picks.map(([, c]) => expectedMetrics(c)[k]).filter((v) => !Number.isNaN(v));
    const want = vals.reduce((a, b) => a + b, 0) / vals.length;
    assertClose(t.get(k, picks.length) as number, want, TOL, `mean ${k}`);
  }
  // image_only has no AUROC and no pixel metrics: the mean ignores it
  assert.ok(Number.isNaN(t.get("pixel_ap", 3) as number));
  const allNaN = metricsTable([{ category: "a", aupro: NaN }, { category: "b", aupro: NaN }]);
  assert.ok(Number.isNaN(allNaN.get("aupro", 2) as number));

  const text = formatTable(t);
  const lines = text.split("\n");
  assert.equal(lines.length, 2 + picks.length + 1);
  assert.match(lines[0], /\| category +\| I-AUROC \|/);
  assert.match(lines[2], /^\| small +\| +93\.75 \| +95\.00 \| +88\.89 \| +83\.97 \|/);
  assert.match(lines[5], /^\| image_only .*\| +n\/a \| +n\/a \| +n\/a \| +n\/a \|$/);
  assert.match(formatTable(t, { style: "fraction" }).split("\n")[2], /\| +0\.9375 \| 0\.9500 \|/);
  assert.throws(() => metricsTable([{ category: "a" }, { category: "a" }]), /appears twice/);
});

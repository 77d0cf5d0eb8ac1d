/**
 * Defect-shaped synthetic anomalies for SNARM head training: besides the MemSeg-style Perlin blends
 * of synth.ts, whose defects look like recoloured patches, these generators draw shapes that look
 * like real industrial defects (magnetic tile: thin dark cracks, blowholes, broken edges on a grey
 * surface; MVTec AD: scratches, spots, stains, holes):
 *
 * - `scratch`: thin curvilinear scratches / cracks (a random-walk curve, optionally branching);
 * - `blob`: small dark holes (darker centre) or bright spots;
 * - `edge`: a jagged chunk broken out of the image border or out of the object's outline;
 * - `smear`: an irregular region strongly box- or motion-blurred;
 * - `stain`: a soft irregular region tinted with a random colour.
 * - `paint`: opaque marks of saturated paint or ink — splotches with short strokes, hard-edged
 *   (MVTec AD's `color` / `print` defects: hazelnut, pill, metal nut, carpet, wood).
 *
 * Each generator works on a preprocessed `(H, W, 3)` row-major u8 RGB crop (e.g. the 392×392
 * `Sample.rgb`), is deterministic given the seed (or {@link Rng}; `createRng` of
 * lib/bank/coreset.ts) and returns a `(H, W)` u8 0/1 mask; pixels outside the mask are never
 * changed. Lengths below are in pixels unless given as a fraction of the image side
 * `side = min(H, W)`. Use {@link synthesizeDefect} directly, or through `synthesizeAnomaly`'s
 * `sources` option (synth.ts).
 * @module
 */
import { createRng, type Rng } from "../bank/coreset.ts";
import { randPerlin2d } from "./perlin.ts";

/** A defect-shaped anomaly generator (see {@link synthesizeDefect}). */
export type DefectKind = "scratch" | "blob" | "edge" | "smear" | "stain" | "paint";

/** All {@link DefectKind}s, in documentation order. */
export const DEFECT_KINDS: readonly DefectKind[] = [
  "scratch",
  "blob",
  "edge",
  "smear",
  "stain",
  "paint",
];

/** Whether `s` names a {@link DefectKind}. */
export function isDefectKind(s: string): s is DefectKind {
  return (DEFECT_KINDS as readonly string[]).includes(s);
}

/** Options of {@link synthesizeDefect}. One of `seed` / `rng` is required (`rng` wins). */
export interface DefectOptions {
  /** Seed of a fresh `createRng(seed)`. */
  seed?: number;
  /** An existing generator (advanced by the draws). */
  rng?: Rng;
  /**
   * `edge` only: where the chunk is broken out. `"border"`: at the image border; `"object"`: at
   * the outline of an object on a uniform background (falls back to the border when none is
   * found); `"auto"` (default) = `"object"`.
   */
  edgeAnchor?: "auto" | "border" | "object";
  /**
   * A draw whose mean absolute change inside the mask (u8 levels, averaged over channels) is below
   * this is drawn again (default 3), e.g. a smear on a flat region or a stain of the surface colour.
   */
  minChange?: number;
  /** Draws before giving up on `minChange` (default 16; the most-changed draw is returned). */
  maxTries?: number;
}

/** Result of {@link synthesizeDefect}. */
export interface DefectResult {
  /** `(H, W, 3)` row-major u8 RGB image with the defect; equal to the input outside `mask`. */
  rgb: Uint8Array;
  /** `(H, W)` row-major u8 0/1 defect mask (non-empty). */
  mask: Uint8Array;
  kind: DefectKind;
  /** The drawn parameters (px unless noted), `tries` (draws made) and `change` (mean |Δ| in mask). */
  params: Record<string, number | number[] | string>;
}

// ---------------------------------------------------------------------------------------------
// Helpers

type Params = Record<string, number | number[] | string>;

/** One draw: blend weight α `(H, W)`, target colours `(H, W, 3)`, mask `(H, W)`. */
interface Draw {
  alpha: Float32Array;
  target: Float32Array;
  mask: Uint8Array;
  params: Params;
}

interface ObjectInfo {
  /** Background colour (per-channel median of the border ring). */
  bg: [number, number, number];
  /** `(H, W)` 0/1 foreground (object) estimate. */
  fg: Uint8Array;
  /** Flat pixel indices of the object outline (away from the image border). */
  boundary: Int32Array;
}

interface Ctx {
  img: Uint8Array;
  h: number;
  w: number;
  side: number;
  /** `(H, W, 3)` local mean (box radius ≈ side/24). */
  lm: Float32Array;
  opts: DefectOptions;
  object: () => ObjectInfo | null;
  /** `(H, W)` local detail: box mean (radius side/24) of |luminance − its local mean|. */
  detail: () => Float32Array;
}

const clampU8 = (v: number) => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));
const clamp01 = (v: number) => (v <= 0 ? 0 : v >= 1 ? 1 : v);
const uniform = (rng: Rng, a: number, b: number) => a + (b - a) * rng.nextFloat();
const lumAt = (a: ArrayLike<number>, p: number) =>
  0.299 * a[3 * p] + 0.587 * a[3 * p + 1] + 0.114 * a[3 * p + 2];

function gauss(rng: Rng): number {
  const u1 = 1 - rng.nextFloat(), u2 = rng.nextFloat();
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/**
 * Mean over the `(2r+1)²` window clipped to the image (separable running sums).
 * @param src `(H, W, C)` row-major values. @returns `(H, W, C)` f32.
 */
function boxBlur(src: ArrayLike<number>, h: number, w: number, c: number, r: number): Float32Array {
  const tmp = new Float32Array(h * w * c);
  const out = new Float32Array(h * w * c);
  const line = new Float64Array(Math.max(h, w) + 1);
  for (let y = 0; y < h; y++) {
    for (let ch = 0; ch < c; ch++) {
      line[0] = 0;
      for (let x = 0; x < w; x++) line[x + 1] = line[x] + src[(y * w + x) * c + ch];
      for (let x = 0; x < w; x++) {
        const a = Math.max(0, x - r), b = Math.min(w, x + r + 1);
        tmp[(y * w + x) * c + ch] = (line[b] - line[a]) / (b - a);
      }
    }
  }
  for (let x = 0; x < w; x++) {
    for (let ch = 0; ch < c; ch++) {
      line[0] = 0;
      for (let y = 0; y < h; y++) line[y + 1] = line[y] + tmp[(y * w + x) * c + ch];
      for (let y = 0; y < h; y++) {
        const a = Math.max(0, y - r), b = Math.min(h, y + r + 1);
        out[(y * w + x) * c + ch] = (line[b] - line[a]) / (b - a);
      }
    }
  }
  return out;
}

/**
 * Stamp an anti-aliased disc of diameter `width` px at (py, px) into the `(H, W)` coverage `cov`
 * (max-composited: coverage = clamp(width/2 + 0.5 − distance)); a stroke is a run of such stamps.
 */
function stampDisc(
  cov: Float32Array,
  h: number,
  w: number,
  py: number,
  px: number,
  width: number,
): void {
  const reach = Math.ceil(width / 2 + 1);
  for (let y = Math.max(0, Math.round(py) - reach); y <= Math.min(h - 1, py + reach); y++) {
    for (let x = Math.max(0, Math.round(px) - reach); x <= Math.min(w - 1, px + reach); x++) {
      const a = clamp01(width / 2 + 0.5 - Math.hypot(y - py, x - px));
      if (a > cov[y * w + x]) cov[y * w + x] = a;
    }
  }
}

/** A one-colour overlay of blend weights `alpha` `(H, W)`: target = `colour`, mask = α > 0. */
function solidColour(
  alpha: Float32Array,
  colour: ArrayLike<number>,
): { alpha: Float32Array; target: Float32Array; mask: Uint8Array } {
  const target = new Float32Array(alpha.length * 3);
  const mask = new Uint8Array(alpha.length);
  for (let p = 0; p < alpha.length; p++) {
    if (!(alpha[p] > 0)) continue;
    mask[p] = 1;
    target[3 * p] = colour[0];
    target[3 * p + 1] = colour[1];
    target[3 * p + 2] = colour[2];
  }
  return { alpha, target, mask };
}

/** 3×3 binary dilation of a `(H, W)` 0/1 mask. */
function dilate(m: Uint8Array, h: number, w: number): Uint8Array {
  const out = new Uint8Array(m.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (!m[y * w + x]) continue;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= h) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if (xx >= 0 && xx < w) out[yy * w + xx] = 1;
        }
      }
    }
  }
  return out;
}

/**
 * Polarity of an intensity defect: dark with probability `pDark`, but always bright on a dark
 * surface (mean luminance < 60) and always dark on a bright one (> 200), so that it stays visible.
 */
function drawDark(rng: Rng, pDark: number, meanLum: number): boolean {
  const u = rng.nextFloat();
  return meanLum < 60 ? false : meanLum > 200 ? true : u < pDark;
}

/** Mean luminance of the local mean over pixels with α > 0 (128 when none). */
function meanLumUnder(ctx: Ctx, alpha: Float32Array): number {
  let s = 0, n = 0;
  for (let p = 0; p < alpha.length; p++) {
    if (alpha[p] > 0) {
      s += lumAt(ctx.lm, p);
      n++;
    }
  }
  return n ? s / n : 128;
}

/**
 * Irregular elliptic region: centre U(0.15, 0.85)·(H, W) (with `detail`: the most detailed of 4
 * such candidates), semi-axes r and r·aspect with r ~ U(rLo, rHi)·side, aspect ~ U(0.5, 1),
 * rotation U(0°, 180°), outline jittered by Perlin noise of amplitude U(0.2, 0.45) of the radius
 * and lattice cells of U(0.5, 1.5)·r px (≥ 2 cells). Draw order as listed.
 * @returns `depth`: `(H, W)` distance inside the boundary in px (≤ 0 outside), and the draws.
 */
function irregularRegion(
  ctx: Ctx,
  rng: Rng,
  rLo: number,
  rHi: number,
  detail: Float32Array | null = null,
): { depth: Float32Array; ry: number; noise: Float32Array; params: Params } {
  const { h, w, side } = ctx;
  let cy = uniform(rng, 0.15, 0.85) * h, cx = uniform(rng, 0.15, 0.85) * w;
  if (detail) {
    let best = detail[Math.floor(cy) * w + Math.floor(cx)];
    for (let k = 1; k < 4; k++) {
      const y = uniform(rng, 0.15, 0.85) * h, x = uniform(rng, 0.15, 0.85) * w;
      const d = detail[Math.floor(y) * w + Math.floor(x)];
      if (d > best) [best, cy, cx] = [d, y, x];
    }
  }
  const r = Math.max(2, uniform(rng, rLo, rHi) * side);
  const aspect = uniform(rng, 0.5, 1);
  const angle = uniform(rng, 0, 180);
  const jitter = uniform(rng, 0.2, 0.45);
  const res = Math.max(2, Math.round(side / (r * uniform(rng, 0.5, 1.5))));
  const noise = randPerlin2d(h, w, res, res, rng);
  const rx = r, ry = r * aspect;
  const rad = (angle * Math.PI) / 180, ca = Math.cos(rad), sa = Math.sin(rad);
  const depth = new Float32Array(h * w).fill(-1);
  const ext = Math.ceil(r * (1 + 1.5 * jitter) + 1);
  for (let y = Math.max(0, Math.floor(cy - ext)); y < Math.min(h, Math.ceil(cy + ext)); y++) {
    for (let x = Math.max(0, Math.floor(cx - ext)); x < Math.min(w, Math.ceil(cx + ext)); x++) {
      const u = (x - cx) * ca + (y - cy) * sa, v = -(x - cx) * sa + (y - cy) * ca;
      const rho = Math.sqrt((u / rx) ** 2 + (v / ry) ** 2);
      depth[y * w + x] = (1 - rho + jitter * noise[y * w + x]) * ry;
    }
  }
  return {
    depth,
    ry,
    noise,
    params: {
      center: [cy, cx],
      radius: r,
      aspect,
      angle,
      jitter,
      perlinRes: res,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Generators (each: one draw; see synthesizeDefect for the documented ranges)

function drawScratch(ctx: Ctx, rng: Rng): Draw {
  const { h, w, side, lm } = ctx;
  const width = uniform(rng, 1, 3);
  const length = uniform(rng, 0.15, 0.5) * side;
  const sigma = uniform(rng, 0.01, 0.08);
  const kappa = uniform(rng, -0.02, 0.02);
  const y0 = uniform(rng, 0.1, 0.9) * h, x0 = uniform(rng, 0.1, 0.9) * w;
  const theta0 = uniform(rng, 0, 2 * Math.PI);
  const branches = rng.nextFloat() < 0.5 ? 1 + rng.nextInt(2) : 0;
  const STEP = 0.5;
  /** Random walk of the heading; samples [y, x, θ] every STEP px until `len` or the image edge. */
  const walk = (y: number, x: number, th: number, len: number) => {
    const pts: number[][] = [[y, x, th]];
    for (let t = 0; t < len; t += STEP) {
      th += kappa * STEP + sigma * Math.sqrt(STEP) * gauss(rng);
      y += STEP * Math.sin(th);
      x += STEP * Math.cos(th);
      if (y < -1 || y > h || x < -1 || x > w) break;
      pts.push([y, x, th]);
    }
    return pts;
  };
  const strokes: { pts: number[][]; wmax: number }[] = [
    { pts: walk(y0, x0, theta0, length), wmax: width },
  ];
  const main = strokes[0].pts;
  const branchInfo: number[] = [];
  for (let b = 0; b < branches; b++) {
    const j = Math.floor(uniform(rng, 0.2, 0.8) * (main.length - 1));
    const turn = (rng.nextFloat() < 0.5 ? -1 : 1) * uniform(rng, 0.3, 1);
    const len = uniform(rng, 0.2, 0.5) * length;
    const [by, bx, bth] = main[j];
    strokes.push({ pts: walk(by, bx, bth + turn, len), wmax: Math.max(1, 0.6 * width) });
    branchInfo.push(j * STEP, turn, len);
  }
  const alpha = new Float32Array(h * w);
  for (const { pts, wmax } of strokes) {
    const n = pts.length;
    for (let k = 0; k < n; k++) {
      const [py, px] = pts[k];
      const wd = Math.max(0.8, wmax * (0.55 + 0.45 * Math.sin((Math.PI * k) / Math.max(1, n - 1))));
      stampDisc(alpha, h, w, py, px, wd);
    }
  }
  const depth = uniform(rng, 0.35, 0.8);
  const dark = drawDark(rng, 0.7, meanLumUnder(ctx, alpha));
  const target = new Float32Array(h * w * 3);
  const core = new Uint8Array(h * w);
  for (let p = 0; p < h * w; p++) {
    if (alpha[p] <= 0) continue;
    if (alpha[p] >= 0.25) core[p] = 1;
    for (let c = 0; c < 3; c++) {
      const m = lm[3 * p + c];
      target[3 * p + c] = dark ? m * (1 - depth) : m + (255 - m) * depth;
    }
  }
  return {
    alpha,
    target,
    mask: dilate(core, h, w),
    params: {
      width,
      length,
      sigma,
      kappa,
      start: [y0, x0],
      heading: theta0,
      branches,
      branchAt: branchInfo,
      depth,
      polarity: dark ? "dark" : "bright",
    },
  };
}

function drawBlob(ctx: Ctx, rng: Rng): Draw {
  const { h, w, side, lm } = ctx;
  const count = 1 + rng.nextInt(3);
  const alpha = new Float32Array(h * w);
  const prof = new Float32Array(h * w); // 1 at the centre → 0 at the rim, of the strongest blob
  const info: number[] = [];
  for (let b = 0; b < count; b++) {
    const r = Math.max(1.5, uniform(rng, 0.01, 0.06) * side);
    const cy = uniform(rng, Math.min(r, h / 2), Math.max(h - r, h / 2));
    const cx = uniform(rng, Math.min(r, w / 2), Math.max(w - r, w / 2));
    const aspect = uniform(rng, 0.6, 1);
    const angle = uniform(rng, 0, Math.PI);
    const harm = [2, 3, 4].map((
      k,
    ) => [uniform(rng, 0, 0.15) / (k - 1), uniform(rng, 0, 2 * Math.PI)]);
    info.push(cy, cx, r, aspect);
    const rx = r, ry = r * aspect, rm = Math.sqrt(rx * ry);
    const ca = Math.cos(angle), sa = Math.sin(angle);
    const ext = Math.ceil(r * 1.4 + 1);
    for (let y = Math.max(0, Math.floor(cy - ext)); y < Math.min(h, Math.ceil(cy + ext)); y++) {
      for (let x = Math.max(0, Math.floor(cx - ext)); x < Math.min(w, Math.ceil(cx + ext)); x++) {
        const u = (x - cx) * ca + (y - cy) * sa, v = -(x - cx) * sa + (y - cy) * ca;
        const phi = Math.atan2(v / ry, u / rx);
        let R = 1;
        for (let k = 0; k < 3; k++) R += harm[k][0] * Math.cos((k + 2) * phi + harm[k][1]);
        const rho = Math.sqrt((u / rx) ** 2 + (v / ry) ** 2) / R;
        const a = clamp01((1 - rho) * rm + 0.5);
        const p = y * w + x;
        if (a > alpha[p]) {
          alpha[p] = a;
          prof[p] = 1 - Math.min(1, rho) ** 2;
        }
      }
    }
  }
  const depth = uniform(rng, 0.4, 0.9);
  const dark = drawDark(rng, 0.65, meanLumUnder(ctx, alpha));
  const target = new Float32Array(h * w * 3);
  const mask = new Uint8Array(h * w);
  for (let p = 0; p < h * w; p++) {
    if (alpha[p] <= 0.05) continue;
    mask[p] = 1;
    const d = depth * (0.55 + 0.45 * prof[p]);
    for (let c = 0; c < 3; c++) {
      const m = lm[3 * p + c];
      target[3 * p + c] = dark ? m * (1 - d) : m + (255 - m) * d;
    }
  }
  return {
    alpha,
    target,
    mask,
    params: { count, blobs: info, depth, polarity: dark ? "dark" : "bright" },
  };
}

/** Even-odd point-in-polygon test. */
function inPolygon(py: number, px: number, ys: number[], xs: number[]): boolean {
  let inside = false;
  for (let i = 0, j = ys.length - 1; i < ys.length; j = i++) {
    if ((ys[i] > py) !== (ys[j] > py)) {
      const xCross = xs[i] + ((py - ys[i]) * (xs[j] - xs[i])) / (ys[j] - ys[i]);
      if (px < xCross) inside = !inside;
    }
  }
  return inside;
}

/**
 * Object on a uniform background: the border ring (width side/32) has a median colour from which
 * ≥ 80 % of its pixels differ by ≤ 20 (colour distance: the largest per-channel |difference|),
 * and 3–90 % of the image is foreground: its colour distance to that median is > 30 after a box blur
 * of radius side/48 and > 20 after a 3×3 box blur. Returns null otherwise.
 */
function detectObject(img: Uint8Array, h: number, w: number): ObjectInfo | null {
  const side = Math.min(h, w);
  const rw = Math.max(1, Math.round(side / 32));
  const ch: number[][] = [[], [], []];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (y >= rw && y < h - rw && x >= rw && x < w - rw) continue;
      const p = y * w + x;
      for (let c = 0; c < 3; c++) ch[c].push(img[3 * p + c]);
    }
  }
  const median = (a: number[]) => {
    const s = [...a].sort((u, v) => u - v);
    return s[s.length >> 1];
  };
  const bg: [number, number, number] = [median(ch[0]), median(ch[1]), median(ch[2])];
  // Colour distance to the background: the largest per-channel difference (a pale object on a
  // yellow background differs in blue, not in luminance).
  const dist = new Float32Array(h * w);
  for (let p = 0; p < h * w; p++) {
    dist[p] = Math.max(
      Math.abs(img[3 * p] - bg[0]),
      Math.abs(img[3 * p + 1] - bg[1]),
      Math.abs(img[3 * p + 2] - bg[2]),
    );
  }
  let near = 0;
  for (let i = 0; i < ch[0].length; i++) {
    const d = Math.max(
      Math.abs(ch[0][i] - bg[0]),
      Math.abs(ch[1][i] - bg[1]),
      Math.abs(ch[2][i] - bg[2]),
    );
    if (d <= 20) near++;
  }
  if (near < 0.8 * ch[0].length) return null;
  const lb = boxBlur(dist, h, w, 1, Math.max(1, Math.round(side / 48)));
  const l1 = boxBlur(dist, h, w, 1, 1);
  const fg0 = new Uint8Array(h * w);
  let n = 0;
  for (let p = 0; p < h * w; p++) {
    if (lb[p] > 30 && l1[p] > 20) {
      fg0[p] = 1;
      n++;
    }
  }
  if (n < 0.03 * h * w || n > 0.9 * h * w) return null;
  const boundary: number[] = [];
  for (let y = rw; y < h - rw; y++) {
    for (let x = rw; x < w - rw; x++) {
      const p = y * w + x;
      if (fg0[p] && (!fg0[p - 1] || !fg0[p + 1] || !fg0[p - w] || !fg0[p + w])) boundary.push(p);
    }
  }
  if (!boundary.length) return null;
  return {
    bg,
    fg: fg0,
    boundary: Int32Array.from(boundary),
  };
}

function drawEdge(ctx: Ctx, rng: Rng): Draw {
  const { img, h, w, side, lm } = ctx;
  const want = ctx.opts.edgeAnchor ?? "auto";
  const obj = want === "border" ? null : ctx.object();
  let cy: number, cx: number, anchor: string, border = -1;
  if (obj) {
    anchor = "object";
    const p = obj.boundary[rng.nextInt(obj.boundary.length)];
    cy = Math.floor(p / w);
    cx = p % w;
  } else {
    anchor = "border";
    border = rng.nextInt(4); // 0 top, 1 bottom, 2 left, 3 right
    const t = uniform(rng, 0.1, 0.9), inset = uniform(rng, 0, 0.05) * side;
    cy = border === 0 ? inset : border === 1 ? h - 1 - inset : t * (h - 1);
    cx = border === 2 ? inset : border === 3 ? w - 1 - inset : t * (w - 1);
  }
  const R = uniform(rng, 0.05, 0.15) * side;
  const nv = 7 + rng.nextInt(8);
  const phi0 = uniform(rng, 0, 2 * Math.PI);
  const ys: number[] = [], xs: number[] = [];
  for (let k = 0; k < nv; k++) {
    const phi = phi0 + (2 * Math.PI * (k + uniform(rng, -0.3, 0.3))) / nv;
    const rr = R * uniform(rng, 0.45, 1.15);
    ys.push(cy + rr * Math.sin(phi));
    xs.push(cx + rr * Math.cos(phi));
  }
  // Fill: object anchor 50 % background / 25 % shadow / 25 % shift; border anchor
  // 40 % dark / 30 % shadow / 30 % shift.
  const u = rng.nextFloat();
  const fill = obj
    ? (u < 0.5 ? "background" : u < 0.75 ? "shadow" : "shift")
    : (u < 0.4 ? "dark" : u < 0.7 ? "shadow" : "shift");
  const level = fill === "dark"
    ? uniform(rng, 0, 50)
    : fill === "shadow"
    ? uniform(rng, 0.15, 0.5)
    : uniform(rng, 0.04, 0.12) * side;
  const dir = fill === "shift" ? uniform(rng, 0, 2 * Math.PI) : 0;
  const blurR = fill === "shift" ? 1 + rng.nextInt(2) : 0;
  const noiseSd = fill === "shift" ? 0 : 3;
  const alpha = new Float32Array(h * w);
  const mask = new Uint8Array(h * w);
  const target = new Float32Array(h * w * 3);
  const blurred = fill === "shift" ? boxBlur(img, h, w, 3, blurR) : null;
  const dy = Math.round(level * Math.sin(dir)), dx = Math.round(level * Math.cos(dir));
  const ext = Math.ceil(R * 1.15 + 1);
  for (let y = Math.max(0, Math.floor(cy - ext)); y < Math.min(h, Math.ceil(cy + ext)); y++) {
    for (let x = Math.max(0, Math.floor(cx - ext)); x < Math.min(w, Math.ceil(cx + ext)); x++) {
      const p = y * w + x;
      if (!inPolygon(y, x, ys, xs) || (obj && !obj.fg[p])) continue;
      mask[p] = 1;
      alpha[p] = 1;
      const n = noiseSd ? noiseSd * gauss(rng) : 0;
      for (let c = 0; c < 3; c++) {
        let v: number;
        if (fill === "background") v = obj!.bg[c] + n;
        else if (fill === "dark") v = level + n;
        else if (fill === "shadow") v = lm[3 * p + c] * level + n;
        else {
          const sy = Math.min(h - 1, Math.max(0, y - dy)),
            sx = Math.min(w - 1, Math.max(0, x - dx));
          v = blurred![3 * (sy * w + sx) + c];
        }
        target[3 * p + c] = v;
      }
    }
  }
  return {
    alpha,
    target,
    mask,
    params: {
      anchor,
      border,
      center: [cy, cx],
      radius: R,
      vertices: nv,
      fill,
      level,
      shiftAngle: dir,
      blurRadius: blurR,
    },
  };
}

function drawSmear(ctx: Ctx, rng: Rng): Draw {
  const { img, h, w, side } = ctx;
  const reg = irregularRegion(ctx, rng, 0.06, 0.2, ctx.detail());
  const feather = Math.max(1.5, 0.25 * reg.ry);
  const motion = rng.nextFloat() < 0.5;
  const size = motion
    ? Math.max(5, Math.round(uniform(rng, 0.04, 0.1) * side))
    : Math.max(2, Math.round(uniform(rng, 0.015, 0.04) * side));
  const mAngle = motion ? uniform(rng, 0, Math.PI) : 0;
  const alpha = new Float32Array(h * w);
  const mask = new Uint8Array(h * w);
  for (let p = 0; p < h * w; p++) {
    if (reg.depth[p] > 0) {
      alpha[p] = clamp01(reg.depth[p] / feather);
      mask[p] = 1;
    }
  }
  let target: Float32Array;
  if (!motion) target = boxBlur(img, h, w, 3, size);
  else {
    target = new Float32Array(h * w * 3);
    const sa = Math.sin(mAngle), ca = Math.cos(mAngle);
    for (let p = 0; p < h * w; p++) {
      if (!mask[p]) continue;
      const y = Math.floor(p / w), x = p % w;
      let r = 0, g = 0, b = 0;
      for (let t = 0; t <= size; t++) {
        const o = t - size / 2;
        const sy = Math.min(h - 1, Math.max(0, Math.round(y + o * sa)));
        const sx = Math.min(w - 1, Math.max(0, Math.round(x + o * ca)));
        const q = 3 * (sy * w + sx);
        r += img[q];
        g += img[q + 1];
        b += img[q + 2];
      }
      target[3 * p] = r / (size + 1);
      target[3 * p + 1] = g / (size + 1);
      target[3 * p + 2] = b / (size + 1);
    }
  }
  return {
    alpha,
    target,
    mask,
    params: {
      ...reg.params,
      blur: motion ? "motion" : "box",
      blurSize: size,
      motionAngle: mAngle,
      feather,
    },
  };
}

function hsvToRgb255(hDeg: number, s: number, v: number): [number, number, number] {
  const c = v * s, hp = hDeg / 60, x = c * (1 - Math.abs((hp % 2) - 1)), m = v - c;
  const k = Math.floor(hp) % 6;
  const t = [[c, x, 0], [x, c, 0], [0, c, x], [0, x, c], [x, 0, c], [c, 0, x]][k];
  return [255 * (t[0] + m), 255 * (t[1] + m), 255 * (t[2] + m)];
}

function drawStain(ctx: Ctx, rng: Rng): Draw {
  const { h, w } = ctx;
  const reg = irregularRegion(ctx, rng, 0.06, 0.25);
  const aMax = uniform(rng, 0.2, 0.6);
  const hue = uniform(rng, 0, 360), sat = uniform(rng, 0.3, 1), val = uniform(rng, 0.15, 0.95);
  const colour = hsvToRgb255(hue, sat, val);
  const feather = Math.max(2, 0.35 * reg.ry);
  const alpha = new Float32Array(h * w);
  for (let p = 0; p < h * w; p++) {
    if (reg.depth[p] <= 0) continue;
    const t = clamp01(reg.depth[p] / feather);
    const a = aMax * t * t * (3 - 2 * t) * (0.85 + 0.15 * reg.noise[p]);
    if (a >= 0.1) alpha[p] = a;
  }
  return {
    ...solidColour(alpha, colour),
    params: { ...reg.params, alphaMax: aMax, colour: colour.map(Math.round), hue, feather },
  };
}

function drawPaint(ctx: Ctx, rng: Rng): Draw {
  const { h, w, side } = ctx;
  // Anchor: a random foreground pixel of a detected object (rejection sampling), else anywhere.
  let ay = uniform(rng, 0.15, 0.85) * h, ax = uniform(rng, 0.15, 0.85) * w;
  const obj = ctx.object();
  if (obj) {
    for (let t = 0; t < 64; t++) {
      const y = uniform(rng, 0, h), x = uniform(rng, 0, w), d = 0.04 * side;
      const inside = (yy: number, xx: number) =>
        yy >= 0 && yy < h && xx >= 0 && xx < w && obj.fg[Math.floor(yy) * w + Math.floor(xx)] === 1;
      if (
        inside(y, x) && inside(y - d, x) && inside(y + d, x) && inside(y, x - d) && inside(y, x + d)
      ) {
        [ay, ax] = [y, x];
        break;
      }
    }
  }
  const cover = new Float32Array(h * w);
  const spots = 1 + rng.nextInt(3), info: number[] = [];
  for (let s = 0; s < spots; s++) {
    const r = Math.max(1.5, uniform(rng, 0.01, 0.06) * side);
    const cy = ay + 0.04 * side * gauss(rng), cx = ax + 0.04 * side * gauss(rng);
    const aspect = uniform(rng, 0.4, 1), angle = uniform(rng, 0, Math.PI);
    const harm = [2, 3, 4, 5].map(() => [uniform(rng, 0, 0.25), uniform(rng, 0, 2 * Math.PI)]);
    info.push(cy, cx, r);
    const rx = r, ry = r * aspect, ca = Math.cos(angle), sa = Math.sin(angle);
    const ext = Math.ceil(r * 2 + 1);
    for (let y = Math.max(0, Math.floor(cy - ext)); y < Math.min(h, Math.ceil(cy + ext)); y++) {
      for (let x = Math.max(0, Math.floor(cx - ext)); x < Math.min(w, Math.ceil(cx + ext)); x++) {
        const u = (x - cx) * ca + (y - cy) * sa, v = -(x - cx) * sa + (y - cy) * ca;
        const phi = Math.atan2(v / ry, u / rx);
        let R = 1;
        for (let k = 0; k < 4; k++) R += harm[k][0] * Math.cos((k + 2) * phi + harm[k][1]);
        const rho = Math.sqrt((u / rx) ** 2 + (v / ry) ** 2) / Math.max(R, 0.2);
        const a = clamp01((1 - rho) * ry + 0.5);
        if (a > cover[y * w + x]) cover[y * w + x] = a;
      }
    }
  }
  const strokes = rng.nextInt(3);
  for (let s = 0; s < strokes; s++) {
    let y = ay, x = ax, th = uniform(rng, 0, 2 * Math.PI);
    const len = uniform(rng, 0.04, 0.15) * side, wd = uniform(rng, 1.5, 4);
    const sigma = uniform(rng, 0.05, 0.2);
    info.push(len, wd);
    for (let t = 0; t < len; t += 0.5) {
      th += sigma * Math.sqrt(0.5) * gauss(rng);
      y += 0.5 * Math.sin(th);
      x += 0.5 * Math.cos(th);
      stampDisc(cover, h, w, y, x, Math.max(0.8, wd * (1 - 0.6 * (t / len))));
    }
  }
  const opacity = uniform(rng, 0.7, 1);
  const hue = uniform(rng, 0, 360), sat = uniform(rng, 0.6, 1), val = uniform(rng, 0.25, 0.85);
  const colour = hsvToRgb255(hue, sat, val);
  const alpha = new Float32Array(h * w);
  for (let p = 0; p < h * w; p++) if (cover[p] >= 0.25) alpha[p] = opacity * cover[p];
  return {
    ...solidColour(alpha, colour),
    params: {
      anchor: [ay, ax],
      spots,
      strokes,
      shapes: info,
      opacity,
      colour: colour.map(Math.round),
      hue,
    },
  };
}

const DRAW: Record<DefectKind, (ctx: Ctx, rng: Rng) => Draw> = {
  scratch: drawScratch,
  blob: drawBlob,
  edge: drawEdge,
  smear: drawSmear,
  stain: drawStain,
  paint: drawPaint,
};

// ---------------------------------------------------------------------------------------------
// Entry point

/**
 * One defect-shaped synthetic anomaly. Inside the mask, out = (1 − α)·img + α·target per pixel and
 * channel (rounded, clamped to u8); outside it the image is copied unchanged. The "local mean" below
 * is a box mean of radius max(2, round(side/24)) px. What each kind draws (in draw order; `side` =
 * min(H, W)):
 *
 * - `scratch`: width U(1, 3) px (tapered to 55 % at the ends, ≥ 0.8 px), length U(0.15, 0.5)·side,
 *   a random walk from a start U(0.1, 0.9)·(H, W) with heading U(0, 2π), heading noise
 *   σ ~ U(0.01, 0.08) rad/√px and drift U(−0.02, 0.02) rad/px, stopping at the image edge; with
 *   probability 0.5, 1–2 branches from 20–80 % along it, turned by ±U(0.3, 1) rad, of length
 *   U(0.2, 0.5)× the main one and 0.6× its width. α = anti-aliased coverage (clamp(width/2 + 0.5 −
 *   distance)); target = local mean × (1 − d) (dark, probability 0.7) or local mean + (255 − local
 *   mean)·d (bright), d ~ U(0.35, 0.8); always bright on a dark surface (mean luminance < 60), always
 *   dark on a bright one (> 200). Mask = α ≥ 0.25 dilated by 1 px (3×3).
 * - `blob`: 1–3 blobs, each of radius U(0.01, 0.06)·side (≥ 1.5 px), aspect U(0.6, 1), rotation
 *   U(0, π), outline radius modulated by harmonics 2–4 (amplitudes U(0, 0.15)/(k − 1)), anti-aliased
 *   over ~1 px; dark (hole, probability 0.65; same surface rule) or bright, depth d ~ U(0.4, 0.9),
 *   strongest at the centre (d·(0.55 + 0.45·(1 − ρ²)), ρ = normalised radius). Mask = α > 0.05.
 * - `edge`: a jagged star-shaped polygon of 7–14 vertices at radii U(0.45, 1.15)·R,
 *   R ~ U(0.05, 0.15)·side, centred on a point of the object's outline (`edgeAnchor`, when an object
 *   on a uniform background is found: chunk ∩ object) or within U(0, 0.05)·side of a random image
 *   border (at U(0.1, 0.9) along it), so it touches or lies within ~0.23·side of that border.
 *   Filled (α = 1) with the background colour (object anchor only), a dark value U(0, 50) (border
 *   anchor only), a shadow (local mean × U(0.15, 0.5)), each with N(0, 3²) noise, or a copy of the
 *   image box-blurred (radius 1–2) and shifted by U(0.04, 0.12)·side px in a random direction.
 *   Mask = the chunk.
 * - `smear`: an irregular elliptic region (centre: the most detailed, by local mean |luminance −
 *   local mean|, of 4 draws U(0.15, 0.85)·(H, W); radius r ~ U(0.06, 0.2)·side, aspect U(0.5, 1),
 *   outline jittered by Perlin noise of amplitude U(0.2, 0.45)·r with lattice cells of
 *   U(0.5, 1.5)·r) blended, feathered over max(1.5, r/4) px, with the
 *   image box-blurred (radius U(0.015, 0.04)·side, ≥ 2 px) or motion-blurred (line of
 *   U(0.04, 0.1)·side px, ≥ 5, at an angle U(0, π)), 50/50. Mask = the region.
 * - `stain`: an irregular region as for smear (one centre draw) of radius U(0.06, 0.25)·side, tinted with a random
 *   colour (HSV hue U(0, 360), saturation U(0.3, 1), value U(0.15, 0.95)) at α up to
 *   U(0.2, 0.6) (smooth-step from the outline over 0.35·r px, mottled ±15 % by the Perlin noise).
 *   Mask = α ≥ 0.1.
 * - `paint`: an anchor (a random pixel of the object when one on a uniform background is found,
 *   with the object 0.04·side around it in the four axis directions; else U(0.15, 0.85)·(H, W));
 *   1–3 splotches of radius U(0.01, 0.06)·side (≥ 1.5 px), centred N(0, (0.04·side)²) from it, aspect U(0.4, 1), rotation U(0, π), outline modulated by
 *   harmonics 2–5 (amplitudes U(0, 0.25)), anti-aliased over ~1 px; then 0–2 strokes from the
 *   anchor (random walk, heading U(0, 2π), noise σ ~ U(0.05, 0.2) rad/√px, length
 *   U(0.04, 0.15)·side, width U(1.5, 4) px tapering to 40 %). One colour (HSV hue U(0, 360),
 *   saturation U(0.6, 1), value U(0.25, 0.85)) at opacity U(0.7, 1) × coverage; hard-edged.
 *   Mask = coverage ≥ 0.25.
 *
 * A draw with an empty mask, or whose mean |Δ| inside the mask is below `minChange`, is drawn again
 * (up to `maxTries`; then the most-changed non-empty draw is returned).
 * @param rgb `(H, W, 3)` row-major u8 RGB (not modified).
 * @returns the defect image, its `(H, W)` 0/1 mask, the kind and the drawn parameters.
 * @throws {RangeError} on bad sizes, an unknown kind or bad options; {@link Error} when neither
 *   seed nor rng is given or no non-empty mask could be drawn in `maxTries` draws.
 */
export function synthesizeDefect(
  rgb: Uint8Array,
  h: number,
  w: number,
  kind: DefectKind,
  opts: DefectOptions,
): DefectResult {
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 8 || w < 8 || rgb.length !== h * w * 3) {
    throw new RangeError(
      `synthesizeDefect: ${rgb.length} bytes; expected (H=${h}, W=${w}, 3) with H, W ≥ 8`,
    );
  }
  if (!isDefectKind(kind)) {
    throw new RangeError(
      `synthesizeDefect: unknown kind '${kind}'; expected one of ${DEFECT_KINDS.join(", ")}`,
    );
  }
  if (opts.rng === undefined && opts.seed === undefined) {
    throw new Error("synthesizeDefect: pass opts.seed or opts.rng (outputs are seeded)");
  }
  const maxTries = opts.maxTries ?? 16, minChange = opts.minChange ?? 3;
  if (!Number.isInteger(maxTries) || maxTries < 1 || !(minChange >= 0)) {
    throw new RangeError(
      `synthesizeDefect: maxTries=${maxTries} must be a positive integer, minChange=${minChange} ≥ 0`,
    );
  }
  const anchor = opts.edgeAnchor ?? "auto";
  if (!["auto", "border", "object"].includes(anchor)) {
    throw new RangeError(`synthesizeDefect: edgeAnchor '${anchor}'; expected auto, border, object`);
  }
  const rng = opts.rng ?? createRng(opts.seed!);
  const side = Math.min(h, w);
  let obj: ObjectInfo | null | undefined;
  let detail: Float32Array | undefined;
  const ctx: Ctx = {
    img: rgb,
    h,
    w,
    side,
    lm: boxBlur(rgb, h, w, 3, Math.max(2, Math.round(side / 24))),
    opts,
    object: () => (obj === undefined ? (obj = detectObject(rgb, h, w)) : obj),
    detail: () => {
      if (detail) return detail;
      const r = Math.max(2, Math.round(side / 24));
      const dev = new Float32Array(h * w);
      for (let p = 0; p < h * w; p++) dev[p] = Math.abs(lumAt(rgb, p) - lumAt(ctx.lm, p));
      return (detail = boxBlur(dev, h, w, 1, r));
    },
  };
  let best: DefectResult | null = null, bestChange = -1, tries = 0;
  while (tries < maxTries) {
    tries++;
    const d = DRAW[kind](ctx, rng);
    const out = new Uint8Array(rgb);
    let area = 0, change = 0;
    for (let p = 0; p < h * w; p++) {
      if (!d.mask[p]) continue;
      area++;
      const a = d.alpha[p];
      for (let c = 0; c < 3; c++) {
        const i = 3 * p + c;
        out[i] = clampU8((1 - a) * rgb[i] + a * d.target[i]);
        change += Math.abs(out[i] - rgb[i]);
      }
    }
    if (!area) continue;
    change /= 3 * area;
    if (change > bestChange) {
      bestChange = change;
      best = { rgb: out, mask: d.mask, kind, params: { ...d.params, tries, change } };
    }
    if (change >= minChange) break;
  }
  if (!best) {
    throw new Error(`synthesizeDefect(${kind}): no non-empty mask in ${maxTries} draws`);
  }
  best.params.tries = tries;
  return best;
}

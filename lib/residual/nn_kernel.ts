/**
 * Configuration and code generation of the WGSL nearest-reference search
 * (`wgsl/residual_nn.wgsl`), sized for lavapipe's limits:
 * - reference windows are uniform-buffer bindings of at most 64 KiB (4096 vec4) each, bound at
 *   offsets that are multiples of 256 bytes;
 * - the loop back-edges of one 8-lane group in one dispatch stay below {@link LOOP_BUDGET}
 *   (lavapipe silently exits every loop after 65535, docs/webgpu-on-lavapipe.md §5).
 * @module
 */
import { fillTemplate } from "../gpu/pipeline.ts";

/** Loop back-edges allowed per lane group and dispatch (lavapipe's hard limit is 65535). */
export const LOOP_BUDGET = 50000;
/** Largest channel count the GPU search supports (one reference row must fit a 64 KiB window). */
export const MAX_GPU_CHANNELS = 16384;
/** Workgroup size of the search. */
const WG = 64;
/** At most this many uniform windows per dispatch (WebGPU guarantees 12 uniform buffers per stage). */
const MAX_WINDOWS = 8;
/** Queries per invocation (8 queries × 8 references was the fastest blocking tried on lavapipe). */
const TQ = 8;
/** Widest query texture (WebGPU's default maxTextureDimension2D). */
const MAX_TEXTURE_WIDTH = 8192;

/** Compile-time shape of one search pipeline plus the dispatch plan for one image. */
export interface NnConfig {
  /** vec4s per feature vector, ceil(C/4). */
  C4: number;
  /** Row stride of the reference windows in vec4 (≥ C4, zero-padded). */
  S4: number;
  /** References per uniform window (a multiple of TR). */
  NR: number;
  /** References per register block. */
  TR: number;
  /** Windows per dispatch. */
  W: number;
  /** Queries per invocation. */
  TQ: number;
  /** Queries per row of the query texture; its width is QR·C4 texels. */
  QR: number;
  WG: number;
  /** Reference slots per image, a multiple of W·NR (padding slots are NONE). */
  Kpad: number;
  /** Dispatches per image, Kpad / (W·NR). */
  dispatches: number;
  /** Invocations per dispatch (query stride), a multiple of WG. */
  qStride: number;
}

/**
 * Plan the search for C channels, L queries and K references per image. `tune` overrides the
 * register blocking (queries per invocation TQ, references per block TR) for benchmarks.
 * @throws {Error} naming `X` when C exceeds {@link MAX_GPU_CHANNELS}.
 */
export function planNnSearch(
  C: number,
  L: number,
  K: number,
  tune: { TQ?: number; TR?: number } = {},
): NnConfig {
  if (C > MAX_GPU_CHANNELS) {
    throw new Error(
      `X: C = ${C} feature channels exceed the GPU nearest-reference search limit ${MAX_GPU_CHANNELS}; use fuseResidualsRef`,
    );
  }
  const C4 = Math.ceil(C / 4);
  let S4 = C4;
  let NR = 1;
  while (NR * 2 * C4 <= 4096 && NR < 256) NR *= 2;
  if (NR < 16) {
    // A window must be a multiple of 256 bytes (16 vec4): pad the row stride instead.
    S4 = Math.ceil(C4 / 16) * 16;
    NR = 1;
    while (NR * 2 * S4 <= 4096) NR *= 2;
  }
  // Few references: smaller windows waste less on padding.
  while (NR > 16 && NR / 2 >= K) NR /= 2;
  const TR = Math.min(tune.TR ?? 8, NR);
  const windowsNeeded = Math.ceil(K / NR);
  let W = Math.floor(LOOP_BUDGET / ((NR / TR) * (C4 + 1)));
  W = Math.max(1, Math.min(W, MAX_WINDOWS, windowsNeeded));
  const dispatches = Math.ceil(windowsNeeded / W);
  const Kpad = dispatches * W * NR;
  const tq = tune.TQ ?? TQ;
  const qStride = Math.ceil(Math.ceil(L / tq) / WG) * WG;
  const QR = Math.floor(MAX_TEXTURE_WIDTH / C4);
  return { C4, S4, NR, TR, W, TQ: tq, QR, WG, Kpad, dispatches, qStride };
}

/** Pipeline cache key of a configuration. */
export function nnKey(c: NnConfig): string {
  return `residual_nn:C4=${c.C4},S4=${c.S4},NR=${c.NR},TR=${c.TR},W=${c.W},TQ=${c.TQ},QR=${c.QR},WG=${c.WG}`;
}

/** Fill the `residual_nn.wgsl` template for a configuration (unrolled windows and blocks). */
export function generateNnKernel(template: string, c: NnConfig): string {
  const ks = Array.from({ length: c.TQ }, (_, k) => k);
  const is = Array.from({ length: c.TR }, (_, i) => i);
  const ws = Array.from({ length: c.W }, (_, w) => w);
  const bindings = ws.map((w) =>
    `@group(0) @binding(${4 + w}) var<uniform> R${w}: array<vec4<f32>, ${c.NR * c.S4}>;`
  ).join("\n");
  const setup = ks.map((k) =>
    [
      `  let p${k} = gid.x + ${k}u * P.qStride;`,
      `  let g${k} = P.b * P.L + min(p${k}, P.L - 1u);`,
      `  let x${k} = (g${k} % QR) * C4;`,
      `  let y${k} = g${k} / QR;`,
      `  var d1_${k} = INF;`,
      `  var i1_${k} = NONE;`,
      `  var d2_${k} = INF;`,
      `  if (p${k} < P.L) {`,
      `    let s = STATE[P.b * P.L + p${k}];`,
      `    d1_${k} = bitcast<f32>(s.x);`,
      `    i1_${k} = s.y;`,
      `    d2_${k} = bitcast<f32>(s.z);`,
      `  }`,
    ].join("\n")
  ).join("\n");
  const windows = ws.map((w) =>
    [
      `  for (var jb = 0u; jb < NR; jb += TR) {`,
      ...is.map((i) => `    let rp${i} = REFPOS[rbase + ${w}u * NR + jb + ${i}u];`),
      `    if (rp0 == NONE) {`,
      `      break;`,
      `    }`,
      ...ks.flatMap((k) => is.map((i) => `    var a${k}_${i} = 0.0;`)),
      `    for (var c = 0u; c < C4; c++) {`,
      ...is.map((i) => `      let r${i} = R${w}[(jb + ${i}u) * S4 + c];`),
      ...ks.map((k) => `      let q${k} = textureLoad(QT, vec2<u32>(x${k} + c, y${k}), 0);`),
      ...ks.flatMap((k) => is.map((i) => `      a${k}_${i} = a${k}_${i} + sq4(q${k} - r${i});`)),
      `    }`,
      ...is.flatMap((i) =>
        ks.map((k) =>
          [
            `    {`,
            `      let t = select(INF, a${k}_${i}, rp${i} != p${k} && rp${i} != NONE);`,
            `      let lt = t < d1_${k};`,
            `      d2_${k} = select(d2_${k}, select(t, d1_${k}, lt), t < d2_${k});`,
            `      i1_${k} = select(i1_${k}, rp${i}, lt);`,
            `      d1_${k} = select(d1_${k}, t, lt);`,
            `    }`,
          ].join("\n")
        )
      ),
      `  }`,
    ].join("\n")
  ).join("\n");
  const store = ks.map((k) =>
    `  if (p${k} < P.L) {\n    STATE[P.b * P.L + p${k}] = vec4<u32>(bitcast<u32>(d1_${k}), i1_${k}, bitcast<u32>(d2_${k}), 0u);\n  }`
  ).join("\n");
  return fillTemplate(template, {
    C4: c.C4,
    S4: c.S4,
    NR: c.NR,
    TR: c.TR,
    QR: c.QR,
    W: c.W,
    TQ: c.TQ,
    WG: c.WG,
    WINDOW_BINDINGS: bindings,
    QUERY_SETUP: setup,
    WINDOWS: windows,
    STORE: store,
  });
}

/**
 * Build the query texture contents: texel (x, y) = f[4c .. 4c+3] of query g = b·L + p with
 * x = (g % QR)·C4 + c, y = floor(g / QR), for `Bc` images starting at image `b0` of X.
 * @returns the rgba32float texel data, its width and height.
 */
export function queryTexels(
  X: Float32Array,
  b0: number,
  Bc: number,
  C: number,
  L: number,
  c: NnConfig,
): { data: Float32Array<ArrayBuffer>; width: number; height: number } {
  const width = c.QR * c.C4;
  const height = Math.ceil(Bc * L / c.QR);
  const data = new Float32Array(width * height * 4);
  for (let b = 0; b < Bc; b++) {
    const fo = ((b0 + b) * 2 * C + C) * L;
    for (let ch = 0; ch < C; ch++) {
      const o = fo + ch * L;
      const c4 = ch >> 2, comp = ch & 3;
      for (let p = 0; p < L; p++) {
        const g = b * L + p;
        const y = Math.floor(g / c.QR);
        const x = (g % c.QR) * c.C4 + c4;
        data[(y * width + x) * 4 + comp] = X[o + p];
      }
    }
  }
  return { data, width, height };
}

/**
 * Relative tolerance under which the f32 first/second distances count as a near-tie and the host
 * rechecks the query in float64: 8× the worst-case relative error (C4 + 5)·2⁻²⁴ of the kernel's
 * sum (C4 partial sums, each of 4 rounded squares of rounded differences, all terms ≥ 0).
 */
export function nearTieTolerance(C4: number): number {
  return 8 * (C4 + 8) * 2 ** -24;
}

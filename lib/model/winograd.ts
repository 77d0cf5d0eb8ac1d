/**
 * Winograd F(2×2, 3×3) convolution of the head (`wgsl/head/winograd.wgsl`,
 * `wgsl/head/winograd_out.wgsl`, GEMMs in `wgsl/head/gemm.wgsl`): 2.25× fewer multiply-adds than
 * the direct 3×3 conv, which dominates the head's cost (spec §6: 4 scans × 2 blocks + 4 heads per
 * branch, each a 128→128 3×3 conv on 49×49). A dilated conv (rate r, padding r) is tiled on its r²
 * sub-grids. TypeScript reference: {@link conv3x3Ref}.
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { fillTemplate, getPipeline, loadWgsl } from "../gpu/pipeline.ts";
import { bindGroup, type Step, uniformWords } from "../gpu/steps.ts";

export { conv3x3Ref } from "./reference.ts";

/** Output tile size: F(2×2, 3×3) or F(4×4, 3×3). */
export type WinogradTile = 2 | 4;

/**
 * Tile bases along one axis of length n for dilation r and output tile size m: for every offset
 * o < r, the sub-grid o, o+r, o+2r, … is covered by runs of m starting at o + m·j·r.
 */
export function tileAxis(n: number, r: number, m: WinogradTile = 2): Uint32Array<ArrayBuffer> {
  const out: number[] = [];
  for (let o = 0; o < Math.min(r, n); o++) {
    const len = Math.ceil((n - o) / r);
    for (let j = 0; j < Math.ceil(len / m); j++) out.push(o + m * j * r);
  }
  return new Uint32Array(out);
}

/** Transform positions per tile: (m + 2)². */
export function positionsOf(m: WinogradTile): number {
  return (m + 2) * (m + 2);
}

/**
 * The tile size with the fewer GEMM rows (tiles × positions) for an n×n grid at dilation r:
 * F(4×4) for r ≤ 12 on 49×49, F(2×2) for r = 24 (whose 2-long sub-grids waste F(4×4) tiles).
 */
export function pickTile(n: number, r: number): WinogradTile {
  const rows = (m: WinogradTile) => tileAxis(n, r, m).length ** 2 * positionsOf(m);
  return rows(4) < rows(2) ? 4 : 2;
}

const G2 = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]];
const G4 = [
  [1 / 4, 0, 0],
  [-1 / 6, -1 / 6, -1 / 6],
  [-1 / 6, 1 / 6, -1 / 6],
  [1 / 24, 1 / 12, 1 / 6],
  [1 / 24, -1 / 12, 1 / 6],
  [0, 0, 1],
];

/**
 * Transformed weights U = G g Gᵀ of PyTorch conv weights `(Co, Ci, 3, 3)`, laid out
 * `(P, Co, Ci)` with P = (m+2)² positions pos = (m+2)·a + b (the GEMM batch), f64 arithmetic.
 * Several convs can be interleaved per position with {@link winogradWeightsInterleaved}.
 */
export function winogradWeights(
  W: Float32Array,
  Co: number,
  Ci: number,
  m: WinogradTile = 2,
): Float32Array<ArrayBuffer> {
  return winogradWeightsInterleaved([W], Co, Ci, m);
}

/** `(P, nConv, Co, Ci)`: the transformed weights of several convs, batch z = pos·nConv + conv. */
export function winogradWeightsInterleaved(
  Ws: Float32Array[],
  Co: number,
  Ci: number,
  m: WinogradTile = 2,
): Float32Array<ArrayBuffer> {
  const n = Ws.length;
  const G = m === 2 ? G2 : G4;
  const al = m + 2;
  const out = new Float32Array(al * al * n * Co * Ci);
  const gg = new Float64Array(al * 3);
  for (let s = 0; s < n; s++) {
    const W = Ws[s];
    for (let o = 0; o < Co; o++) {
      for (let c = 0; c < Ci; c++) {
        const g = W.subarray((o * Ci + c) * 9, (o * Ci + c) * 9 + 9);
        // gg = G g (al×3)
        for (let a = 0; a < al; a++) {
          for (let kx = 0; kx < 3; kx++) {
            gg[a * 3 + kx] = G[a][0] * g[kx] + G[a][1] * g[3 + kx] + G[a][2] * g[6 + kx];
          }
        }
        for (let a = 0; a < al; a++) {
          for (let b = 0; b < al; b++) {
            const v = gg[a * 3] * G[b][0] + gg[a * 3 + 1] * G[b][1] + gg[a * 3 + 2] * G[b][2];
            out[(((a * al + b) * n + s) * Co + o) * Ci + c] = v;
          }
        }
      }
    }
  }
  return out;
}

/** The transform pipelines of one tile size. */
export interface WinogradPipelines {
  m: WinogradTile;
  input: GPUComputePipeline;
  blockOut: GPUComputePipeline;
  headOut: GPUComputePipeline;
}

/** Bᵀ·x of F(m×m, 3×3) for an input column x of length m + 2 (Lavin & Gray points). */
function btExpr(m: WinogradTile, x: string[]): string[] {
  if (m === 2) {
    // Bᵀ = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]]
    return [`${x[0]} - ${x[2]}`, `${x[1]} + ${x[2]}`, `${x[2]} - ${x[1]}`, `${x[1]} - ${x[3]}`];
  }
  // Bᵀ = [[4,0,-5,0,1,0],[0,-4,-4,1,1,0],[0,4,-4,-1,1,0],[0,-2,-1,2,1,0],[0,2,-1,-2,1,0],[0,4,0,-5,0,1]]
  return [
    `4.0 * ${x[0]} - 5.0 * ${x[2]} + ${x[4]}`,
    `-4.0 * (${x[1]} + ${x[2]}) + ${x[3]} + ${x[4]}`,
    `4.0 * (${x[1]} - ${x[2]}) - ${x[3]} + ${x[4]}`,
    `2.0 * (${x[3]} - ${x[1]}) - ${x[2]} + ${x[4]}`,
    `2.0 * (${x[1]} - ${x[3]}) - ${x[2]} + ${x[4]}`,
    `4.0 * ${x[1]} - 5.0 * ${x[3]} + ${x[5]}`,
  ];
}

/** Aᵀ·v of F(m×m, 3×3) for a GEMM-output column v of length m + 2. */
function atExpr(m: WinogradTile, v: string[]): string[] {
  if (m === 2) {
    // Aᵀ = [[1,1,1,0],[0,1,-1,-1]]
    return [`${v[0]} + ${v[1]} + ${v[2]}`, `${v[1]} - ${v[2]} - ${v[3]}`];
  }
  return [
    `${v[0]} + (${v[1]} + ${v[2]}) + (${v[3]} + ${v[4]})`,
    `(${v[1]} - ${v[2]}) + 2.0 * (${v[3]} - ${v[4]})`,
    `(${v[1]} + ${v[2]}) + 4.0 * (${v[3]} + ${v[4]})`,
    `(${v[1]} - ${v[2]}) + 8.0 * (${v[3]} - ${v[4]}) + ${v[5]}`,
  ];
}

/**
 * Fully unrolled F(m×m, 3×3) transform code (m = 2 or 4) for the templates
 * `head/winograd.wgsl` / `head/winograd_out.wgsl`: one template, the tile size lives only here.
 */
export function winogradSource(
  inTpl: string,
  outTpl: string,
  m: WinogradTile,
): { input: string; output: string } {
  const n = m + 2;
  const R = Array.from({ length: n }, (_, i) => i);
  const O = Array.from({ length: m }, (_, i) => i);
  let body = "";
  for (const a of R) {
    for (const b of R) {
      body += `  let d${a}${b} = ld(ci, by + r * ${a - 1}, bx + r * ${b - 1}, qi);\n`;
    }
  }
  for (const b of R) {
    const e = btExpr(m, R.map((a) => `d${a}${b}`));
    for (const a of R) body += `  let t${a}${b} = ${e[a]};\n`;
  }
  for (const a of R) {
    const e = btExpr(m, R.map((b) => `t${a}${b}`));
    for (const b of R) body += `  V[o + ${a * n + b}u * rs] = ${e[b]};\n`;
  }
  let tr = "";
  for (const a of R) {
    for (const b of R) {
      tr += `    let m${a}${b} = textureLoad(Mt, vec2<i32>(ci, ti), i32(l + ${
        a * n + b
      }u * n), 0);\n`;
    }
  }
  for (const b of R) {
    const e = atExpr(m, R.map((a) => `m${a}${b}`));
    for (const i of O) tr += `    let u${i}${b} = ${e[i]};\n`;
  }
  for (const i of O) {
    const e = atExpr(m, R.map((b) => `u${i}${b}`));
    for (const j of O) tr += `    let y${i}${j} = ${e[j]};\n`;
  }
  const bounded = (i: number, j: number, stmt: string) =>
    `  if (by + P.r * ${i}u < P.h && bx + P.r * ${j}u < P.w) {\n    ${stmt}\n  }\n`;
  let put = "", decl = "", acc = "", hput = "";
  for (const i of O) {
    for (const j of O) {
      put += bounded(i, j, `put(q, by + P.r * ${i}u, bx + P.r * ${j}u, c4, y${i}${j} + b);`);
      decl += `  var s${i}${j} = 0.0;\n`;
      acc += `    s${i}${j} += dot(max(y${i}${j} * sc + sh, vec4<f32>(0.0)), ow);\n`;
      hput += bounded(
        i,
        j,
        `logit(base, hg, (by + P.r * ${i}u) * P.w + bx + P.r * ${j}u, s${i}${j} + ob);`,
      );
    }
  }
  return {
    input: fillTemplate(inTpl, { BODY: body }),
    output: fillTemplate(outTpl, {
      TRANSFORM: tr,
      BLOCK_PUT: put,
      HEAD_DECL: decl,
      HEAD_ACC: acc,
      HEAD_PUT: hput,
    }),
  };
}

/** Compile (once per process) the transform pipelines of tile size m. */
export async function winogradPipelines(gpu: Gpu, m: WinogradTile = 2): Promise<WinogradPipelines> {
  const name = `head_winograd_f${m}`;
  const { input: a, output: b } = winogradSource(
    await loadWgsl("head/winograd.wgsl"),
    await loadWgsl("head/winograd_out.wgsl"),
    m,
  );
  const [input, blockOut, headOut] = await Promise.all([
    getPipeline(gpu, name, a, "input_transform"),
    getPipeline(gpu, `${name}_out`, b, "block_output"),
    getPipeline(gpu, `${name}_out`, b, "head_output"),
  ]);
  return { m, input, blockOut, headOut };
}

/** Geometry of one conv call: nSeq grids of h×w, C4 channel quads, dilation r. */
export interface WinogradGeometry {
  nSeq: number;
  h: number;
  w: number;
  C4: number;
  r: number;
  /** Tile-axis table buffer of {@link tileAxis}(h, r, m) (h = w). */
  axis: GPUBuffer;
  /** Tiles per axis. */
  Ta: number;
}

function params(gpu: Gpu, g: WinogradGeometry, extra: number[], label: string): GPUBuffer {
  return uniformWords(gpu, [g.nSeq, g.Ta * g.Ta, g.Ta, g.C4, g.h, g.w, g.r, 0, ...extra], label);
}

/**
 * Record the input transform: src texture (C4, h·w, nSeq) → V buffer, rows
 * ((pos·nSeq + seq)·T + tile) of `ld4` vec4 (copy it into a texture for the GEMM).
 */
export function inputTransformStep(
  gpu: Gpu,
  p: WinogradPipelines,
  g: WinogradGeometry,
  src: GPUTexture,
  V: GPUBuffer,
  ld4: number,
  label: string,
): Step {
  const T = g.Ta * g.Ta;
  const prm = params(gpu, g, [0, 0, 1, ld4], `${label} params`);
  return {
    kind: "dispatch",
    label,
    pipeline: p.input,
    bindGroup: bindGroup(gpu, p.input, [prm, g.axis, src, V], label),
    workgroups: [Math.ceil((g.nSeq * T * g.C4) / 64), 1, 1],
  };
}

/**
 * Record the block output transform: Mt texture → dst buffer (nSeq·h·w rows of `ld4` vec4) + bias;
 * positions with `inv[q·h·w + p] = j` (not 0xffffffff) are also written to row q·Ls + j of `xin`.
 */
export function blockOutputStep(
  gpu: Gpu,
  p: WinogradPipelines,
  g: WinogradGeometry,
  Mt: GPUTexture,
  bias: GPUBuffer,
  dst: GPUBuffer,
  inv: GPUBuffer,
  xin: GPUBuffer,
  ld4: number,
  Ls: number,
  label: string,
): Step {
  const T = g.Ta * g.Ta;
  const prm = params(gpu, g, [0, 0, 1, ld4, Ls, 0, 0, 0], `${label} params`);
  return {
    kind: "dispatch",
    label,
    pipeline: p.blockOut,
    bindGroup: bindGroup(
      gpu,
      p.blockOut,
      [prm, g.axis, Mt, bias, dst, null, null, inv, xin],
      label,
    ),
    workgroups: [Math.ceil((g.nSeq * T * g.C4) / 64), 1, 1],
  };
}

/**
 * Record the decoder-head output transform: Mt → BatchNorm → ReLU → 1×1 conv → logits
 * (`logits[logitBase + head·headStride + p]`, and `lgp[p·lgpLd + headBase + head]`).
 * @param hp per head: scale (C4 vec4), shift (C4), 1×1 weight (C4), (bias, 0, 0, 0).
 */
export function headOutputStep(
  gpu: Gpu,
  p: WinogradPipelines,
  g: WinogradGeometry,
  Mt: GPUTexture,
  hp: GPUBuffer,
  logits: GPUBuffer,
  logitBase: number,
  headStride: number,
  seqPerHead: number,
  lgp: GPUBuffer,
  headBase: number,
  lgpLd: number,
  label: string,
): Step {
  const T = g.Ta * g.Ta;
  const prm = params(
    gpu,
    g,
    [logitBase, headStride, seqPerHead, 0, 0, headBase, lgpLd, 0],
    `${label} params`,
  );
  return {
    kind: "dispatch",
    label,
    pipeline: p.headOut,
    bindGroup: bindGroup(
      gpu,
      p.headOut,
      [prm, g.axis, Mt, null, null, hp, logits, null, null, lgp],
      label,
    ),
    workgroups: [Math.ceil((g.nSeq * T) / 64), 1, 1],
  };
}

/**
 * Pack decoder-head parameters for {@link headOutputStep}: BatchNorm folded to
 * scale = γ/√(var + eps), shift = β − mean·scale (spec §6 step 5), the 1×1 weight and bias.
 */
export function packHeadParams(
  heads: Array<
    {
      bnW: Float32Array;
      bnB: Float32Array;
      bnMean: Float32Array;
      bnVar: Float32Array;
      outW: Float32Array;
      outB: Float32Array;
    }
  >,
  C: number,
  eps = 1e-5,
): Float32Array<ArrayBuffer> {
  const C4 = Math.ceil(C / 4);
  const hs = (3 * C4 + 1) * 4;
  const out = new Float32Array(heads.length * hs);
  heads.forEach((h, j) => {
    const b = j * hs;
    for (let c = 0; c < C; c++) {
      const sc = h.bnW[c] / Math.sqrt(h.bnVar[c] + eps);
      out[b + c] = sc;
      out[b + C4 * 4 + c] = h.bnB[c] - h.bnMean[c] * sc;
      out[b + 2 * C4 * 4 + c] = h.outW[c];
    }
    out[b + 3 * C4 * 4] = h.outB[0];
  });
  return out;
}

/**
 * General matrix multiply of the training step (`wgsl/train/gemm.wgsl`):
 * C = alpha · opA(A) · opB(B) (+ bias) (+ C), with element offsets, leading dimensions and
 * transposes, so that every dense forward, input gradient (dX = dY·W) and weight gradient
 * (dW = dYᵀ·X) of the SNARM head (spec §5–6) is one call. TypeScript reference: {@link gemmRef}.
 *
 * Kernel design (lavapipe, docs/webgpu-on-lavapipe.md "design E"): lanes own rows of one operand
 * ("lane operand" L, in registers), a workgroup copies a K-window × column tile of the other
 * ("shared operand" S) into workgroup memory, and a fully unrolled loop-free body multiplies them.
 * The lanes run over the longer of M and N (C or Cᵀ is computed); K windows are separate
 * dispatches that accumulate into the output, and when the output grid is small (weight
 * gradients, K = rows) K is additionally split over workgroup slots into a scratch tensor and
 * summed by a `reduce` pass.
 * @module
 */
import type { KernelSequence, Ref, Tensor } from "./graph.ts";
import { f32bits, grid2d } from "./graph.ts";

/** Arguments of a GEMM over operands of type `R` (GPU {@link Ref} or host {@link HostRef}). */
export interface GemmArgsOf<R> {
  M: number;
  N: number;
  K: number;
  /** opA(m, k) = transA ? A[off + k·lda + m] : A[off + m·lda + k]. */
  A: R;
  lda: number;
  transA?: boolean;
  /** opB(k, n) = transB ? B[off + n·ldb + k] : B[off + k·ldb + n]. */
  B: R;
  ldb: number;
  transB?: boolean;
  /** C[off + m·ldc + n]. */
  C: R;
  ldc: number;
  /** C += alpha·opA·opB (+ bias); default C = alpha·opA·opB (+ bias). */
  accumulate?: boolean;
  /** + bias[off + n] (added once). */
  bias?: R;
  /** Default 1. */
  alpha?: number;
}

/** GEMM arguments on GPU tensors. */
export type GemmArgs = GemmArgsOf<Ref>;

/** A host operand: array `t` from element `off` (default 0). */
export interface HostRef {
  t: Float32Array | Float64Array;
  off?: number;
}

/**
 * TypeScript reference of {@link recordGemm} (float64 accumulation, result stored into `C.t`).
 * Same semantics and validation as the kernel.
 * @throws {Error} when an operand is too short for its extent.
 */
export function gemmRef(a: GemmArgsOf<HostRef>): void {
  validateGemm(a, (r) => r.t.length, "gemmRef");
  const { M, N, K, lda, ldb, ldc } = a;
  const A = a.A.t, B = a.B.t, C = a.C.t;
  const ao = a.A.off ?? 0, bo = a.B.off ?? 0, co = a.C.off ?? 0;
  const alpha = a.alpha ?? 1;
  const row = new Float64Array(N);
  for (let m = 0; m < M; m++) {
    row.fill(0);
    for (let k = 0; k < K; k++) {
      const av = a.transA ? A[ao + k * lda + m] : A[ao + m * lda + k];
      if (av === 0) continue;
      if (a.transB) { for (let n = 0; n < N; n++) row[n] += av * B[bo + n * ldb + k]; }
      else for (let n = 0; n < N; n++) row[n] += av * B[bo + k * ldb + n];
    }
    for (let n = 0; n < N; n++) {
      let v = alpha * row[n];
      if (a.bias) v += a.bias.t[(a.bias.off ?? 0) + n];
      if (a.accumulate) v += C[co + m * ldc + n];
      C[co + m * ldc + n] = v;
    }
  }
}

function validateGemm<R>(a: GemmArgsOf<R>, len: (r: R) => number, what: string): void {
  const off = (r: R) => (r as { off?: number }).off ?? 0;
  for (const k of ["M", "N", "K", "lda", "ldb", "ldc"] as const) {
    if (!Number.isInteger(a[k]) || a[k] < 0) {
      throw new Error(`${what}: ${k} = ${a[k]} must be a non-negative integer`);
    }
  }
  const { M, N, K } = a;
  if (M === 0 || N === 0) return;
  const need = (r: R, name: string, rows: number, cols: number, ld: number) => {
    if (rows === 0 || cols === 0) return;
    if (ld < cols) throw new Error(`${what}: leading dimension of ${name} ${ld} < ${cols}`);
    const o = off(r);
    const end = o + (rows - 1) * ld + cols;
    if (!Number.isInteger(o) || o < 0 || end > len(r)) {
      throw new Error(
        `${what}: ${name} needs ${rows}×${cols} (ld ${ld}) from offset ${o}, ` +
          `i.e. ${end} elements, but has ${len(r)}`,
      );
    }
  };
  if (a.transA) need(a.A, "A (transposed)", K, M, a.lda);
  else need(a.A, "A", M, K, a.lda);
  if (a.transB) need(a.B, "B (transposed)", N, K, a.ldb);
  else need(a.B, "B", K, N, a.ldb);
  need(a.C, "C", M, N, a.ldc);
  if (a.bias) need(a.bias, "bias", 1, N, N);
}

/** Compile-time shape of the kernel (see the file header of `wgsl/train/gemm.wgsl`). */
export interface GemmShape {
  /** Lane rows per invocation. */
  QPI: number;
  /** Workgroup size (multiple of 8). */
  WG: number;
  /** K window per dispatch (per slot). */
  KW: number;
  /** Columns per workgroup. */
  JW: number;
  /** Independent partial sums per output (add-latency hiding). */
  ACC: number;
}

/** Most unrolled MACs (= workgroup floats of the S tile, 32 KiB) per lane row and window. */
const MAX_TILE = 8192;
/** Most K values per window (unrolled lane-operand loads per invocation). */
const MAX_KW = 1024;

/** Column tile widths (pipeline variants are kept few: each one is a separate JIT compile). */
const JWS = [1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 144, 192, 256];

/**
 * Kernel shape for an I (lane rows) × J (columns) output with reduction length K, sized to the
 * problem so that small N or K do not pay for padding or for re-reading the lane operand
 * (lavapipe): the column tile JW is J split into even tiles, rounded up to one of
 * 1, 2, 4, …, 64, 96, 128, 144, 192, 256 (up to 256 columns when the whole K fits the 32 KiB tile,
 * else ≤ 64); KW = the whole K (rounded up to 8) when the K × JW tile fits 32 KiB of workgroup
 * memory, else K split evenly into such windows (or windows of the cap when K ≥ 8 windows, e.g.
 * K = rows); WG = 32 / 64 lanes for I ≤ 32 / I ≤ 512 (weight gradients: more workgroups), else
 * 128. One lane row per invocation, ACC = 8 partial sums (KW when KW < 8). Defaults (I, J
 * unknown): 128 lanes, 64 columns.
 */
export function gemmShapeFor(K: number, I = 1 << 20, J = 64): GemmShape {
  const r8 = (x: number) => Math.ceil(x / 8) * 8;
  const kw0 = K >= 8 ? r8(K) : Math.max(1, K);
  const jwMax = kw0 * 64 <= MAX_TILE ? Math.min(256, Math.floor(MAX_TILE / kw0)) : 64;
  const jw = Math.ceil(J / Math.ceil(J / jwMax));
  const fits = JWS.filter((v) => v <= jwMax);
  const JW = fits.find((v) => v >= jw) ?? fits[fits.length - 1];
  const cap = Math.min(MAX_KW, Math.floor(MAX_TILE / JW / 8) * 8);
  let KW: number;
  if (K <= cap) KW = kw0;
  else if (K >= 8 * cap) KW = cap;
  else {
    let nWin = Math.ceil(K / cap);
    while (r8(Math.ceil(K / nWin)) > cap) nWin++;
    KW = r8(Math.ceil(K / nWin));
  }
  const WG = I <= 32 ? 32 : I <= 512 ? 64 : 128;
  return { QPI: 1, WG, KW, JW, ACC: Math.min(8, KW) };
}

const codeCache = new Map<string, string>();

/** Generate the `main` entry point (bindings 4 and the workgroup tile) of one shape. */
export function generateGemmMain(s: GemmShape): string {
  const key = JSON.stringify(s);
  const hit = codeCache.get(key);
  if (hit) return hit;
  const { QPI, WG, KW, JW, ACC } = s;
  if (WG % 8 !== 0 || KW % ACC !== 0 || KW * JW > MAX_TILE) {
    throw new Error(`gemm: invalid kernel shape ${key}`);
  }
  const L: string[] = [];
  L.push(`@group(0) @binding(4) var<storage, read> Sb: array<f32>;`);
  L.push(`var<workgroup> S: array<f32, ${KW * JW}>;`);
  L.push(`@compute @workgroup_size(${WG})`);
  L.push(
    `fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {`,
  );
  L.push(`  let kb = P.kb + wid.z * ${KW}u;`);
  L.push(`  let j0 = wid.y * ${JW}u;`);
  L.push(`  let kmax = P.K - 1u;\n  let jmax = P.J - 1u;\n  let imax = P.I - 1u;`);
  L.push(`  for (var t = li; t < ${KW * JW}u; t += ${WG}u) {`);
  L.push(`    let k = kb + t / ${JW}u;\n    let j = j0 + t % ${JW}u;`);
  L.push(`    let v = Sb[P.Soff + min(k, kmax) * P.Ssk + min(j, jmax) * P.Ssj];`);
  L.push(`    S[t] = select(0.0, v, k < P.K && j < P.J);\n  }`);
  L.push(`  workgroupBarrier();`);
  L.push(`  let ib = (wid.x * ${WG}u + li) * ${QPI}u;`);
  for (let q = 0; q < QPI; q++) {
    L.push(`  let i${q} = ib + ${q}u;`);
    L.push(`  let lb${q} = P.Loff + min(i${q}, imax) * P.Lsi;`);
  }
  for (let k = 0; k < KW; k++) {
    L.push(`  let ka${k} = min(kb + ${k}u, kmax) * P.Lsk;`);
    for (let q = 0; q < QPI; q++) L.push(`  let l${q}_${k} = Lb[lb${q} + ka${k}] * P.alpha;`);
  }
  for (let j = 0; j < JW; j++) {
    for (let k = 0; k < KW; k++) {
      const c = k % ACC;
      const parts: string[] = [];
      for (let q = 0; q < QPI; q++) {
        parts.push(
          k < ACC
            ? `var p${q}_${j}_${c} = l${q}_${k} * b;`
            : `p${q}_${j}_${c} = fma(l${q}_${k}, b, p${q}_${j}_${c});`,
        );
      }
      if (k < ACC) {
        // `var` declarations must stay in function scope: no block.
        L.push(`  let b${j}_${k} = S[${k * JW + j}];`);
        L.push("  " + parts.join(" ").replaceAll(" * b;", ` * b${j}_${k};`));
      } else {
        L.push(`  { let b = S[${k * JW + j}]; ${parts.join(" ")} }`);
      }
    }
    for (let q = 0; q < QPI; q++) {
      const terms = Array.from({ length: ACC }, (_, c) => `p${q}_${j}_${c}`);
      let expr = terms.join(" + ");
      if (ACC === 4) expr = `(${terms[0]} + ${terms[1]}) + (${terms[2]} + ${terms[3]})`;
      L.push(`  let r${q}_${j} = ${expr};`);
    }
  }
  L.push(`  let rd = (P.flags & 1u) != 0u;\n  let hb = (P.flags & 2u) != 0u;`);
  for (let q = 0; q < QPI; q++) {
    L.push(`  if (i${q} < P.I) {`);
    L.push(`    let ob = P.Ooff + wid.z * P.Ozs + i${q} * P.Osi;`);
    L.push(`    let bb = P.boff + i${q} * P.bsi;`);
    for (let j = 0; j < JW; j++) {
      L.push(`    if (j0 + ${j}u < P.J) {`);
      L.push(`      let o = ob + (j0 + ${j}u) * P.Osj;\n      var v = r${q}_${j};`);
      L.push(`      if (rd) {\n        v += Ob[o];\n      }`);
      L.push(`      if (hb) {\n        v += Bb[bb + (j0 + ${j}u) * P.bsj];\n      }`);
      L.push(`      Ob[o] = v;\n    }`);
    }
    L.push(`  }`);
  }
  L.push(`}`);
  const code = L.join("\n");
  codeCache.set(key, code);
  return code;
}

const scratchCache = new WeakMap<KernelSequence, Map<string, Tensor>>();

/**
 * A scratch tensor of at least `length` elements owned by `seq`, shared by every record call of
 * `seq` that uses the same `key` (dispatches run in order, so record calls may reuse it; one call
 * uses distinct keys for simultaneously live scratch). Grows by allocating a new tensor.
 */
export function scratchTensor(seq: KernelSequence, key: string, length: number): Tensor {
  let m = scratchCache.get(seq);
  if (!m) scratchCache.set(seq, m = new Map());
  const t = m.get(key);
  if (t && t.length >= length) return t;
  const n = Math.max(length, Math.ceil((t?.length ?? 0) * 1.25));
  const fresh = seq.tensor(n, `scratch:${key}`);
  m.set(key, fresh);
  return fresh;
}

/** Options for benchmarks/tests: force a kernel shape, orientation or K split. */
export interface GemmTuning {
  shape?: GemmShape;
  /** Lanes over m (`"m"`) or over n (`"n"`); default: the longer of M and N. */
  lanes?: "m" | "n";
  /** K-split slots (1 = no split); default from the output grid size. */
  slots?: number;
}

/** Scratch elements of the split-K partials are capped at this many floats. */
const MAX_PARTIALS = 16 * 1024 * 1024;

/**
 * Record C = alpha·opA(A)·opB(B) (+ bias) (+ C when `accumulate`): `M`×`N` output, reduction
 * length `K`, all row-major f32 with the element offsets and leading dimensions of
 * {@link GemmArgs}. Records one dispatch per K window (plus a reduce dispatch when K is split
 * across workgroups); K = 0 gives C = bias (+ C).
 * @throws {Error} when an operand is too short for its extent, or C shares a tensor with A, B or
 *   bias (WebGPU forbids writable aliasing within a dispatch).
 */
export async function recordGemm(
  seq: KernelSequence,
  a: GemmArgs,
  tune: GemmTuning = {},
): Promise<void> {
  validateGemm(a, (r) => r.t.length, "recordGemm");
  const { M, N, K } = a;
  if (M === 0 || N === 0) return;
  for (const [name, r] of [["A", a.A], ["B", a.B], ["bias", a.bias]] as const) {
    if (r && r.t === a.C.t) {
      throw new Error(`recordGemm: C (${a.C.t.label}) must not be the same tensor as ${name}`);
    }
  }
  const alpha = a.alpha ?? 1;
  const aOff = a.A.off ?? 0, bOff = a.B.off ?? 0, cOff = a.C.off ?? 0;
  // opA(m,k) = A[aOff + m·aSm + k·aSk]; opB(k,n) = B[bOff + k·bSk + n·bSn].
  const aSm = a.transA ? 1 : a.lda, aSk = a.transA ? a.lda : 1;
  const bSk = a.transB ? 1 : a.ldb, bSn = a.transB ? a.ldb : 1;
  const lanes = tune.lanes ?? (M >= N ? "m" : "n");
  // Lane operand L(i,k), shared operand S(k,j), output O(i,j).
  const o = lanes === "m"
    ? {
      I: M,
      J: N,
      Lt: a.A.t,
      Loff: aOff,
      Lsi: aSm,
      Lsk: aSk,
      St: a.B.t,
      Soff: bOff,
      Ssk: bSk,
      Ssj: bSn,
      Osi: a.ldc,
      Osj: 1,
      bsi: 0,
      bsj: 1,
    }
    : {
      I: N,
      J: M,
      Lt: a.B.t,
      Loff: bOff,
      Lsi: bSn,
      Lsk: bSk,
      St: a.A.t,
      Soff: aOff,
      Ssk: aSk,
      Ssj: aSm,
      Osi: 1,
      Osj: a.ldc,
      bsi: 1,
      bsj: 0,
    };
  const biasT = a.bias?.t ?? o.Lt;
  const boff = a.bias?.off ?? 0;
  if (K === 0) {
    // C = bias (+ C): the reduce pass over zero partials.
    await recordReduce(seq, o, a, 0, o.Lt, cOff, biasT, boff, 0);
    return;
  }
  const s = tune.shape ?? gemmShapeFor(K, o.I, o.J);
  const gx = Math.ceil(o.I / (s.WG * s.QPI)), gy = Math.ceil(o.J / s.JW);
  if (gx > 65535 || gy > 65535) throw new Error(`recordGemm: ${M}×${N} output grid too large`);
  const nWin = Math.ceil(K / s.KW);
  let slots = tune.slots ??
    (gx * gy >= 32 || nWin < 2 ? 1 : Math.min(64, Math.ceil(64 / (gx * gy)), nWin));
  slots = Math.max(1, Math.min(slots, nWin, Math.floor(MAX_PARTIALS / (o.I * o.J)) || 1));
  const main = generateGemmMain(s);
  const template = { MAIN: main };
  const words = (
    kb: number,
    Ot: { off: number; si: number; sj: number; zs: number },
    flags: number,
    nP: number,
  ) => [
    o.I,
    o.J,
    K,
    kb,
    o.Loff,
    o.Lsi,
    o.Lsk,
    o.Soff,
    o.Ssk,
    o.Ssj,
    Ot.off,
    Ot.si,
    Ot.sj,
    Ot.zs,
    flags,
    boff,
    o.bsi,
    o.bsj,
    f32bits(alpha),
    nP,
  ];
  const hasBias = a.bias ? 2 : 0;
  if (slots === 1) {
    for (let w = 0; w < nWin; w++) {
      const flags = (w > 0 || a.accumulate ? 1 : 0) | (w === 0 ? hasBias : 0);
      await seq.dispatch({
        shader: "train/gemm.wgsl",
        template,
        params: words(w * s.KW, { off: cOff, si: o.Osi, sj: o.Osj, zs: 0 }, flags, 1),
        bindings: [o.Lt, biasT, a.C.t, o.St],
        workgroups: [gx, gy, 1],
        label: `gemm ${M}×${N}×${K} window ${w}`,
      });
    }
    return;
  }
  const IJ = o.I * o.J;
  const part = scratchTensor(seq, "gemm.partials", slots * IJ);
  const rounds = Math.ceil(nWin / slots);
  for (let r = 0; r < rounds; r++) {
    await seq.dispatch({
      shader: "train/gemm.wgsl",
      template,
      params: words(r * slots * s.KW, { off: 0, si: o.J, sj: 1, zs: IJ }, r > 0 ? 1 : 0, 1),
      bindings: [o.Lt, biasT, part, o.St],
      workgroups: [gx, gy, slots],
      label: `gemm ${M}×${N}×${K} split round ${r}`,
    });
  }
  await recordReduce(seq, o, a, slots, part, cOff, biasT, boff, IJ);
}

async function recordReduce(
  seq: KernelSequence,
  o: { I: number; J: number; Osi: number; Osj: number; bsi: number; bsj: number },
  a: GemmArgs,
  nP: number,
  part: Tensor,
  cOff: number,
  biasT: Tensor,
  boff: number,
  IJ: number,
): Promise<void> {
  const flags = (a.accumulate ? 1 : 0) | (a.bias ? 2 : 0);
  const words = [
    o.I,
    o.J,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    cOff,
    o.Osi,
    o.Osj,
    IJ,
    flags,
    boff,
    o.bsi,
    o.bsj,
    f32bits(1),
    nP,
  ];
  await seq.dispatch({
    shader: "train/gemm.wgsl",
    template: { MAIN: "" },
    entry: "reduce",
    params: words,
    bindings: [part, biasT, a.C.t],
    workgroups: grid2d(Math.ceil((o.I * o.J) / 64)),
    label: `gemm ${a.M}×${a.N}×${a.K} reduce`,
  });
}

/**
 * WebGPU residual fusion (spec §4–5): WGSL kernels for the encoding, the unary 1×1 conv +
 * sigmoid + waypoint (`residual/encode.wgsl` `encode_r`), the intra nearest-reference search
 * (the bank top-k search of `lib/bank/search.ts` over each image's reference rows) and
 * s = f[nn] − f with its encoding (`encode_s`). On the CPU, between the dispatches: the top-K
 * selection of the smallest waypoints (L values per image, a sort), the layout of the search
 * inputs (channels-last features, reference rows: copies only), the float64 distances of the few
 * search candidates per query and the float64 recheck of queries whose candidates are too close
 * to call (none at paper scale on random or real features).
 * @module
 */
import {
  bindGroup,
  createStorage,
  createUniform,
  getPipeline,
  type Gpu,
  GpuError,
  loadWgsl,
  readBuffer,
  submitAndWait,
} from "../gpu/mod.ts";
import { selectReferences } from "./navigator.ts";
import { featuresChannelsLast, nearestReferenceExact } from "./nearest.ts";
import { createBankIndex, searchTopK } from "../bank/search.ts";
import { type FusionOptions, type FusionOut, RESIDUAL_METHODS } from "./types.ts";
import type { FusionShape } from "./validate.ts";

/**
 * Neighbours fetched per query from the bank search: the query itself (when it is a reference)
 * plus at least three candidates, so that the best one almost always clears the ranking-error
 * margin against the last (no host recheck at paper scale on random features; 3 needed ~10).
 */
const NN_TOPK = 4;
/** Unit roundoff of f32 (round to nearest). */
const U32 = 2 ** -24;

interface WeightEntry {
  copy: Float32Array;
  buf: GPUBuffer;
}
const weightCache = new WeakMap<GPUDevice, WeakMap<Float32Array, WeightEntry>>();

/** The device copy of the unary weight, uploaded once per (device, array) and on change. */
function weightBuffer(gpu: Gpu, weight: Float32Array): GPUBuffer {
  let m = weightCache.get(gpu.device);
  if (!m) weightCache.set(gpu.device, m = new WeakMap());
  const e = m.get(weight);
  if (e && e.copy.length === weight.length && e.copy.every((v, i) => Object.is(v, weight[i]))) {
    return e.buf;
  }
  e?.buf.destroy();
  const copy = new Float32Array(weight);
  const buf = createStorage(gpu, copy, "residual unary weight");
  m.set(weight, { copy, buf });
  return buf;
}

/**
 * Residual fusion on the WebGPU device (the `"webgpu"` engine of `fuseResiduals`,
 * lib/residual/fuse.ts) on inputs checked by `checkFusionInput`. Results equal the reference: the
 * encodings bit-exactly, unary/waypoint to f32 rounding of the sums, the reference set and the
 * nearest references exactly (near-ties are rechecked in float64 with the reference's code). The
 * unary weight is uploaded once per device and re-uploaded only when its contents change.
 * @throws {GpuError} on a WebGPU failure.
 */
export async function fuseOnGpu(
  gpu: Gpu,
  X: Float32Array,
  shape: FusionShape,
  unaryWeight: Float32Array,
  unaryBias: number,
  opts: FusionOptions,
): Promise<FusionOut> {
  const { B, C, L, K } = shape;
  const methodId = RESIDUAL_METHODS.indexOf(opts.method);
  const encSrc = await loadWgsl("residual/encode.wgsl");
  const encKey = `residual_encode:method=${methodId}`;
  const [encR, encS] = await Promise.all([
    getPipeline(gpu, encKey, encSrc, "encode_r", { METHOD: methodId }),
    getPipeline(gpu, encKey, encSrc, "encode_s", { METHOD: methodId }),
  ]);
  const wBuf = weightBuffer(gpu, unaryWeight);

  const unary = new Float32Array(B * L);
  const waypoint = new Float32Array(B * L);
  const refMask = new Uint8Array(B * L);
  const refIndices = new Int32Array(B * K);
  const intraNn = new Int32Array(B * L);
  const intraResidual = new Float32Array(B * C * L);
  const Z = new Float32Array(B * 2 * C * L);

  // Images per chunk: X and Z of a chunk must each fit one storage binding.
  const imageBytes = 2 * C * L * 4;
  const perChunk = Math.min(
    Math.floor(gpu.limits.maxStorageBufferBindingSize / imageBytes),
    // The encode kernels run one invocation per (image, position) in 64-wide workgroups.
    Math.floor(gpu.limits.maxComputeWorkgroupsPerDimension * 64 / L),
  );
  if (perChunk < 1) {
    throw new GpuError(
      `X: one image (2C=${2 * C}, L=${L}, ${imageBytes} bytes) exceeds this device's limits ` +
        `(maxStorageBufferBindingSize ${gpu.limits.maxStorageBufferBindingSize}, ` +
        `maxComputeWorkgroupsPerDimension ${gpu.limits.maxComputeWorkgroupsPerDimension}); ` +
        `use fuseResidualsRef`,
    );
  }
  for (let b0 = 0; b0 < B; b0 += perChunk) {
    const Bc = Math.min(perChunk, B - b0);
    const xc = X.subarray(b0 * 2 * C * L, (b0 + Bc) * 2 * C * L) as Float32Array<ArrayBuffer>;
    const bufs: GPUBuffer[] = [];
    const keep = <T extends GPUBuffer>(b: T): T => (bufs.push(b), b);
    try {
      const xBuf = keep(createStorage(gpu, xc, "residual X"));
      const zBuf = keep(createStorage(gpu, Bc * 2 * C * L * 4, "residual Z"));
      const navBuf = keep(createStorage(gpu, 2 * Bc * L * 4, "residual unary+waypoint"));
      const pw = new Uint32Array([Bc, C, L, 0]);
      new Float32Array(pw.buffer)[3] = unaryBias;
      const params = keep(createUniform(gpu, pw, "residual params"));
      const groups = Math.ceil(Bc * L / 64);

      // 1. R = P(r), unary, waypoint.
      const bgR = bindGroup(gpu, encR, [xBuf, params, zBuf, wBuf, navBuf]);
      await submitAndWait(gpu, "residual encode_r", (enc) => {
        const pass = enc.beginComputePass();
        pass.setPipeline(encR);
        pass.setBindGroup(0, bgR);
        pass.dispatchWorkgroups(groups);
        pass.end();
      });
      const nav = new Float32Array(await readBuffer(gpu, navBuf, 2 * Bc * L * 4));
      unary.set(nav.subarray(0, Bc * L), b0 * L);
      const wp = nav.subarray(Bc * L, 2 * Bc * L);
      waypoint.set(wp, b0 * L);

      // 2. Top-K smallest waypoints (CPU).
      const sel = selectReferences(wp, Bc, L, K);
      refMask.set(sel.refMask, b0 * L);
      refIndices.set(sel.refIndices, b0 * K);

      // 3. Nearest reference: bank top-k search over the image's reference rows, f64 check.
      const nnc = new Uint32Array(Bc * L);
      for (let b = 0; b < Bc; b++) {
        const nn = await nearestReferences(
          gpu,
          X,
          b0 + b,
          C,
          L,
          sel.refSorted.subarray(b * K, (b + 1) * K),
        );
        nnc.set(nn, b * L);
        intraNn.set(nn, (b0 + b) * L);
      }

      // 4. s = f[nn] − f and P(s).
      const nnBuf = keep(createStorage(gpu, nnc, "residual nn"));
      const sBuf = keep(createStorage(gpu, Bc * C * L * 4, "residual intra-residual"));
      const bgS = bindGroup(gpu, encS, [xBuf, params, zBuf, null, null, nnBuf, sBuf]);
      await submitAndWait(gpu, "residual encode_s", (enc) => {
        const pass = enc.beginComputePass();
        pass.setPipeline(encS);
        pass.setBindGroup(0, bgS);
        pass.dispatchWorkgroups(groups);
        pass.end();
      });
      Z.set(new Float32Array(await readBuffer(gpu, zBuf, Bc * 2 * C * L * 4)), b0 * 2 * C * L);
      intraResidual.set(
        new Float32Array(await readBuffer(gpu, sBuf, Bc * C * L * 4)),
        b0 * C * L,
      );
    } finally {
      for (const b of bufs) b.destroy();
    }
  }
  const Renc = new Float32Array(B * C * L);
  const Senc = new Float32Array(B * C * L);
  for (let b = 0; b < B; b++) {
    Renc.set(Z.subarray(b * 2 * C * L, (b * 2 + 1) * C * L), b * C * L);
    Senc.set(Z.subarray((b * 2 + 1) * C * L, (b + 1) * 2 * C * L), b * C * L);
  }
  return {
    unary,
    waypoint,
    refMask,
    refIndices,
    intraNn,
    intraResidual,
    Renc,
    Senc,
    Z,
    Cp: C,
    K,
  };
}

/**
 * Nearest reference of every position of image `b` (spec §5 "Intra-residual"), equal to
 * {@link nearestReferenceExact} for every position: the exact L2 top-{@link NN_TOPK} bank search
 * (`lib/bank/search.ts`, GEMM form |b|² − 2 q·b in f32) of the L patch features over the K
 * reference rows, then per query the candidates' f64 direct-difference distances (the
 * reference's sums), self excluded, ties to the lower position. A query is accepted only when its
 * best candidate beats the search's k-th candidate by more than twice a rigorous bound on the
 * f32 ranking error (so no row outside the top-k can be nearer or tied); otherwise, and whenever
 * K ≤ {@link NN_TOPK}, it is recomputed on the host with the reference's code.
 * @param X `(B, 2C, L)` channels-first f32 with f in channels [C, 2C).
 * @param refs the K reference positions of image `b`, ascending.
 * @returns `(L)` nearest reference positions.
 */
async function nearestReferences(
  gpu: Gpu,
  X: Float32Array,
  b: number,
  C: number,
  L: number,
  refs: Int32Array,
): Promise<Uint32Array> {
  const K = refs.length;
  const out = new Uint32Array(L);
  if (K <= NN_TOPK) {
    const f = featuresChannelsLast(X, b, C, L);
    for (let p = 0; p < L; p++) out[p] = nearestReferenceExact(f, C, p, refs);
    return out;
  }
  // Channels-last f32 features (L, C) = the queries; the bank = reference rows in position order.
  const q = new Float32Array(L * C);
  const fo = (b * 2 * C + C) * L;
  for (let p0 = 0; p0 < L; p0 += 32) {
    // Blocks of 32 positions: contiguous reads, the 32 written rows stay in cache.
    const p1 = Math.min(L, p0 + 32);
    for (let c = 0; c < C; c++) {
      const o = fo + c * L;
      for (let p = p0; p < p1; p++) q[p * C + c] = X[o + p];
    }
  }
  const bank = new Float32Array(K * C);
  let bMax = 0;
  for (let k = 0; k < K; k++) {
    const ro = refs[k] * C;
    bank.set(q.subarray(ro, ro + C), k * C);
    let s = 0;
    for (let c = 0; c < C; c++) s += q[ro + c] * q[ro + c];
    if (s > bMax) bMax = s;
  }
  bMax = Math.sqrt(bMax);
  const index = await createBankIndex(gpu, bank, C);
  let top: Int32Array;
  try {
    top = (await searchTopK(q, index, NN_TOPK)).indices;
  } finally {
    index.destroy();
  }
  // Ranking error of v = fl(|b|² − 2·fl(q·b)) (f32, u = 2⁻²⁴) with |b|² rounded once: the dot
  // product of C terms (products and sums rounded, any order, fused or not) errs by at most
  // γ_C·Σ|q_c b_c| ≤ γ_C·|q||b| (Higham, Accuracy and Stability §3.1), γ_n = nu/(1 − nu); the
  // rounding of |b|² by u|b|², the subtraction by u(|b|² + 2|q||b|)(1 + γ_C). Taken with
  // γ_{C+8} and a safety factor 1.5.
  const n = (C + 8) * U32;
  const gamma = n / (1 - n);
  let f: Float64Array | null = null;
  for (let p = 0; p < L; p++) {
    const qo = p * C;
    let qn = 0;
    for (let c = 0; c < C; c++) qn += q[qo + c] * q[qo + c];
    qn = Math.sqrt(qn);
    const err = 1.5 * ((2 * gamma + 3 * U32) * qn * bMax + 2 * U32 * bMax * bMax);
    let best = Infinity, bestPos = -1, worst = 0;
    for (let r = 0; r < NN_TOPK; r++) {
      const pos = refs[top[p * NN_TOPK + r]];
      const ro = pos * C;
      let d = 0;
      for (let c = 0; c < C; c++) {
        const e = q[ro + c] - q[qo + c];
        d += e * e;
      }
      if (d > worst) worst = d;
      if (pos === p) continue;
      if (d < best || (d === best && pos < bestPos)) {
        best = d;
        bestPos = pos;
      }
    }
    if (bestPos >= 0 && best + 2 * err < worst) {
      out[p] = bestPos;
    } else {
      f ??= featuresChannelsLast(X, b, C, L);
      out[p] = nearestReferenceExact(f, C, p, refs);
    }
  }
  return out;
}

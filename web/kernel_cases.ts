/**
 * Kernel test cases that run unchanged in Deno (wgpu + Naga, lavapipe in CI) and in a browser page
 * (Dawn + Tint, SwiftShader in CI): every WGSL kernel of the toolkit against its plain-TypeScript
 * reference, on fixed seeded inputs. `tests/browser_cases_test.ts` runs them in Deno,
 * `deno task browser-test` in headless chromium, and compares the two implementations' outputs.
 *
 * No Deno or DOM API here: inputs are generated, the one fixture is fetched relative to this
 * module (`data/snarm_official_tiny`, shipped).
 * @module
 */
import type { Gpu } from "../lib/gpu/mod.ts";
import { searchTopK, searchTopKRef } from "../lib/bank/search.ts";
import {
  coresetInitDistances,
  createRng,
  greedyCoresetGpu,
  greedyCoresetReference,
  quantizeCoresetPoints,
  sampleWithoutReplacement,
} from "../lib/bank/coreset.ts";
import { fuseResiduals, fuseResidualsRef } from "../lib/residual/mod.ts";
import { parseSafeTensors } from "../lib/io/safetensors.ts";
import { headFromBytes } from "../lib/model/head.ts";
import { parseHeadConfig } from "../lib/model/config.ts";
import { headForwardBackwardRef } from "../lib/train/backward_ref.ts";
import { GpuHeadTrainer } from "../lib/train/gpu/head_train.ts";
import { initHeadWeights } from "../lib/train/init.ts";
import { mulberry32 } from "../lib/ops/pointwise.ts";
import { KernelSequence } from "../lib/train/gpu/graph.ts";
import {
  recordUpsampleBilinear,
  recordUpsampleBilinearBackward,
} from "../lib/train/gpu/upsample.ts";
import { upsampleBilinearBackward, upsampleBilinearForward } from "../lib/ops/upsample.ts";

/** One case's outcome: its error against the reference, the tolerance, and an output sample. */
export interface CaseResult {
  name: string;
  /** WGSL files the case runs. */
  kernels: string[];
  /** Max error against the TypeScript reference (absolute, or relative where `relative`). */
  err: number;
  tol: number;
  relative: boolean;
  ok: boolean;
  /** A few output values, to compare the two WebGPU implementations directly. */
  sample: number[];
  seconds: number;
}

/** A kernel case: runs on `gpu`, returns its error and sample. */
export interface KernelCase {
  name: string;
  kernels: string[];
  tol: number;
  relative?: boolean;
  run(gpu: Gpu): Promise<{ err: number; sample: number[] }>;
}

const FIXTURE = new URL("../data/snarm_official_tiny/", import.meta.url);

async function fetchBytes(url: URL): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`fetch ${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let e = 0;
  for (let i = 0; i < a.length; i++) e = Math.max(e, Math.abs(a[i] - b[i]));
  return e;
}

function uniform(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

function pick(a: ArrayLike<number>, n = 16): number[] {
  const step = Math.max(1, Math.floor(a.length / n));
  const out: number[] = [];
  for (let i = 0; i < a.length && out.length < n; i += step) out.push(Number(a[i]));
  return out;
}

/** Exact top-k: index mismatches count as Infinity; else the max distance error. */
async function knnCase(variant: "tiled" | "broadcast"): Promise<{ err: number; sample: number[] }> {
  const q = 700, n = 3000, d = 64, k = 3;
  const Q = uniform(q * d, 1), Bk = uniform(n * d, 2);
  const got = await searchTopK(Q, Bk, k, { d, variant });
  const ref = searchTopKRef(Q, Bk, d, k);
  for (let i = 0; i < got.indices.length; i++) {
    if (got.indices[i] !== ref.indices[i]) return { err: Infinity, sample: [] };
  }
  return { err: maxAbs(got.distances, ref.distances), sample: pick(got.distances) };
}

async function tinyFixture() {
  const io = parseSafeTensors(await fetchBytes(new URL("io.safetensors", FIXTURE)), "io");
  const head = headFromBytes(await fetchBytes(new URL("weights.safetensors", FIXTURE)), "tiny");
  return { io, head };
}

/** The cases, in the order they run. */
export const KERNEL_CASES: KernelCase[] = [
  {
    name: "bank search, tiled top-k + merge (Q=700, N=3000, D=64, k=3)",
    kernels: ["bank/knn_tiled.wgsl", "bank/knn_merge.wgsl"],
    tol: 1e-4,
    run: () => knnCase("tiled"),
  },
  {
    name: "bank search, broadcast top-k (Q=700, N=3000, D=64, k=3)",
    kernels: ["bank/knn_broadcast.wgsl"],
    tol: 1e-4,
    run: () => knnCase("broadcast"),
  },
  {
    name: "greedy coreset (N=5000, D=32, T=100): same selection",
    kernels: ["bank/coreset_update.wgsl", "bank/coreset_argmax.wgsl"],
    tol: 0,
    async run(gpu) {
      const n = 5000, d = 32, t = 100;
      const c = quantizeCoresetPoints(uniform(n * d, 3), d);
      const init = coresetInitDistances(
        c.codes,
        n,
        d,
        sampleWithoutReplacement(n, 10, createRng(4)),
      );
      const g = await greedyCoresetGpu(gpu, c.codes, n, d, t, init);
      const r = greedyCoresetReference(c.codes, n, d, t, init);
      const diff = g.indices.some((v, i) => v !== r.indices[i])
        ? Infinity
        : maxAbs(g.minDist, r.minDist);
      return { err: diff, sample: pick(g.indices) };
    },
  },
  {
    name: "residual fusion (official tiny X: encode, self-references, intra-residual)",
    kernels: ["residual/encode.wgsl"],
    tol: 1e-5,
    async run() {
      const { io, head } = await tinyFixture();
      const X = io.tensors.get("X")!.data as Float32Array;
      const [B, , h, w] = io.tensors.get("X")!.shape;
      const o = { ratio: head.config.self_ratio, method: head.config.residual_method };
      const u = [head.weights.unaryW, head.weights.unaryB[0]] as const;
      const g = await fuseResiduals(X, B, h, w, ...u, { ...o, engine: "webgpu" });
      const r = fuseResidualsRef(X, B, h, w, ...u, o);
      if (g.refMask.some((v, i) => v !== r.refMask[i])) return { err: Infinity, sample: [] };
      return { err: maxAbs(g.Z, r.Z), sample: pick(g.Z) };
    },
  },
  {
    name: "SNARM head forward + maps (official tiny weights and X) vs the TypeScript reference",
    kernels: [
      "head/gemm.wgsl",
      "head/tokens.wgsl",
      "head/winograd.wgsl",
      "head/winograd_out.wgsl",
      "head/conv1d.wgsl",
      "head/selective_scan.wgsl",
      "head/maps.wgsl",
    ],
    tol: 1e-4,
    async run() {
      const { io, head } = await tinyFixture();
      const X = io.tensors.get("X")!.data as Float32Array;
      const [B, , h, w] = io.tensors.get("X")!.shape;
      const g = await head.forward(X, B, h, w, { engine: "webgpu" }); // the WGSL kernels
      const r = await head.forward(X, B, h, w, { reference: true });
      return {
        err: Math.max(maxAbs(g.headLogits, r.headLogits), maxAbs(g.smoothed, r.smoothed)),
        sample: pick(g.headLogits),
      };
    },
  },
  {
    name: "training step (tiny head, depth 2): loss and every gradient vs the float64 reference",
    kernels: [
      "train/gemm.wgsl",
      "train/im2col.wgsl",
      "train/col2im.wgsl",
      "train/colsum.wgsl",
      "train/rows.wgsl",
      "train/norm.wgsl",
      "train/batchnorm.wgsl",
      "train/pointwise.wgsl",
      "train/axpy.wgsl",
      "train/conv1d.wgsl",
      "train/conv1d_bwd.wgsl",
      "train/scan.wgsl",
      "train/scan_bwd.wgsl",
      "train/scan_reduce_bc.wgsl",
      "train/scan_reduce_param.wgsl",
      "train/loss.wgsl",
      "train/adamw.wgsl",
    ],
    tol: 2e-3,
    relative: true,
    async run(gpu) {
      const cfg = parseHeadConfig({
        image_size: [3, 48, 48],
        stride: 8,
        in_chans: 16,
        embed_dim: 8,
        depth: 2,
        scan: 4,
        self_ratio: 0.75,
        scale_list: [1, 2],
        residual_method: "concat_abs_square",
      });
      const w0 = initHeadWeights(cfg, 3);
      const B = 2, h = 6, w = 6, L = h * w, Ls = L - Math.round(0.75 * L);
      const rnd = mulberry32(5);
      const Z = Float32Array.from({ length: B * 16 * L }, () => rnd() * 2 - 1);
      const refMask = new Uint8Array(B * L).fill(1);
      for (let b = 0; b < B; b++) for (let j = 0; j < Ls; j++) refMask[b * L + ((j * 7) % L)] = 0;
      const target = Float32Array.from({ length: B * L }, () => (rnd() < 0.2 ? rnd() : 0));
      const ref = headForwardBackwardRef(w0, Z, refMask, B, h, w, target, {});
      const tr = await GpuHeadTrainer.create(gpu, structuredClone(w0), { B, h, w, dropout: 0 });
      try {
        const l = await tr.step({ Z, refMask, target, lr: 1e-2 });
        const grads = await tr.grads();
        let worst = Math.abs(l.loss - ref.loss) / (1 + ref.loss);
        for (const [name, g] of ref.grads) {
          const got = grads.get(name);
          if (!got) return { err: Infinity, sample: [] };
          let scale = 0;
          for (const v of g) scale = Math.max(scale, Math.abs(v));
          worst = Math.max(worst, maxAbs(got, g) / (scale + 1e-6));
        }
        return { err: worst, sample: [l.loss, ...pick(grads.values().next().value ?? [])] };
      } finally {
        tr.destroy();
      }
    },
  },
];

KERNEL_CASES.push({
  name: "bilinear upsampling (align_corners) forward and backward, 2×5×7 → 17×23",
  kernels: ["train/upsample.wgsl"],
  tol: 1e-5,
  async run(gpu) {
    const [n, h, w, H, W] = [2, 5, 7, 17, 23];
    const x = uniform(n * h * w, 7), gy = uniform(n * H * W, 8);
    const fw = new KernelSequence(gpu, "upsample");
    const bw = new KernelSequence(gpu, "upsample backward");
    try {
      const X = fw.tensor(x, "X"), Y = fw.tensor(n * H * W, "Y");
      await recordUpsampleBilinear(fw, { X: { t: X }, n, h, w, H, W, Y: { t: Y } });
      await fw.run();
      const y = await fw.read(Y);
      const G = bw.tensor(gy, "dY"), dX = bw.tensor(n * h * w, "dX");
      await recordUpsampleBilinearBackward(bw, { dY: { t: G }, n, h, w, H, W, dX: { t: dX } });
      await bw.run();
      const gx = await bw.read(dX);
      const err = Math.max(
        maxAbs(y, upsampleBilinearForward(x, n, h, w, H, W)),
        maxAbs(gx, upsampleBilinearBackward(gy, n, h, w, H, W)),
      );
      return { err, sample: [...pick(y, 8), ...pick(gx, 8)] };
    } finally {
      fw.destroy();
      bw.destroy();
    }
  },
});

/**
 * Run every case on `gpu` (or those whose name matches `filter`), each isolated: an exception
 * becomes a failed result whose name carries the message.
 */
export async function runKernelCases(gpu: Gpu, filter?: RegExp): Promise<CaseResult[]> {
  const out: CaseResult[] = [];
  for (const c of KERNEL_CASES) {
    if (filter && !filter.test(c.name)) continue;
    const t0 = performance.now();
    let err = Infinity, sample: number[] = [], name = c.name;
    try {
      ({ err, sample } = await c.run(gpu));
    } catch (e) {
      name = `${c.name}: ${(e as Error).message}`;
    }
    out.push({
      name,
      kernels: c.kernels,
      err,
      tol: c.tol,
      relative: c.relative ?? false,
      ok: err <= c.tol,
      sample,
      seconds: (performance.now() - t0) / 1000,
    });
  }
  return out;
}

/**
 * Greedy k-centre coreset speed (the T greedy iterations of `approximateGreedyCoreset`, after the
 * projection): the CPU implementation (`coreset_cpu.ts`, WebAssembly SIMD + exact pruning) and the
 * WGSL kernel on the adapter (`greedyCoresetGpu`; lavapipe on a CPU-only machine), same run.
 *
 * Points: synthetic 128-d patch-like features, quantised and initialised exactly as the sampler
 * does (`quantizeCoresetPoints`, `coresetInitDistances` from 10 random starts): 400 cluster centres
 * (uniform in ±4), each point = centre + a random combination of 12 directions private to its
 * cluster + small isotropic noise (low local intrinsic dimension, like backbone patch features).
 * The pruning gain depends strongly on the data: these clustered points prune well (the default
 * size ran in 4.3 s on 2 loaded cores), uniform random 128-d points not at all (50 000 × 2 000:
 * 2.2 s vs 13 s for the TypeScript reference, the SIMD kernel alone). Real mobilenetv2 features of
 * magnetic_tile (200 000 × 10 000, 128-d projection) sit in between, closer to the bad end: 101 s
 * measured without the early exit (≈ 80 s expected with it) vs ≈ 570 s for WGSL on lavapipe.
 *
 * Sizes: moderate = n 50 000, T 2 000; default = the bank defaults n 200 000 (cap), T 10 000.
 * Prints `coreset <n>×<T> <impl>: X s` lines (wall time of the iterations; for webgpu including
 * the pipeline creation and the code upload) and whether the selections are identical.
 * Env: `SNARM_CORESET_BENCH=moderate,default` (sizes of the CPU runs, default both),
 * `SNARM_CORESET_BENCH_WEBGPU=moderate` (sizes of the WGSL runs, default moderate; the default
 * size takes ≈ 10 minutes on lavapipe).
 * Run: `deno run -A bench/coreset_bench.ts` (or `deno bench -A bench/coreset_bench.ts`).
 * @module
 */
import { loadavg } from "node:os";
import { tryGetGpu } from "../lib/gpu/device.ts";
import {
  coresetInitDistances,
  createRng,
  greedyCoresetGpu,
  quantizeCoresetPoints,
  sampleWithoutReplacement,
} from "../lib/bank/coreset.ts";
import { greedyCoresetCpu } from "../lib/bank/coreset_cpu.ts";

interface Size {
  name: string;
  n: number;
  t: number;
  d: number;
}
const ALL: Size[] = [
  { name: "moderate", n: 50_000, t: 2_000, d: 128 },
  { name: "default", n: 200_000, t: 10_000, d: 128 },
];
const pick = (env: string, def: string) => (Deno.env.get(env) ?? def).split(",");
const cpuSizes = pick("SNARM_CORESET_BENCH", "moderate,default");
const webgpuSizes = pick("SNARM_CORESET_BENCH_WEBGPU", "moderate");
const la = () => loadavg().map((x) => x.toFixed(2)).join(" ");

function points(n: number, d: number, seed: number) {
  const rng = createRng(seed);
  const k = 400, sub = 12;
  const centres = new Float32Array(k * d).map(() => (rng.nextFloat() * 2 - 1) * 4);
  const dirs = new Float32Array(k * sub * d).map(() => rng.nextFloat() * 2 - 1);
  const x = new Float32Array(n * d);
  const g = new Float64Array(sub);
  for (let i = 0; i < n; i++) {
    const c = rng.nextInt(k);
    for (let s = 0; s < sub; s++) g[s] = (rng.nextFloat() + rng.nextFloat() - 1) / (1 + s);
    for (let j = 0; j < d; j++) {
      let v = centres[c * d + j] + (rng.nextFloat() - 0.5) * 0.05;
      for (let s = 0; s < sub; s++) v += g[s] * dirs[(c * sub + s) * d + j] * 0.3;
      x[i * d + j] = v;
    }
  }
  const q = quantizeCoresetPoints(x, d);
  const starts = sampleWithoutReplacement(n, 10, rng);
  return { codes: q.codes, init: coresetInitDistances(q.codes, n, d, starts) };
}

const gpu = await tryGetGpu();
console.log(
  `${navigator.hardwareConcurrency} cores, adapter ${
    gpu ? `${gpu.info.description || gpu.info.vendor}${gpu.info.isCpu ? " (CPU)" : ""}` : "none"
  }, load average ${la()}`,
);

const benches: Array<{ name: string; fn: () => unknown }> = [];
for (const size of ALL) {
  const runCpu = cpuSizes.includes(size.name);
  const runGpu = !!gpu && webgpuSizes.includes(size.name);
  if (!runCpu && !runGpu) continue;
  const { n, t, d } = size;
  const { codes, init } = points(n, d, 1);
  let cpuSel: Int32Array | null = null;
  if (runCpu) {
    let kernel = "";
    const t0 = performance.now();
    const r = greedyCoresetCpu(codes, n, d, t, init, { onKernel: (k) => (kernel = k) });
    const s = (performance.now() - t0) / 1000;
    cpuSel = r.indices;
    console.log(`coreset ${n}×${t} cpu: ${s.toFixed(2)} s  (${kernel}; load average ${la()})`);
    if (size.name === "moderate") {
      benches.push({
        name: `coreset ${n}×${t} cpu`,
        fn: () => greedyCoresetCpu(codes, n, d, t, init),
      });
    }
  }
  if (runGpu) {
    const t0 = performance.now();
    const r = await greedyCoresetGpu(gpu!, codes, n, d, t, init);
    const s = (performance.now() - t0) / 1000;
    const same = cpuSel ? cpuSel.every((v, i) => v === r.indices[i]) : null;
    console.log(
      `coreset ${n}×${t} webgpu: ${s.toFixed(2)} s  (load average ${la()}` +
        (same === null ? ")" : `; identical to cpu: ${same})`),
    );
  }
}
console.log(`load average after: ${la()}`);

for (const b of benches) Deno.bench({ name: b.name, n: 1, warmup: 0, fn: () => void b.fn() });

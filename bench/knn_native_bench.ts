/**
 * Exact top-3 bank search speed on ONNX Runtime's native CPU engine (variant `"native"`) and on the
 * WGSL kernel of the adapter (variant `"webgpu"`: broadcast on lavapipe), same run.
 *
 * Sizes (shared/docs/webgpu-on-lavapipe.md): small = 2401 queries × 10 000 bank rows × D=128,
 * big = 2401 × 100 000 × 512. GFLOP/s = 2·Q·N·D / t, t = median wall time of one complete
 * `searchTopK` call on a prepared index (native: all Gemm + TopK runs, the host merge of the
 * chunks' candidates and the exact f64 re-rank; webgpu: upload, dispatches, readback, exact
 * distances). Session / pipeline creation and the first call (lavapipe JIT) are excluded. Both are
 * checked against the TypeScript reference on the first 24 queries.
 *
 * The peer, in the same run: faiss (IndexFlatL2, CPU, threads = cores, `OMP_WAIT_POLICY=PASSIVE`)
 * through `bench/knn_faiss.py` when Debian's python3-faiss is installed (`knn <size> faiss: X
 * GFLOP/s`, then the native/faiss ratio); `SNARM_KNN_BENCH_FAISS=0` skips it.
 *
 * Prints `knn <size> <variant>: X GFLOP/s` lines. Env: `SNARM_KNN_BENCH=small,big` (sizes of the
 * native runs, default both), `SNARM_KNN_BENCH_WEBGPU=small,big` (sizes of the WGSL runs, default
 * small: the big size takes minutes on lavapipe).
 * Run: `deno run -A bench/knn_native_bench.ts` (or `deno bench -A bench/knn_native_bench.ts`).
 * @module
 */
import { loadavg } from "node:os";
import { tryGetGpu } from "../lib/gpu/device.ts";
import {
  type BankIndex,
  createBankIndex,
  lastNativeStats,
  nativeSearchAvailable,
  prepareBankSearch,
  searchTopK,
  searchTopKRef,
  type SearchVariant,
} from "../lib/bank/search.ts";
import { runPeer } from "./_peer.ts";
import { rand } from "../tests/_knn.ts";
import { median } from "./_stats.ts";

interface Size {
  name: string;
  q: number;
  n: number;
  d: number;
}
const ALL: Size[] = [
  { name: "small", q: 2401, n: 10_000, d: 128 },
  { name: "big", q: 2401, n: 100_000, d: 512 },
];
const K = 3;
const pick = (env: string, def: string) => (Deno.env.get(env) ?? def).split(",");
const nativeSizes = pick("SNARM_KNN_BENCH", "small,big");
const webgpuSizes = pick("SNARM_KNN_BENCH_WEBGPU", "small");

const la = () => loadavg().map((x) => x.toFixed(2)).join(" ");
const gpu = await tryGetGpu();
const native = await nativeSearchAvailable();
console.log(
  `knn native bench: adapter ${
    gpu ? `"${gpu.info.description}" (isCpu ${gpu.info.isCpu})` : "none"
  }, onnxruntime-node ${native ? "loads" : "unavailable"}, ` +
    `${navigator.hardwareConcurrency} cores, load average ${la()}`,
);

const indices: BankIndex[] = [];
/** GFLOP/s of the native runs per size, for the faiss ratio. */
const nativeGf = new Map<string, number>();
const benches: Array<{ name: string; fn: () => Promise<unknown> }> = [];

for (const size of ALL) {
  const variants: SearchVariant[] = [];
  if (native && nativeSizes.includes(size.name)) variants.push("native");
  if (gpu && webgpuSizes.includes(size.name)) variants.push("webgpu");
  if (!variants.length) continue;
  const queries = rand(size.q * size.d, 1);
  const bank = rand(size.n * size.d, 2);
  const refQ = 24;
  const ref = searchTopKRef(queries.subarray(0, refQ * size.d), bank, size.d, K);
  for (const variant of variants) {
    const index = await createBankIndex(variant === "webgpu" ? gpu : null, bank, size.d);
    indices.push(index);
    let t = performance.now();
    await prepareBankSearch(index, K, { q: size.q, variant });
    const tPrep = performance.now() - t;
    t = performance.now();
    const first = await searchTopK(queries, index, K, { variant });
    const tFirst = performance.now() - t;
    for (let i = 0; i < ref.indices.length; i++) {
      if (first.indices[i] !== ref.indices[i]) {
        throw new Error(`${size.name} ${variant}: disagrees with the reference at ${i}`);
      }
    }
    // A few more unmeasured calls: the first runs after loading are slower (page faults, caches).
    for (let w = 0; w < (size.name === "big" ? 0 : 3); w++) {
      await searchTopK(queries, index, K, { variant });
    }
    const runs = size.name === "big" ? (variant === "native" ? 3 : 1) : 9;
    const times: number[] = [];
    for (let r = 0; r < runs; r++) {
      t = performance.now();
      await searchTopK(queries, index, K, { variant });
      times.push(performance.now() - t);
    }
    const med = median(times);
    const gf = (ms: number) => ((2 * size.q * size.n * size.d) / (ms * 1e6)).toFixed(1);
    console.log(`knn ${size.name} ${variant}: ${gf(med)} GFLOP/s`);
    if (variant === "native") nativeGf.set(size.name, Number(gf(med)));
    console.log(
      `  ${size.q}×${size.n}×${size.d} k=${K}: median ${med.toFixed(0)} ms of ${runs} ` +
        `(best ${gf(Math.min(...times))} GFLOP/s); prepare ${tPrep.toFixed(0)} ms, first call ` +
        `${tFirst.toFixed(0)} ms` +
        (variant === "native" ? `; rounds accepted ${JSON.stringify(lastNativeStats)}` : "") +
        `; load average ${la()}`,
    );
    benches.push({
      name: `knn ${size.name} ${variant}`,
      fn: () => searchTopK(queries, index, K, { variant }),
    });
  }
}
/** faiss on the same sizes (bench/knn_faiss.py), or why it did not run. */
async function faissPeer(sizes: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (Deno.env.get("SNARM_KNN_BENCH_FAISS") === "0" || !sizes.length) return out;
  const args = [sizes.join(","), String(navigator.hardwareConcurrency)];
  const lines = await runPeer("./knn_faiss.py", args, "knn faiss peer", "python3-faiss");
  for (const line of lines ?? []) {
    const m = line.match(/^knn (\w+) faiss: ([\d.]+) GFLOP\/s/);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

const faiss = await faissPeer(nativeSizes);
for (const [size, gf] of faiss) {
  const mine = nativeGf.get(size);
  if (mine) console.log(`knn ${size} native/faiss: ${(mine / gf).toFixed(2)}×`);
}
console.log(`load average after: ${la()}`);

for (const b of benches) {
  Deno.bench({ name: b.name, n: 1, warmup: 0, fn: async () => void (await b.fn()) });
}

globalThis.addEventListener("unload", () => {
  for (const i of indices) i.destroy();
});

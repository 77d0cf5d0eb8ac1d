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
 * through `bench/knn_faiss.py --paired` when Debian's python3-faiss is installed, timed in rounds
 * that alternate with the native variant's (3 rounds per size; small: 5 timed searches after 3
 * warm-ups per round, big: 2 after 1), so both see the same state of the machine: `knn <size>
 * faiss: X GFLOP/s`, then the native/faiss ratio of the medians and per round;
 * `SNARM_KNN_BENCH_FAISS=0` skips it.
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
import { type PairedPeer, startPairedPeer } from "./_peer.ts";
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
const benches: Array<{ name: string; fn: () => Promise<unknown> }> = [];
const useFaiss = Deno.env.get("SNARM_KNN_BENCH_FAISS") !== "0";

/**
 * Rounds of the native variant, alternating with faiss's: per size ROUNDS rounds, each of `warm`
 * untimed then `reps` timed searches, ours then the peer's, so both see the same state of this VM
 * (its speed drifts by ±20–40 % between runs minutes apart; one figure each, taken apart, gave
 * native/faiss 1.06× and 1.52× on the same code).
 */
const ROUNDS = 3;
const roundsOf = (size: Size) => size.name === "big" ? { warm: 1, reps: 2 } : { warm: 3, reps: 5 };

/** The paired faiss peer of `size` (bench/knn_faiss.py --paired), or null (with a line why). */
function faissPeer(size: Size): Promise<PairedPeer | null> {
  if (!useFaiss) return Promise.resolve(null);
  return startPairedPeer(
    "./knn_faiss.py",
    [size.name, String(navigator.hardwareConcurrency), "--paired"],
    `knn ${size.name} faiss peer`,
    "python3-faiss libopenblas0-pthread",
    // per answer (index build, or a round): a small round takes under a second, a big one seconds
    size.name === "big" ? 300_000 : 60_000,
  );
}

for (const size of ALL) {
  const variants: SearchVariant[] = [];
  if (native && nativeSizes.includes(size.name)) variants.push("native");
  if (gpu && webgpuSizes.includes(size.name)) variants.push("webgpu");
  if (!variants.length) continue;
  const queries = rand(size.q * size.d, 1);
  const bank = rand(size.n * size.d, 2);
  const refQ = 24;
  const ref = searchTopKRef(queries.subarray(0, refQ * size.d), bank, size.d, K);
  const gf = (ms: number) => ((2 * size.q * size.n * size.d) / (ms * 1e6)).toFixed(1);
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
    const search = () => searchTopK(queries, index, K, { variant });
    const times: number[] = [], peerTimes: number[] = [], ratios: number[] = [];
    let how: string;
    if (variant === "native") {
      const { warm, reps } = roundsOf(size);
      let peer = await faissPeer(size);
      try {
        for (let r = 0; r < ROUNDS; r++) {
          for (let w = 0; w < warm; w++) await search();
          const tr: number[] = [];
          for (let i = 0; i < reps; i++) {
            t = performance.now();
            await search();
            tr.push(performance.now() - t);
          }
          times.push(...tr);
          if (!peer) continue;
          try {
            const pr = await peer.times(warm, reps);
            peerTimes.push(...pr);
            ratios.push(median(pr) / median(tr));
          } catch (e) {
            console.log(`knn ${size.name} faiss peer: stopped (${(e as Error).message})`);
            await peer.close();
            peer = null;
          }
        }
      } finally {
        await peer?.close();
      }
      how = `${ROUNDS} rounds × ${reps} after ${warm} warm-ups each`;
    } else {
      // WGSL on lavapipe: a few more unmeasured calls (the first runs after loading are slower)
      for (let w = 0; w < (size.name === "big" ? 0 : 3); w++) await search();
      const runs = size.name === "big" ? 1 : 9;
      for (let r = 0; r < runs; r++) {
        t = performance.now();
        await search();
        times.push(performance.now() - t);
      }
      how = `${runs} runs`;
    }
    const med = median(times);
    console.log(`knn ${size.name} ${variant}: ${gf(med)} GFLOP/s`);
    console.log(
      `  ${size.q}×${size.n}×${size.d} k=${K}: median ${med.toFixed(0)} ms of ${how} ` +
        `(best ${gf(Math.min(...times))} GFLOP/s); prepare ${tPrep.toFixed(0)} ms, first call ` +
        `${tFirst.toFixed(0)} ms` +
        (variant === "native" ? `; rounds accepted ${JSON.stringify(lastNativeStats)}` : "") +
        `; load average ${la()}`,
    );
    if (ratios.length === ROUNDS) {
      console.log(`knn ${size.name} faiss: ${gf(median(peerTimes))} GFLOP/s`);
      console.log(
        `knn ${size.name} native/faiss: ${(median(peerTimes) / med).toFixed(2)}× faiss's ` +
          `throughput (> 1: native faster; alternating rounds: per round ${
            ratios.map((v) => v.toFixed(2)).join(", ")
          }×)`,
      );
    }
    benches.push({ name: `knn ${size.name} ${variant}`, fn: search });
  }
}
console.log(`load average after: ${la()}`);

for (const b of benches) {
  Deno.bench({ name: b.name, n: 1, warmup: 0, fn: async () => void (await b.fn()) });
}

globalThis.addEventListener("unload", () => {
  for (const i of indices) i.destroy();
});

/**
 * Exact top-3 bank search speed: WebGPU kernel vs the TypeScript reference, same run.
 *
 * Sizes (shared/docs/webgpu-on-lavapipe.md): small = 2401 queries × 10 000 bank rows × D=128,
 * big = 2401 × 100 000 × 512. GFLOP/s = 2·Q·N·D / t, t = wall time of one complete
 * `searchTopK` call on a GPU-resident bank (query upload, all dispatches in one submit, readback
 * of the indices, exact host distances of the k chosen rows). Pipeline creation and the first
 * dispatch (LLVM JIT on lavapipe) are timed separately and excluded.
 * The TypeScript reference is timed on a subset of the queries and scaled to the full Q (it is
 * ~100× slower); the output says so.
 *
 * Run: `deno bench -A bench/knn_bench.ts` (env `SNARM_KNN_BENCH=small` or `big` for one size).
 * @module
 */
import { loadavg } from "node:os";
import { tryGetGpu } from "../lib/gpu/device.ts";
import {
  type BankIndex,
  broadcastPlanFor,
  createBankIndex,
  prepareBankSearch,
  searchTopK,
  searchTopKRef,
} from "../lib/bank/search.ts";
import { rand } from "../tests/_knn.ts";
import { median } from "./_stats.ts";

interface Size {
  name: string;
  q: number;
  n: number;
  d: number;
  /** Queries the TypeScript reference is timed on (scaled to q). */
  refQ: number;
  /** Timed kernel runs for the summary. */
  runs: number;
}

const ALL: Size[] = [
  { name: "small", q: 2401, n: 10_000, d: 128, refQ: 240, runs: 7 },
  { name: "big", q: 2401, n: 100_000, d: 512, refQ: 12, runs: 3 },
];
const pick = Deno.env.get("SNARM_KNN_BENCH");
const SIZES = ALL.filter((s) => !pick || pick.split(",").includes(s.name));
const K = 3;

/** Process CPU time (all threads) in ms, from /proc (Linux); NaN elsewhere. */
function cpuMs(): number {
  try {
    const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return NaN;
  }
}

const gflops = (s: Size, ms: number, q = s.q) => (2 * q * s.n * s.d) / (ms * 1e6);

const gpu = await tryGetGpu();
const cores = navigator.hardwareConcurrency;
console.log(
  `knn bench: adapter ${gpu ? `"${gpu.info.description}" (isCpu ${gpu.info.isCpu})` : "none"}, ` +
    `${cores} cores, load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}`,
);

interface Prepared {
  size: Size;
  queries: Float32Array;
  bank: Float32Array;
  index: BankIndex | null;
  refQueries: Float32Array;
}
const prepared: Prepared[] = [];
const rows: string[][] = [];

for (const size of SIZES) {
  const queries = rand(size.q * size.d, 1);
  const bank = rand(size.n * size.d, 2);
  const refQueries = queries.subarray(0, size.refQ * size.d);
  const tr = performance.now();
  const ref = searchTopKRef(refQueries, bank, size.d, K);
  const refMs = ((performance.now() - tr) * size.q) / size.refQ;
  const row = [size.name, `${size.q}×${size.n}×${size.d}`];
  let index: BankIndex | null = null;
  if (gpu) {
    let t = performance.now();
    index = await createBankIndex(gpu, bank, size.d);
    const tIndex = performance.now() - t;
    t = performance.now();
    await prepareBankSearch(index, K, { q: size.q });
    const tPipe = performance.now() - t;
    t = performance.now();
    const first = await searchTopK(queries, index, K);
    const tFirst = performance.now() - t;
    for (let i = 0; i < ref.indices.length; i++) {
      if (first.indices[i] !== ref.indices[i]) {
        throw new Error(`${size.name}: kernel and reference disagree at ${i}`);
      }
    }
    const times: number[] = [];
    const c0 = cpuMs();
    for (let r = 0; r < size.runs; r++) {
      t = performance.now();
      await searchTopK(queries, index, K);
      times.push(performance.now() - t);
    }
    const cpu = cpuMs() - c0;
    const med = median(times);
    const plan = gpu.info.isCpu
      ? JSON.stringify(broadcastPlanFor(gpu, Math.ceil(size.d / 4) * 4, size.q))
      : "tiled";
    row.push(
      `${med.toFixed(0)} ms`,
      gflops(size, med).toFixed(1),
      gflops(size, Math.min(...times)).toFixed(1),
      (gflops(size, cpu / size.runs) * cores).toFixed(1),
      `${(refMs / 1000).toFixed(1)} s (${size.refQ}/${size.q} q, scaled)`,
      `${(refMs / med).toFixed(0)}×`,
      `${(tIndex / 1000).toFixed(1)} s`,
      `${(tPipe / 1000).toFixed(1)} s`,
      `${(tFirst / 1000).toFixed(1)} s`,
      plan,
    );
  } else {
    row.push(
      "-",
      "-",
      "-",
      "-",
      `${(refMs / 1000).toFixed(1)} s (${size.refQ}/${size.q} q, scaled)`,
      "-",
      "-",
      "-",
      "-",
      "-",
    );
  }
  rows.push(row);
  prepared.push({ size, queries, bank, index, refQueries });
}

const head = [
  "size",
  "Q×N×D",
  "kernel (median)",
  "GFLOP/s median",
  "GFLOP/s best",
  "GFLOP/s per CPU time×cores",
  "TS reference",
  "kernel vs ref",
  "index upload",
  "pipeline creation",
  "first search (JIT)",
  "plan",
];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r: string[]) => "| " + r.map((c, i) => c.padEnd(widths[i])).join(" | ") + " |";
console.log(
  "\nknn top-3 summary (kernel = one full searchTopK on a GPU-resident bank; GFLOP/s = 2·Q·N·D/t; " +
    "the TS reference ran on the first refQ queries and is scaled to Q; pipeline creation and first-dispatch JIT excluded)",
);
console.log(line(head));
console.log(line(widths.map((w) => "-".repeat(w))));
for (const r of rows) console.log(line(r));
console.log(`load average after: ${loadavg().map((x) => x.toFixed(2)).join(" ")}\n`);

for (const p of prepared) {
  const { size } = p;
  const group = `knn ${size.name} ${size.q}×${size.n}×${size.d}`;
  Deno.bench({
    name: `TS reference, ${size.refQ} of ${size.q} queries (×${
      (size.q / size.refQ).toFixed(0)
    } for full Q)`,
    group,
    baseline: true,
    n: 1,
    warmup: 0,
    fn() {
      searchTopKRef(p.refQueries, p.bank, size.d, K);
    },
  });
  Deno.bench({
    name: `WebGPU searchTopK, all ${size.q} queries`,
    group,
    ignore: !p.index,
    n: size.name === "big" ? 2 : 5,
    warmup: 0,
    async fn() {
      await searchTopK(p.queries, p.index!, K);
    },
  });
}

globalThis.addEventListener("unload", () => {
  for (const p of prepared) p.index?.destroy();
});
